package vmdk

import "encoding/binary"

// On-disk structures, from VMware's "Virtual Disk Format 5.0" (the VMDK
// specification), little-endian.

const (
	sparseMagic     = "KDMV"
	descriptorMagic = "# Disk DescriptorFile"
	sector          = 512
	headerLen       = 512

	gdAtEnd = ^uint64(0) // streamOptimized: the grain directory is found from the footer

	flagZeroGrain  = 1 << 2  // a grain table entry of 1 is a grain of zeros
	flagCompressed = 1 << 16 // grains are deflate-compressed behind a marker
	flagMarkers    = 1 << 17

	compressDeflate = 1

	maxGrainSectors = 4096     // 2 MiB grains
	maxGTEs         = 4096     // entries per grain table
	maxGD           = 64 << 20 // bytes of grain directory held in memory
	maxDescriptor   = 1 << 20
	maxExtents      = 4096

	markerLen = 12 // a grain marker: LBA (8) and compressed size (4)
)

// sparseHeader is the header of a hosted sparse extent (also repeated as
// the footer of a streamOptimized file).
type sparseHeader struct {
	version          uint32 // 4: 1, 2 or 3
	flags            uint32 // 8
	capacity         uint64 // 12: sectors
	grainSize        uint64 // 20: sectors per grain
	descriptorOffset uint64 // 28: sectors
	descriptorSize   uint64 // 36: sectors
	numGTEsPerGT     uint32 // 44
	rgdOffset        uint64 // 48: redundant grain directory (sectors)
	gdOffset         uint64 // 56: grain directory (sectors)
	overhead         uint64 // 64
	compressAlgo     uint16 // 77
}

func parseSparseHeader(b []byte) (sparseHeader, bool) {
	var h sparseHeader
	if len(b) < headerLen || string(b[:4]) != sparseMagic {
		return h, false
	}
	le := binary.LittleEndian
	h.version = le.Uint32(b[4:])
	h.flags = le.Uint32(b[8:])
	h.capacity = le.Uint64(b[12:])
	h.grainSize = le.Uint64(b[20:])
	h.descriptorOffset = le.Uint64(b[28:])
	h.descriptorSize = le.Uint64(b[36:])
	h.numGTEsPerGT = le.Uint32(b[44:])
	h.rgdOffset = le.Uint64(b[48:])
	h.gdOffset = le.Uint64(b[56:])
	h.overhead = le.Uint64(b[64:])
	h.compressAlgo = le.Uint16(b[77:])
	return h, true
}
