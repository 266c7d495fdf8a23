package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// TestVirtualDiskFiles: ls, cat and info read a partition straight out of
// a virtual disk (and a raw disk file), as they read an image; convert
// turns a backup of it into virtual disks that qemu-img checks clean and
// that hold the same files.
func TestVirtualDiskFiles(t *testing.T) {
	testvol.Need(t, "qemu-img")
	raw := testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
	dir := t.TempDir()
	vhdx := filepath.Join(dir, "win.vhdx")
	testvol.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vhdx", raw, vhdx)

	want, stderr, code := cbimg(t, nil, "ls", "-r", raw+"@1")
	if code != 0 || !strings.Contains(want, "/test/1.txt") {
		t.Fatalf("ls -r %s@1: exit %d %s %s", raw, code, want, stderr)
	}
	if got, stderr, code := cbimg(t, nil, "ls", "-r", vhdx+"@1"); code != 0 || got != want {
		t.Errorf("ls -r of the VHDX partition: exit %d %s\n%s\nwant\n%s", code, stderr, got, want)
	}
	if out, stderr, code := cbimg(t, nil, "cat", vhdx+"@1", "/test/1.txt"); code != 0 || !strings.Contains(out, "test test 123") {
		t.Errorf("cat: exit %d %q %s", code, out, stderr)
	}
	if out, stderr, code := cbimg(t, nil, "info", vhdx+"@1"); code != 0 || !strings.Contains(out, "a partition of a disk") || !strings.Contains(out, "ntfs") {
		t.Errorf("info: exit %d %s %s", code, out, stderr)
	}
	if _, stderr, code := cbimg(t, nil, "convert", vhdx+"@1", filepath.Join(dir, "x.cbi")); code != 2 || !strings.Contains(stderr, "cbimg backup") {
		t.Errorf("convert of a partition: exit %d %s", code, stderr)
	}

	img := filepath.Join(dir, "p1.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", vhdx+"@1", img); code != 0 {
		t.Fatalf("backup: exit %d %s", code, stderr)
	}
	for _, ext := range []string{"qcow2", "vhdx", "vmdk", "raw"} {
		out := filepath.Join(dir, "out."+ext)
		if _, stderr, code := cbimg(t, nil, "convert", img, out); code != 0 {
			t.Fatalf("convert to %s: exit %d %s", ext, code, stderr)
		}
		if ext != "raw" {
			testvol.Run(t, "qemu-img", "check", out)
		}
		if got, stderr, code := cbimg(t, nil, "ls", "-r", out+"@1"); code != 0 || got != want {
			t.Errorf("ls -r of %s@1: exit %d %s\n%s", out, code, stderr, got)
		}
		if ext == "raw" {
			// The disk starts with the boot code of the disk backed up.
			a, b := make([]byte, 440), make([]byte, 440)
			fa, _ := os.Open(raw)
			fb, _ := os.Open(out)
			fa.ReadAt(a, 0)
			fb.ReadAt(b, 0)
			fa.Close()
			fb.Close()
			if !bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 440)) {
				t.Errorf("boot code of the converted disk %x…, of the source disk %x…", b[:16], a[:16])
			}
		}
		if _, err := os.Stat(out + ".partial"); err == nil {
			t.Errorf("%s.partial left behind", out)
		}
	}
	if _, stderr, code := cbimg(t, nil, "convert", img, filepath.Join(dir, "out.qcow2")); code != 4 || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("convert over an existing disk: exit %d %s", code, stderr)
	}
}
