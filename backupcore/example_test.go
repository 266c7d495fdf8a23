package backupcore_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/restorecore"
)

// unpack writes a gzip-compressed fixture to a temporary file.
func unpack(gz, dir string) string {
	in, err := os.Open(gz)
	if err != nil {
		panic(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		panic(err)
	}
	out := filepath.Join(dir, "volume.img")
	f, err := os.Create(out)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, zr); err != nil {
		panic(err)
	}
	return out
}

// Back up a FAT12 volume made by mkfs.vfat, check the image, read from it
// and restore it.
func Example() {
	dir, _ := os.MkdirTemp("", "cbimg-example")
	defer os.RemoveAll(dir)
	src := unpack("../testdata/realimages/fat/mkfs-fat12-lfn.img.gz", dir)
	img := filepath.Join(dir, "fat12.cbi")

	res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: src, Image: img, Codec: image.CodecZstd})
	if err != nil {
		panic(err)
	}
	fmt.Println("file system type:", res.Header.FSType, "cluster size:", res.Header.ClusterSize)
	fmt.Println("clusters stored:", res.Header.ImageClusters, "of", res.Header.ClusterCount)

	r, err := image.Open(img, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	rep, err := r.Verify(context.Background(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("verify ok:", rep.OK())
	boot := make([]byte, 512)
	r.ReadAt(boot, 0) // the image reads like the partition itself
	fmt.Printf("boot signature: %x\n", boot[510:])

	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: filepath.Join(dir, "restored.img")}); err != nil {
		panic(err)
	}
	fmt.Println("restored")
	// Output:
	// file system type: 2 cluster size: 512
	// clusters stored: 35 of 1955
	// verify ok: true
	// boot signature: 55aa
	// restored
}
