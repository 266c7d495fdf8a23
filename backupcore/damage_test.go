//go:build linux

package backupcore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/faultdev"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/cbimg/cbimg/volume"
)

// backupRestore backs up src with opts, restores the image into a new
// file and returns the result and the restored file.
func backupRestore(t *testing.T, src string, opts backupcore.Options) (*backupcore.Result, string) {
	t.Helper()
	dir := t.TempDir()
	opts.Source, opts.Image = src, filepath.Join(dir, "x.cbi")
	res, err := backupcore.Backup(context.Background(), opts)
	if err != nil {
		t.Fatalf("backup of a damaged volume: %v", err)
	}
	r, err := image.Open(opts.Image, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Header.Damage) != len(res.Header.Damage) {
		t.Errorf("image header holds %d damage records, the backup made %d", len(r.Header.Damage), len(res.Header.Damage))
	}
	r.Close()
	out := filepath.Join(dir, "restored.img")
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: opts.Image, Target: out}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	return res, out
}

// sameExcept compares two volume files byte for byte, except the clusters
// of the exclusions, which must be zeros in got.
func sameExcept(t *testing.T, want, got string, h *image.Header) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("restored volume has %d bytes, the source %d", len(b), len(a))
	}
	cs := int64(h.ClusterSize)
	for _, x := range h.Exclusions {
		for _, r := range x.Runs {
			off := h.ClusterOrigin + int64(r.Start)*cs
			n := int64(r.Count) * cs
			if !oracle.IsZero(b[off : off+n]) {
				t.Errorf("excluded %s: clusters %d+%d not zero after restore", x.Path, r.Start, r.Count)
			}
			copy(b[off:off+n], a[off:off+n])
		}
	}
	if !bytes.Equal(a, b) {
		i := 0
		for a[i] == b[i] {
			i++
		}
		t.Errorf("restored volume differs from the source at byte %d", i)
	}
}

func kinds(ds []image.Damage) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[d.Kind]++
	}
	return m
}

// A damaged FAT32 volume is backed up: without exclusions no file is
// walked and the restore equals the source; with the default exclusions
// the damage is warned about and recorded; an exclusion over a damaged or
// cross-linked chain is not applied. fsck.fat -n says the same of the
// restored volume as of the source.
func TestBackupDamagedFAT(t *testing.T) {
	for _, bits := range []int{16, 32} {
		t.Run(fmt.Sprintf("FAT%d", bits), func(t *testing.T) { backupDamagedFAT(t, testvol.DamagedFAT(t, bits)) })
	}
}

func backupDamagedFAT(t *testing.T, d *testvol.Damaged) {
	fsck := oracle.Fsck(t, d.Path)
	if strings.HasSuffix(fsck, "exit 0") {
		t.Fatalf("fsck.fat -n finds the damaged volume clean:\n%s", fsck)
	}

	t.Run("no exclusions", func(t *testing.T) {
		res, out := backupRestore(t, d.Path, backupcore.Options{NoDefaultExcludes: true})
		// No walk: only the FAT copies (compared for every FAT backup).
		if k := kinds(res.Header.Damage); len(k) != 1 || k[volume.DamageFATCopies] != 1 {
			t.Errorf("damage recorded without a walk: %v", res.Header.Damage)
		}
		sameExcept(t, d.Path, out, res.Header)
		if got := oracle.Fsck(t, out); got != fsck {
			t.Errorf("fsck.fat -n on the restored volume:\n%s\non the source:\n%s", got, fsck)
		}
	})

	t.Run("default exclusions", func(t *testing.T) {
		res, out := backupRestore(t, d.Path, backupcore.Options{})
		k := kinds(res.Header.Damage)
		for _, want := range []string{volume.DamageCrossLink, volume.DamageDirLoop, volume.DamageDotEntry, volume.DamageEmptyChain, volume.DamageFATCopies} {
			if k[want] == 0 {
				t.Errorf("no %q recorded: %v", want, res.Header.Damage)
			}
		}
		warnings := strings.Join(res.Warnings, "\n")
		for _, w := range d.Want {
			if w.Path != "" && !strings.Contains(warnings, w.Path) {
				t.Errorf("no warning names %s:\n%s", w.Path, warnings)
			}
		}
		sameExcept(t, d.Path, out, res.Header)
		if got := oracle.Fsck(t, out); got != fsck {
			t.Errorf("fsck.fat -n on the restored volume:\n%s\non the source:\n%s", got, fsck)
		}
	})

	t.Run("exclusions", func(t *testing.T) {
		ex := append([]string{"ONE.TXT"}, d.Shared...)
		ex = append(ex, d.Files[0])
		res, out := backupRestore(t, d.Path, backupcore.Options{Excludes: ex})
		if len(res.Header.Exclusions) != 1 || res.Header.Exclusions[0].Path != d.Files[0] {
			t.Errorf("exclusions applied: %+v, want only %s", res.Header.Exclusions, d.Files[0])
		}
		warnings := strings.Join(res.Warnings, "\n")
		for _, p := range append([]string{"/DOCS/ONE.TXT"}, d.Shared...) {
			if !strings.Contains(warnings, p) || !strings.Contains(warnings, "not applied") {
				t.Errorf("no warning says the exclusion of %s is not applied:\n%s", p, warnings)
			}
		}
		if k := kinds(res.Header.Damage); k["exclusion not applied"] != 3 {
			t.Errorf("not-applied exclusions recorded: %d, want 3", k["exclusion not applied"])
		}
		sameExcept(t, d.Path, out, res.Header)
		if got := oracle.Fsck(t, out); got != fsck {
			t.Errorf("fsck.fat -n on the restored volume:\n%s\non the source:\n%s", got, fsck)
		}
	})
}

// The same for NTFS: an unreadable file record and an index entry to a
// record no longer in use are warnings, not refusals.
func TestBackupDamagedNTFS(t *testing.T) {
	d := testvol.DamagedNTFS(t)
	res, out := backupRestore(t, d.Path, backupcore.Options{NoDefaultExcludes: true})
	if len(res.Header.Damage) != 0 {
		t.Errorf("damage recorded without a walk: %v", res.Header.Damage)
	}
	sameExcept(t, d.Path, out, res.Header)

	res, out = backupRestore(t, d.Path, backupcore.Options{Excludes: append([]string{d.Files[0]}, d.Shared...)})
	k := kinds(res.Header.Damage)
	if k[volume.DamageRecord] == 0 || k[volume.DamageCrossLink] == 0 {
		t.Errorf("the unreadable record or the cross-link is not recorded: %v", res.Header.Damage)
	}
	warnings := strings.Join(res.Warnings, "\n")
	for _, p := range d.Shared {
		if !strings.Contains(warnings, "matches "+p+", but its clusters are cross-linked") {
			t.Errorf("no warning says the exclusion of %s is not applied:\n%s", p, warnings)
		}
	}
	excluded := map[string]bool{}
	for _, x := range res.Header.Exclusions {
		excluded[x.Path] = true
	}
	for _, p := range []string{d.Files[0], "/pagefile.sys", "/swapfile.sys", "/hiberfil.sys"} {
		if !excluded[p] {
			t.Errorf("%s not excluded: %+v", p, res.Header.Exclusions)
		}
	}
	if len(res.Header.Exclusions) != 4 {
		t.Errorf("exclusions %+v, want only those four", res.Header.Exclusions)
	}
	sameExcept(t, d.Path, out, res.Header)
}

// A volume whose allocation map cannot be read is still refused, as a
// damaged source, with the advice to copy it sector by sector.
func TestBackupRefusesUnreadableMap(t *testing.T) {
	refused := func(t *testing.T, src string) {
		t.Helper()
		img := filepath.Join(t.TempDir(), "x.cbi")
		_, err := backupcore.Backup(context.Background(), backupcore.Options{Source: src, Image: img, NoDefaultExcludes: true})
		if !errors.Is(err, volume.ErrCorrupt) || !strings.Contains(err.Error(), "--sector-by-sector") {
			t.Fatalf("backup: %v, want a damaged-source refusal that advises --sector-by-sector", err)
		}
		if m, _ := filepath.Glob(img + "*"); len(m) > 0 {
			t.Fatalf("left behind: %v", m)
		}
	}
	t.Run("FAT read error", func(t *testing.T) {
		src := testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"})
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		v, err := volume.Open(f, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		bs := v.FAT().Boot()
		f.Close()
		// Entries 50000.. of the active FAT: Open reads entry 1, the
		// allocation map needs them all.
		refused(t, faultdev.Serve(t, src, faultdev.Range{Off: bs.FATOffset(bs.ActiveFAT()) + 4*50000, Len: 512}))
	})
	t.Run("NTFS $MFT record", func(t *testing.T) {
		refused(t, testvol.BadRecordNTFS(t, 0))
	})
	t.Run("NTFS $Bitmap record", func(t *testing.T) {
		src := testvol.UnreadableBitmapNTFS(t)
		refused(t, src)
	})
}

// An image is not written into a damaged file system: the in-place backup
// is refused before anything is written.
func TestInPlaceRefusesDamage(t *testing.T) {
	d := testvol.DamagedFAT32(t)
	before, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, no := range []bool{false, true} {
		_, err = backupcore.Backup(context.Background(), backupcore.Options{Source: d.Path, Image: d.Path + ":/x.cbi", NoDefaultExcludes: no})
		if !errors.Is(err, backupcore.ErrInPlaceUnsafe) || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("in-place backup of a damaged volume (no default excludes %v): %v", no, err)
		}
	}
	after, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the refused in-place backup changed the volume")
	}
}

// A directory or MFT record that cannot be read (bad sector) is a warning
// of the walk for exclusions; with Rescue its cluster is stored as zeros
// and the backup completes.
func TestBackupUnreadableMetadataRescue(t *testing.T) {
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"})
	ntfs := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	for _, c := range []struct {
		src, path, kind string
	}{
		{fat, "/Deep/Level 1/Level 2", volume.DamageDir},
		{ntfs, "/Data/4097.bin", volume.DamageRecord},
	} {
		f, size := testvol.OpenFile(t, c.src)
		v, err := volume.Open(f, size)
		if err != nil {
			t.Fatal(err)
		}
		// The cluster that holds the directory, or the file's MFT record.
		off := int64(-1)
		var recs []volume.Run
		if n := v.NTFS(); n != nil {
			mft, err := n.Open("/$MFT")
			if err != nil {
				t.Fatal(err)
			}
			recs = mft.Runs()
		}
		v.Walk(context.Background(), func(x volume.File) error {
			if x.Path == c.path && len(x.Runs) > 0 && recs == nil {
				off = v.Info.ClusterOffset(x.Runs[0].Start)
			}
			return nil
		})
		if recs != nil {
			off = ntfsRecordOffset(t, c.src, c.path, v.Info.ClusterOffset(recs[0].Start))
		}
		if off < 0 {
			t.Fatalf("%s not found", c.path)
		}
		cs := int64(v.Info.ClusterSize)
		dev := faultdev.Serve(t, c.src, faultdev.Range{Off: off, Len: 512})
		img := filepath.Join(t.TempDir(), "r.cbi")
		res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: dev, Image: img, Rescue: true})
		if err != nil {
			t.Fatalf("rescue backup over unreadable metadata of %s: %v", c.path, err)
		}
		if k := kinds(res.Header.Damage); k[c.kind] != 1 {
			t.Errorf("%s: damage recorded: %+v", c.path, res.Header.Damage)
		}
		bad := uint64((off - v.Info.ClusterOrigin) / cs)
		if len(res.Header.Unreadable) != 1 || res.Header.Unreadable[0].Start != bad {
			t.Errorf("%s: unreadable %v, want cluster %d", c.path, res.Header.Unreadable, bad)
		}
	}
}

// ntfsRecordOffset finds the MFT record (in $MFT's first run, at mft) whose
// name is the last element of p, by its $FILE_NAME.
func ntfsRecordOffset(t *testing.T, src, p string, mft int64) int64 {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(p)
	var pat []byte
	for _, r := range name {
		pat = append(pat, byte(r), 0)
	}
	for off := mft; off+1024 <= int64(len(b)) && off < mft+4096*1024; off += 1024 {
		rec := b[off : off+1024]
		// A file record, not the directory index that also holds the name.
		if string(rec[:4]) == "FILE" && rec[0x16]&2 == 0 && bytes.Contains(rec, pat) {
			return off
		}
	}
	return -1
}

// An unreadable $Volume record (label, dirty flag) is a warning: the
// allocation map does not depend on it.
func TestBackupDamagedVolumeRecord(t *testing.T) {
	src := testvol.BadRecordNTFS(t, 3)
	res, out := backupRestore(t, src, backupcore.Options{NoDefaultExcludes: true})
	if k := kinds(res.Header.Damage); k[volume.DamageVolume] != 1 {
		t.Errorf("damage recorded: %+v", res.Header.Damage)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "$Volume") {
		t.Errorf("warnings: %s", w)
	}
	sameExcept(t, src, out, res.Header)
}
