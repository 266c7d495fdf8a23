package vmdk

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func run(t *testing.T, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(args[0]); err != nil {
		t.Fatalf("%s is needed (apt-get install qemu-utils)", args[0])
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, b)
	}
}

// TestSplitSparse: a descriptor with several sparse extents (qemu-img's
// twoGbMaxExtentSparse) reads the bytes qemu-io wrote, also across an
// extent boundary; a missing extent is ErrMissing.
func TestSplitSparse(t *testing.T) {
	dir := t.TempDir()
	run(t, dir, "qemu-img", "create", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "d.vmdk", "5G")
	run(t, dir, "qemu-io", "-f", "vmdk", "-c", "write -P 0x5a 0 64k", "-c", "write -P 0xa5 2047M 2M", "-c", "write -P 0x3c 4608M 64k", "d.vmdk")
	d, err := Open(filepath.Join(dir, "d.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.extents) < 3 || d.Size() != 5<<30 {
		t.Fatalf("%d extents, %d bytes", len(d.extents), d.Size())
	}
	for _, c := range []struct {
		off, n int64
		b      byte
	}{{0, 64 << 10, 0x5a}, {64 << 10, 64 << 10, 0}, {2047 << 20, 2 << 20, 0xa5}, {4608 << 20, 64 << 10, 0x3c}, {3 << 30, 1 << 20, 0}} {
		got := make([]byte, c.n)
		if n, err := d.ReadAt(got, c.off); n != len(got) || !bytes.Equal(got, bytes.Repeat([]byte{c.b}, int(c.n))) {
			t.Errorf("at %d: %d bytes (%v), not all %#x", c.off, n, err, c.b)
		}
	}
	d.Close()
	os.Remove(filepath.Join(dir, "d-s002.vmdk"))
	if _, err := Open(filepath.Join(dir, "d.vmdk")); !errors.Is(err, vdio.ErrMissing) {
		t.Errorf("missing extent: %v", err)
	}
}
