package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// FAT directory entry layout (32 bytes).
const (
	fatDirEntrySize  = 32
	fatDirName       = 0  // 11 bytes: 8.3 name, space padded
	fatDirAttr       = 11 // uint8
	fatDirNTRes      = 12 // uint8: 0x08 base lower case, 0x10 extension lower case
	fatDirCrtTime    = 14 // uint16 (byte 13: tenths)
	fatDirCrtDate    = 16 // uint16
	fatDirLstAccDate = 18 // uint16
	fatDirFstClusHI  = 20 // uint16 (FAT32 only)
	fatDirWrtTime    = 22 // uint16
	fatDirWrtDate    = 24 // uint16
	fatDirFstClusLO  = 26 // uint16
	fatDirFileSize   = 28 // uint32

	fatAttrReadOnly = 0x01
	fatAttrHidden   = 0x02
	fatAttrSystem   = 0x04
	fatAttrVolumeID = 0x08
	fatAttrDir      = 0x10
	fatAttrArchive  = 0x20
	fatAttrLFN      = 0x0F // read-only|hidden|system|volume: a long-name slot
	fatAttrLFNMask  = 0x3F

	fatLowerBase = 0x08
	fatLowerExt  = 0x10

	fatEntryEnd     = 0x00 // this and every later entry are free
	fatEntryDeleted = 0xE5
	fatEntryKanji   = 0x05 // stands for a first byte of 0xE5

	fatLFNLast   = 0x40
	fatLFNMaxSeq = 20 // 255 characters / 13 per slot
)

// FATDirEntry is one entry of a FAT directory, as returned by the browse
// helpers.
type FATDirEntry struct {
	Name      string // long name when present and valid, else the 8.3 name
	ShortName string // 8.3 name as displayed (with the case bits applied)
	Attr      uint8
	Cluster   uint32 // first cluster; 0 for empty files
	Size      uint32 // bytes; 0 for directories
	Created   time.Time
	Modified  time.Time
	Accessed  time.Time // date only
	// Err, set by ReadDir, says why the entry cannot be followed (it would
	// make the tree loop); such an entry is listed, never entered.
	Err    error
	offset int64 // partition offset of the 8.3 entry, for errors
}

// IsDir reports whether the entry is a directory.
func (e *FATDirEntry) IsDir() bool { return e.Attr&fatAttrDir != 0 }

// fatDirScan is what parseFATDir found in one directory.
type fatDirScan struct {
	entries []FATDirEntry
	label   string // volume label entry, "" when absent
	hasLbl  bool
	err     error     // the first entry whose 8.3 name cannot be a file name
	dots    [2]fatDot // the "." and ".." entries, for checks
}

// fatDot is a "." or ".." entry: the cluster it names and where it is.
type fatDot struct {
	found   bool
	cluster uint32
	offset  int64
}

// parseFATDir decodes the entries of directory dir. offsetOf maps an index
// in data to a partition offset. Deleted entries, "." and "..", and the
// volume label are left out; the label is returned separately.
func parseFATDir(dir string, data []byte, fat32 bool, offsetOf func(int) int64) fatDirScan {
	var out fatDirScan
	var (
		lfn      [fatLFNMaxSeq * 13]uint16
		lfnSeq   int // next expected ordinal; 0 when no long name is pending
		lfnCount int
		lfnSum   byte
	)
	for i := 0; i+fatDirEntrySize <= len(data); i += fatDirEntrySize {
		e := data[i : i+fatDirEntrySize]
		if e[0] == fatEntryEnd {
			break
		}
		if e[0] == fatEntryDeleted {
			lfnSeq = 0
			continue
		}
		attr := e[fatDirAttr]
		if attr&fatAttrLFNMask == fatAttrLFN {
			ord := int(e[0] &^ fatLFNLast)
			switch {
			case e[0]&fatLFNLast != 0 && ord >= 1 && ord <= fatLFNMaxSeq:
				lfnCount, lfnSum = ord, e[13]
				for k := range lfn {
					lfn[k] = 0xFFFF
				}
			case lfnSeq != 0 && ord == lfnSeq && e[13] == lfnSum:
			default:
				lfnSeq = 0
				continue
			}
			p := (ord - 1) * 13
			for k, o := range [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				lfn[p+k] = binary.LittleEndian.Uint16(e[o:])
			}
			lfnSeq = ord - 1
			if lfnSeq == 0 {
				lfnSeq = -1 // complete: waiting for its 8.3 entry
			}
			continue
		}
		long := ""
		if lfnSeq == -1 && fatShortSum(e[:11]) == lfnSum {
			long = decodeLFN(lfn[:lfnCount*13])
		}
		lfnSeq = 0
		if attr&fatAttrVolumeID != 0 {
			if attr&fatAttrDir == 0 && !out.hasLbl {
				out.label = strings.TrimRight(decodeOEM(e[:11]), " ")
				out.hasLbl = true
			}
			continue
		}
		if e[0] == '.' && (string(e[:11]) == ".          " || string(e[:11]) == "..         ") {
			if k := len(strings.TrimRight(string(e[:11]), " ")) - 1; !out.dots[k].found {
				c := uint32(binary.LittleEndian.Uint16(e[fatDirFstClusLO:]))
				if fat32 {
					c |= uint32(binary.LittleEndian.Uint16(e[fatDirFstClusHI:])) << 16
				}
				out.dots[k] = fatDot{true, c, offsetOf(i)}
			}
			continue
		}
		short := fatShortName(e[:11], e[fatDirNTRes])
		if !validFATName(short) || len(bytes.TrimLeft(e[:11], " ")) == 0 {
			if out.err == nil {
				out.err = &FormatError{What: "directory " + dir, Offset: offsetOf(i),
					Msg: fmt.Sprintf("entry with 8.3 name %q (bytes % x) is not a valid file name", short, e[:11]), Err: ErrCorrupt}
			}
			continue
		}
		de := FATDirEntry{
			Name:      short,
			ShortName: short,
			Attr:      attr,
			Cluster:   uint32(binary.LittleEndian.Uint16(e[fatDirFstClusLO:])),
			Size:      binary.LittleEndian.Uint32(e[fatDirFileSize:]),
			Created:   fatTime(binary.LittleEndian.Uint16(e[fatDirCrtDate:]), binary.LittleEndian.Uint16(e[fatDirCrtTime:]), e[13]),
			Modified:  fatTime(binary.LittleEndian.Uint16(e[fatDirWrtDate:]), binary.LittleEndian.Uint16(e[fatDirWrtTime:]), 0),
			Accessed:  fatTime(binary.LittleEndian.Uint16(e[fatDirLstAccDate:]), 0, 0),
			offset:    offsetOf(i),
		}
		if fat32 {
			de.Cluster |= uint32(binary.LittleEndian.Uint16(e[fatDirFstClusHI:])) << 16
		}
		if long != "" && validFATName(long) {
			de.Name = long
		}
		out.entries = append(out.entries, de)
	}
	return out
}

// validFATName rejects names that cannot be a path element.
func validFATName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// fatShortSum is the long-name checksum of an 8.3 name.
func fatShortSum(name []byte) byte {
	var s byte
	for _, c := range name[:11] {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// decodeLFN turns long-name slots into a string; the name ends at the
// first 0x0000 (0xFFFF pads the rest).
func decodeLFN(u []uint16) string {
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	for len(u) > 0 && u[len(u)-1] == 0xFFFF {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

// fatShortName displays an 8.3 name, applying the NT lower-case bits.
func fatShortName(raw []byte, ntres byte) string {
	var n [11]byte
	copy(n[:], raw)
	if n[0] == fatEntryKanji {
		n[0] = fatEntryDeleted
	}
	base := strings.TrimRight(decodeOEM(n[:8]), " ")
	ext := strings.TrimRight(decodeOEM(n[8:11]), " ")
	if ntres&fatLowerBase != 0 {
		base = strings.ToLower(base)
	}
	if ntres&fatLowerExt != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// fatTime decodes a FAT date and time (local time, no zone); zero date
// means "not set".
func fatTime(date, tm uint16, tenths byte) time.Time {
	if date == 0 {
		return time.Time{}
	}
	ns := 0
	if tenths < 200 {
		ns = int(tenths) * 10 * int(time.Millisecond)
	}
	return time.Date(1980+int(date>>9), time.Month(date>>5&0x0F), int(date&0x1F),
		int(tm>>11), int(tm>>5&0x3F), int(tm&0x1F)*2, ns, time.UTC)
}

// decodeOEM decodes 8.3 name bytes as code page 437, the default OEM code
// page of DOS and Windows.
func decodeOEM(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	var sb strings.Builder
	for _, c := range b {
		if c < 0x80 {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(cp437[c-0x80])
		}
	}
	return sb.String()
}

var cp437 = [128]rune([]rune(
	"ÇüéâäàåçêëèïîìÄÅ" +
		"ÉæÆôöòûùÿÖÜ¢£¥₧ƒ" +
		"áíóúñÑªº¿⌐¬½¼¡«»" +
		"░▒▓│┤╡╢╖╕╣║╗╝╜╛┐" +
		"└┴┬├─┼╞╟╚╔╩╦╠═╬╧" +
		"╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀" +
		"αßΓπΣσµτΦΘΩδ∞φε∩" +
		"≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0"))
