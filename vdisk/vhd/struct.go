package vhd

import (
	"encoding/binary"
	"unicode/utf16"
)

// On-disk structures, from Microsoft's "Virtual Hard Disk Image Format
// Specification" (version 1.0, 2006), all big-endian.

const (
	footerLen   = 512
	footerMagic = "conectix"
	dynLen      = 1024
	dynMagic    = "cxsparse"
	noOffset    = ^uint64(0) // data offset of a fixed disk
	unallocated = ^uint32(0) // BAT entry of a block not in the file
	sector      = 512

	typeFixed   = 2
	typeDynamic = 3
	typeDiff    = 4

	maxBlockSize = 256 << 20 // far above the 2 MiB everyone uses
	maxBAT       = 256 << 20 // bytes of BAT held in memory
)

// footer is the 512-byte hard disk footer at the end of every VHD (and
// copied at the start of dynamic ones).
type footer struct {
	features    uint32   // 8
	version     uint32   // 12: 0x00010000
	dataOffset  uint64   // 16: dynamic header offset, or noOffset
	creatorApp  [4]byte  // 28
	currentSize uint64   // 48: the disk's size in bytes
	diskType    uint32   // 60
	checksum    uint32   // 64: one's complement of the byte sum without this field
	uniqueID    [16]byte // 68: what a child records as its parent's id
}

func parseFooter(b []byte) (footer, bool) {
	var f footer
	if len(b) < footerLen || string(b[:8]) != footerMagic {
		return f, false
	}
	f.features = binary.BigEndian.Uint32(b[8:])
	f.version = binary.BigEndian.Uint32(b[12:])
	f.dataOffset = binary.BigEndian.Uint64(b[16:])
	copy(f.creatorApp[:], b[28:32])
	f.currentSize = binary.BigEndian.Uint64(b[48:])
	f.diskType = binary.BigEndian.Uint32(b[60:])
	f.checksum = binary.BigEndian.Uint32(b[64:])
	copy(f.uniqueID[:], b[68:84])
	return f, true
}

// checksum is the spec's one's complement of the sum of all bytes, with
// the checksum field (at off, 4 bytes) taken as zero.
func checksum(b []byte, off int) uint32 {
	var s uint32
	for i, c := range b {
		if i >= off && i < off+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

// locator is one of the eight parent locator entries of a dynamic header.
type locator struct {
	code   string // "W2ku" absolute, "W2ru" relative (UTF-16LE paths), "Wi2k", "Wi2r", "Mac ", "MacX"
	space  uint32 // reserved space (sectors, or bytes in some writers)
	length uint32 // bytes of the locator
	offset uint64 // absolute file offset of the locator
}

// dynHeader is the 1024-byte dynamic disk header.
type dynHeader struct {
	tableOffset     uint64   // 16: BAT
	version         uint32   // 24: 0x00010000
	maxTableEntries uint32   // 28
	blockSize       uint32   // 32
	checksum        uint32   // 36
	parentID        [16]byte // 40: the parent footer's unique id
	parentName      string   // 64: 512 bytes UTF-16BE
	locators        [8]locator
}

func parseDynHeader(b []byte) (dynHeader, bool) {
	var h dynHeader
	if len(b) < dynLen || string(b[:8]) != dynMagic {
		return h, false
	}
	h.tableOffset = binary.BigEndian.Uint64(b[16:])
	h.version = binary.BigEndian.Uint32(b[24:])
	h.maxTableEntries = binary.BigEndian.Uint32(b[28:])
	h.blockSize = binary.BigEndian.Uint32(b[32:])
	h.checksum = binary.BigEndian.Uint32(b[36:])
	copy(h.parentID[:], b[40:56])
	h.parentName = utf16String(b[64:576], binary.BigEndian)
	for i := range h.locators {
		e := b[576+24*i:]
		h.locators[i] = locator{code: string(e[:4]), space: binary.BigEndian.Uint32(e[4:]),
			length: binary.BigEndian.Uint32(e[8:]), offset: binary.BigEndian.Uint64(e[16:])}
	}
	return h, true
}

// utf16String decodes a NUL-terminated UTF-16 string.
func utf16String(b []byte, order binary.ByteOrder) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := order.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
