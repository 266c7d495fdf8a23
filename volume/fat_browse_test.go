//go:build linux

package volume

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// fatCheckBrowse reads every walked file through the browse helpers, by
// upper-cased path, and compares with the bytes of its runs.
func fatCheckBrowse(t *testing.T, img string) {
	t.Helper()
	v := fatOpenImage(t, img)
	fsys := v.FAT()
	files := fatWalkAll(t, v)
	children := map[string][]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for p, f := range files {
		if p == "/" {
			continue
		}
		children[path.Dir(p)] = append(children[path.Dir(p)], path.Base(p))
		e, err := fsys.Stat(strings.ToUpper(p))
		if err != nil {
			t.Errorf("Stat(%q): %v", strings.ToUpper(p), err)
			continue
		}
		if e.IsDir() != f.Dir || !f.Dir && int64(e.Size) != f.Size {
			t.Errorf("Stat(%s) = dir %v size %d, walk says dir %v size %d", p, e.IsDir(), e.Size, f.Dir, f.Size)
		}
		if f.Dir {
			continue
		}
		ff, err := fsys.Open(strings.ToUpper(p))
		if err != nil {
			t.Errorf("Open(%s): %v", p, err)
			continue
		}
		want := fatReadRuns(t, img, v, f)
		got := make([]byte, ff.Size()+10)
		n, err := ff.ReadAt(got, 0)
		if n != len(want) || err != io.EOF || !bytes.Equal(got[:n], want) {
			t.Errorf("%s: ReadAt gave %d bytes, %v; want %d bytes and io.EOF", p, n, err, len(want))
		}
		if !slices.Equal(ff.Runs(), f.Runs) {
			t.Errorf("%s: Open runs %v, walk runs %v", p, ff.Runs(), f.Runs)
		}
		for range 5 {
			if len(want) == 0 {
				break
			}
			off := rng.IntN(len(want))
			l := rng.IntN(len(want) - off + 1)
			buf := make([]byte, l)
			n, err := ff.ReadAt(buf, int64(off))
			if n != l || (err != nil && !(err == io.EOF && off+l == len(want))) || !bytes.Equal(buf, want[off:off+l]) {
				t.Errorf("%s: ReadAt(%d bytes at %d) = %d, %v", p, l, off, n, err)
			}
		}
		// The 8.3 name opens the same file.
		if e.ShortName != e.Name {
			alt := path.Join(path.Dir(p), e.ShortName)
			if e2, err := fsys.Stat(alt); err != nil || e2.Cluster != e.Cluster {
				t.Errorf("Stat by short name %q: %v", alt, err)
			}
		}
	}
	for dir, names := range children {
		ents, err := fsys.ReadDir(dir)
		if err != nil {
			t.Errorf("ReadDir(%s): %v", dir, err)
			continue
		}
		var got []string
		for _, e := range ents {
			got = append(got, e.Name)
		}
		slices.Sort(got)
		slices.Sort(names)
		if !slices.Equal(got, names) {
			t.Errorf("ReadDir(%s) = %q, walk has %q", dir, got, names)
		}
	}
	if _, err := fsys.Open("/no/such/file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v", err)
	}
	if _, err := fsys.ReadDir("/nothere"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir of a missing directory: %v", err)
	}
	if _, err := fsys.Open("/"); err == nil {
		t.Errorf("Open of the root succeeded")
	}
	if ents, err := fsys.ReadDir("."); err != nil || len(ents) == 0 {
		t.Errorf("ReadDir(.) = %d entries, %v", len(ents), err)
	}
}

func TestFATBrowse(t *testing.T) {
	t.Run("fat16-full", func(t *testing.T) {
		fatCheckBrowse(t, testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "full"}))
	})
	t.Run("fat32-built", func(t *testing.T) {
		fatCheckBrowse(t, fatBuildVolume(t, fatVolumeSpec{"fat32", []string{"-F", "32", "-S", "512", "-s", "1"}, 40 << 10}))
	})
	t.Run("fat12-real", func(t *testing.T) {
		fatCheckBrowse(t, testvol.Real(t, "fat/mkfs-fat12-lfn.img"))
	})
	t.Run("fat32-2048-real", func(t *testing.T) {
		img := testvol.Real(t, "fat/mkfs-fat32-2048-byte-sectors.raw")
		fatCheckBrowse(t, img)
		fsys := fatOpenImage(t, img).FAT()
		for p, want := range map[string]string{"/test/1.txt": "test1\n", "/TEST/2.TXT": "test2\n"} {
			ff, err := fsys.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, ff.Size())
			if _, err := ff.ReadAt(b, 0); err != nil || string(b) != want {
				t.Errorf("%s = %q, %v; want %q", p, b, err, want)
			}
		}
	})
}

func TestFATCopiesDiffer(t *testing.T) {
	img := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	v := fatOpenImage(t, img)
	bs := v.FAT().Boot()
	if d, err := v.FAT().CompareFATCopies(); err != nil || len(d) != 0 {
		t.Fatalf("fresh volume: FAT copies differ: %v, %v", d, err)
	}
	files := fatWalkAll(t, v)
	f := files["/Data/1MiB.bin"]
	c := uint32(f.Runs[0].Start + 2)

	// Damage the second copy: reported, not refused, and the active copy
	// still reads.
	fatPatchEntry(t, img, bs, 1, c, 0)
	fatPatchEntry(t, img, bs, 1, c+1, 0)
	v = fatOpenImage(t, img)
	d, err := v.FAT().CompareFATCopies()
	if err != nil || len(d) != 1 || d[0].Copy != 1 || d[0].Entries != 2 || d[0].FirstEntry != c {
		t.Fatalf("CompareFATCopies = %+v, %v; want copy 1, 2 entries from %d", d, err, c)
	}
	if err := v.Walk(context.Background(), func(File) error { return nil }); err != nil {
		t.Fatalf("Walk with a differing second FAT: %v", err)
	}

	// FAT32 with mirroring off and FAT 1 active: FAT 1 is what counts.
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte{0x81, 0}, fatOffExtFlags); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	v = fatOpenImage(t, img)
	if v.FAT().Boot().ActiveFAT() != 1 {
		t.Fatalf("active FAT %d, want 1", v.FAT().Boot().ActiveFAT())
	}
	err = v.Walk(context.Background(), func(File) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "/Data/1MiB.bin") || !strings.Contains(err.Error(), "free") {
		t.Errorf("Walk with the damaged FAT 1 active: %v, want a free-cluster error for /Data/1MiB.bin", err)
	}
	d, err = v.FAT().CompareFATCopies()
	if err != nil || len(d) != 1 || d[0].Copy != 0 {
		t.Errorf("CompareFATCopies with FAT 1 active = %+v, %v", d, err)
	}
}
