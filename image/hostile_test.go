package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// heapGrowth runs f and returns how much the live heap grew at most (a
// coarse bound: total allocation during f).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// A header whose counts would need gigabytes is refused before anything
// of that size is allocated.
func TestHostileCounts(t *testing.T) {
	h := &Header{FSType: 1, SectorSize: 512, ClusterSize: 4096, ChunkSize: 1 << 20, FSSectors: 1 << 40, FSSize: 1 << 49,
		ClusterCount: 1 << 37, ImageClusters: 1 << 36, PartLength: 1 << 49, SysExtents: []Extent{{0, 512}}}
	h.Finish()
	hb, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	img := append(hb, make([]byte, 4096)...)
	var openErr error
	n := allocated(func() { _, openErr = NewReader(bytes.NewReader(img), int64(len(img)), nil) })
	if !errors.Is(openErr, ErrTruncated) {
		t.Fatalf("Open: %v", openErr)
	}
	if n > 1<<20 {
		t.Fatalf("refusing the image allocated %d bytes", n)
	}
	// The stream reader has no file size; its caps hold too.
	n = allocated(func() { _, openErr = NewStreamReader(bytes.NewReader(img)) })
	if openErr == nil || n > 4<<20 {
		t.Fatalf("stream: %v after %d bytes allocated", openErr, n)
	}
}

// A chunk that inflates far past its logical length (a decompression bomb)
// is refused, in bounded memory.
func TestDecompressionBomb(t *testing.T) {
	_, path := testImageSub(t, CodecZstd, 0, 0)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fr frame
	for _, f := range r.frames {
		if f.Codec == CodecZstd {
			fr = f
			break
		}
	}
	r.Close()
	if fr.Codec != CodecZstd {
		t.Fatal("no compressed chunk in the test image")
	}
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(make([]byte, 100<<20), nil) // 100 MiB of zeros
	if len(bomb) > int(fr.StoredLen) {
		t.Skipf("bomb of %d bytes does not fit the %d-byte chunk", len(bomb), fr.StoredLen)
	}
	b, _ := os.ReadFile(path)
	stored := b[fr.Offset+frameHeaderLen : fr.Offset+frameHeaderLen+int64(fr.StoredLen)]
	// Keep the stored length; pad the bomb with a skippable frame.
	pad := make([]byte, len(stored)-len(bomb))
	if len(pad) >= 8 {
		binary.LittleEndian.PutUint32(pad, 0x184D2A50)
		binary.LittleEndian.PutUint32(pad[4:], uint32(len(pad)-8))
	}
	copy(stored, append(bomb, pad...))
	// Make every checksum agree so only the size check can stop it.
	c := crc(stored)
	f := fr
	f.StoredCRC = c
	copy(b[fr.Offset:], f.encodeHeader())
	bad := filepath.Join(t.TempDir(), "bomb.cbi")
	os.WriteFile(bad, b, 0o600)
	r2, err := NewReader(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	r2.frames[fr.Index].StoredCRC = c
	var rerr error
	n := allocated(func() { _, rerr = r2.loadChunk(&r2.frames[fr.Index], false) })
	if rerr == nil {
		t.Fatal("bomb accepted")
	}
	if n > 200<<20 {
		t.Fatalf("decoding the bomb allocated %d MiB", n>>20)
	}
	t.Logf("bomb refused after %d MiB: %v", n>>20, rerr)
}

// Split volumes given in the wrong order are found.
func TestSplitReordered(t *testing.T) {
	_, path := testImage(t, CodecNone, 100000)
	os.Rename(path+".002", path+".x")
	os.Rename(path+".003", path+".002")
	os.Rename(path+".x", path+".003")
	if err := openAndVerify(path); err == nil {
		t.Fatal("reordered volumes accepted")
	}
}
