package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Compressed chunks are stored as zstd frames; reads of any range equal the
// partition, and a small read decodes only the frames it touches.
func TestSubFrameReads(t *testing.T) {
	want, path := testImage(t, CodecZstd, 0)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Header.RequiredFlags&RequireSubFrames == 0 || r.Header.SubFrameSize != 16<<10 {
		t.Fatalf("required flags %#x, frame size %d", r.Header.RequiredFlags, r.Header.SubFrameSize)
	}
	framed := 0
	for _, fr := range r.frames {
		if fr.Codec == CodecZstd {
			if fr.Flags != FrameSubFrames && fr.LogicalLen > r.Header.SubFrameSize {
				t.Fatalf("compressed chunk %d has flags %#x", fr.Index, fr.Flags)
			}
			framed++
		}
	}
	if framed == 0 {
		t.Fatal("no compressed chunks")
	}
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 3000; i++ {
		off := rng.Int63n(int64(len(want)))
		n := []int{1, 511, 4096, 4097, 16384, 16385, 40000, 70000, 300000}[i%9]
		n = int(min(int64(n), int64(len(want))-off))
		got := make([]byte, n)
		if k, err := r.ReadAt(got, off); k != n || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, k, err)
		}
		if !bytes.Equal(got, want[off:off+int64(n)]) {
			t.Fatalf("ReadAt(%d, %d) differs", n, off)
		}
	}
	// The direct path alone, without the cache, gives the same bytes.
	for i := range r.frames {
		fr := &r.frames[i]
		if fr.Flags&FrameSubFrames == 0 {
			continue
		}
		whole, err := r.loadChunk(fr, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, span := range [][2]int64{{0, 1}, {100, 4096}, {16383, 2}, {16384, 16384}, {5000, 40000}, {int64(fr.LogicalLen) - 7, 7}, {0, int64(fr.LogicalLen)}} {
			got := make([]byte, span[1])
			if err := r.readSubFrames(got, fr, span[0]); err != nil || !bytes.Equal(got, whole[span[0]:span[0]+span[1]]) {
				t.Fatalf("chunk %d bytes %d+%d: %v", i, span[0], span[1], err)
			}
		}
	}
}

// partOffset finds a partition offset whose bytes are logical byte k of
// chunk ci.
func partOffset(t *testing.T, r *Reader, ci int, k int64) int64 {
	t.Helper()
	target := int64(ci)*int64(r.Header.ChunkSize) + k
	for off := int64(0); off < r.Size(); off += int64(r.Header.ClusterSize) {
		pc := r.ix.locate(off, int64(r.Header.ClusterSize))
		if pc.stream >= 0 && pc.stream <= target && target < pc.stream+pc.length {
			return off + target - pc.stream
		}
	}
	t.Fatalf("logical byte %d of chunk %d is nowhere in the partition", k, ci)
	return 0
}

// A damaged zstd frame fails the reads that touch it and no others, even
// reads of the whole chunk elsewhere; Verify names the chunk.
func TestSubFrameDamage(t *testing.T) {
	want, path := testImage(t, CodecZstd, 0)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ci := -1
	for i, fr := range r.frames {
		if fr.Flags&FrameSubFrames != 0 && fr.LogicalLen == r.Header.ChunkSize {
			ci = i
			break
		}
	}
	if ci < 0 {
		t.Fatal("no full chunk of zstd frames")
	}
	fr := r.frames[ci]
	sub := int64(r.Header.SubFrameSize)
	in1 := partOffset(t, r, ci, sub+100)   // in frame 1
	in2 := partOffset(t, r, ci, 2*sub+100) // in frame 2
	r.Close()
	orig, _ := os.ReadFile(path)
	stored := orig[fr.Offset+frameHeaderLen : fr.Offset+frameHeaderLen+int64(fr.StoredLen)]
	k := subFrameCount(fr.LogicalLen, fr.sub)
	len0 := int64(binary.LittleEndian.Uint32(stored[len(stored)-8*k:]))
	for _, tc := range []struct {
		name string
		at   int64 // offset in the stored bytes
	}{
		{"frame data", len0 + 3},                              // inside frame 1
		{"frame index", int64(len(stored)) - int64(8*k) + 12}, // frame 1's CRC
	} {
		r := openFlipped(t, orig, fr.Offset+frameHeaderLen+tc.at, 0x20)
		if _, err := r.ReadAt(make([]byte, 10), in1); !errors.Is(err, ErrChecksum) {
			t.Errorf("%s: small read in the damaged frame: %v", tc.name, err)
		}
		got := make([]byte, 4096)
		if _, err := r.ReadAt(got, in2); err != nil || !bytes.Equal(got, want[in2:in2+4096]) {
			t.Errorf("%s: small read in the next frame: %v", tc.name, err)
		}
		big := make([]byte, 200<<10) // through the cache, whose load fails
		if _, err := r.ReadAt(big, in1); !errors.Is(err, ErrChecksum) {
			t.Errorf("%s: large read over the damaged frame: %v", tc.name, err)
		}
		if _, err := r.ReadAt(got, in2); err != nil || !bytes.Equal(got, want[in2:in2+4096]) {
			t.Errorf("%s: read in the next frame after a failed chunk load: %v", tc.name, err)
		}
		rep, err := r.Verify(context.Background(), nil)
		var fe *FormatError
		if err != nil || rep.OK() || !errors.As(rep.Problems[0], &fe) || fe.Region != "chunk" {
			t.Errorf("%s: verify: %v %+v", tc.name, err, rep)
		}
		r.Close()
	}
}

// An index whose lengths do not tile the frames is refused, never read
// past; so are headers with impossible frame sizes.
func TestSubFrameStructure(t *testing.T) {
	data := make([]byte, 100000)
	for i := range data {
		data[i] = byte(i / 9)
	}
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	good := encodeSubFrames(e, data, 16<<10, nil)
	fr := frame{Index: 1, LogicalLen: uint32(len(data)), StoredLen: uint32(len(good)), Codec: CodecZstd, Flags: FrameSubFrames, sub: 16 << 10}
	if back, err := decodeStored(good, &fr, true); err != nil || !bytes.Equal(back, data) {
		t.Fatal(err)
	}
	k := subFrameCount(fr.LogicalLen, fr.sub)
	ix := len(good) - 8*k
	for name, mutate := range map[string]func(b []byte){
		"zero length":     func(b []byte) { binary.LittleEndian.PutUint32(b[ix:], 0) },
		"huge length":     func(b []byte) { binary.LittleEndian.PutUint32(b[ix:], 1<<31) },
		"lengths too big": func(b []byte) { binary.LittleEndian.PutUint32(b[ix:], binary.LittleEndian.Uint32(b[ix:])+1) },
		"lengths short":   func(b []byte) { binary.LittleEndian.PutUint32(b[ix+8:], binary.LittleEndian.Uint32(b[ix+8:])-1) },
		"frame CRC":       func(b []byte) { b[ix+4] ^= 1 },
		"frame byte":      func(b []byte) { b[20] ^= 0xff },
	} {
		b := bytes.Clone(good)
		mutate(b)
		if _, err := decodeSubFrames(b, &fr, true, make([]byte, len(data))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	short := fr
	short.StoredLen = uint32(9*k - 1)
	if short.storedLenOK() {
		t.Error("fewer stored bytes than frames and index accepted")
	}
	both := fr
	both.Flags = FrameSubFrames | FrameBlockCRC
	if both.storedLenOK() {
		t.Error("block checksums and zstd frames together accepted")
	}

	base := Header{FSType: 1, Codec: CodecZstd, SectorSize: 512, ClusterSize: 4096, ChunkSize: 1 << 20, FSSectors: 2048, FSSize: 1 << 20,
		ClusterCount: 256, PartLength: 1 << 20, SysExtents: []Extent{{0, 512}}}
	base.Finish()
	for _, tc := range []struct {
		name  string
		req   uint16
		sub   uint32
		codec Codec
		ok    bool
	}{
		{"32K", RequireSubFrames, 32 << 10, CodecZstd, true},
		{"none", 0, 0, CodecZstd, true},
		{"no flag", 0, 32 << 10, CodecZstd, false},
		{"flag, no size", RequireSubFrames, 0, CodecZstd, false},
		{"not a power of two", RequireSubFrames, 48 << 10, CodecZstd, false},
		{"below a block", RequireSubFrames, 2048, CodecZstd, false},
		{"a whole chunk", RequireSubFrames, 1 << 20, CodecZstd, false},
		{"uncompressed", RequireSubFrames, 32 << 10, CodecNone, false},
	} {
		h := base
		h.RequiredFlags, h.SubFrameSize, h.Codec = tc.req, tc.sub, tc.codec
		b, err := h.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeHeader(b)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err == nil && got.SubFrameSize != tc.sub {
			t.Errorf("%s: frame size %d after a round trip", tc.name, got.SubFrameSize)
		}
	}
}

// Images with one zstd frame per chunk (--zstd-frame 0, and images of
// earlier versions) read and verify as before.
func TestWholeChunkFrames(t *testing.T) {
	want, path := testImageSub(t, CodecZstd, 0, 0)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Header.RequiredFlags&RequireSubFrames != 0 {
		t.Fatalf("required flags %#x", r.Header.RequiredFlags)
	}
	for _, fr := range r.frames {
		if fr.Flags&FrameSubFrames != 0 {
			t.Fatalf("chunk %d has zstd frames", fr.Index)
		}
	}
	got := make([]byte, len(want))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read: %v", err)
	}
	if rep, err := r.Verify(context.Background(), nil); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}
