//go:build linux && !(cgofuse && cgo)

package mount_test

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/mount"
)

// TestMountDisk: a qcow2 made by qemu-img from a Windows-made disk mounts
// as disk.raw (the raw disk's bytes) and part1.raw (its partition's).
func TestMountDisk(t *testing.T) {
	raw := testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
	q := filepath.Join(t.TempDir(), "d.qcow2")
	testvol.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, q)
	d, err := disk.OpenDisk(q)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := d.Table.Partitions[0]
	dir := t.TempDir()
	m, err := mount.MountDisk(dir, []mount.Named{
		{Name: mount.DiskFileName, Src: io.NewSectionReader(d, 0, d.Size)},
		{Name: mount.PartFileName(p.Number), Src: d.Section(p)},
	}, &mount.Options{Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			mount.UnmountLazy(dir)
		}
	})
	if got, want := testvol.FileSHA256(t, filepath.Join(dir, "disk.raw")), testvol.FileSHA256(t, raw); got != want {
		t.Errorf("disk.raw %s, raw disk %s", got, want)
	}
	part := filepath.Join(t.TempDir(), "part")
	f, _ := os.Open(raw)
	defer f.Close()
	out, _ := os.Create(part)
	io.Copy(out, io.NewSectionReader(f, p.Start, p.Length))
	out.Close()
	if got, want := testvol.FileSHA256(t, filepath.Join(dir, "part1.raw")), testvol.FileSHA256(t, part); got != want {
		t.Errorf("part1.raw %s, the raw partition %s", got, want)
	}
}
