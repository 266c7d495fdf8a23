//go:build linux

package volume_test

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/damage"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/volume"
)

// browser is what NTFSFS and FATFS have in common for these tests.
type browser struct {
	list func(dir string) ([]string, []bool, []error, error) // names, dir flags, entry errors
	stat func(p string) error
	read func(p string) error
}

func browserOf(t *testing.T, path string) browser {
	f, size := testvol.OpenFile(t, path)
	v, err := volume.Open(f, size)
	if err != nil {
		t.Fatalf("open damaged volume: %v", err)
	}
	if n := v.NTFS(); n != nil {
		return browser{
			list: func(d string) ([]string, []bool, []error, error) {
				ents, err := n.ReadDir(d)
				var names []string
				var dirs []bool
				var errs []error
				for _, e := range ents {
					names, dirs, errs = append(names, e.Name), append(dirs, e.Dir), append(errs, e.Err)
				}
				return names, dirs, errs, err
			},
			stat: func(p string) error { _, err := n.Stat(p); return err },
			read: func(p string) error {
				nf, err := n.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, io.NewSectionReader(nf, 0, nf.Size()))
				return err
			},
		}
	}
	ff := v.FAT()
	return browser{
		list: func(d string) ([]string, []bool, []error, error) {
			ents, err := ff.ReadDir(d)
			var names []string
			var dirs []bool
			var errs []error
			for _, e := range ents {
				names, dirs, errs = append(names, e.Name), append(dirs, e.IsDir()), append(errs, e.Err)
			}
			return names, dirs, errs, err
		},
		stat: func(p string) error { _, err := ff.Stat(p); return err },
		read: func(p string) error {
			r, err := ff.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, io.NewSectionReader(r, 0, r.Size()))
			return err
		},
	}
}

// tree lists everything below the root: path -> damage (nil when sound).
// Sound files are read whole; damaged entries must refuse Stat with
// ErrCorrupt (never "does not exist") and are not entered.
func tree(t *testing.T, b browser) map[string]error {
	out := map[string]error{}
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		if depth > 64 {
			t.Errorf("%s: deeper than any fixture: a loop was followed", dir)
			return
		}
		names, dirs, errs, err := b.list(dir)
		if err != nil {
			t.Errorf("list %s: %v", dir, err)
			return
		}
		for i, name := range names {
			// Keyed as browsing shows names that cannot be a path element.
			p := strings.TrimSuffix(dir, "/") + "/" + strings.ReplaceAll(name, "/", "_")
			out[p] = errs[i]
			if errs[i] != nil {
				if !errors.Is(errs[i], volume.ErrCorrupt) {
					t.Errorf("%s: damage %v does not wrap ErrCorrupt", p, errs[i])
				}
				if err := b.stat(strings.TrimSuffix(dir, "/") + "/" + name); err == nil || errors.Is(err, fs.ErrNotExist) && !strings.Contains(name, "/") {
					t.Errorf("stat of damaged %s: %v, want a corruption error", p, err)
				}
				continue
			}
			if strings.HasPrefix(name, "$") || name == "System Volume Information" {
				continue
			}
			if err := b.stat(p); err != nil {
				t.Errorf("stat %s: %v", p, err)
			}
			if dirs[i] {
				walk(p, depth+1)
			} else if err := b.read(p); err != nil {
				t.Errorf("read %s: %v", p, err)
			}
		}
	}
	walk("/", 0)
	return out
}

// Every damage shape on real volumes: the damaged entry is listed with its
// reason, refused when looked up, never followed, and nothing else is lost.
func TestBrowseDamagedEntries(t *testing.T) {
	testvol.Need(t, "mkntfs", "mkfs.fat", "mcopy")
	vols := []struct {
		name   string
		path   string
		shapes []damage.Shape
	}{
		{"ntfs", testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), damage.NTFSShapes()},
		{"fat16", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}), damage.FATShapes()},
		{"fat32", testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}), damage.FATShapes()},
	}
	for _, vol := range vols {
		pristine := tree(t, browserOf(t, vol.path))
		for _, s := range vol.shapes {
			t.Run(vol.name+"/"+s.Name, func(t *testing.T) {
				c := testvol.Copy(t, vol.path)
				if err := s.Apply(c); err != nil {
					t.Fatalf("damage: %v", err)
				}
				got := bounded(t, func() map[string]error { return tree(t, browserOf(t, c)) })
				derr, listed := got[s.Entry]
				if !listed || derr == nil {
					t.Fatalf("%s: listed %v, damage %v; want it listed as damaged", s.Entry, listed, derr)
				}
				t.Logf("%s: %v", s.Entry, derr)
				hides := s.Hides
				if hides == "" {
					hides = s.Entry
				}
				for p := range pristine {
					if p == hides || strings.HasPrefix(p, hides+"/") {
						continue
					}
					if e, ok := got[p]; !ok || e != nil {
						t.Errorf("%s: lost (listed %v, damage %v)", p, ok, e)
					}
				}
				for p, e := range got {
					if e != nil && p != s.Entry {
						t.Errorf("%s: also marked damaged: %v", p, e)
					}
				}
			})
		}
	}
}

// An index node that is its own child: the listing reads live blocks once
// each, in order, so it ends, is complete and finds nothing damaged.
func TestBrowseIndexNodeLoop(t *testing.T) {
	testvol.Need(t, "mkntfs")
	vol := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	pristine := tree(t, browserOf(t, vol))
	c := testvol.Copy(t, vol)
	if err := damage.NTFSNodeLoop().Apply(c); err != nil {
		t.Fatalf("damage: %v", err)
	}
	got := bounded(t, func() map[string]error { return tree(t, browserOf(t, c)) })
	if len(got) != len(pristine) {
		t.Errorf("%d entries, the undamaged volume has %d", len(got), len(pristine))
	}
	for p := range pristine {
		if e, ok := got[p]; !ok || e != nil {
			t.Errorf("%s: listed %v, damage %v", p, ok, e)
		}
	}
}

// bounded runs f and fails the test when it takes longer than a hang
// would (or when f stops the test).
func bounded(t *testing.T, f func() map[string]error) map[string]error {
	t.Helper()
	var got map[string]error
	done := make(chan struct{})
	go func() { defer close(done); got = f() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("browsing the damaged volume hangs")
	}
	if got == nil {
		t.FailNow()
	}
	return got
}
