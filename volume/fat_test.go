//go:build linux

package volume

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// fatOpenImage opens an image file with Open.
func fatOpenImage(t testing.TB, img string) *Volume {
	t.Helper()
	f, size := testvol.OpenFile(t, img)
	v, err := Open(f, size)
	if err != nil {
		t.Fatalf("Open(%s): %v", filepath.Base(img), err)
	}
	return v
}

// fatWalkAll collects the walk, keyed by path.
func fatWalkAll(t testing.TB, v *Volume) map[string]File {
	t.Helper()
	files := map[string]File{}
	err := v.Walk(context.Background(), func(f File) error {
		if _, dup := files[f.Path]; dup {
			t.Errorf("walk reports %s twice", f.Path)
		}
		files[f.Path] = f
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return files
}

// fatReadRuns reads a file's bytes through its runs, up to its size.
func fatReadRuns(t testing.TB, img string, v *Volume, f File) []byte {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []byte
	cs := int64(v.Info.ClusterSize)
	for _, r := range f.Runs {
		b := make([]byte, int64(r.Count)*cs)
		if err := readFull(fh, b, v.Info.ClusterOffset(r.Start)); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	if int64(len(out)) < f.Size {
		t.Fatalf("%s: runs hold %d bytes, size is %d", f.Path, len(out), f.Size)
	}
	return out[:f.Size]
}

// fatCheckVolume compares everything the reader says about img with
// fsck.fat, mtools and (for 512-byte sectors) sleuthkit.
func fatCheckVolume(t *testing.T, img string, want Type, mtoolsWorks bool) (*Volume, map[string]File) {
	t.Helper()
	return fatCheckVolumeOpt(t, img, want, fatCheckOpts{mtools: mtoolsWorks, fsckPaths: true})
}

type fatCheckOpts struct {
	mtools    bool // mtools and sleuthkit read the volume
	fsckPaths bool // compare paths with fsck.fat -l (it shows long names with a wrong checksum)
}

func fatCheckVolumeOpt(t *testing.T, img string, want Type, opts fatCheckOpts) (*Volume, map[string]File) {
	t.Helper()
	v := fatOpenImage(t, img)
	in := v.Info
	fk := fatFsck(t, img)
	if in.Type != want {
		t.Errorf("Type = %v, want %v", in.Type, want)
	}
	if int64(fatEntryBits(in.Type)) != fk.bits {
		t.Errorf("type %v, fsck.fat says %d-bit entries", in.Type, fk.bits)
	}
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"sector size", int64(in.SectorSize), fk.sectorSize},
		{"cluster size", int64(in.ClusterSize), fk.clusterSize},
		{"total sectors", int64(in.TotalSectors), fk.total},
		{"size", in.Size + in.Missing, fk.total * fk.sectorSize},
		{"cluster count", int64(in.ClusterCount), fk.clusters},
		{"cluster origin", in.ClusterOrigin, fk.dataStart},
		{"hidden sectors", int64(in.HiddenSectors), fk.hidden},
		{"reserved sectors", int64(v.FAT().Boot().ReservedSectors), fk.reserved},
		{"FATs", int64(v.FAT().Boot().NumFATs), fk.fats},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, fsck.fat says %d", c.what, c.got, c.want)
		}
	}

	bm, err := v.Bitmap()
	if err != nil {
		t.Fatalf("Bitmap: %v", err)
	}
	if want := (in.ClusterCount + 7) / 8; uint64(len(bm)) != want {
		t.Fatalf("bitmap has %d bytes, want %d", len(bm), want)
	}
	if r := in.ClusterCount % 8; r != 0 && bm[len(bm)-1]>>r != 0 {
		t.Errorf("bitmap bits past the cluster count are set: %08b", bm[len(bm)-1])
	}
	used := int64(popcount(bm))
	if used != fk.used {
		t.Errorf("bitmap has %d used clusters, fsck.fat says %d", used, fk.used)
	}

	ext := v.SystemExtents()
	if len(ext) == 0 || ext[0] != (Extent{0, in.ClusterOrigin}) {
		t.Errorf("system extents %v do not start with [0, %d)", ext, in.ClusterOrigin)
	}
	gridEnd := in.ClusterOffset(in.ClusterCount)
	var wantExt []Extent
	wantExt = append(wantExt, Extent{0, in.ClusterOrigin})
	if gridEnd < in.Size {
		wantExt = append(wantExt, Extent{gridEnd, in.Size - gridEnd})
	}
	if !slices.Equal(ext, wantExt) {
		t.Errorf("system extents %v, want %v", ext, wantExt)
	}

	files := fatWalkAll(t, v)
	// Every used cluster belongs to exactly one file or directory.
	cover := make([]byte, len(bm))
	for _, f := range files {
		for _, r := range f.Runs {
			if r.Count == 0 || r.Start+r.Count > in.ClusterCount {
				t.Fatalf("%s: run %v outside %d clusters", f.Path, r, in.ClusterCount)
			}
			for c := r.Start; c < r.Start+r.Count; c++ {
				if cover[c>>3]&(1<<(c&7)) != 0 {
					t.Errorf("%s: cluster %d reported twice", f.Path, c)
				}
				cover[c>>3] |= 1 << (c & 7)
			}
		}
		if !f.Dir && f.Size == 0 && f.Runs != nil {
			t.Errorf("empty file %s has runs %v", f.Path, f.Runs)
		}
	}
	if !bytes.Equal(cover, bm) {
		t.Errorf("clusters of the walked files (%d) differ from the bitmap (%d)", popcount(cover), used)
	}

	// Paths against fsck.fat's list (it reads every volume, 2048-byte
	// sectors included). fsck.fat shows 8.3 names without the case bits
	// and lists the volume label as a root entry.
	walked := map[string]bool{}
	for p := range files {
		if p != "/" {
			walked[strings.ToUpper(p)] = true
		}
	}
	fsckFiles := map[string]bool{}
	for _, p := range fk.files {
		if strings.Count(p, "/") == 1 && in.Label != "" && fatSquash(p[1:]) == fatSquash(in.Label) {
			continue
		}
		fsckFiles[strings.ToUpper(p)] = true
	}
	if opts.fsckPaths {
		fatDiffSets(t, "walk", walked, "fsck.fat -l", fsckFiles)
	}

	if !opts.mtools {
		return v, files
	}
	mdir := fatMdirPaths(t, img)
	got := map[string]bool{}
	for p, f := range files {
		if p == "/" {
			continue
		}
		if f.Dir {
			p += "/"
		}
		got[p] = true
	}
	fatDiffSets(t, "walk", got, "mdir", mdir)

	// Contents against mcopy.
	out := t.TempDir()
	fatRunTool(t, "mcopy", "-s", "-i", img, "::", out+"/")
	for p, f := range files {
		if f.Dir {
			continue
		}
		want, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("mcopy did not extract %s: %v", p, err)
			continue
		}
		got := fatReadRuns(t, img, v, f)
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s: %d bytes read from runs differ from mcopy's %d bytes", p, len(got), len(want))
		}
	}

	// Serial and label against sleuthkit.
	st := fatRunTool(t, "fsstat", img)
	if m := regexp.MustCompile(`Volume ID: 0x([0-9a-f]+)`).FindStringSubmatch(st); m == nil {
		t.Errorf("fsstat shows no volume ID:\n%s", st)
	} else if id, _ := strconv.ParseUint(m[1], 16, 64); id != in.Serial {
		t.Errorf("serial %#x, fsstat says %#x", in.Serial, id)
	}
	label := ""
	if m := regexp.MustCompile(`Volume Label \(Root Directory\): (.*)`).FindStringSubmatch(st); m != nil {
		label = strings.TrimRight(m[1], " ")
	} else if m := regexp.MustCompile(`Volume Label \(Boot Sector\): (.*)`).FindStringSubmatch(st); m != nil {
		label = strings.TrimRight(m[1], " ")
		if label == "NO NAME" {
			label = ""
		}
	}
	if in.Label != label {
		t.Errorf("label %q, fsstat says %q", in.Label, label)
	}
	if m := regexp.MustCompile(`OEM Name: (.*)`).FindStringSubmatch(st); m == nil || strings.TrimRight(m[1], " ") != in.OEMName {
		t.Errorf("OEM name %q, fsstat: %q", in.OEMName, m)
	}
	return v, files
}

func fatSquash(s string) string { return strings.NewReplacer(".", "", " ", "").Replace(s) }

// fatDiffSets reports the elements only one of two sets has.
func fatDiffSets(t *testing.T, an string, a map[string]bool, bn string, b map[string]bool) {
	t.Helper()
	n := 0
	for p := range a {
		if !b[p] {
			if n++; n <= 10 {
				t.Errorf("%s has %q, %s does not", an, p, bn)
			}
		}
	}
	for p := range b {
		if !a[p] {
			if n++; n <= 10 {
				t.Errorf("%s has %q, %s does not", bn, p, an)
			}
		}
	}
	if n > 10 {
		t.Errorf("... %d differences in all (%s: %d paths, %s: %d)", n, an, len(a), bn, len(b))
	}
}

func TestFATMkfsVolumes(t *testing.T) {
	specs := []struct {
		spec fatVolumeSpec
		want Type
	}{
		{fatVolumeSpec{"fat32-512", []string{"-F", "32", "-S", "512", "-s", "1", "-n", "SMALLCLUS", "-i", "1234abcd"}, 40 << 10}, FAT32},
		{fatVolumeSpec{"fat32-4k", []string{"-F", "32", "-S", "512", "-s", "8", "-h", "2048"}, 300 << 10}, FAT32},
		{fatVolumeSpec{"fat32-32k", []string{"-F", "32", "-S", "512", "-s", "64", "-n", "BIG CLUS"}, 2150000}, FAT32},
		{fatVolumeSpec{"fat16", []string{"-F", "16", "-s", "4", "-n", "SIXTEEN"}, 64 << 10}, FAT16},
		{fatVolumeSpec{"fat12", []string{"-F", "12", "-s", "2"}, 3 << 10}, FAT12},
	}
	for _, s := range specs {
		t.Run(s.spec.name, func(t *testing.T) {
			t.Parallel()
			img := fatBuildVolume(t, s.spec)
			v, files := fatCheckVolume(t, img, s.want, true)
			if v.Info.Dirty {
				t.Errorf("fresh volume reported dirty")
			}
			if !fatFsck(t, img).clean {
				t.Errorf("fsck.fat -n finds the test volume unclean")
			}
			big := files["/Frag/big fragmented file.bin"]
			if len(big.Runs) < 2 {
				t.Errorf("the fragmented file has runs %v, want several", big.Runs)
			}
			for _, p := range []string{"/empty.txt", "/Deep/empty"} {
				if f, ok := files[p]; !ok || f.Size != 0 || f.Runs != nil {
					t.Errorf("%s: %+v, want an empty file without runs", p, f)
				}
			}
			if f := files["/Many"]; !f.Dir || len(f.Runs) == 0 {
				t.Errorf("/Many: %+v", f)
			}
		})
	}
}

func TestFATRealImages(t *testing.T) {
	for _, c := range []struct {
		rel    string
		want   Type
		mtools bool
		label  string
	}{
		{"fat/mkfs-fat12-lfn.img", FAT12, true, "Test!"},
		{"fat/mkfs-fat16-lfn.img", FAT16, true, "Test!"},
		{"fat/mkfs-fat32-2048-byte-sectors.raw", FAT32, false, ""},
		{"fat/winxp-fat16-undel.dd", FAT16, true, "FAT_REC_1"},
	} {
		t.Run(c.rel, func(t *testing.T) {
			img := testvol.Real(t, c.rel)
			if c.rel == "fat/winxp-fat16-undel.dd" {
				// The published image lacks the volume's last sector, which
				// lies past the cluster area: it opens, and says so.
				f, err := os.Open(img)
				if err != nil {
					t.Fatal(err)
				}
				st, _ := f.Stat()
				v, err := Open(f, st.Size())
				f.Close()
				if err != nil || v.Info.Missing != 512 || v.Info.Size != st.Size() {
					t.Fatalf("Open of the image missing its last sector: %v, Missing %d", err, v.Info.Missing)
				}
				// Short by more than that (into the cluster area): refused.
				f2, _ := os.Open(img)
				_, err = Open(f2, st.Size()-4096)
				f2.Close()
				var fe *FormatError
				if !errors.As(err, &fe) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
					t.Fatalf("Open of an image cut into its clusters: %v, want a truncation error", err)
				}
			}
			v, files := fatCheckVolume(t, img, c.want, c.mtools)
			if v.Info.Label != c.label {
				t.Errorf("label %q, want %q", v.Info.Label, c.label)
			}
			if _, ok := files["/"]; !ok {
				t.Errorf("walk did not report the root")
			}
		})
	}
}

// TestFATTestvolVolumes checks the shared fixture volumes, including
// sector sizes mtools and sleuthkit cannot read (checked with fsck.fat).
func TestFATTestvolVolumes(t *testing.T) {
	for _, c := range []struct {
		spec   testvol.FATSpec
		want   Type
		mtools bool
	}{
		{testvol.FATSpec{Bits: 12, SizeMiB: 32, ClusterSize: 16384, Content: "full"}, FAT12, true},
		{testvol.FATSpec{Bits: 16, Content: "full"}, FAT16, true},
		{testvol.FATSpec{Bits: 32, Content: "full"}, FAT32, true},
		{testvol.FATSpec{Bits: 32, SizeMiB: 300, SectorSize: 4096}, FAT32, false},
		{testvol.FATSpec{Bits: 16, SizeMiB: 64, SectorSize: 4096}, FAT16, false},
		{testvol.FATSpec{Bits: 12, SizeMiB: 8, SectorSize: 4096}, FAT12, false},
		{testvol.FATSpec{Bits: 32, SizeMiB: 100, SectorSize: 1024}, FAT32, false},
	} {
		name := fmt.Sprintf("fat%d-%dMiB-%dB-sectors-%s", c.spec.Bits, c.spec.SizeMiB, max(512, c.spec.SectorSize), c.spec.Content)
		t.Run(name, func(t *testing.T) {
			img := testvol.FAT(t, c.spec)
			v, files := fatCheckVolume(t, img, c.want, c.mtools)
			if v.Info.Label != "CBIMGTEST" || v.Info.Serial != 0x1234ABCD {
				t.Errorf("label %q serial %#x, want CBIMGTEST 0x1234abcd", v.Info.Label, v.Info.Serial)
			}
			if c.spec.Content == "full" {
				if f := files["/Frag/fragmented.bin"]; len(f.Runs) < 10 {
					t.Errorf("/Frag/fragmented.bin has runs %v, want many", f.Runs)
				}
			}
		})
	}
}
