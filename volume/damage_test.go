//go:build linux

package volume

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// openFile opens the volume file at path for the test's duration.
func openFile(t *testing.T, path string) *Volume {
	t.Helper()
	f, size := testvol.OpenFile(t, path)
	v, err := Open(f, size)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return v
}

// checkVolume runs Check over the volume file at path.
func checkVolume(t *testing.T, path string) []Damage {
	t.Helper()
	var out []Damage
	if err := openFile(t, path).Check(context.Background(), func(d Damage) { out = append(out, d) }); err != nil {
		t.Fatalf("check %s: %v", path, err)
	}
	return out
}

// Healthy volumes made by the real tools and by Windows check clean.
func TestCheckCleanVolumes(t *testing.T) {
	vols := map[string]string{
		"fat12": testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"}),
		"fat16": testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "full"}),
		"fat32": testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "full"}),
		"ntfs":  testvol.NTFS(t, testvol.NTFSSpec{Content: "full"}),
	}
	for _, rel := range testvol.RealList(t) {
		vols[rel] = testvol.Real(t, rel)
	}
	for name, p := range vols {
		for _, d := range checkVolume(t, p) {
			t.Errorf("%s: %s", name, d)
		}
	}
}

// Check names each damage done to a volume, with its path and offset, and
// the tolerant walk goes on past it.
func TestCheckDamaged(t *testing.T) {
	for name, d := range map[string]*testvol.Damaged{"fat16": testvol.DamagedFAT(t, 16), "fat32": testvol.DamagedFAT32(t), "ntfs": testvol.DamagedNTFS(t)} {
		var found []string
		for _, x := range checkVolume(t, d.Path) {
			found = append(found, fmt.Sprintf("%s|%s|%d", x.Kind, x.Path, x.Offset))
			t.Logf("%s: %s", name, x)
		}
		for _, w := range d.Want {
			if !testvol.HasDamage(found, w) {
				t.Errorf("%s: check does not report %+v", name, w)
			}
		}
		if name == "ntfs" && !slices.ContainsFunc(checkVolume(t, d.Path), func(x Damage) bool {
			return x.Path == "/Documents/readme.txt" && strings.Contains(x.Msg, "missing from its directory's index")
		}) {
			t.Errorf("ntfs: readme.txt's record is not reported missing from the index")
		}
		// The strict walk stops; the tolerant one reaches every intact file.
		v := openFile(t, d.Path)
		if err := v.Walk(context.Background(), func(File) error { return nil }); err == nil && name != "ntfs" {
			t.Errorf("%s: strict walk over damage succeeded", name)
		}
		seen := map[string]File{}
		if err := v.WalkTolerant(context.Background(), func(x File) error { seen[x.Path] = x; return nil }, func(Damage) {}); err != nil {
			t.Fatalf("%s: tolerant walk: %v", name, err)
		}
		for _, p := range d.Files {
			if x, ok := seen[p]; !ok || x.Damaged || len(x.Runs) == 0 {
				t.Errorf("%s: tolerant walk gives %s as %+v", name, p, x)
			}
		}
	}
}

// Check and the tolerant walk never panic or hang on damaged bytes, and
// report runs inside the volume only.
func FuzzCheckFAT(f *testing.F) {
	img, err := os.ReadFile(testvol.Real(f, "fat/mkfs-fat16-lfn.img"))
	if err != nil {
		f.Fatal(err)
	}
	const head = 16 << 10 // boot sector, both FATs, the root directory
	f.Add(img[:head])
	f.Fuzz(func(t *testing.T, b []byte) {
		vol := append([]byte(nil), img...)
		copy(vol, b[:min(len(b), head)])
		v, err := Open(bytes.NewReader(vol), int64(len(vol)))
		if err != nil {
			return
		}
		checkRuns(t, v)
	})
}

func FuzzCheckNTFS(f *testing.F) {
	img := ntfsTestImage(f)
	v, err := openNTFSVol(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	mftOff := v.recordOffset(0)
	f.Add(uint32(1*1024+0x100), []byte{0xEE})
	f.Add(uint32(5*1024+0x18), []byte{0xFF, 0xFF})
	f.Add(uint32(40*1024), []byte("BAAD"))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		if len(patch) > 4096 {
			return
		}
		pr := &patchReader{base: img, off: mftOff + int64(off%(64*1024)), patch: patch}
		vol, err := Open(pr, int64(len(img)))
		if err != nil {
			return
		}
		checkRuns(t, vol)
	})
}

func checkRuns(t *testing.T, v *Volume) {
	inside := func(what string, runs []Run) {
		for _, r := range runs {
			if r.Start+r.Count > v.Info.ClusterCount || r.Start+r.Count < r.Start {
				t.Fatalf("%s: run %v past %d clusters", what, r, v.Info.ClusterCount)
			}
		}
	}
	_ = v.WalkTolerant(context.Background(), func(f File) error { inside(f.Path, f.Runs); return nil },
		func(d Damage) { inside(d.String(), d.Clusters) })
	_ = v.Check(context.Background(), func(Damage) {})
}

// On FAT12 and FAT16 (fixed root directory) the tolerant walk reports a
// looping, a cross-linked and a free-ending chain under the file's path,
// and still reaches every other file with its runs.
func TestWalkTolerantFAT1216(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []string{
		fatGunzip(t, "../testdata/realimages/fat/mkfs-fat12-lfn.img.gz", dir),
		fatGunzip(t, "../testdata/realimages/fat/mkfs-fat16-lfn.img.gz", dir),
	} {
		v := fatOpenImage(t, src)
		files := fatWalkAll(t, v)
		var target, other File
		for _, f := range files {
			n := uint64(0)
			for _, r := range f.Runs {
				n += r.Count
			}
			switch {
			case f.Dir || n == 0:
			case target.Path == "" && n >= 2:
				target = f
			case other.Path == "" && n == 1:
				other = f
			}
		}
		if other.Path == "" {
			t.Fatalf("%s: no file of several clusters and one of one", src)
		}
		first := uint32(target.Runs[0].Start + 2)
		for _, c := range []struct {
			kind  string
			value uint32
		}{
			{DamageChain, first}, // loops back to its start
			{DamageCrossLink, uint32(other.Runs[0].Start + 2)}, // runs into the other file
			{DamageChain, 0}, // ends in a free cluster
		} {
			img := fatCopyFile(t, src, filepath.Join(t.TempDir(), "d.img"))
			fatPatchEntry(t, img, v.FAT().Boot(), 0, first, c.value)
			dv := fatOpenImage(t, img)
			var found []Damage
			seen := map[string]File{}
			err := dv.WalkTolerant(context.Background(), func(f File) error { seen[f.Path] = f; return nil }, func(d Damage) { found = append(found, d) })
			if err != nil {
				t.Fatalf("%s %s: %v", src, c.kind, err)
			}
			ok := false
			for _, d := range found {
				ok = ok || (d.Path == target.Path || d.Path == other.Path) && d.Offset > 0 && (d.Kind == c.kind || c.kind == DamageCrossLink && d.Kind == DamageChain)
			}
			if !ok {
				t.Errorf("%s: %s of %s not reported: %v", src, c.kind, target.Path, found)
			}
			for p, f := range files {
				g, ok := seen[p]
				if p == target.Path || p == other.Path {
					continue
				}
				if !ok || g.Damaged || fmt.Sprint(g.Runs) != fmt.Sprint(f.Runs) {
					t.Errorf("%s %s: %s walked as %+v, want %+v", src, c.kind, p, g, f)
				}
			}
		}
	}
}

// A broken directory index block is found by Check with its offset; the
// tolerant walk, which reads MFT records rather than indexes, still gives
// every file.
func TestCheckBrokenIndex(t *testing.T) {
	p, off := testvol.BrokenIndexNTFS(t)
	found := false
	for _, d := range checkVolume(t, p) {
		t.Log(d)
		found = found || d.Kind == DamageIndex && d.Path == "/Many/d000" && d.Offset == off
	}
	if !found {
		t.Errorf("no index damage of /Many/d000 at byte %d", off)
	}
	v := openFile(t, p)
	n := 0
	err := v.WalkTolerant(context.Background(), func(x File) error {
		if strings.HasPrefix(x.Path, "/Many/d000/") {
			n++
		}
		return nil
	}, func(d Damage) { t.Errorf("walk reports %s", d) })
	if err != nil || n != 100 {
		t.Errorf("tolerant walk: %v, %d files under /Many/d000, want 100", err, n)
	}
}

// A directory whose chain runs into a file walked before it is reported
// cross-linked with the shared cluster, so that the file is never
// excluded (its clusters hold the directory's entries too).
func TestWalkTolerantDirectoryIntoFile(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []string{
		fatGunzip(t, "../testdata/realimages/fat/mkfs-fat16-lfn.img.gz", dir),
		testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "full"}), // /pagefile.sys
	} {
		v := fatOpenImage(t, src)
		var file, sub File
		all := fatWalkAll(t, v)
		for _, p := range slices.Sorted(maps.Keys(all)) {
			f := all[p]
			switch {
			case !f.Dir && strings.Count(p, "/") == 1 && len(f.Runs) > 0 && file.Path == "":
				file = f
			case f.Dir && p != "/" && len(f.Runs) > 0 && sub.Path == "":
				sub = f
			}
		}
		if file.Path == "" || sub.Path == "" {
			t.Fatalf("%s: no file in the root and subdirectory", src)
		}
		last := sub.Runs[len(sub.Runs)-1]
		img := fatCopyFile(t, src, filepath.Join(t.TempDir(), "d.img"))
		fatPatchEntry(t, img, v.FAT().Boot(), 0, uint32(last.Start+last.Count-1+2), uint32(file.Runs[0].Start+2))
		var shared []Run
		err := fatOpenImage(t, img).WalkTolerant(context.Background(), func(File) error { return nil }, func(d Damage) {
			if d.Path == sub.Path && d.Kind == DamageCrossLink {
				shared = append(shared, d.Clusters...)
			}
		})
		if err != nil || len(shared) != 1 || shared[0].Start != file.Runs[0].Start {
			t.Errorf("%s: %v; cross-link of %s into %s reported with clusters %v", src, err, sub.Path, file.Path, shared)
		}
	}
}

func TestClaimSet(t *testing.T) {
	c := newClaimSet(100)
	if d := c.claim(3, 40); d != nil {
		t.Fatalf("fresh claim: %v", d)
	}
	if d := c.claim(40, 20); len(d) != 1 || d[0] != (Run{40, 3}) {
		t.Fatalf("overlap: %v", d)
	}
	if d := c.claim(0, 100); fmt.Sprint(d) != "[{3 57}]" {
		t.Fatalf("whole set: %v", d)
	}
	for b := uint64(0); b < 100; b++ {
		if !c.has(b) {
			t.Fatalf("cluster %d not set", b)
		}
	}
}

// A root directory entry whose name cannot be a file name no longer stops
// Open: the label is still read, and the walk reports the entry and goes
// on with the others.
func TestFATBadRootEntry(t *testing.T) {
	img := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}))
	v := openFile(t, img)
	ents, err := v.FAT().ReadDir("/")
	if err != nil || len(ents) < 2 {
		t.Fatalf("root: %v %v", ents, err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// "/" in an 8.3 name.
	if _, err := f.WriteAt([]byte("/"), ents[0].offset+1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dv := openFile(t, img)
	if dv.Info.Label != v.Info.Label || len(dv.OpenDamage()) != 0 {
		t.Errorf("label %q (was %q), open damage %v", dv.Info.Label, v.Info.Label, dv.OpenDamage())
	}
	var found []Damage
	seen := map[string]bool{}
	err = dv.WalkTolerant(context.Background(), func(x File) error { seen[x.Path] = true; return nil }, func(d Damage) { found = append(found, d) })
	if err != nil || len(found) != 1 || found[0].Kind != DamageEntry || found[0].Offset != ents[0].offset {
		t.Fatalf("walk: %v, damage %v", err, found)
	}
	if !seen["/"+ents[1].Name] {
		t.Errorf("the walk stopped at the bad entry: %v", seen)
	}
}
