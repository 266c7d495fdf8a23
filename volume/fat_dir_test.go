//go:build linux

package volume

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/cbimg/cbimg/internal/testvol"
)

// fatShortEntry builds a 32-byte 8.3 entry.
func fatShortEntry(name11 string, attr, ntres byte, cluster, size uint32) []byte {
	e := make([]byte, 32)
	copy(e, name11)
	e[fatDirAttr] = attr
	e[fatDirNTRes] = ntres
	binary.LittleEndian.PutUint16(e[fatDirFstClusHI:], uint16(cluster>>16))
	binary.LittleEndian.PutUint16(e[fatDirFstClusLO:], uint16(cluster))
	binary.LittleEndian.PutUint32(e[fatDirFileSize:], size)
	return e
}

// fatLFNEntries builds the long-name slots for name, last slot first, with
// the given checksum.
func fatLFNEntries(name string, sum byte) []byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
	}
	for len(u) < n*13 {
		u = append(u, 0xFFFF)
	}
	var out []byte
	for ord := n; ord >= 1; ord-- {
		e := make([]byte, 32)
		e[0] = byte(ord)
		if ord == n {
			e[0] |= fatLFNLast
		}
		e[fatDirAttr] = fatAttrLFN
		e[13] = sum
		for k, o := range [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			binary.LittleEndian.PutUint16(e[o:], u[(ord-1)*13+k])
		}
		out = append(out, e...)
	}
	return out
}

func TestParseFATDir(t *testing.T) {
	var d []byte
	add := func(b ...[]byte) {
		for _, x := range b {
			d = append(d, x...)
		}
	}
	long := "A long name — ünïcödé 名前.txt"
	add(fatShortEntry(".          ", fatAttrDir, 0, 5, 0), fatShortEntry("..         ", fatAttrDir, 0, 0, 0))
	add(fatShortEntry("MYVOLUME   ", fatAttrVolumeID, 0, 0, 0))
	add(fatLFNEntries(long, fatShortSum([]byte("ALONGN~1TXT"))), fatShortEntry("ALONGN~1TXT", fatAttrArchive, 0, 10, 100))
	// A stale long name: its checksum belongs to another 8.3 name.
	add(fatLFNEntries("stale long name.txt", fatShortSum([]byte("OTHER   TXT"))), fatShortEntry("STALE~1 TXT", fatAttrArchive, 0, 11, 1))
	// Case bits.
	add(fatShortEntry("LOWER   TXT", 0, fatLowerBase|fatLowerExt, 12, 2))
	add(fatShortEntry("BASE    EXT", 0, fatLowerBase, 13, 2))
	// Deleted, with its long name.
	del := fatLFNEntries("deleted file", fatShortSum([]byte("DELETE~1   ")))
	del[0] = fatEntryDeleted
	sd := fatShortEntry("DELETE~1   ", 0, 0, 14, 3)
	sd[0] = fatEntryDeleted
	add(del, sd)
	// 0x05 stands for a leading 0xE5 (σ in code page 437).
	add(fatShortEntry("\x05ABC    TXT", 0, 0, 15, 4))
	// A long name whose slots are out of order is ignored.
	bad := fatLFNEntries("twenty-six characters long", fatShortSum([]byte("TWENTY~1   ")))
	copy(bad[32:], bad[:32])
	add(bad, fatShortEntry("TWENTY~1   ", fatAttrDir, 0, 16, 0))
	add(make([]byte, 32)) // end of directory
	add(fatShortEntry("AFTEREND   ", 0, 0, 17, 1))

	scan := parseFATDir("/", d, true, func(i int) int64 { return int64(i) })
	if scan.err != nil {
		t.Fatal(scan.err)
	}
	if !scan.hasLbl || scan.label != "MYVOLUME" {
		t.Errorf("label %q (%v)", scan.label, scan.hasLbl)
	}
	var got []string
	for _, e := range scan.entries {
		got = append(got, e.Name)
	}
	want := []string{long, "STALE~1.TXT", "lower.txt", "base.EXT", "σABC.TXT", "TWENTY~1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("names\n%q\nwant\n%q", got, want)
	}
	if e := scan.entries[0]; e.ShortName != "ALONGN~1.TXT" || e.Cluster != 10 || e.Size != 100 || e.offset != 32*6 {
		t.Errorf("first entry %+v", e)
	}
	if !scan.entries[5].IsDir() {
		t.Errorf("TWENTY~1 is not a directory")
	}

	// Garbage where entries should be is an error, not a strange name.
	for _, name := range []string{"A/B     TXT", "           "} {
		g := append(fatShortEntry("GOOD    TXT", 0, 0, 3, 1), fatShortEntry(name, 0, 0, 4, 1)...)
		scan := parseFATDir("/x", g, false, func(i int) int64 { return int64(1000 + i) })
		var fe *FormatError
		if !errors.As(scan.err, &fe) || fe.Offset != 1032 || !strings.Contains(fe.Error(), "/x") {
			t.Errorf("entry %q: error %v", name, scan.err)
		}
	}
}

// TestFATStaleLongName breaks the checksum of a real long name and checks
// that both mtools and the walk fall back to the 8.3 name.
func TestFATStaleLongName(t *testing.T) {
	img := testvol.Copy(t, testvol.Real(t, "fat/mkfs-fat16-lfn.img"))
	v := fatOpenImage(t, img)
	ents, err := v.FAT().ReadDir("/very-long-dir-name")
	if err != nil {
		t.Fatal(err)
	}
	var e *FATDirEntry
	for i := range ents {
		if ents[i].Name == "very-long-file-name.txt" {
			e = &ents[i]
		}
	}
	if e == nil || e.ShortName == e.Name {
		t.Fatalf("no long-named file in %+v", ents)
	}
	// Rename the 8.3 entry (last character of the base name): the long
	// name's checksum no longer matches.
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("Z"), e.offset+7); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	// fsck.fat shows the stale long name; mtools, like Windows, the 8.3 one.
	_, files := fatCheckVolumeOpt(t, img, FAT16, fatCheckOpts{mtools: true})
	var found string
	for p := range files {
		if strings.HasPrefix(p, "/very-long-dir-name/") {
			found = p
		}
	}
	if strings.Contains(found, "very-long-file-name") || !strings.HasSuffix(found, "Z.TXT") {
		t.Errorf("after the checksum broke, walk reports %q, want the 8.3 name", found)
	}
}
