package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// TestVirtualDisks: a VHDX made by qemu-img from a Windows-made disk lists
// the raw disk's partitions, backs up by DISK@N, mounts as disk.raw and
// part1.raw, and is never a restore target; verify checks an E01's MD5;
// a damaged or incomplete virtual disk exits 3.
func TestVirtualDisks(t *testing.T) {
	raw := testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
	dir := t.TempDir()
	vhdx := filepath.Join(dir, "win.vhdx")
	testvol.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vhdx", raw, vhdx)

	want, got := partitionsOf(t, raw), partitionsOf(t, vhdx)
	if got.Format != "VHDX (dynamic)" {
		t.Errorf("format %q", got.Format)
	}
	for i := range want.Partitions {
		want.Partitions[i].Spec = ""
	}
	for i := range got.Partitions {
		got.Partitions[i].Spec = ""
	}
	if !reflect.DeepEqual(want.Partitions, got.Partitions) {
		t.Errorf("partitions of the VHDX %+v, of the raw disk %+v", got.Partitions, want.Partitions)
	}

	img := filepath.Join(dir, "p1.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", vhdx+"@1", img); code != 0 {
		t.Fatalf("backup %s@1: exit %d %s", vhdx, code, stderr)
	}
	if out, stderr, code := cbimg(t, nil, "ls", img, "/test"); code != 0 || !strings.Contains(out, "1.txt") {
		t.Errorf("ls of the backup: exit %d %s %s", code, out, stderr)
	}

	mnt := t.TempDir()
	if _, stderr, code := cbimg(t, nil, "mount", vhdx, mnt); code != 0 {
		t.Fatalf("mount: exit %d %s", code, stderr)
	}
	if a, b := fileSHA(t, filepath.Join(mnt, "disk.raw")), fileSHA(t, raw); a != b {
		t.Errorf("disk.raw %s, the raw disk %s", a, b)
	}
	if _, err := os.Stat(filepath.Join(mnt, "part1.raw")); err != nil {
		t.Error(err)
	}
	if _, stderr, code := cbimg(t, nil, "umount", mnt); code != 0 {
		t.Errorf("umount: exit %d %s", code, stderr)
	}

	// A partition of it: volume.raw, and its files with --files.
	if _, stderr, code := cbimg(t, nil, "mount", vhdx+"@1", mnt); code != 0 {
		t.Fatalf("mount @1: exit %d %s", code, stderr)
	}
	part := filepath.Join(dir, "part1")
	f, _ := os.Open(raw)
	out, _ := os.Create(part)
	io.Copy(out, io.NewSectionReader(f, want.Partitions[0].Start, want.Partitions[0].Size))
	out.Close()
	f.Close()
	if a, b := fileSHA(t, filepath.Join(mnt, "volume.raw")), fileSHA(t, part); a != b {
		t.Errorf("volume.raw of %s@1 %s, the raw partition %s", vhdx, a, b)
	}
	cbimg(t, nil, "umount", mnt)
	if _, stderr, code := cbimg(t, nil, "mount", "--files", vhdx+"@1", mnt); code != 0 {
		t.Fatalf("mount --files @1: exit %d %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "test", "1.txt")); err != nil || !strings.Contains(string(b), "test test 123") {
		t.Errorf("test/1.txt through mount --files: %q, %v", b, err)
	}
	cbimg(t, nil, "umount", mnt)

	if _, stderr, code := cbimg(t, nil, "restore", "--yes", img, vhdx+"@1"); code != exitRefused {
		t.Errorf("restore into a VHDX: exit %d %s", code, stderr)
	}

	// verify of an E01 checks its stored MD5; a flipped byte fails it.
	testvol.Run(t, "ewfacquire", "-u", "-t", filepath.Join(dir, "ev"), "-c", "deflate:fast", "-f", "encase6", "-q", raw)
	e01 := filepath.Join(dir, "ev.E01")
	if out, stderr, code := cbimg(t, nil, "verify", e01); code != 0 || !strings.Contains(out, "MD5 stored") {
		t.Errorf("verify E01: exit %d %s %s", code, out, stderr)
	}
	eb, _ := os.ReadFile(e01)
	eb[len(eb)/2] ^= 0x10
	os.WriteFile(e01, eb, 0o600)
	if _, stderr, code := cbimg(t, nil, "verify", e01); code != exitDamaged {
		t.Errorf("verify of a damaged E01: exit %d %s", code, stderr)
	}

	trunc := filepath.Join(dir, "trunc.vhdx")
	b, _ := os.ReadFile(vhdx)
	os.WriteFile(trunc, b[:300<<10], 0o600)
	if _, stderr, code := cbimg(t, nil, "partitions", trunc); code != exitDamaged {
		t.Errorf("truncated VHDX: exit %d %s", code, stderr)
	}
	orphan := filepath.Join(dir, "orphan.qcow2")
	testvol.Run(t, "qemu-img", "create", "-f", "qcow2", "-u", "-b", filepath.Join(dir, "gone.raw"), "-F", "raw", orphan, "256M")
	if _, stderr, code := cbimg(t, nil, "backup", orphan+"@1", filepath.Join(dir, "o.cbi")); code != exitDamaged || !strings.Contains(stderr, "gone.raw") {
		t.Errorf("missing backing file: exit %d %s", code, stderr)
	}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
