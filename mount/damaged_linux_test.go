//go:build linux

package mount_test

import (
	"errors"
	"io/fs"
	"log"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/internal/damage"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/mount"
)

// mount --files over damaged volumes: the damaged name is listed, looking
// it up gives EIO (logged), a find over the whole tree ends and finds
// everything else.
func TestFilesDamaged(t *testing.T) {
	testvol.Need(t, "mkntfs", "mkfs.fat", "mcopy", "fusermount")
	vols := []struct {
		path  string
		shape damage.Shape
	}{}
	ntfs := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	for _, s := range damage.NTFSShapes() {
		vols = append(vols, struct {
			path  string
			shape damage.Shape
		}{ntfs, s})
	}
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"})
	for _, s := range damage.FATShapes() {
		vols = append(vols, struct {
			path  string
			shape damage.Shape
		}{fat, s})
	}
	for _, v := range vols {
		s := v.shape
		t.Run(s.Name, func(t *testing.T) {
			c := testvol.Copy(t, v.path)
			if err := s.Apply(c); err != nil {
				t.Fatalf("damage: %v", err)
			}
			f, size := testvol.OpenFile(t, c)
			fsys, err := browse.NewVolume(f, size, nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			logs := &testvol.SyncBuffer{}
			m, err := mount.MountFiles(dir, fsys, &mount.Options{FsName: c, Logger: log.New(logs, "", 0)})
			if err != nil {
				t.Fatalf("mount: %v", err)
			}
			defer func() {
				if err := m.Unmount(); err != nil {
					t.Errorf("unmount: %v", err)
					mount.UnmountLazy(dir)
				}
			}()
			hides := s.Hides
			if hides == "" {
				hides = s.Entry
			}
			parent := filepath.Join(dir, filepath.FromSlash(path.Dir(hides)))
			ents, err := os.ReadDir(parent)
			if err != nil {
				t.Fatalf("readdir: %v", err)
			}
			base := strings.TrimPrefix(s.Entry, path.Dir(hides)+"/")
			found := false
			for _, e := range ents {
				found = found || e.Name() == base
			}
			if !found {
				t.Errorf("%s not listed in %v", base, ents)
			}
			// A name shown made safe is not found; every other damaged
			// name answers EIO.
			if !strings.Contains(s.Name, "slash") {
				if _, err := os.Lstat(filepath.Join(parent, base)); !errors.Is(err, syscall.EIO) {
					t.Errorf("lstat of the damaged entry: %v, want EIO", err)
				}
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(logs.String(), "EIO") && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if !strings.Contains(logs.String(), "EIO") {
					t.Errorf("EIO not logged: %q", logs.String())
				}
			}
			// The whole tree, as find would: ends, and shows exactly the
			// paths the browse layer lists.
			got := map[string]bool{}
			err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if len(got) > 10000 {
					t.Fatal("walk of the mount does not end")
				}
				rel, _ := filepath.Rel(dir, p)
				got[filepath.ToSlash(rel)] = true
				return nil
			})
			if err != nil {
				t.Fatalf("walk: %v", err)
			}
			want := map[string]bool{}
			fsys.Walk(".", func(p string, _ *browse.Entry, _ error) error { want[p] = true; return nil })
			for p := range want {
				if !got[p] {
					t.Errorf("%s: in the tree, not in the mount", p)
				}
			}
			for p := range got {
				if !want[p] {
					t.Errorf("%s: in the mount, not in the tree", p)
				}
			}
		})
	}
}
