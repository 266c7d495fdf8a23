package image

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// Raw chunks carry block checksums; reads of any range through them equal
// the partition, whatever their alignment to blocks and chunks.
func TestBlockReads(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		want, path := testImage(t, codec, 0)
		r, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw := 0
		for _, fr := range r.frames {
			if fr.Codec == CodecNone {
				if fr.Flags&FrameBlockCRC == 0 {
					t.Fatalf("%v: raw chunk %d without block checksums", codec, fr.Index)
				}
				raw++
			}
		}
		if raw == 0 || r.Header.RequiredFlags&RequireBlockCRC == 0 {
			t.Fatalf("%v: %d raw chunks, required flags %#x", codec, raw, r.Header.RequiredFlags)
		}
		rng := rand.New(rand.NewSource(2))
		for i := 0; i < 3000; i++ {
			off := rng.Int63n(int64(len(want)))
			n := []int{1, 511, 4096, 4097, 8192, 70000, 300000}[i%7]
			if i%3 == 0 {
				off = off / BlockSize * BlockSize
			}
			n = int(min(int64(n), int64(len(want))-off))
			got := make([]byte, n)
			if k, err := r.ReadAt(got, off); k != n || (err != nil && off+int64(n) != int64(len(want))) {
				t.Fatalf("%v: ReadAt(%d, %d) = %d, %v", codec, n, off, k, err)
			}
			if !bytes.Equal(got, want[off:off+int64(n)]) {
				t.Fatalf("%v: ReadAt(%d, %d) differs", codec, n, off)
			}
		}
		r.Close()
	}
}

// A damaged block fails the reads that touch it and no others; Verify
// names it, and so does a damaged block checksum.
func TestBlockDamage(t *testing.T) {
	want, path := testImage(t, CodecNone, 0)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fr := r.frames[3]
	r.Close()
	orig, _ := os.ReadFile(path)
	// Partition offset of chunk 3's logical byte k, found by content.
	cs := int64(64 << 10)
	blockAt := func(k int64) int64 {
		stored := orig[fr.Offset+frameHeaderLen+k : fr.Offset+frameHeaderLen+k+64]
		i := bytes.Index(want, stored)
		if i < 0 || bytes.Index(want[i+1:], stored) >= 0 {
			t.Fatalf("logical byte %d of chunk 3 not found once in the partition", 3*cs+k)
		}
		return int64(i)
	}
	for _, tc := range []struct {
		name string
		at   int64 // image offset flipped
	}{
		{"data", fr.Offset + frameHeaderLen + 5*BlockSize + 100},
		{"checksum", fr.Offset + frameHeaderLen + int64(fr.LogicalLen) + 4*5 + 1},
	} {
		r := openFlipped(t, orig, tc.at, 0x10)
		b5 := blockAt(5 * BlockSize)
		b7 := blockAt(7 * BlockSize)
		var fe *FormatError
		if _, err := r.ReadAt(make([]byte, 10), b5+50); !errors.As(err, &fe) || !errors.Is(err, ErrChecksum) || fe.Offset != fr.Offset+frameHeaderLen+5*BlockSize {
			t.Errorf("%s: read of the damaged block: %v", tc.name, err)
		}
		got := make([]byte, BlockSize)
		if _, err := r.ReadAt(got, b7); err != nil || !bytes.Equal(got, want[b7:b7+BlockSize]) {
			t.Errorf("%s: read of a whole block of the same chunk failed: %v", tc.name, err)
		}
		rep, err := r.Verify(context.Background(), nil)
		if err != nil || rep.OK() || !errors.As(rep.Problems[0], &fe) || fe.Region != "chunk" {
			t.Errorf("%s: verify: %v %+v", tc.name, err, rep)
		}
		r.Close()
	}
}

// openFlipped opens a copy of the image bytes orig with the byte at at
// XORed with mask.
func openFlipped(t *testing.T, orig []byte, at int64, mask byte) *Reader {
	t.Helper()
	bad := bytes.Clone(orig)
	bad[at] ^= mask
	p := filepath.Join(t.TempDir(), "bad.cbi")
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
