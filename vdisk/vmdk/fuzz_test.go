package vmdk

import (
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func FuzzOpen(f *testing.F) {
	for _, sub := range []string{"monolithicSparse", "streamOptimized"} {
		f.Add(seeds.Make(f, "a.raw", []string{"qemu-img", "create", "-f", "raw", "{}", "1M"},
			[]string{"qemu-io", "-f", "raw", "-c", "write -P 0x55 0 4k", "-c", "write -P 0x66 100k 3k", "{}"},
			[]string{"qemu-img", "convert", "-O", "vmdk", "-o", "subformat=" + sub, "a.raw", "a.vmdk"},
			[]string{"mv", "a.vmdk", "{}"}))
	}
	f.Add([]byte("# Disk DescriptorFile\nversion=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 ZERO\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(seeds.File(t, "x.vmdk", b))
		if err != nil {
			return
		}
		defer d.Close()
		vdio.Exercise(d)
	})
}
