package disk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// GPT header (UEFI spec 5.3.2), at LBA 1 and a backup at the disk's last
// LBA. All integers little-endian; CRCs are CRC-32 (IEEE).
const (
	gptSignature    = "EFI PART"
	gptMinHeaderLen = 92
	gptMinEntryLen  = 128
	gptMaxEntryLen  = 4096
	gptMaxEntries   = 16384   // hard cap on the entry count
	gptMaxArray     = 4 << 20 // hard cap on the entry array in bytes
	gptNameUnits    = 36      // UTF-16 code units in an entry's name
)

// gptHeader holds the header fields ReadTable uses.
type gptHeader struct {
	myLBA, altLBA           uint64
	firstUsable, lastUsable uint64
	diskGUID                [16]byte
	entryLBA                uint64
	entries, entryLen       uint32
	arrayCRC                uint32
}

// parseGPTHeader checks and decodes the header sector read from lba.
func parseGPTHeader(s []byte, lba uint64, diskSectors uint64) (*gptHeader, error) {
	off := int64(lba) * int64(len(s))
	if string(s[:8]) != gptSignature {
		return nil, formatErr("GPT header", off, "no \"EFI PART\" signature")
	}
	hlen := binary.LittleEndian.Uint32(s[12:])
	if hlen < gptMinHeaderLen || hlen > uint32(len(s)) {
		return nil, formatErr("GPT header", off, "header size %d outside %d-%d", hlen, gptMinHeaderLen, len(s))
	}
	want := binary.LittleEndian.Uint32(s[16:])
	h := append([]byte(nil), s[:hlen]...)
	clear(h[16:20])
	if got := crc32.ChecksumIEEE(h); got != want {
		return nil, formatErr("GPT header", off, "CRC32 %08x, header says %08x", got, want)
	}
	g := &gptHeader{
		myLBA: binary.LittleEndian.Uint64(s[24:]), altLBA: binary.LittleEndian.Uint64(s[32:]),
		firstUsable: binary.LittleEndian.Uint64(s[40:]), lastUsable: binary.LittleEndian.Uint64(s[48:]),
		entryLBA: binary.LittleEndian.Uint64(s[72:]), entries: binary.LittleEndian.Uint32(s[80:]),
		entryLen: binary.LittleEndian.Uint32(s[84:]), arrayCRC: binary.LittleEndian.Uint32(s[88:]),
	}
	copy(g.diskGUID[:], s[56:72])
	switch {
	case g.myLBA != lba:
		return nil, formatErr("GPT header", off, "header says it is at LBA %d", g.myLBA)
	case g.entryLen < gptMinEntryLen || g.entryLen > gptMaxEntryLen || g.entryLen%8 != 0:
		return nil, formatErr("GPT header", off, "partition entry size %d", g.entryLen)
	case g.entries > gptMaxEntries || uint64(g.entries)*uint64(g.entryLen) > gptMaxArray:
		return nil, formatErr("GPT header", off, "%d partition entries of %d bytes is more than this reader accepts", g.entries, g.entryLen)
	case g.firstUsable > g.lastUsable+1 || g.lastUsable >= diskSectors:
		return nil, formatErr("GPT header", off, "usable sectors %d-%d do not fit a disk of %d sectors", g.firstUsable, g.lastUsable, diskSectors)
	}
	arraySectors := (uint64(g.entries)*uint64(g.entryLen) + uint64(len(s)) - 1) / uint64(len(s))
	if g.entryLBA < 1 || g.entryLBA >= diskSectors || arraySectors > diskSectors-g.entryLBA {
		return nil, formatErr("GPT header", off, "partition entry array at LBA %d (%d sectors) lies outside the disk", g.entryLBA, arraySectors)
	}
	return g, nil
}

// readGPTAt reads and checks the header at lba and its entry array.
func readGPTAt(r io.ReaderAt, lba uint64, ss int, diskSectors uint64) (*gptHeader, []byte, error) {
	s := make([]byte, ss)
	if err := readFull(r, s, int64(lba)*int64(ss)); err != nil {
		return nil, nil, fmt.Errorf("disk: GPT header: %w", err)
	}
	g, err := parseGPTHeader(s, lba, diskSectors)
	if err != nil {
		return nil, nil, err
	}
	arr := make([]byte, int(g.entries)*int(g.entryLen)) // capped by gptMaxArray
	off := int64(g.entryLBA) * int64(ss)
	if err := readFull(r, arr, off); err != nil {
		return nil, nil, fmt.Errorf("disk: GPT partition entries: %w", err)
	}
	if got := crc32.ChecksumIEEE(arr); got != g.arrayCRC {
		return nil, nil, formatErr("GPT partition entries", off, "CRC32 %08x, header at LBA %d says %08x", got, lba, g.arrayCRC)
	}
	return g, arr, nil
}

// readGPT reads the primary GPT, falling back to the backup at the disk's
// last sector (or where the primary says it is) with a warning.
func readGPT(r io.ReaderAt, size int64, t *Table) error {
	t.Scheme = GPT
	ss := t.SectorSize
	diskSectors := uint64(size / int64(ss))
	if diskSectors < 3 {
		return formatErr("GPT header", int64(ss), "disk of %d sectors is too small for a GPT", diskSectors)
	}
	last := diskSectors - 1
	g, arr, perr := readGPTAt(r, 1, ss, diskSectors)
	if perr == nil {
		alt := g.altLBA
		if alt == 0 || alt >= diskSectors {
			t.Warnings = append(t.Warnings, fmt.Sprintf("the GPT header names its backup at LBA %d, outside the disk (%d sectors): truncated disk image?", alt, diskSectors))
		} else if _, _, err := readGPTAt(r, alt, ss, diskSectors); err != nil {
			t.Warnings = append(t.Warnings, fmt.Sprintf("backup GPT damaged: %v", err))
		}
	} else {
		var berr error
		g, arr, berr = readGPTAt(r, last, ss, diskSectors)
		if berr != nil {
			return fmt.Errorf("%w; backup: %w", perr, berr)
		}
		t.Warnings = append(t.Warnings, fmt.Sprintf("primary GPT damaged (%v): using the backup at LBA %d", perr, last))
	}
	t.DiskGUID = g.diskGUID
	t.usableStart = int64(g.firstUsable) * int64(ss)
	t.usableEnd = int64(g.lastUsable+1) * int64(ss)
	for i := 0; i < int(g.entries); i++ {
		e := arr[i*int(g.entryLen):][:gptMinEntryLen]
		var typ [16]byte
		copy(typ[:], e[:16])
		if typ == ([16]byte{}) {
			continue
		}
		first, lastLBA := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		n := i + 1
		off := int64(g.entryLBA)*int64(ss) + int64(i)*int64(g.entryLen)
		if lastLBA < first || lastLBA >= diskSectors {
			return formatErr("GPT partition entry", off, "partition %d spans LBA %d-%d on a disk of %d sectors", n, first, lastLBA, diskSectors)
		}
		if first < g.firstUsable || lastLBA > g.lastUsable {
			t.Warnings = append(t.Warnings, fmt.Sprintf("partition %d (LBA %d-%d) lies outside the usable sectors %d-%d", n, first, lastLBA, g.firstUsable, g.lastUsable))
		}
		p := Partition{Number: n, Start: int64(first) * int64(ss), Length: int64(lastLBA-first+1) * int64(ss),
			TypeGUID: typ, Scheme: GPT, Attrs: binary.LittleEndian.Uint64(e[48:]), Name: gptName(e[56:128])}
		copy(p.GUID[:], e[16:32])
		p.Bootable = p.Attrs&(1<<2) != 0
		t.Partitions = append(t.Partitions, p)
	}
	return nil
}

// gptName decodes the UTF-16LE name, up to the first NUL.
func gptName(b []byte) string {
	u := make([]uint16, 0, gptNameUnits)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// GUIDString formats an on-disk GUID (first three fields little-endian)
// in the usual upper-case form.
func GUIDString(g [16]byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:16])
}

// ParseGUID parses the form GUIDString prints (either case) into on-disk
// byte order.
func ParseGUID(s string) ([16]byte, error) {
	var g [16]byte
	var a uint32
	var b, c uint16
	var d [2]byte
	var e [6]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("disk: bad GUID %q", s)
	}
	if _, err := fmt.Sscanf(s, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", &a, &b, &c, &d[0], &d[1], &e[0], &e[1], &e[2], &e[3], &e[4], &e[5]); err != nil {
		return g, fmt.Errorf("disk: bad GUID %q: %w", s, err)
	}
	binary.LittleEndian.PutUint32(g[0:], a)
	binary.LittleEndian.PutUint16(g[4:], b)
	binary.LittleEndian.PutUint16(g[6:], c)
	copy(g[8:], d[:])
	copy(g[10:], e[:])
	if GUIDString(g) != string(bytes.ToUpper([]byte(s))) {
		return [16]byte{}, fmt.Errorf("disk: bad GUID %q", s)
	}
	return g, nil
}
