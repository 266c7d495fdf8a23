package qcow2

import (
	"errors"
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func noBacking(string, int) (vdio.Disk, error) { return nil, errors.New("no backing files here") }

func FuzzOpen(f *testing.F) {
	for _, compat := range []string{"0.10", "1.1"} {
		f.Add(seeds.Make(f, "a.qcow2",
			[]string{"qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=512,compat=" + compat, "{}", "64K"},
			[]string{"qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4k", "-c", "write -c -P 0x22 8k 512", "-c", "write -z 16k 1k", "{}"}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(seeds.File(t, "x.qcow2", b), noBacking, 0)
		if err != nil {
			return
		}
		defer d.Close()
		vdio.Exercise(d)
	})
}
