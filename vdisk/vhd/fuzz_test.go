package vhd

import (
	"errors"
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func noParent(string, int) (vdio.Disk, error) { return nil, errors.New("no parents here") }

func FuzzOpen(f *testing.F) {
	f.Add(seeds.Make(f, "a.vhd", []string{"qemu-img", "create", "-f", "vpc", "-o", "subformat=dynamic", "{}", "4M"}))
	f.Add(seeds.Make(f, "a.vhd", []string{"qemu-img", "create", "-f", "vpc", "-o", "subformat=fixed", "{}", "64K"},
		[]string{"qemu-io", "-f", "vpc", "-c", "write -P 0x33 0 4k", "{}"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(seeds.File(t, "x.vhd", b), noParent, 0)
		if err != nil {
			return
		}
		defer d.Close()
		vdio.Exercise(d)
	})
}
