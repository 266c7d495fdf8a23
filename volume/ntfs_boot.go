package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// NTFS boot sector (BIOS parameter block) layout. Offsets are bytes from the
// start of the partition's first sector; only the first 512 bytes hold
// fields, whatever the sector size.
const (
	ntfsBootOEM            = 0x03 // [8]byte "NTFS    "
	ntfsBootBytesPerSector = 0x0B // uint16
	ntfsBootSecPerCluster  = 0x0D // uint8; >0x80 means 2^(256-v)
	ntfsBootReserved       = 0x0E // uint16, must be 0
	ntfsBootMedia          = 0x15 // uint8
	ntfsBootSecPerTrack    = 0x18 // uint16
	ntfsBootHeads          = 0x1A // uint16
	ntfsBootHiddenSectors  = 0x1C // uint32
	ntfsBootTotalSectors   = 0x28 // uint64
	ntfsBootMFTLCN         = 0x30 // uint64
	ntfsBootMFTMirrLCN     = 0x38 // uint64
	ntfsBootClustPerRecord = 0x40 // int8: >0 clusters, <0 means 2^-v bytes
	ntfsBootClustPerIndex  = 0x44 // int8, same encoding
	ntfsBootSerial         = 0x48 // uint64
	ntfsBootSignature      = 0x1FE
)

// Limits of what a sane NTFS boot sector may say.
const (
	ntfsMaxClusterSize = 2 << 20 // Windows formats up to 2 MiB clusters
	ntfsMaxRecordSize  = 64 << 10
	ntfsMinRecordSize  = 256
)

// NTFSBoot is the parsed NTFS boot sector.
type NTFSBoot struct {
	OEMName           string
	BytesPerSector    uint32
	SectorsPerCluster uint32 // decoded (0xF8 gives 256)
	ClusterSize       uint32 // bytes
	Media             uint8
	SectorsPerTrack   uint16
	Heads             uint16
	HiddenSectors     uint64
	TotalSectors      uint64 // sectors of the volume, without the backup boot sector
	MFTCluster        uint64 // LCN of $MFT
	MFTMirrCluster    uint64 // LCN of $MFTMirr
	RecordSize        uint32 // bytes per MFT record
	IndexBlockSize    uint32 // bytes per directory index block
	Serial            uint64
}

// ClusterCount is the number of whole clusters in the volume.
func (b *NTFSBoot) ClusterCount() uint64 {
	return b.TotalSectors / uint64(b.SectorsPerCluster)
}

// isNTFSBoot reports whether b (at least 512 bytes) starts like an NTFS boot
// sector. ParseNTFSBoot then checks every field.
func isNTFSBoot(b []byte) bool {
	return len(b) >= 512 && bytes.Equal(b[ntfsBootOEM:ntfsBootOEM+8], []byte("NTFS    "))
}

func ntfsBootErr(format string, args ...any) error {
	return &FormatError{What: "NTFS boot sector", Offset: 0, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

// ParseNTFSBoot decodes and checks an NTFS boot sector (the first 512 bytes
// of the volume are enough).
func ParseNTFSBoot(b []byte) (*NTFSBoot, error) {
	if len(b) < 512 {
		return nil, ntfsBootErr("need 512 bytes, got %d", len(b))
	}
	if !isNTFSBoot(b) {
		return nil, &FormatError{What: "NTFS boot sector", Offset: ntfsBootOEM,
			Msg: fmt.Sprintf("OEM name %q instead of \"NTFS    \"", printable(b[3:11])), Err: ErrUnknownFS}
	}
	le := binary.LittleEndian
	bt := &NTFSBoot{
		OEMName:         string(b[ntfsBootOEM : ntfsBootOEM+8]),
		BytesPerSector:  uint32(le.Uint16(b[ntfsBootBytesPerSector:])),
		Media:           b[ntfsBootMedia],
		SectorsPerTrack: le.Uint16(b[ntfsBootSecPerTrack:]),
		Heads:           le.Uint16(b[ntfsBootHeads:]),
		HiddenSectors:   uint64(le.Uint32(b[ntfsBootHiddenSectors:])),
		TotalSectors:    le.Uint64(b[ntfsBootTotalSectors:]),
		MFTCluster:      le.Uint64(b[ntfsBootMFTLCN:]),
		MFTMirrCluster:  le.Uint64(b[ntfsBootMFTMirrLCN:]),
		Serial:          le.Uint64(b[ntfsBootSerial:]),
	}
	if sig := le.Uint16(b[ntfsBootSignature:]); sig != 0xAA55 {
		return nil, ntfsBootErr("signature %04x instead of 55aa", sig)
	}
	bps := bt.BytesPerSector
	if bps < 256 || bps > 4096 || bps&(bps-1) != 0 {
		return nil, ntfsBootErr("bytes per sector %d is not a power of two in 256..4096", bps)
	}
	spc := uint32(b[ntfsBootSecPerCluster])
	switch {
	case spc == 0:
		return nil, ntfsBootErr("sectors per cluster is 0")
	case spc > 0x80:
		// Clusters above 64 KiB: the byte is a negative shift count.
		shift := 256 - spc
		if shift > 20 {
			return nil, ntfsBootErr("sectors per cluster byte %#x means 2^%d sectors, too large", spc, shift)
		}
		spc = 1 << shift
	case spc&(spc-1) != 0:
		return nil, ntfsBootErr("sectors per cluster %d is not a power of two", spc)
	}
	bt.SectorsPerCluster = spc
	cs := uint64(spc) * uint64(bps)
	if cs > ntfsMaxClusterSize {
		return nil, ntfsBootErr("cluster size %d bytes (%d sectors of %d) exceeds %d", cs, spc, bps, ntfsMaxClusterSize)
	}
	bt.ClusterSize = uint32(cs)
	if r := le.Uint16(b[ntfsBootReserved:]); r != 0 {
		return nil, ntfsBootErr("reserved sectors %d, must be 0 on NTFS", r)
	}
	if bt.TotalSectors == 0 {
		return nil, ntfsBootErr("total sectors is 0")
	}
	if bt.TotalSectors > (1<<63-1)/uint64(bps) {
		return nil, ntfsBootErr("total sectors %d too large", bt.TotalSectors)
	}
	nc := bt.ClusterCount()
	if nc == 0 {
		return nil, ntfsBootErr("total sectors %d hold no whole cluster of %d sectors", bt.TotalSectors, spc)
	}
	if bt.MFTCluster == 0 || bt.MFTCluster >= nc {
		return nil, ntfsBootErr("$MFT cluster %d outside the volume's %d clusters", bt.MFTCluster, nc)
	}
	if bt.MFTMirrCluster == 0 || bt.MFTMirrCluster >= nc {
		return nil, ntfsBootErr("$MFTMirr cluster %d outside the volume's %d clusters", bt.MFTMirrCluster, nc)
	}
	var err error
	if bt.RecordSize, err = ntfsBlockSize(b[ntfsBootClustPerRecord], bt.ClusterSize, "MFT record"); err != nil {
		return nil, err
	}
	if bt.IndexBlockSize, err = ntfsBlockSize(b[ntfsBootClustPerIndex], bt.ClusterSize, "index block"); err != nil {
		return nil, err
	}
	return bt, nil
}

// ntfsBlockSize decodes the signed "clusters per record/index block" byte.
func ntfsBlockSize(v byte, clusterSize uint32, what string) (uint32, error) {
	var size uint64
	if int8(v) > 0 {
		size = uint64(v) * uint64(clusterSize)
	} else {
		shift := -int(int8(v))
		if shift > 31 {
			return 0, ntfsBootErr("%s size byte %#x gives 2^%d bytes", what, v, shift)
		}
		size = 1 << shift
	}
	if size < ntfsMinRecordSize || size > ntfsMaxRecordSize || size&(size-1) != 0 {
		return 0, ntfsBootErr("%s size %d bytes (byte %#x) is not a power of two in %d..%d",
			what, size, v, ntfsMinRecordSize, ntfsMaxRecordSize)
	}
	return uint32(size), nil
}
