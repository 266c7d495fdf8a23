package ewf

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
)

// On-disk structures of EWF-E01 (EnCase and libewf's ewfacquire), from the
// libewf/keramics description "Expert Witness Compression Format (EWF)",
// little-endian.

const (
	signature     = "EVF\x09\x0d\x0a\xff\x00"
	fileHeaderLen = 13 // signature, 0x01, segment number (2), 0x0000
	sectionLen    = 76 // type (16), next offset (8), size (8), padding (40), Adler-32 (4)
	volumeLen     = 1052
	tableHeadLen  = 24 // entries (4), padding (4), base offset (8), padding (4), Adler-32 (4)

	compressedBit = 1 << 31 // of a table entry; the other 31 bits are the chunk offset

	maxSections   = 1 << 20 // per segment
	maxSegments   = 14295   // .E01-.E99, .EAA-.ZZZ
	maxChunkBytes = 64 << 20
	maxEntries    = 1 << 20 // per table section
)

// section is a section descriptor.
type section struct {
	typ  string
	next int64 // absolute offset in the segment file of the next section
	size int64 // including this descriptor
}

func parseSection(b []byte) (section, bool) {
	if len(b) < sectionLen || adler32.Checksum(b[:72]) != binary.LittleEndian.Uint32(b[72:]) {
		return section{}, false
	}
	return section{
		typ:  string(bytes.TrimRight(b[:16], "\x00")),
		next: int64(binary.LittleEndian.Uint64(b[16:])),
		size: int64(binary.LittleEndian.Uint64(b[24:])),
	}, true
}

// volume is the media description of the "volume" (or "disk", "data")
// section.
type volume struct {
	chunks          uint32 // 4
	sectorsPerChunk uint32 // 8
	bytesPerSector  uint32 // 12
	sectors         uint64 // 16
}

func parseVolume(b []byte) (volume, bool) {
	if len(b) < volumeLen || adler32.Checksum(b[:1048]) != binary.LittleEndian.Uint32(b[1048:]) {
		return volume{}, false
	}
	le := binary.LittleEndian
	return volume{chunks: le.Uint32(b[4:]), sectorsPerChunk: le.Uint32(b[8:]),
		bytesPerSector: le.Uint32(b[12:]), sectors: le.Uint64(b[16:])}, true
}
