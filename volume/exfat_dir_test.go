package volume

import (
	"encoding/binary"
	"testing"
	"unicode/utf16"
)

// exfatTestSet builds one file entry set (a unit test of the structure):
// file entry, stream extension, name entries, with its checksum and hash.
func exfatTestSet(name string, up *exfatUpcase) []byte {
	u := utf16.Encode([]rune(name))
	ne := (len(u) + exfatNameChars - 1) / exfatNameChars
	set := make([]byte, (2+ne)*exfatEntrySize)
	le := binary.LittleEndian
	set[0], set[1] = exfatTypeFile, byte(1+ne)
	le.PutUint16(set[exfatFileAttributes:], ExFATAttrArchive)
	s := set[32:]
	s[0], s[exfatStreamFlags], s[exfatStreamNameLength] = exfatTypeStream, exfatFlagAllocPossible, byte(len(u))
	le.PutUint16(s[exfatStreamNameHash:], exfatNameHash(up.upper(u)))
	for k := 0; k < ne; k++ {
		e := set[(2+k)*32:]
		e[0] = exfatTypeName
		for c := 0; c < exfatNameChars && k*exfatNameChars+c < len(u); c++ {
			le.PutUint16(e[2+2*c:], u[k*exfatNameChars+c])
		}
	}
	le.PutUint16(set[2:], exfatSetChecksum(set))
	return set
}

func exfatIdentityUpcase() *exfatUpcase {
	t := &exfatUpcase{table: make([]uint16, 128)}
	for i := range t.table {
		t.table[i] = uint16(i)
		if i >= 'a' && i <= 'z' {
			t.table[i] = uint16(i - 32)
		}
	}
	return t
}

func TestExFATDirSets(t *testing.T) {
	up := exfatIdentityUpcase()
	off := func(i int) int64 { return int64(i) }
	buf := append(exfatTestSet("a.txt", up), exfatTestSet("Some longer name, 30 chars.bin", up)...)
	buf = append(buf, make([]byte, 64)...)
	scan, err := parseExFATDir("/", buf, false, off, up)
	if err != nil || len(scan.entries) != 2 || scan.entries[1].Name != "Some longer name, 30 chars.bin" {
		t.Fatalf("%+v %v", scan, err)
	}
	// The same name twice, in another case: refused.
	dup := append(exfatTestSet("a.txt", up), exfatTestSet("A.TXT", up)...)
	if _, err := parseExFATDir("/", dup, false, off, up); err == nil {
		t.Error("duplicate name accepted")
	}
	// A set cut by the directory's end, a stray secondary, "..".
	for _, bad := range [][]byte{buf[:70], buf[32:96], exfatTestSet("..", up)} {
		if _, err := parseExFATDir("/", bad, false, off, up); err == nil {
			t.Errorf("accepted % x", bad[:8])
		}
	}
}

// FuzzExFATDir: any bytes as a directory give entries or an error.
func FuzzExFATDir(f *testing.F) {
	up := exfatIdentityUpcase()
	f.Add(append(exfatTestSet("a.txt", up), exfatTestSet("Some longer name, 30 chars.bin", up)...), true)
	f.Fuzz(func(t *testing.T, b []byte, root bool) {
		scan, err := parseExFATDir("/", b, root, func(i int) int64 { return int64(i) }, up)
		if err == nil && len(scan.entries)*3*exfatEntrySize > len(b) {
			t.Fatalf("%d entries from %d bytes", len(scan.entries), len(b))
		}
	})
}
