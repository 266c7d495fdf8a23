package image

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// FuzzDecodeHeader: any bytes give a header that passes its own checks or
// an error, never a panic or an unbounded allocation.
func FuzzDecodeHeader(f *testing.F) {
	for _, c := range []Codec{CodecNone, CodecZstd} {
		h := &Header{FSType: 1, Codec: c, SectorSize: 512, ClusterSize: 4096, ChunkSize: 1 << 20, FSSectors: 2048, FSSize: 1 << 20,
			ClusterCount: 256, ImageClusters: 0, PartLength: 1 << 20, SysExtents: []Extent{{0, 512}},
			Exclusions: []Exclusion{{Reason: "x", Path: "/pagefile.sys", Clusters: 1, Runs: []Run{{1, 1}}}}, SourceName: "/dev/sdb1"}
		h.Finish()
		b, err := h.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		if err := h.check(); err != nil {
			t.Fatalf("decoded header fails its own check: %v", err)
		}
		if _, err := h.Encode(); err != nil {
			t.Fatalf("decoded header does not encode: %v", err)
		}
	})
}

// FuzzOpen: a whole image, mutated, is refused or read without panics, and
// reads stay within the partition.
func FuzzOpen(f *testing.F) {
	_, path := testImage(f, CodecZstd, 0)
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)), &Options{CacheBytes: 1 << 20})
		if err != nil {
			return
		}
		p := make([]byte, 8192)
		for off := int64(0); off < r.Size(); off += r.Size()/7 + 1 {
			r.ReadAt(p, off)
		}
		r.Verify(context.Background(), nil)
		s, err := r.Stream()
		if err == nil {
			buf := make([]byte, 1<<16)
			for {
				if _, err := s.Read(buf); err != nil {
					break
				}
			}
			s.Close()
		}
	})
}
