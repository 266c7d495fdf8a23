//go:build linux

package volume

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// fatPatchEntry writes FAT entry c of FAT copy `copy` in img.
func fatPatchEntry(t testing.TB, img string, bs *FATBoot, copy int, c, v uint32) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := bs.FATOffset(copy)
	var b [4]byte
	switch bs.Type {
	case FAT12:
		off := base + int64(c)*3/2
		if _, err := f.ReadAt(b[:2], off); err != nil {
			t.Fatal(err)
		}
		old := binary.LittleEndian.Uint16(b[:2])
		if c&1 == 1 {
			old = old&0x000F | uint16(v&0xFFF)<<4
		} else {
			old = old&0xF000 | uint16(v&0xFFF)
		}
		binary.LittleEndian.PutUint16(b[:2], old)
		_, err = f.WriteAt(b[:2], off)
	case FAT16:
		binary.LittleEndian.PutUint16(b[:2], uint16(v))
		_, err = f.WriteAt(b[:2], base+int64(c)*2)
	default:
		binary.LittleEndian.PutUint32(b[:], v)
		_, err = f.WriteAt(b[:], base+int64(c)*4)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func fatCopyFile(t testing.TB, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// fatDamageCase patches a copy of a volume and says what the error must
// contain.
type fatDamageCase struct {
	name  string
	patch func(t *testing.T, img string, bs *FATBoot, target File, other File)
	want  []string
}

func TestFATDamagedChains(t *testing.T) {
	dir := t.TempDir()
	vols := map[string]string{
		"fat12": fatGunzip(t, "../testdata/realimages/fat/mkfs-fat12-lfn.img.gz", dir),
		"fat16": fatGunzip(t, "../testdata/realimages/fat/mkfs-fat16-lfn.img.gz", dir),
		"fat32": fatBuildVolume(t, fatVolumeSpec{"fat32", []string{"-F", "32", "-S", "512", "-s", "1"}, 40 << 10}),
	}
	clusterOf := func(r Run, i uint64) uint32 { return uint32(r.Start + i + 2) }
	cases := []fatDamageCase{
		{"loop", func(t *testing.T, img string, bs *FATBoot, f, _ File) {
			last := f.Runs[len(f.Runs)-1]
			fatPatchEntry(t, img, bs, 0, clusterOf(last, last.Count-1), clusterOf(f.Runs[0], 0))
		}, []string{"loop"}},
		{"free", func(t *testing.T, img string, bs *FATBoot, f, _ File) {
			fatPatchEntry(t, img, bs, 0, clusterOf(f.Runs[0], 0), 0)
		}, []string{"free"}},
		{"bad", func(t *testing.T, img string, bs *FATBoot, f, _ File) {
			bad, _ := fatMarkers(bs.Type)
			fatPatchEntry(t, img, bs, 0, clusterOf(f.Runs[0], 0), bad)
		}, []string{"bad"}},
		{"outside", func(t *testing.T, img string, bs *FATBoot, f, _ File) {
			fatPatchEntry(t, img, bs, 0, clusterOf(f.Runs[0], 0), bs.ClusterCount+2)
		}, []string{"outside"}},
		{"cross-link", func(t *testing.T, img string, bs *FATBoot, f, o File) {
			// The first file's first cluster continues into the other's chain.
			fatPatchEntry(t, img, bs, 0, clusterOf(f.Runs[0], 0), clusterOf(o.Runs[0], 0))
		}, []string{"cross-linked", "continues past", "ends after"}},
	}
	for name, src := range vols {
		v := fatOpenImage(t, src)
		files := fatWalkAll(t, v)
		// A file of several clusters, and another one.
		var target, other File
		for _, f := range files {
			if f.Dir || len(f.Runs) == 0 {
				continue
			}
			n := uint64(0)
			for _, r := range f.Runs {
				n += r.Count
			}
			if target.Path == "" || n > 1 && len(target.Runs) == 1 && target.Runs[0].Count == 1 {
				if target.Path != "" {
					other = target
				}
				target = f
			} else if other.Path == "" {
				other = f
			}
		}
		if target.Path == "" || other.Path == "" {
			t.Fatalf("%s: no two files with clusters to damage", name)
		}
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				img := fatCopyFile(t, src, filepath.Join(t.TempDir(), "damaged.img"))
				c.patch(t, img, v.FAT().Boot(), target, other)
				dv := fatOpenImage(t, img)
				err := dv.Walk(context.Background(), func(File) error { return nil })
				var fe *FormatError
				if !errors.As(err, &fe) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Walk after %s: %v, want a *FormatError wrapping ErrCorrupt", c.name, err)
				}
				if !strings.Contains(err.Error(), target.Path) && !strings.Contains(err.Error(), other.Path) {
					t.Errorf("error %q does not name %s", err, target.Path)
				}
				ok := false
				for _, w := range c.want {
					ok = ok || strings.Contains(err.Error(), w)
				}
				if !ok {
					t.Errorf("error %q says none of %q", err, c.want)
				}
			})
		}
	}
}

func TestFATDirectoryLoop(t *testing.T) {
	// A subdirectory whose entry points back at the root's first cluster.
	img := fatBuildVolume(t, fatVolumeSpec{"fat32", []string{"-F", "32", "-S", "512", "-s", "1"}, 40 << 10})
	v := fatOpenImage(t, img)
	fs := v.FAT()
	ents, err := fs.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	var deep *FATDirEntry
	for i := range ents {
		if ents[i].Name == "Deep" {
			deep = &ents[i]
		}
	}
	if deep == nil {
		t.Fatal("no /Deep")
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], uint16(fs.Boot().RootCluster))
	if _, err := f.WriteAt(b[:], deep.offset+fatDirFstClusLO); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(b[:], uint16(fs.Boot().RootCluster>>16))
	if _, err := f.WriteAt(b[:], deep.offset+fatDirFstClusHI); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dv := fatOpenImage(t, img)
	err = dv.Walk(context.Background(), func(File) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "/Deep") || !strings.Contains(err.Error(), "cross-linked") {
		t.Fatalf("Walk over a directory loop: %v, want a cross-link error naming /Deep", err)
	}
}

func TestFATTruncated(t *testing.T) {
	img := fatBuildVolume(t, fatVolumeSpec{"fat32", []string{"-F", "32", "-S", "512", "-s", "1"}, 40 << 10})
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	full := st.Size()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// A partition smaller than the boot sector says.
	_, err = Open(f, full-512)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Open with a short size: %v, want a truncation error", err)
	}

	// A reader that ends early although the size claims the whole volume:
	// cut where a directory past the root's clusters starts, so Open still
	// works and Walk must fail.
	v, err := Open(f, full)
	if err != nil {
		t.Fatal(err)
	}
	files := fatWalkAll(t, v)
	rootEnd := uint64(0)
	for _, r := range files["/"].Runs {
		rootEnd = max(rootEnd, r.Start+r.Count)
	}
	var victim File
	for _, f := range files {
		if f.Dir && f.Path != "/" && f.Runs[0].Start >= rootEnd && (victim.Path == "" || f.Runs[0].Start < victim.Runs[0].Start) {
			victim = f
		}
	}
	if victim.Path == "" {
		t.Fatal("no directory after the root's clusters")
	}
	short := fatCopyFile(t, img, filepath.Join(t.TempDir(), "short.img"))
	if err := os.Truncate(short, v.Info.ClusterOffset(victim.Runs[0].Start)); err != nil {
		t.Fatal(err)
	}
	sf, err := os.Open(short)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	sv, err := Open(sf, full)
	if err != nil {
		t.Fatalf("Open: %v (the boot sector and root are intact)", err)
	}
	n := 0
	err = sv.Walk(context.Background(), func(File) error { n++; return nil })
	if err == nil {
		t.Fatalf("Walk over a truncated image succeeded with %d entries", n)
	}
	if !strings.Contains(err.Error(), "EOF") || !strings.Contains(err.Error(), victim.Path) {
		t.Errorf("Walk error %q does not say the read of %s was short", err, victim.Path)
	}
	// Reading a file whose clusters are gone fails too.
	big := "/Frag/big fragmented file.bin"
	if files[big].Runs[0].Start >= victim.Runs[0].Start {
		ff, err := sv.FAT().Open(big)
		if err == nil {
			_, err = ff.ReadAt(make([]byte, ff.Size()), 0)
		}
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("reading %s from the truncated image: %v, want a short-read error", big, err)
		}
	}

	// The FAT itself cut short.
	fatCut := fatCopyFile(t, img, filepath.Join(t.TempDir(), "fatcut.img"))
	if err := os.Truncate(fatCut, v.FAT().Boot().FATOffset(0)+1024); err != nil {
		t.Fatal(err)
	}
	ff, err := os.Open(fatCut)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	if fv, err := OpenFATFS(ff, full); err == nil {
		if _, err := fv.bitmap(); err == nil {
			t.Errorf("bitmap of an image cut inside the FAT succeeded")
		}
	}
}

func TestFATDirty(t *testing.T) {
	for _, c := range []struct {
		bits  int
		fat1  uint32 // FAT[1] with the clean bit cleared
		flags bool   // set the boot record's dirty flag instead
	}{
		{16, 0x7FFF, false},
		{32, 0x07FFFFFF, false},
		{12, 0, true},
		{32, 0, true},
	} {
		img := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: c.bits}))
		v := fatOpenImage(t, img)
		if v.Info.Dirty {
			t.Fatalf("FAT%d: fresh volume dirty", c.bits)
		}
		bs := v.FAT().Boot()
		if c.flags {
			off := int64(fatOffExt16 + fatExtReserved1)
			if bs.Type == FAT32 {
				off = fatOffExt32 + fatExtReserved1
			}
			fh, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.WriteAt([]byte{fatBootDirtyBit}, off); err != nil {
				t.Fatal(err)
			}
			fh.Close()
		} else {
			fatPatchEntry(t, img, bs, 0, 1, c.fat1)
		}
		if v := fatOpenImage(t, img); !v.Info.Dirty {
			t.Errorf("FAT%d (boot flag %v): dirty volume reported clean", c.bits, c.flags)
		}
	}
}
