package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testImage builds a partition of clusters with a pattern bitmap and two
// system extents, writes an image of it and returns the expected partition
// bytes (zeros where nothing is stored) and the image path. Compressed
// chunks are stored as zstd frames of 16 KiB, as backups store them.
func testImage(t testing.TB, codec Codec, split int64) (want []byte, path string) {
	t.Helper()
	sub := uint32(0)
	if codec == CodecZstd {
		sub = 16 << 10
	}
	return testImageSub(t, codec, split, sub)
}

// testImageSub is testImage with zstd frames of sub bytes (0: one per chunk).
func testImageSub(t testing.TB, codec Codec, split int64, sub uint32) (want []byte, path string) {
	t.Helper()
	const cs = 4096
	const clusters = 700
	origin := int64(3 * 512)
	partLen := origin + clusters*cs + 2048
	part := make([]byte, partLen)
	rng := rand.New(rand.NewSource(1))
	rng.Read(part[:len(part)/2])
	for i := len(part) / 2; i < len(part); i++ {
		part[i] = byte(i / 7) // compressible half
	}
	bitmap := make([]byte, (clusters+7)/8)
	var used uint64
	for c := 0; c < clusters; c++ {
		if c%5 != 3 && !(c > 300 && c < 420) {
			bitmap[c/8] |= 1 << (c % 8)
			used++
		}
	}
	sys := []Extent{{0, origin}, {origin + clusters*cs, 2048}}
	h := &Header{FSType: 4, Codec: codec, Level: 3, SectorSize: 512, ClusterSize: cs, ChunkSize: 64 << 10,
		FSSectors: uint64(partLen / 512), FSSize: partLen, ClusterCount: clusters, BitmapBits: clusters,
		ImageClusters: used, ClusterOrigin: origin, PartLength: partLen, Created: time.Unix(1700000000, 0),
		SourceName: "test", ToolVersion: "test", SysExtents: sys, SplitSize: split, SubFrameSize: sub,
		Exclusions: []Exclusion{{Reason: "pagefile.sys", Path: "/pagefile.sys", Clusters: 2, Runs: []Run{{3, 1}, {8, 1}}}}}
	h.Finish()
	path = filepath.Join(t.TempDir(), "t.cbi")
	out, err := Create(path, split)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(out, h, bitmap, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = make([]byte, partLen)
	for _, e := range sys {
		w.Write(part[e.Offset:e.End()])
		copy(want[e.Offset:], part[e.Offset:e.End()])
	}
	for c := 0; c < clusters; c++ {
		if bitmap[c/8]&(1<<(c%8)) != 0 {
			o := origin + int64(c)*cs
			if _, err := w.Write(part[o : o+cs]); err != nil {
				t.Fatal(err)
			}
			copy(want[o:], part[o:o+cs])
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	return want, path
}

func (e Extent) End() int64 { return e.Offset + e.Length }

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec Codec
		split int64
	}{{"zstd", CodecZstd, 0}, {"none", CodecNone, 0}, {"split", CodecZstd, 100000}} {
		t.Run(tc.name, func(t *testing.T) {
			want, path := testImage(t, tc.codec, tc.split)
			r, err := Open(path, &Options{CacheBytes: 256 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := make([]byte, r.Size())
			if _, err := r.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("ReadAt of the whole partition differs")
			}
			rng := rand.New(rand.NewSource(2))
			for i := 0; i < 2000; i++ {
				off := rng.Int63n(r.Size())
				n := rng.Intn(20000)
				p := make([]byte, n)
				k, err := r.ReadAt(p, off)
				if k != min(n, int(r.Size()-off)) || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d,%d) = %d, %v", n, off, k, err)
				}
				if !bytes.Equal(p[:k], want[off:off+int64(k)]) {
					t.Fatalf("ReadAt(%d,%d) differs", n, off)
				}
			}
			rep, err := r.Verify(context.Background(), nil)
			if err != nil || !rep.OK() {
				t.Fatalf("verify: %v %v", err, rep.Error())
			}
			// The stream gives the logical bytes in order.
			f := mustConcat(t, path)
			s, err := NewStreamReader(bytes.NewReader(f))
			if err != nil {
				t.Fatal(err)
			}
			logical, err := io.ReadAll(s)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(logical)) != r.Header.LogicalLen {
				t.Fatalf("stream gave %d bytes, want %d", len(logical), r.Header.LogicalLen)
			}
			if !bytes.Equal(logical[:1536], want[:1536]) {
				t.Fatal("stream starts with other bytes than the first system extent")
			}
			if tc.split > 0 {
				if _, err := os.Stat(path + ".002"); err != nil {
					t.Fatal("no second volume")
				}
			}
		})
	}
}

func mustConcat(t *testing.T, path string) []byte {
	var all []byte
	for i := 1; ; i++ {
		b, err := os.ReadFile(PartName(path, i))
		if err != nil {
			break
		}
		all = append(all, b...)
	}
	return all
}

// Every region: a flipped byte is found by Open or Verify, and named.
func TestCorruptionFound(t *testing.T) {
	_, path := testImage(t, CodecZstd, 0)
	orig, _ := os.ReadFile(path)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	hl := r.Header.Len
	regions := map[string]int64{
		"header": 40, "bitmap": hl + 5, "chunk": r.frames[1].Offset + frameHeaderLen + 10,
		"table": r.Footer.TableOffset + 20, "footer": int64(len(orig)) - 30,
	}
	frameHdr := r.frames[2].Offset + 8
	r.Close()
	regions["chunk-header"] = frameHdr
	for name, off := range regions {
		bad := bytes.Clone(orig)
		bad[off] ^= 0x40
		p := filepath.Join(t.TempDir(), "bad.cbi")
		os.WriteFile(p, bad, 0o600)
		err := openAndVerify(p)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: flipped byte at %d not found: %v", name, off, err)
		}
		wantRegion := name
		if name == "chunk-header" {
			wantRegion = "chunk"
		}
		if fe.Region != wantRegion {
			t.Errorf("%s: reported as region %s: %v", name, fe.Region, err)
		}
		// The stream reader finds it too.
		s, err := NewStreamReader(bytes.NewReader(bad))
		if err == nil {
			_, err = io.Copy(io.Discard, s)
		}
		if err == nil {
			t.Errorf("%s: stream reader accepted a flipped byte at %d", name, off)
		}
	}
	for _, n := range []int{len(orig) - 1, len(orig) / 2, 100, 0} {
		p := filepath.Join(t.TempDir(), "short.cbi")
		os.WriteFile(p, orig[:n], 0o600)
		if err := openAndVerify(p); err == nil {
			t.Errorf("truncated to %d: accepted", n)
		}
		s, err := NewStreamReader(bytes.NewReader(orig[:n]))
		if err == nil {
			_, err = io.Copy(io.Discard, s)
		}
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrFormat) {
			t.Errorf("stream truncated to %d: %v", n, err)
		}
	}
}

func openAndVerify(p string) error {
	r, err := Open(p, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := r.Verify(context.Background(), nil)
	if err != nil {
		return err
	}
	return rep.Error()
}

func TestSplitVolumeMissing(t *testing.T) {
	_, path := testImage(t, CodecNone, 100000)
	os.Rename(path+".002", path+".x")
	if _, err := Open(path, nil); err == nil {
		t.Fatal("missing volume 2 accepted")
	}
	os.Rename(path+".x", path+".002")
	os.Rename(path+".003", path+".x")
	if _, err := Open(path, nil); err == nil {
		t.Fatal("missing volume 3 accepted")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// After the first write error every later call returns it.
func TestWriterStickyError(t *testing.T) {
	h := &Header{FSType: 1, Codec: CodecNone, SectorSize: 512, ClusterSize: 4096, ChunkSize: 64 << 10,
		FSSectors: 2048, FSSize: 1 << 20, ClusterCount: 256, BitmapBits: 256, ImageClusters: 256,
		PartLength: 1 << 20, SysExtents: nil}
	h.Finish()
	bm := bytes.Repeat([]byte{0xff}, 32)
	w, err := NewWriter(&failWriter{n: 100000}, h, bm, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var first error
	for i := 0; i < 16 && first == nil; i++ {
		_, first = w.Write(buf)
		time.Sleep(5 * time.Millisecond)
	}
	cerr := w.Close()
	if cerr == nil || cerr.Error() != "disk full" {
		t.Fatalf("Close after failure: %v", cerr)
	}
	if _, err := w.Write(buf); err == nil {
		t.Fatal("write after failure succeeded")
	}
}

func TestHeaderRefusesUnknown(t *testing.T) {
	h := &Header{FSType: 1, SectorSize: 512, ClusterSize: 4096, ChunkSize: 1 << 20, FSSectors: 2048, FSSize: 1 << 20,
		ClusterCount: 256, BitmapBits: 256, PartLength: 1 << 20}
	h.Finish()
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeHeader(b); err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(b)
	v2[12] = 2
	if _, err := DecodeHeader(v2); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 2: %v", err)
	}
}
