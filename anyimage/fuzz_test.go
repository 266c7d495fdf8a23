//go:build linux

package anyimage_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/internal/testvol"
)

// FuzzOpenReaderAt: any bytes opened as an image of any kind give an error
// or an Image whose header, reads, stream and verify end without a panic.
// Seeds: partclone and ntfsclone images of small real volumes (the NTFS one
// cut after its metadata).
func FuzzOpenReaderAt(f *testing.F) {
	fat := testvol.FAT(f, testvol.FATSpec{Bits: 12, SizeMiB: 1, Content: "empty"})
	ntfs := testvol.NTFS(f, testvol.NTFSSpec{SizeMiB: 32, ClusterSize: 512, Content: "empty"})
	for _, p := range []string{testvol.Partclone(f, "partclone.fat12", fat, false), testvol.NTFSClone(f, ntfs, false)} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 64<<10)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := anyimage.OpenReaderAt(bytes.NewReader(b), int64(len(b)), "fuzz", nil, nil)
		if err != nil {
			return
		}
		defer img.Close()
		_ = img.Header()
		p := make([]byte, 8192)
		img.ReadAt(p, 0)
		img.ReadAt(p, img.Size()/2)
		if img.Header().ClusterCount < 1<<24 {
			if u, err := img.Used(context.Background()); err == nil {
				io.Copy(io.Discard, u)
			}
		}
		img.Verify(context.Background(), nil)
	})
}
