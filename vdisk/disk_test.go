package vdisk_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
)

// TestDiskLayer: through the disk layer every format lists the raw disk's
// partitions, opens DISK@1 as the same NTFS volume, and a file read by
// PARTITION:PATH has the raw disk's bytes.
func TestDiskLayer(t *testing.T) {
	_, list := buildFixtures(t)
	raw := fixtures.raw
	rd, err := disk.OpenDisk(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := rd.Table.Partitions
	rd.Close()
	wantFile := readLocated(t, raw+"@1:/test/1.txt")
	for _, fx := range list {
		if fx.ref != raw {
			continue // the overlay differs from the raw disk on purpose
		}
		t.Run(filepath.Base(fx.name), func(t *testing.T) {
			d, err := disk.OpenDisk(fx.name)
			if err != nil {
				t.Fatal(err)
			}
			if d.VirtualFormat() == "" {
				t.Errorf("%s opened as a raw file", fx.name)
			}
			if !reflect.DeepEqual(d.Table.Partitions, want) {
				t.Errorf("partitions %+v, want %+v", d.Table.Partitions, want)
			}
			d.Close()
			s, err := disk.OpenPartition(fx.name+"@1", false)
			if err != nil {
				t.Fatal(err)
			}
			v, err := volume.Open(s, s.Size())
			if err != nil {
				t.Fatal(err)
			}
			if v.Info.Type != volume.NTFS {
				t.Errorf("file system %v", v.Info.Type)
			}
			s.Close()
			if got := readLocated(t, fx.name+"@1:/test/1.txt"); got != wantFile {
				t.Errorf("PARTITION:PATH read %q, want %q", got, wantFile)
			}
		})
	}
}

func readLocated(t *testing.T, spec string) string {
	t.Helper()
	f, err := locate.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBackupFromVirtual: a backup of a partition straight out of a qcow2,
// a VHDX and an E01 holds the same volume as the backup of the raw disk's.
func TestBackupFromVirtual(t *testing.T) {
	dir, _ := buildFixtures(t)
	out := t.TempDir()
	backup := func(src string) [32]byte {
		img := filepath.Join(out, filepath.Base(src)+".cbi")
		if _, err := backupcore.Backup(context.Background(), backupcore.Options{Source: src, Image: img}); err != nil {
			t.Fatalf("backup %s: %v", src, err)
		}
		r, err := image.Open(img, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return sha(t, r, r.Size())
	}
	want := backup(fixtures.raw + "@1")
	for _, n := range []string{"zlib.qcow2", "dyn.vhdx", "ev.E01"} {
		if got := backup(filepath.Join(dir, n) + "@1"); got != want {
			t.Errorf("backup of %s@1 holds a volume with SHA-256 %x, the raw disk's %x", n, got, want)
		}
	}
}

// TestVirtualNeverWritten: a virtual disk is refused as a restore target.
func TestVirtualNeverWritten(t *testing.T) {
	dir, _ := buildFixtures(t)
	for _, spec := range []string{filepath.Join(dir, "dyn.vhdx"), filepath.Join(dir, "v3.qcow2") + "@1"} {
		if s, err := disk.OpenPartition(spec, true); err == nil {
			s.Close()
			t.Errorf("%s opened for writing", spec)
		} else if !errors.Is(err, disk.ErrVirtualWrite) {
			t.Errorf("%s: %v, want ErrVirtualWrite", spec, err)
		}
	}
}
