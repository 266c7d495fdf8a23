//go:build linux

package partclone

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// FuzzNewReader: any bytes as a partclone image give an error or a reader
// whose reads and verify end, never a panic or a hang. Seeds: real images
// of an empty 1 MiB FAT12 volume (with and without checksums), the same laid out
// as version 0001, and cut short.
func FuzzNewReader(f *testing.F) {
	vol := testvol.FAT(f, testvol.FATSpec{Bits: 12, SizeMiB: 1, Content: "empty"})
	for _, extra := range [][]string{nil, {"-a0"}, {"-k", "3"}} {
		b, err := os.ReadFile(testvol.Partclone(f, "partclone.fat12", vol, false, extra...))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		if extra == nil {
			if r, err := openBytes(b); err == nil {
				f.Add(v1Image(f, r, readAll(f, r, r.Size()), 4))
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)), &Options{CacheBytes: 1 << 20})
		if err != nil {
			return
		}
		p := make([]byte, 64<<10)
		for _, off := range []int64{0, r.Size() / 2, r.Size() - 1} {
			r.ReadAt(p, off)
		}
		r.Verify(context.Background(), nil)
		io.Copy(io.Discard, r.Used(context.Background()))
	})
}
