package qcow2

import "encoding/binary"

// On-disk structures, from qemu's docs/interop/qcow2.txt, all big-endian.

const (
	magic = "QFI\xfb"

	minClusterBits = 9
	maxClusterBits = 21

	// Incompatible feature bits (version 3).
	featDirty        = 1 << 0 // refcounts may be stale: harmless, they are not read
	featCorrupt      = 1 << 1
	featExternalData = 1 << 2
	featCompression  = 1 << 3 // compression_type is not zlib
	featExtendedL2   = 1 << 4
	knownIncompat    = featDirty | featCorrupt | featExternalData | featCompression | featExtendedL2

	compressZlib = 0
	compressZstd = 1

	l1OffsetMask  = 0x00fffffffffffe00 // bits 9-55 of an L1 entry: the L2 table
	l2OffsetMask  = 0x00fffffffffffe00 // bits 9-55 of a standard L2 entry
	l2Compressed  = 1 << 62
	l2AllZero     = 1 << 0 // version 3: the cluster reads as zeros
	maxBackingLen = 1023

	maxL1 = 32 << 20 // bytes of L1 table held in memory
)

// header is the qcow2 header (72 bytes in version 2, header_length in 3).
type header struct {
	version          uint32 // 4
	backingOffset    uint64 // 8
	backingSize      uint32 // 16
	clusterBits      uint32 // 20
	size             uint64 // 24: virtual disk size
	cryptMethod      uint32 // 32: 0 = none
	l1Size           uint32 // 36: entries
	l1Offset         uint64 // 40
	incompatible     uint64 // 72 (v3)
	headerLength     uint32 // 100 (v3)
	compressionType  uint8  // 104 (v3, when header_length > 104)
	refcountOrder    uint32 // 96 (v3)
	refcountOffset   uint64 // 48: not read (refcounts are ignored)
	nbSnapshots      uint32 // 60: snapshots are not read
	snapshotsOffset  uint64 // 64
	refcountClusters uint32 // 56
}

func parseHeader(b []byte) header {
	be := binary.BigEndian
	h := header{
		version:          be.Uint32(b[4:]),
		backingOffset:    be.Uint64(b[8:]),
		backingSize:      be.Uint32(b[16:]),
		clusterBits:      be.Uint32(b[20:]),
		size:             be.Uint64(b[24:]),
		cryptMethod:      be.Uint32(b[32:]),
		l1Size:           be.Uint32(b[36:]),
		l1Offset:         be.Uint64(b[40:]),
		refcountOffset:   be.Uint64(b[48:]),
		refcountClusters: be.Uint32(b[56:]),
		nbSnapshots:      be.Uint32(b[60:]),
		snapshotsOffset:  be.Uint64(b[64:]),
		headerLength:     72,
	}
	if h.version >= 3 {
		h.incompatible = be.Uint64(b[72:])
		h.refcountOrder = be.Uint32(b[96:])
		h.headerLength = be.Uint32(b[100:])
		if h.headerLength > 104 {
			h.compressionType = b[104]
		}
	}
	return h
}
