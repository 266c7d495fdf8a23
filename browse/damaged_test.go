//go:build linux

package browse

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/browse/browsetest"
	"github.com/cbimg/cbimg/internal/damage"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/volume"
)

// damagedVolumes are the fixtures and the damage shapes applied to each.
func damagedVolumes(t *testing.T) []struct {
	name   string
	path   string
	shapes []damage.Shape
} {
	testvol.Need(t, "mkntfs", "mkfs.fat", "mcopy")
	return []struct {
		name   string
		path   string
		shapes []damage.Shape
	}{
		{"ntfs", testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), damage.NTFSShapes()},
		{"fat16", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}), damage.FATShapes()},
		{"fat32", testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}), damage.FATShapes()},
	}
}

func openVolume(t *testing.T, path string) *FS {
	f, size := testvol.OpenFile(t, path)
	fsys, err := NewVolume(f, size, nil)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return fsys
}

// walkAll lists the whole tree: "/path" -> the error fn got for it (nil
// when sound). A directory whose reading failed keeps the reading error.
func walkAll(t *testing.T, fsys *FS) map[string]error {
	out := map[string]error{}
	err := fsys.Walk(".", func(name string, e *Entry, err error) error {
		if name == "." {
			if err != nil {
				t.Errorf("walk: root: %v", err)
			}
			return nil
		}
		if e == nil {
			t.Errorf("walk %s: no entry with error %v", name, err)
		}
		if _, seen := out["/"+name]; seen && err == nil {
			t.Errorf("%s listed twice", name)
		}
		out["/"+name] = err
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return out
}

// bounded runs f, failing the test when it takes longer than a hang would.
func bounded(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s hangs", what)
	}
}

// hidden reports whether p is the entry the damage takes away, or below it.
func hidden(p string, s damage.Shape) bool {
	h := s.Hides
	if h == "" {
		h = s.Entry
	}
	return p == h || strings.HasPrefix(p, h+"/")
}

// Every damage shape through every browse operation: Walk (ls -r), ReadDir
// and Info (ls, ls --long, the menu, mount readdir), Stat and Open (cat,
// mount lookup) and Extract. The damaged entry is listed with its reason,
// refused as corrupt when opened, never entered; everything else is listed
// and extracted whole; nothing panics or hangs.
func TestDamagedTree(t *testing.T) {
	for _, vol := range damagedVolumes(t) {
		pristine := walkAll(t, openVolume(t, vol.path))
		for _, s := range vol.shapes {
			t.Run(vol.name+"/"+s.Name, func(t *testing.T) {
				c := testvol.Copy(t, vol.path)
				if err := s.Apply(c); err != nil {
					t.Fatalf("damage: %v", err)
				}
				fsys := openVolume(t, c)
				var got map[string]error
				bounded(t, "walk", func() { got = walkAll(t, fsys) })
				name := strings.TrimPrefix(s.Entry, "/")
				if err := got[s.Entry]; err == nil || !errors.Is(err, volume.ErrCorrupt) {
					t.Fatalf("walk: %s gave %v, want it listed as damaged (ErrCorrupt)", s.Entry, err)
				}
				for p := range pristine {
					if !hidden(p, s) {
						if err, ok := got[p]; !ok || err != nil {
							t.Errorf("walk: %s lost (listed %v, %v)", p, ok, err)
						}
					}
				}
				for p, err := range got {
					if err != nil && p != s.Entry {
						t.Errorf("walk: %s also failed: %v", p, err)
					}
				}

				// The listing of its directory marks it; Info refuses it.
				ents, err := fsys.ReadDir(dirOf(s))
				if err != nil {
					t.Fatalf("readdir %s: %v", dirOf(s), err)
				}
				found := false
				for _, d := range ents {
					de := d.(*dirEntry)
					if de.e.Path != name {
						continue
					}
					found = true
					if de.e.Damage == nil {
						t.Errorf("readdir: %s not marked damaged", name)
					}
					if _, err := d.Info(); !errors.Is(err, volume.ErrCorrupt) {
						t.Errorf("info of %s: %v", name, err)
					}
				}
				if !found {
					t.Errorf("readdir %s: %s not listed", dirOf(s), name)
				}

				// Stat and Open refuse it as corrupt, not as missing (a name
				// that cannot be a path element is invalid).
				_, serr := fsys.Stat(name)
				f, oerr := fsys.Open(name)
				if f != nil {
					f.Close()
				}
				for _, err := range []error{serr, oerr} {
					if err == nil || errors.Is(err, fs.ErrNotExist) && !strings.Contains(s.Name, "slash") {
						t.Errorf("stat/open %s: %v, want a corruption error", name, err)
					}
				}

				// Extract the whole volume: the damaged entry fails, the rest
				// is written whole.
				dest := t.TempDir()
				var res *ExtractResult
				var xerr error
				var failed []string
				bounded(t, "extract", func() {
					res, xerr = fsys.Extract(context.Background(), []string{"."}, dest, &ExtractOptions{Event: func(e ExtractEvent) {
						if e.Kind == "failed" {
							failed = append(failed, e.Path)
						}
					}})
				})
				if !errors.Is(xerr, ErrExtract) || !errors.Is(xerr, volume.ErrCorrupt) || res == nil || res.Failed != 1 {
					t.Fatalf("extract: %v, %+v; want one failure wrapping ErrCorrupt", xerr, res)
				}
				if len(failed) != 1 || failed[0] != s.Entry {
					t.Errorf("extract failed %v, want [%s]", failed, s.Entry)
				}
				for p := range pristine {
					if hidden(p, s) {
						continue
					}
					st, err := fsys.Stat(p[1:])
					if err != nil {
						t.Errorf("stat %s: %v", p, err)
						continue
					}
					fi, err := os.Lstat(filepath.Join(dest, p))
					if err != nil || fi.IsDir() != st.IsDir() || !fi.IsDir() && fi.Size() != st.Size() {
						t.Errorf("extract: %s missing or wrong (%v)", p, err)
					}
				}
				if _, err := os.Lstat(filepath.Join(dest, s.Entry)); err == nil && !strings.Contains(s.Name, "slash") {
					t.Errorf("extract: damaged %s written", s.Entry)
				}
			})
		}
	}
}

// dirOf is the directory holding the shape's entry (its name may hold a
// slash; the path it hides does not).
func dirOf(s damage.Shape) string {
	h := s.Hides
	if h == "" {
		h = s.Entry
	}
	if d := path.Dir(h); d != "/" {
		return d[1:]
	}
	return "."
}

// Two index entries with one name: the first is the file a path reaches,
// the second is listed as damaged and fails extraction; the first's data
// is extracted, never the second's under its name.
func TestDamagedDuplicateName(t *testing.T) {
	testvol.Need(t, "mkntfs")
	vol := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	want, _ := hashFile(t, openVolume(t, vol), "Data/4095.bin", "")
	c := testvol.Copy(t, vol)
	s := damage.NTFSDuplicateName()
	if err := s.Apply(c); err != nil {
		t.Fatal(err)
	}
	fsys := openVolume(t, c)
	var sound, damaged int
	fsys.Walk("Data", func(name string, e *Entry, err error) error {
		if name != "Data/4095.bin" {
			return nil
		}
		if err != nil && e != nil && e.Damage != nil {
			damaged++
		} else if err == nil {
			sound++
		}
		return nil
	})
	if sound != 1 || damaged != 1 {
		t.Fatalf("Data/4095.bin listed %d times sound, %d times damaged; want 1 and 1", sound, damaged)
	}
	dest := t.TempDir()
	res, err := fsys.Extract(context.Background(), []string{"Data"}, dest, nil)
	if !errors.Is(err, ErrExtract) || res.Failed != 1 {
		t.Fatalf("extract: %v %+v", err, res)
	}
	if got := browsetest.FileHash(t, filepath.Join(dest, "Data", "4095.bin")); got != want {
		t.Error("extracted 4095.bin is not the first entry's file")
	}
}
