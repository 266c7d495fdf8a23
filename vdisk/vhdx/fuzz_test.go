package vhdx

import (
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func FuzzOpen(f *testing.F) {
	f.Add(seeds.Make(f, "a.vhdx", []string{"qemu-img", "create", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", "{}", "4M"},
		[]string{"qemu-io", "-f", "vhdx", "-c", "write -P 0x44 0 4k", "{}"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(seeds.File(t, "x.vhdx", b))
		if err != nil {
			return
		}
		defer d.Close()
		vdio.Exercise(d)
	})
}
