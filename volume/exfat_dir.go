package volume

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// exFAT directory entries (specification sections 6 and 7): 32 bytes each,
// grouped into entry sets of one primary and its secondaries.
const (
	exfatEntrySize = 32

	exfatTypeEnd       = 0x00 // end of directory
	exfatTypeInUse     = 0x80
	exfatTypeBenign    = 0x20 // TypeImportance: may be ignored when unknown
	exfatTypeSecondary = 0x40 // TypeCategory

	exfatTypeBitmap      = 0x81
	exfatTypeUpcase      = 0x82
	exfatTypeLabel       = 0x83
	exfatTypeFile        = 0x85
	exfatTypeGUID        = 0xA0
	exfatTypeTexFATPad   = 0xA1
	exfatTypeStream      = 0xC0
	exfatTypeName        = 0xC1
	exfatTypeVendorExt   = 0xE0
	exfatTypeVendorAlloc = 0xE1

	// File directory entry.
	exfatFileSecondaryCount = 1  // uint8, 2..18
	exfatFileSetChecksum    = 2  // uint16
	exfatFileAttributes     = 4  // uint16
	exfatFileCreate         = 8  // uint32 timestamp
	exfatFileModified       = 12 // uint32
	exfatFileAccessed       = 16 // uint32
	exfatFileCreate10ms     = 20 // uint8, 0..199
	exfatFileModified10ms   = 21 // uint8
	exfatFileCreateUTC      = 22 // uint8: bit 7 valid, bits 0-6 signed quarter hours
	exfatFileModifiedUTC    = 23
	exfatFileAccessedUTC    = 24

	// Stream extension (and the FirstCluster/DataLength of every
	// secondary that may own clusters).
	exfatStreamFlags      = 1  // uint8: bit 0 AllocationPossible, bit 1 NoFatChain
	exfatStreamNameLength = 3  // uint8
	exfatStreamNameHash   = 4  // uint16
	exfatStreamValidData  = 8  // uint64
	exfatFirstCluster     = 20 // uint32
	exfatDataLength       = 24 // uint64

	exfatFlagAllocPossible = 0x1
	exfatFlagNoFatChain    = 0x2

	exfatNameChars   = 15 // UTF-16 units per file name entry
	exfatMaxName     = 255
	exfatMaxDirBytes = 256 << 20 // a directory may not exceed 256 MiB

	// File attributes.
	ExFATAttrReadOnly  = 0x01
	ExFATAttrHidden    = 0x02
	ExFATAttrSystem    = 0x04
	ExFATAttrDirectory = 0x10
	ExFATAttrArchive   = 0x20
)

// ExFATDirEntry is one file or directory of an exFAT directory.
type ExFATDirEntry struct {
	Name       string
	Attr       uint16
	Cluster    uint32 // first cluster; 0 when nothing is allocated
	Size       int64  // DataLength
	ValidSize  int64  // ValidDataLength: bytes past it read as zeros
	NoFatChain bool   // the clusters are contiguous; the FAT is not used
	Created    time.Time
	Modified   time.Time
	Accessed   time.Time
	offset     int64 // partition offset of the file entry, for errors
}

// IsDir reports whether the entry is a directory.
func (e *ExFATDirEntry) IsDir() bool { return e.Attr&ExFATAttrDirectory != 0 }

// exfatStream is a cluster allocation named by a directory entry.
type exfatStream struct {
	cluster    uint32
	size       uint64
	noFatChain bool
}

// exfatDirScan is one parsed directory.
type exfatDirScan struct {
	entries []ExFATDirEntry
	// Root directory only.
	bitmaps  []exfatBitmapEntry
	upcase   *exfatUpcaseEntry
	label    string
	hasLabel bool
	guid     [16]byte
	hasGUID  bool
	// Clusters of benign secondaries (vendor allocations) in the sets.
	extra []exfatStream
	// byName maps each up-cased name to its index in entries (when the
	// up-case table was known).
	byName map[string]int
}

type exfatBitmapEntry struct {
	flags uint8 // bit 0: which FAT this bitmap belongs to
	exfatStream
}

type exfatUpcaseEntry struct {
	checksum uint32
	exfatStream
}

// exfatSetChecksum is the entry set checksum: every byte of the set but
// the checksum field itself (bytes 2 and 3 of the primary).
func exfatSetChecksum(set []byte) uint16 {
	var sum uint16
	for i, c := range set {
		if i == 2 || i == 3 {
			continue
		}
		sum = (sum>>1 | sum<<15) + uint16(c)
	}
	return sum
}

// exfatNameHash hashes an up-cased name, low byte of each unit first.
func exfatNameHash(up []uint16) uint16 {
	var sum uint16
	for _, u := range up {
		sum = (sum>>1 | sum<<15) + uint16(u&0xff)
		sum = (sum>>1 | sum<<15) + uint16(u>>8)
	}
	return sum
}

// exfatTime decodes a timestamp, its 10 ms increment and its UTC offset.
// With a valid offset the result is the UTC instant; without one the
// local time is taken as UTC. A zero timestamp is the zero time.
func exfatTime(ts uint32, ms10 uint8, utc uint8) (time.Time, bool) {
	if ts == 0 {
		return time.Time{}, true
	}
	sec := int(ts&0x1f) * 2
	minute := int(ts>>5) & 0x3f
	hour := int(ts>>11) & 0x1f
	day := int(ts>>16) & 0x1f
	month := int(ts>>21) & 0x0f
	year := 1980 + int(ts>>25)
	ok := sec <= 58 && minute <= 59 && hour <= 23 && day >= 1 && day <= 31 && month >= 1 && month <= 12 && ms10 <= 199
	t := time.Date(year, time.Month(month), day, hour, minute, sec, int(ms10)*10*int(time.Millisecond), time.UTC)
	if utc&0x80 != 0 {
		q := int(int8(utc<<1) >> 1) // 7-bit signed quarter hours
		t = t.Add(-time.Duration(q) * 15 * time.Minute)
	}
	return t, ok
}

// parseExFATDir parses a directory's bytes. root allows the critical
// primaries only the root holds. offsetOf maps a byte index to its
// partition offset (for errors). up is the up-case table, nil while the
// root is read for the first time (names are then not hash-checked).
func parseExFATDir(path string, buf []byte, root bool, offsetOf func(int) int64, up *exfatUpcase) (*exfatDirScan, error) {
	le := binary.LittleEndian
	scan := &exfatDirScan{}
	bad := func(i int, format string, args ...any) error {
		return &FormatError{What: "exFAT directory " + path, Offset: offsetOf(i), Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	scan.byName = map[string]int{}
	n := len(buf) / exfatEntrySize
	for i := 0; i < n; i++ {
		e := buf[i*exfatEntrySize : (i+1)*exfatEntrySize]
		at := i * exfatEntrySize
		t := e[0]
		if t == exfatTypeEnd {
			break
		}
		if t&exfatTypeInUse == 0 {
			continue // deleted or unused
		}
		if t&exfatTypeSecondary != 0 {
			return nil, bad(at, "secondary entry %#02x without its primary", t)
		}
		switch {
		case t == exfatTypeFile:
			fe, extra, k, err := parseExFATSet(path, buf, i, offsetOf, up)
			if err != nil {
				return nil, err
			}
			key := fe.Name
			if up != nil {
				key = up.key(fe.Name)
			}
			if _, dup := scan.byName[key]; dup {
				return nil, bad(at, "name %q appears twice", fe.Name)
			}
			scan.byName[key] = len(scan.entries)
			scan.entries = append(scan.entries, fe)
			scan.extra = append(scan.extra, extra...)
			i += k
		case root && t == exfatTypeBitmap:
			if len(scan.bitmaps) == 2 {
				return nil, bad(at, "more than two allocation bitmaps")
			}
			scan.bitmaps = append(scan.bitmaps, exfatBitmapEntry{flags: e[1],
				exfatStream: exfatStream{cluster: le.Uint32(e[exfatFirstCluster:]), size: le.Uint64(e[exfatDataLength:])}})
		case root && t == exfatTypeUpcase:
			if scan.upcase != nil {
				return nil, bad(at, "two up-case tables")
			}
			scan.upcase = &exfatUpcaseEntry{checksum: le.Uint32(e[4:]),
				exfatStream: exfatStream{cluster: le.Uint32(e[exfatFirstCluster:]), size: le.Uint64(e[exfatDataLength:])}}
		case root && t == exfatTypeLabel:
			if scan.hasLabel {
				return nil, bad(at, "two volume labels")
			}
			// The specification allows 11 characters; old versions of
			// mkexfatfs wrote up to 15, into the entry's reserved bytes,
			// as sleuthkit and fsck.exfat read them.
			cnt := int(e[1])
			if cnt > 15 {
				return nil, bad(at, "volume label of %d characters, at most 15 fit", cnt)
			}
			u := make([]uint16, cnt)
			for k := range u {
				u[k] = le.Uint16(e[2+2*k:])
			}
			scan.label, scan.hasLabel = string(utf16.Decode(u)), true
		case root && t == exfatTypeGUID:
			if e[1] != 0 {
				return nil, bad(at, "volume GUID entry with %d secondaries, want 0", e[1])
			}
			if got, want := le.Uint16(e[2:]), exfatSetChecksum(e); got != want {
				return nil, bad(at, "volume GUID entry checksum %#04x, the entry sums to %#04x", got, want)
			}
			copy(scan.guid[:], e[6:22])
			scan.hasGUID = true
		case t&exfatTypeBenign != 0:
			// Unknown benign primary (TexFAT padding, Windows CE access
			// control): skip it with its secondaries.
			k := int(e[1])
			if i+k >= n {
				return nil, bad(at, "benign entry %#02x has %d secondaries past the directory's end", t, k)
			}
			i += k
		default:
			return nil, &FormatError{What: "exFAT directory " + path, Offset: offsetOf(at),
				Msg: fmt.Sprintf("unknown critical entry type %#02x", t), Err: ErrUnsupported}
		}
	}
	return scan, nil
}

// parseExFATSet parses the file entry set starting at entry i. It returns
// the entry, the allocations of benign secondaries, and how many
// secondaries it used.
func parseExFATSet(path string, buf []byte, i int, offsetOf func(int) int64, up *exfatUpcase) (ExFATDirEntry, []exfatStream, int, error) {
	le := binary.LittleEndian
	at := i * exfatEntrySize
	bad := func(j int, format string, args ...any) error {
		return &FormatError{What: "exFAT directory " + path, Offset: offsetOf(j), Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	p := buf[at : at+exfatEntrySize]
	sc := int(p[exfatFileSecondaryCount])
	if sc < 2 || sc > 18 {
		return ExFATDirEntry{}, nil, 0, bad(at, "file entry with %d secondary entries, want 2..18", sc)
	}
	end := at + (sc+1)*exfatEntrySize
	if end > len(buf) {
		return ExFATDirEntry{}, nil, 0, bad(at, "entry set of %d entries runs past the directory's end", sc+1)
	}
	set := buf[at:end]
	if got, want := le.Uint16(p[exfatFileSetChecksum:]), exfatSetChecksum(set); got != want {
		return ExFATDirEntry{}, nil, 0, bad(at, "entry set checksum %#04x, the set sums to %#04x", got, want)
	}
	fe := ExFATDirEntry{Attr: le.Uint16(p[exfatFileAttributes:]), offset: offsetOf(at)}
	fe.Created, _ = exfatTime(le.Uint32(p[exfatFileCreate:]), p[exfatFileCreate10ms], p[exfatFileCreateUTC])
	fe.Modified, _ = exfatTime(le.Uint32(p[exfatFileModified:]), p[exfatFileModified10ms], p[exfatFileModifiedUTC])
	fe.Accessed, _ = exfatTime(le.Uint32(p[exfatFileAccessed:]), 0, p[exfatFileAccessedUTC])

	s := set[exfatEntrySize : 2*exfatEntrySize]
	if s[0] != exfatTypeStream {
		return ExFATDirEntry{}, nil, 0, bad(at+exfatEntrySize, "file entry followed by type %#02x, want a stream extension (0xc0)", s[0])
	}
	flags := s[exfatStreamFlags]
	nameLen := int(s[exfatStreamNameLength])
	fe.Cluster = le.Uint32(s[exfatFirstCluster:])
	size, valid := le.Uint64(s[exfatDataLength:]), le.Uint64(s[exfatStreamValidData:])
	fe.NoFatChain = flags&exfatFlagNoFatChain != 0
	if size > 1<<62 || valid > size {
		return ExFATDirEntry{}, nil, 0, bad(at+exfatEntrySize, "valid data length %d, data length %d", valid, size)
	}
	fe.Size, fe.ValidSize = int64(size), int64(valid)
	if flags&exfatFlagAllocPossible == 0 && (fe.Cluster != 0 || size != 0) {
		return ExFATDirEntry{}, nil, 0, bad(at+exfatEntrySize, "no allocation possible, yet cluster %d and %d bytes", fe.Cluster, size)
	}
	if nameLen < 1 {
		return ExFATDirEntry{}, nil, 0, bad(at+exfatEntrySize, "empty name")
	}
	nameEntries := (nameLen + exfatNameChars - 1) / exfatNameChars
	if 1+nameEntries > sc {
		return ExFATDirEntry{}, nil, 0, bad(at, "name of %d characters needs %d name entries, the set has %d secondaries", nameLen, nameEntries, sc)
	}
	name := make([]uint16, 0, nameEntries*exfatNameChars)
	for k := 0; k < nameEntries; k++ {
		ne := set[(2+k)*exfatEntrySize : (3+k)*exfatEntrySize]
		if ne[0] != exfatTypeName {
			return ExFATDirEntry{}, nil, 0, bad(at+(2+k)*exfatEntrySize, "entry type %#02x where file name entry %d belongs", ne[0], k+1)
		}
		for c := 0; c < exfatNameChars; c++ {
			name = append(name, le.Uint16(ne[2+2*c:]))
		}
	}
	name = name[:nameLen]
	for _, u := range name {
		if u < 0x20 || u == '/' || u == '\\' {
			return ExFATDirEntry{}, nil, 0, bad(at, "name contains the character %#04x", u)
		}
	}
	fe.Name = string(utf16.Decode(name))
	if fe.Name == "." || fe.Name == ".." || strings.ContainsRune(fe.Name, 0) {
		return ExFATDirEntry{}, nil, 0, bad(at, "name %q is not allowed", fe.Name)
	}
	if up != nil {
		if got, want := le.Uint16(s[exfatStreamNameHash:]), exfatNameHash(up.upper(name)); got != want {
			return ExFATDirEntry{}, nil, 0, bad(at+exfatEntrySize, "name hash %#04x of %q, the name hashes to %#04x", got, fe.Name, want)
		}
	}
	var extra []exfatStream
	for k := 2 + nameEntries; k <= sc; k++ {
		x := set[k*exfatEntrySize : (k+1)*exfatEntrySize]
		t := x[0]
		switch {
		case t&exfatTypeInUse == 0:
			// A deleted secondary within a live set is allowed.
		case t&exfatTypeSecondary == 0:
			return ExFATDirEntry{}, nil, 0, bad(at+k*exfatEntrySize, "primary entry %#02x inside an entry set", t)
		case t&exfatTypeBenign == 0:
			return ExFATDirEntry{}, nil, 0, &FormatError{What: "exFAT directory " + path, Offset: offsetOf(at + k*exfatEntrySize),
				Msg: fmt.Sprintf("unknown critical secondary entry %#02x in the set of %q", t, fe.Name), Err: ErrUnsupported}
		case x[exfatStreamFlags]&exfatFlagAllocPossible != 0:
			// A benign secondary that owns clusters (vendor allocation).
			if l := le.Uint64(x[exfatDataLength:]); l > 0 {
				extra = append(extra, exfatStream{cluster: le.Uint32(x[exfatFirstCluster:]), size: l,
					noFatChain: x[exfatStreamFlags]&exfatFlagNoFatChain != 0})
			}
		}
	}
	return fe, extra, sc, nil
}
