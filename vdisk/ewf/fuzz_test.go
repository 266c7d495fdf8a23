package ewf

import (
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func FuzzOpen(f *testing.F) {
	for _, c := range []string{"deflate:fast", "none"} {
		f.Add(seeds.Make(f, "a.E01", []string{"qemu-img", "create", "-f", "raw", "a.raw", "96K"},
			[]string{"qemu-io", "-f", "raw", "-c", "write -P 0x77 0 40k", "a.raw"},
			[]string{"ewfacquire", "-u", "-t", "a", "-c", c, "-f", "encase6", "-q", "a.raw"}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(seeds.File(t, "x.E01", b))
		if err != nil {
			return
		}
		defer d.Close()
		vdio.Exercise(d)
	})
}
