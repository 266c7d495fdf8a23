//go:build linux

package devguard

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/testvol"
)

func open(t *testing.T, spec string) *disk.Section {
	t.Helper()
	s, err := disk.OpenPartition(spec, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func holding(ms []Mount, point string) (Mount, bool) {
	for _, m := range ms {
		if m.Point == point {
			return m, true
		}
	}
	return Mount{}, false
}

// A FAT volume file served by fusefat, which names itself rather than the
// file in the mount table: the driver's command line shows it holds the
// file, writes are refused, and paths under it are inside it.
func TestHoldersFUSEDriver(t *testing.T) {
	testvol.Need(t, "fusefat", "fusermount")
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}))
	dir := t.TempDir()
	sec := open(t, vol)
	if ms, err := Holders(sec); err != nil || len(ms) != 0 {
		t.Fatalf("before the mount: %v %v", ms, err)
	}
	unmount := testvol.MountDriver(t, exec.Command("fusefat", "-f", "-o", "ro", vol, dir), dir)
	ms, err := Holders(sec)
	m, ok := holding(ms, dir)
	if err != nil || !ok || !m.IsFUSE() || m.Device != vol {
		t.Fatalf("Holders: %+v %v", ms, err)
	}
	err = MayWrite(sec)
	var he *HeldError
	if !errors.Is(err, ErrMounted) || !errors.As(err, &he) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("MayWrite: %v", err)
	}
	if at, ok := MountAt(dir); !ok || at.FSType != m.FSType {
		t.Fatalf("MountAt: %+v %v", at, ok)
	}
	in, abs, ok := Inside(filepath.Join(dir, "DOCS", "x.cbi"), ms)
	if !ok || in.Point != dir || in.PathInside(abs) != "/DOCS/x.cbi" {
		t.Fatalf("Inside: %+v %s %v", in, abs, ok)
	}
	if _, _, ok := Inside(filepath.Join(t.TempDir(), "x.cbi"), ms); ok {
		t.Fatal("a path outside the mount is inside it")
	}
	other := open(t, testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}))
	if err := MayWrite(other); err != nil {
		t.Fatalf("another file: %v", err)
	}
	unmount()
	if err := MayWrite(sec); err != nil {
		t.Fatalf("after the unmount: %v", err)
	}
	if _, ok := MountAt(dir); ok {
		t.Fatal("MountAt after the unmount")
	}
}

// A partition of a disk image mounted through a loop device: the disk
// (through the loop device over its file) and the partition (whose device
// is the loop device) are held.
func TestHoldersLoop(t *testing.T) {
	testvol.Need(t, "losetup", "ntfs-3g", "fusermount")
	d := disktest.MBR(t)
	p1 := open(t, d+"@1")
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", "-o", fmt.Sprint(p1.Start()), "--sizelimit", fmt.Sprint(p1.Size()), d))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	dir := t.TempDir()
	testvol.Run(t, "ntfs-3g", "-o", "ro", loop, dir)
	t.Cleanup(func() { exec.Command("fusermount", "-u", dir).Run() })
	for _, spec := range []string{d, d + "@1"} {
		ms, err := Holders(open(t, spec))
		m, ok := holding(ms, dir)
		if err != nil || !ok || (m.Via != loop && m.Device != loop) || !m.ReadOnly {
			t.Errorf("%s: Holders %+v %v", spec, ms, err)
		}
		if !errors.Is(MayWrite(open(t, spec)), ErrMounted) {
			t.Errorf("%s: MayWrite allows it", spec)
		}
	}
}

// Overlap tells the same partition under two names, a disk from its
// partition, and two partitions apart.
func TestOverlap(t *testing.T) {
	d := disktest.MBR(t)
	for _, tc := range []struct {
		a, b          string
		same, overlap bool
	}{
		{d + "@1", d + "@1", true, true},
		{d, d + "@2", false, true},
		{d + "@1", d + "@2", false, false},
		{d, d + "@5", false, true},
		{d + "@5", d + "@6", false, false},
	} {
		same, overlap := Overlap(open(t, tc.a), open(t, tc.b))
		if same != tc.same || overlap != tc.overlap {
			t.Errorf("Overlap(%s, %s) = %v, %v; want %v, %v", filepath.Base(tc.a), filepath.Base(tc.b), same, overlap, tc.same, tc.overlap)
		}
	}
}
