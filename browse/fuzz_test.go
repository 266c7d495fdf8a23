//go:build linux

package browse

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/internal/damage"
	"github.com/cbimg/cbimg/internal/testvol"
)

// overlay reads base with patch laid over it at off.
type overlay struct {
	base  []byte
	off   int64
	patch []byte
}

func (o *overlay) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(o.base)) {
		return 0, io.EOF
	}
	n := copy(b, o.base[off:])
	lo, hi := max(off, o.off), min(off+int64(n), o.off+int64(len(o.patch)))
	if lo < hi {
		copy(b[lo-off:hi-off], o.patch[lo-o.off:hi-o.off])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// shapeSeeds turns each damage shape into the (offset, bytes) it changes
// in the volume at path: the fuzz targets start from the known damage.
// Every fuzz worker asks, so the result is cached beside the fixture.
func shapeSeeds(f *testing.F, path string, shapes []damage.Shape) []byte {
	base, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	type seed struct {
		Off   uint32
		Patch []byte
	}
	var seeds []seed
	names := ""
	for _, s := range shapes {
		names += s.Name + s.Entry + "\n"
	}
	sum := sha256.Sum256([]byte(names))
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("cbimg-fuzzseeds-%s-%x.json", filepath.Base(path), sum[:6]))
	if b, err := os.ReadFile(cache); err != nil || json.Unmarshal(b, &seeds) != nil || len(seeds) == 0 {
		seeds = nil
		for _, s := range shapes {
			c := testvol.Copy(f, path)
			if err := s.Apply(c); err != nil {
				f.Fatalf("%s: %v", s.Name, err)
			}
			d, err := os.ReadFile(c)
			if err != nil {
				f.Fatal(err)
			}
			lo, hi := 0, len(d)
			for lo < hi && d[lo] == base[lo] {
				lo++
			}
			for hi > lo && d[hi-1] == base[hi-1] {
				hi--
			}
			if lo < hi {
				seeds = append(seeds, seed{uint32(lo), d[lo:hi]})
			}
			os.Remove(c)
		}
		if b, err := json.Marshal(seeds); err == nil {
			os.WriteFile(cache+".tmp", b, 0o600)
			os.Rename(cache+".tmp", cache)
		}
	}
	for _, s := range seeds {
		f.Add(s.Off, s.Patch)
	}
	return base
}

// browseAll runs every browse operation over the tree: Walk (ls -r,
// extract), ReadDir and Info (ls --long, the menu, mount), Stat, Open and
// reads (cat, mount). Errors are fine; a panic, or an entry that opens as
// another kind than listed, is not.
func browseAll(t *testing.T, r io.ReaderAt, size int64) {
	fsys, err := NewVolume(r, size, nil)
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	n := 0
	fsys.Walk(".", func(name string, e *Entry, err error) error {
		if n++; n > 5000 {
			return fs.SkipAll
		}
		if err != nil || e == nil {
			if e != nil && e.Damage == nil && !e.Mode().IsDir() {
				t.Fatalf("%s: error %v for a sound file", name, err)
			}
			return nil
		}
		if name != "." {
			if _, err := fsys.ReadDir(parentOf(name)); err != nil {
				t.Fatalf("%s listed, its directory then fails: %v", name, err)
			}
		}
		fl, err := fsys.Open(name)
		if err != nil {
			return nil
		}
		defer fl.Close()
		st, err := fl.Stat()
		if err != nil {
			t.Fatalf("%s: stat of an open file: %v", name, err)
		}
		if st.IsDir() != e.Mode().IsDir() {
			t.Fatalf("%s: listed as dir %v, opens as dir %v", name, e.Mode().IsDir(), st.IsDir())
		}
		if d, ok := fl.(fs.ReadDirFile); ok && st.IsDir() {
			d.ReadDir(-1)
		} else if ra, ok := fl.(io.ReaderAt); ok {
			ra.ReadAt(buf, 0)
		}
		fsys.Streams(name)
		return nil
	})
}

func parentOf(name string) string {
	if i := bytes.LastIndexByte([]byte(name), '/'); i >= 0 {
		return name[:i]
	}
	return "."
}

// FuzzBrowseNTFS lays fuzzed bytes over a real NTFS volume (seeded with
// every damage shape: entries pointing to the wrong record, to themselves,
// to a parent, to nothing, names and flags that disagree) and browses it.
func FuzzBrowseNTFS(f *testing.F) {
	testvol.Need(f, "mkntfs")
	path := testvol.NTFS(f, testvol.NTFSSpec{Content: "basic"})
	base := shapeSeeds(f, path, append(damage.NTFSShapes(), damage.NTFSNodeLoop(), damage.NTFSDuplicateName()))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		if len(patch) > 8192 {
			return
		}
		browseAll(t, &overlay{base: base, off: int64(off) % int64(len(base)), patch: patch}, int64(len(base)))
	})
}

// FuzzBrowseFAT does the same over a real FAT16 volume, seeded with the
// FAT damage shapes (directory cycles, a file sharing a directory's
// cluster).
func FuzzBrowseFAT(f *testing.F) {
	testvol.Need(f, "mkfs.fat", "mcopy")
	path := testvol.FAT(f, testvol.FATSpec{Bits: 16, Content: "basic"})
	base := shapeSeeds(f, path, damage.FATShapes())
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		if len(patch) > 8192 {
			return
		}
		browseAll(t, &overlay{base: base, off: int64(off) % int64(len(base)), patch: patch}, int64(len(base)))
	})
}
