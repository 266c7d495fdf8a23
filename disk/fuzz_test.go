//go:build linux

package disk_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/testvol"
)

// FuzzReadTable feeds ReadTable the first 34 sectors (MBR, GPT header and
// entry array) of real disks, mutated. It must never panic or hang, and
// what it accepts must be self-consistent.
func FuzzReadTable(f *testing.F) {
	for _, img := range []string{disktest.MBR(f), disktest.GPT(f), testvol.Real(f, "ntfs/win10-mbr-disk-lastaccess.raw")} {
		b := make([]byte, 34*512)
		fh, err := os.Open(img)
		if err != nil {
			f.Fatal(err)
		}
		_, err = io.ReadFull(fh, b)
		fh.Close()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, ss := range []int{0, 512, 4096} {
			tab, err := disk.ReadTable(bytes.NewReader(b), int64(len(b)), ss)
			if err != nil {
				continue
			}
			seen := map[int]bool{}
			for _, p := range tab.Partitions {
				if p.Number < 1 || seen[p.Number] || p.Start < 0 || p.Length <= 0 || p.Scheme != tab.Scheme {
					t.Fatalf("bad partition %+v in %+v", p, tab)
				}
				seen[p.Number] = true
				if err := tab.Check(p.Number, int64(len(b))); err == nil && p.End() > int64(len(b)) {
					t.Fatalf("Check passed partition %d past the end", p.Number)
				}
			}
		}
	})
}
