package vhdx

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk structures, from Microsoft's [MS-VHDX] "Virtual Hard Disk v2
// (VHDX) File Format", all little-endian; GUIDs are stored with their
// first three fields little-endian.

const (
	fileMagic   = "vhdxfile"
	headerMagic = "head"
	regionMagic = "regi"
	metaMagic   = "metadata"

	header1Off = 64 << 10
	header2Off = 128 << 10
	headerLen  = 4 << 10 // checksummed bytes of a header
	region1Off = 192 << 10
	region2Off = 256 << 10
	regionLen  = 64 << 10
	maxRegions = 2047

	mib = 1 << 20

	// BAT entry: state in bits 0-2, file offset in MiB in bits 20-63.
	stateMask           = 7
	payloadNotPresent   = 0
	payloadUndefined    = 1
	payloadZero         = 2
	payloadUnmapped     = 3
	payloadFullyPresent = 6
	payloadPartially    = 7 // differencing disks only

	maxBAT = 256 << 20 // bytes of BAT held in memory

	fileParamHasParent = 1 << 1
)

// Region and metadata item GUIDs, in their string form.
const (
	guidBAT        = "2dc27766-f623-4200-9d64-115e9bfd4a08"
	guidMetadata   = "8b7ca206-4790-4b9a-b8fe-575f050f886e"
	guidFileParams = "caa16737-fa36-4d43-b3b6-33f0aa44e76b"
	guidDiskSize   = "2fa54224-cd1b-4876-b211-5dbed83bf4b8"
	guidLogical    = "8141bf1d-a96f-4709-ba47-f233a8faab5f"
	guidPhysical   = "cda348c7-445d-4471-9cc9-e9885251c556"
	guidDiskID     = "beca12ab-b2e6-4523-93ef-c309e000c746"
	guidParentLoc  = "a8d35f2d-b30b-454d-abf7-d3d84834ab0c"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcOK checks the CRC-32C of b with its 4-byte checksum field at off
// taken as zero.
func crcOK(b []byte, off int) bool {
	want := binary.LittleEndian.Uint32(b[off:])
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	c = crc32.Update(c, castagnoli, b[off+4:])
	return c == want
}

// guid formats a GUID as stored on disk.
func guid(b []byte) string {
	le := binary.LittleEndian
	return fmtGUID(le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:16])
}

func fmtGUID(a uint32, b, c uint16, d []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	put := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			out = append(out, hex[v>>(4*i)&15])
		}
	}
	put(uint64(a), 8)
	out = append(out, '-')
	put(uint64(b), 4)
	out = append(out, '-')
	put(uint64(c), 4)
	out = append(out, '-')
	for i, x := range d {
		if i == 2 {
			out = append(out, '-')
		}
		put(uint64(x), 2)
	}
	return string(out)
}

// header is one of the two 4 KiB headers; the valid one with the higher
// sequence number is current.
type header struct {
	sequence  uint64   // 8
	logGUID   [16]byte // 48: non-zero when the log holds entries to replay
	logVer    uint16   // 64
	version   uint16   // 66: 1
	logLength uint32   // 68
	logOffset uint64   // 72
}

func parseHeader(b []byte) (header, bool) {
	var h header
	if len(b) < headerLen || string(b[:4]) != headerMagic || !crcOK(b[:headerLen], 4) {
		return h, false
	}
	le := binary.LittleEndian
	h.sequence = le.Uint64(b[8:])
	copy(h.logGUID[:], b[48:64])
	h.logVer = le.Uint16(b[64:])
	h.version = le.Uint16(b[66:])
	h.logLength = le.Uint32(b[68:])
	h.logOffset = le.Uint64(b[72:])
	return h, true
}

// region is a region table entry.
type region struct {
	guid     string
	offset   uint64
	length   uint32
	required bool
}

func parseRegions(b []byte) ([]region, bool) {
	if len(b) < regionLen || string(b[:4]) != regionMagic || !crcOK(b[:regionLen], 4) {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if n > maxRegions {
		return nil, false
	}
	rs := make([]region, n)
	for i := range rs {
		e := b[16+32*i:]
		rs[i] = region{guid: guid(e), offset: binary.LittleEndian.Uint64(e[16:]),
			length: binary.LittleEndian.Uint32(e[24:]), required: binary.LittleEndian.Uint32(e[28:])&1 != 0}
	}
	return rs, true
}

// metaEntry is a metadata table entry; offset is from the region's start.
type metaEntry struct {
	guid     string
	offset   uint32
	length   uint32
	required bool // bit 2 of the flags
}

const maxMetaEntries = 2047

func parseMetaTable(b []byte) ([]metaEntry, bool) {
	if len(b) < 32 || string(b[:8]) != metaMagic {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(b[10:]))
	if n > maxMetaEntries || 32+32*n > len(b) {
		return nil, false
	}
	es := make([]metaEntry, n)
	for i := range es {
		e := b[32+32*i:]
		es[i] = metaEntry{guid: guid(e), offset: binary.LittleEndian.Uint32(e[16:]),
			length: binary.LittleEndian.Uint32(e[20:]), required: binary.LittleEndian.Uint32(e[24:])&4 != 0}
	}
	return es, true
}
