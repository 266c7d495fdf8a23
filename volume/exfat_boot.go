package volume

import (
	"encoding/binary"
	"fmt"
)

// exFAT main boot sector layout, after Microsoft's "exFAT file system
// specification" section 3.1. Offsets are bytes from the sector start.
const (
	exfatOffJump          = 0   // 3 bytes: EB 76 90
	exfatOffName          = 3   // 8 bytes: "EXFAT   "
	exfatOffMustBeZero    = 11  // 53 bytes, where FAT keeps its BPB
	exfatOffPartOffset    = 64  // uint64, sectors from the start of the medium (0: ignore)
	exfatOffVolumeLength  = 72  // uint64, sectors
	exfatOffFATOffset     = 80  // uint32, sectors
	exfatOffFATLength     = 84  // uint32, sectors per FAT
	exfatOffHeapOffset    = 88  // uint32, sectors
	exfatOffClusterCount  = 92  // uint32
	exfatOffRootCluster   = 96  // uint32
	exfatOffSerial        = 100 // uint32
	exfatOffRevision      = 104 // uint16: major in the high byte
	exfatOffVolumeFlags   = 106 // uint16, left out of the boot checksum
	exfatOffSectorShift   = 108 // uint8, 9..12
	exfatOffClusterShift  = 109 // uint8, sectors per cluster as a power of two
	exfatOffNumFATs       = 110 // uint8, 1 or 2 (TexFAT)
	exfatOffDriveSelect   = 111 // uint8
	exfatOffPercentInUse  = 112 // uint8, left out of the boot checksum
	exfatOffSignature     = 510 // 55 AA
	exfatBootRegionSecs   = 12  // boot, 8 extended boot, OEM parameters, reserved, checksum
	exfatChecksumSector   = 11
	exfatMaxClusterShift  = 25 // 32 MiB clusters
	exfatMaxClusterCount  = 0xFFFFFFF5
	exfatFlagActiveFAT    = 0x1
	exfatFlagVolumeDirty  = 0x2
	exfatFlagMediaFailure = 0x4
	exfatMinVolumeBytes   = 1 << 20
)

var exfatJump = [3]byte{0xEB, 0x76, 0x90}

// ExFATBoot is a parsed exFAT main boot sector.
type ExFATBoot struct {
	PartitionOffset   uint64
	VolumeLength      uint64 // sectors
	FATOffset         uint32 // sectors
	FATLength         uint32 // sectors
	HeapOffset        uint32 // sectors
	ClusterCount      uint32
	RootCluster       uint32
	Serial            uint32
	Revision          uint16
	VolumeFlags       uint16
	SectorShift       uint8
	ClusterShift      uint8 // sectors per cluster, as a shift
	NumFATs           uint8
	PercentInUse      uint8
	BootRegionSectors int // always 12, for callers that guard the region
}

// SectorSize returns the bytes per sector.
func (b *ExFATBoot) SectorSize() uint32 { return 1 << b.SectorShift }

// ClusterSize returns the bytes per cluster.
func (b *ExFATBoot) ClusterSize() uint32 { return 1 << (b.SectorShift + b.ClusterShift) }

// Size returns the bytes of the volume.
func (b *ExFATBoot) Size() int64 { return int64(b.VolumeLength) << b.SectorShift }

// HeapOffsetBytes returns the partition offset of cluster 2.
func (b *ExFATBoot) HeapOffsetBytes() int64 { return int64(b.HeapOffset) << b.SectorShift }

// HeapEnd returns the first byte past the cluster heap.
func (b *ExFATBoot) HeapEnd() int64 {
	return b.HeapOffsetBytes() + int64(b.ClusterCount)*int64(b.ClusterSize())
}

// ActiveFAT returns 0 or 1: which FAT and allocation bitmap are in use.
func (b *ExFATBoot) ActiveFAT() int { return int(b.VolumeFlags & exfatFlagActiveFAT) }

// FATOffsetBytes returns the partition offset of FAT n.
func (b *ExFATBoot) FATOffsetBytes(n int) int64 {
	return (int64(b.FATOffset) + int64(n)*int64(b.FATLength)) << b.SectorShift
}

// Dirty reports the VolumeDirty flag.
func (b *ExFATBoot) Dirty() bool { return b.VolumeFlags&exfatFlagVolumeDirty != 0 }

// MediaFailure reports the MediaFailure flag: the driver met read errors.
func (b *ExFATBoot) MediaFailure() bool { return b.VolumeFlags&exfatFlagMediaFailure != 0 }

// isExFATBoot reports whether a first sector names exFAT.
func isExFATBoot(b []byte) bool {
	return len(b) >= 512 && string(b[exfatOffName:exfatOffName+8]) == "EXFAT   "
}

// ParseExFATBoot checks and parses the main boot sector (its first 512
// bytes; fields past byte 512 are not used).
func ParseExFATBoot(b []byte) (*ExFATBoot, error) {
	bad := func(off int, format string, args ...any) error {
		return &FormatError{What: "exFAT boot sector", Offset: int64(off), Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if len(b) < 512 {
		return nil, bad(0, "%d bytes, want 512", len(b))
	}
	if !isExFATBoot(b) {
		return nil, &FormatError{What: "exFAT boot sector", Offset: exfatOffName, Msg: "no \"EXFAT   \" name", Err: ErrUnknownFS}
	}
	if [3]byte(b[0:3]) != exfatJump {
		return nil, bad(exfatOffJump, "jump instruction % x, want eb 76 90", b[0:3])
	}
	if b[exfatOffSignature] != 0x55 || b[exfatOffSignature+1] != 0xAA {
		return nil, bad(exfatOffSignature, "signature %02x%02x, want 55aa", b[510], b[511])
	}
	for i := exfatOffMustBeZero; i < exfatOffPartOffset; i++ {
		if b[i] != 0 {
			return nil, bad(i, "byte %d must be zero on exFAT, is %#x", i, b[i])
		}
	}
	le := binary.LittleEndian
	bs := &ExFATBoot{
		PartitionOffset:   le.Uint64(b[exfatOffPartOffset:]),
		VolumeLength:      le.Uint64(b[exfatOffVolumeLength:]),
		FATOffset:         le.Uint32(b[exfatOffFATOffset:]),
		FATLength:         le.Uint32(b[exfatOffFATLength:]),
		HeapOffset:        le.Uint32(b[exfatOffHeapOffset:]),
		ClusterCount:      le.Uint32(b[exfatOffClusterCount:]),
		RootCluster:       le.Uint32(b[exfatOffRootCluster:]),
		Serial:            le.Uint32(b[exfatOffSerial:]),
		Revision:          le.Uint16(b[exfatOffRevision:]),
		VolumeFlags:       le.Uint16(b[exfatOffVolumeFlags:]),
		SectorShift:       b[exfatOffSectorShift],
		ClusterShift:      b[exfatOffClusterShift],
		NumFATs:           b[exfatOffNumFATs],
		PercentInUse:      b[exfatOffPercentInUse],
		BootRegionSectors: exfatBootRegionSecs,
	}
	if bs.Revision>>8 != 1 {
		return nil, &FormatError{What: "exFAT boot sector", Offset: exfatOffRevision,
			Msg: fmt.Sprintf("file system revision %d.%02d; only 1.x is known", bs.Revision>>8, bs.Revision&0xff), Err: ErrUnsupported}
	}
	if bs.SectorShift < 9 || bs.SectorShift > 12 {
		return nil, bad(exfatOffSectorShift, "bytes-per-sector shift %d outside 9..12", bs.SectorShift)
	}
	if int(bs.SectorShift)+int(bs.ClusterShift) > exfatMaxClusterShift {
		return nil, bad(exfatOffClusterShift, "cluster of 2^%d bytes exceeds 32 MiB", int(bs.SectorShift)+int(bs.ClusterShift))
	}
	if bs.NumFATs != 1 && bs.NumFATs != 2 {
		return nil, bad(exfatOffNumFATs, "%d FATs, want 1 or 2", bs.NumFATs)
	}
	if bs.NumFATs == 1 && bs.ActiveFAT() != 0 {
		return nil, bad(exfatOffVolumeFlags, "second FAT active on a volume with one FAT")
	}
	if bs.VolumeLength > 1<<(63-bs.SectorShift) || bs.Size() < exfatMinVolumeBytes {
		return nil, bad(exfatOffVolumeLength, "volume length %d sectors is outside 1 MiB..8 EiB", bs.VolumeLength)
	}
	vl := bs.VolumeLength
	if bs.FATOffset < 2*exfatBootRegionSecs {
		return nil, bad(exfatOffFATOffset, "FAT at sector %d overlaps the boot regions (sectors 0..23)", bs.FATOffset)
	}
	if bs.ClusterCount == 0 || bs.ClusterCount > exfatMaxClusterCount {
		return nil, bad(exfatOffClusterCount, "cluster count %d outside 1..%d", bs.ClusterCount, exfatMaxClusterCount)
	}
	if need := (uint64(bs.ClusterCount)+2)*4 + uint64(bs.SectorSize()) - 1; uint64(bs.FATLength) < need>>bs.SectorShift {
		return nil, bad(exfatOffFATLength, "FAT of %d sectors cannot hold %d clusters", bs.FATLength, bs.ClusterCount)
	}
	fatEnd := uint64(bs.FATOffset) + uint64(bs.NumFATs)*uint64(bs.FATLength)
	if uint64(bs.HeapOffset) < fatEnd {
		return nil, bad(exfatOffHeapOffset, "cluster heap at sector %d overlaps the FATs (end at sector %d)", bs.HeapOffset, fatEnd)
	}
	if heapEnd := uint64(bs.HeapOffset) + uint64(bs.ClusterCount)<<bs.ClusterShift; heapEnd > vl {
		return nil, bad(exfatOffClusterCount, "cluster heap (sectors %d..%d) extends past the volume's %d sectors", bs.HeapOffset, heapEnd, vl)
	}
	if bs.RootCluster < 2 || uint64(bs.RootCluster) > uint64(bs.ClusterCount)+1 {
		return nil, bad(exfatOffRootCluster, "root directory cluster %d outside 2..%d", bs.RootCluster, uint64(bs.ClusterCount)+1)
	}
	return bs, nil
}

// exfatBootChecksum computes the boot checksum over the first 11 sectors
// of a boot region, leaving out VolumeFlags and PercentInUse.
func exfatBootChecksum(region []byte, ss int) uint32 {
	var sum uint32
	for i, c := range region[:11*ss] {
		if i == exfatOffVolumeFlags || i == exfatOffVolumeFlags+1 || i == exfatOffPercentInUse {
			continue
		}
		sum = (sum>>1 | sum<<31) + uint32(c)
	}
	return sum
}

// checkExFATBootRegion checks one boot region (12 sectors read from byte
// base): the boot sector, the extended boot signatures and the checksum
// sector. It returns the parsed boot sector.
func checkExFATBootRegion(region []byte, ss int, base int64, which string) (*ExFATBoot, error) {
	what := "exFAT " + which + " boot region"
	bs, err := ParseExFATBoot(region)
	if err != nil {
		if fe, ok := err.(*FormatError); ok {
			fe.What = what + ": " + fe.What
			fe.Offset += base
		}
		return nil, err
	}
	if int(bs.SectorSize()) != ss {
		return nil, &FormatError{What: what, Offset: base + exfatOffSectorShift,
			Msg: fmt.Sprintf("sector size %d differs from the main boot sector's %d", bs.SectorSize(), ss), Err: ErrCorrupt}
	}
	le := binary.LittleEndian
	for s := 1; s <= 8; s++ {
		if sig := le.Uint32(region[(s+1)*ss-4:]); sig != 0xAA550000 {
			return nil, &FormatError{What: what, Offset: base + int64((s+1)*ss-4),
				Msg: fmt.Sprintf("extended boot sector %d has signature %#08x, want 0xaa550000", s, sig), Err: ErrCorrupt}
		}
	}
	sum := exfatBootChecksum(region, ss)
	cs := region[exfatChecksumSector*ss : (exfatChecksumSector+1)*ss]
	for i := 0; i < ss; i += 4 {
		if got := le.Uint32(cs[i:]); got != sum {
			return nil, &FormatError{What: what, Offset: base + int64(exfatChecksumSector*ss+i),
				Msg: fmt.Sprintf("boot checksum %#08x, the region sums to %#08x", got, sum), Err: ErrCorrupt}
		}
	}
	return bs, nil
}

// ExFATBootChecksum returns the checksum of a boot region (at least 11
// sectors of ss bytes) as its checksum sector repeats it.
func ExFATBootChecksum(region []byte, ss int) uint32 { return exfatBootChecksum(region, ss) }

// ExFATPartitionOffset is the byte offset of the PartitionOffset field.
const ExFATPartitionOffset = exfatOffPartOffset
