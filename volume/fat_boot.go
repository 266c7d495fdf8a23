package volume

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// FAT boot sector (BPB) layout, after Microsoft's "FAT: General Overview of
// On-Disk Format" (fatgen103). Offsets are bytes from the sector start.
const (
	fatOffJump          = 0  // 3 bytes: EB xx 90 or E9 xx xx
	fatOffOEMName       = 3  // 8 bytes
	fatOffBytesPerSec   = 11 // uint16
	fatOffSecPerClus    = 13 // uint8, power of two
	fatOffRsvdSecCnt    = 14 // uint16, sectors before the first FAT
	fatOffNumFATs       = 16 // uint8
	fatOffRootEntCnt    = 17 // uint16, 32-byte root entries (FAT12/16; 0 on FAT32)
	fatOffTotSec16      = 19 // uint16, 0 when TotSec32 is used
	fatOffMedia         = 21 // uint8
	fatOffFATSz16       = 22 // uint16, 0 on FAT32
	fatOffSecPerTrk     = 24 // uint16
	fatOffNumHeads      = 26 // uint16
	fatOffHiddSec       = 28 // uint32, partition start LBA
	fatOffTotSec32      = 32 // uint32
	fatOffExt16         = 36 // FAT12/16 extended fields start here
	fatOffFATSz32       = 36 // uint32 (FAT32)
	fatOffExtFlags      = 40 // uint16 (FAT32): bit 7 mirroring off, bits 0-3 active FAT
	fatOffFSVer         = 42 // uint16 (FAT32), must be 0
	fatOffRootClus      = 44 // uint32 (FAT32)
	fatOffFSInfo        = 48 // uint16 (FAT32)
	fatOffBkBootSec     = 50 // uint16 (FAT32)
	fatOffExt32         = 64 // FAT32 extended fields start here
	fatExtDrvNum        = 0  // uint8, relative to the extended fields
	fatExtReserved1     = 1  // uint8: Windows NT keeps its dirty flag in bit 0
	fatExtBootSig       = 2  // uint8: 0x29 (ID, label, type valid) or 0x28 (ID only)
	fatExtVolID         = 3  // uint32
	fatExtVolLab        = 7  // 11 bytes
	fatExtFilSysType    = 18 // 8 bytes, informational only
	fatOffSignature     = 510
	fatMaxSecPerClus    = 128
	fatMaxFATs          = 4          // mkfs.fat's limit; the specification says 2 (1 allowed)
	fatMaxClusters12    = 4084       // < 4085 clusters: FAT12
	fatMaxClusters16    = 65524      // < 65525 clusters: FAT16
	fatMaxClusters32    = 0x0FFFFFF5 // clusters 2..0x0FFFFFF6
	fatBootDirtyBit     = 0x01
	fatMirroringOffFlag = 0x80
)

// FATBoot is a parsed FAT12/16/32 boot sector with the layout derived from it.
type FATBoot struct {
	// Fields as stored.
	OEMName           string
	BytesPerSector    uint16
	SectorsPerCluster uint8
	ReservedSectors   uint16
	NumFATs           uint8
	RootEntries       uint16
	TotalSectors16    uint16
	Media             uint8
	FATSize16         uint16
	SectorsPerTrack   uint16
	Heads             uint16
	HiddenSectors     uint32
	TotalSectors32    uint32

	// FAT32 extended BPB (zero on FAT12/16).
	FATSize32        uint32
	ExtFlags         uint16
	FSVersion        uint16
	RootCluster      uint32
	FSInfoSector     uint16 // 0 or 0xFFFF: none
	BackupBootSector uint16 // 0 or 0xFFFF: none

	// Extended boot record (offset 36 on FAT12/16, 64 on FAT32).
	DriveNumber   uint8
	Flags         uint8 // bit 0: volume dirty (Windows NT)
	BootSignature uint8 // 0x29 or 0x28 when VolumeID is valid
	VolumeID      uint32
	VolumeLabel   string // trailing spaces removed; "" when absent or "NO NAME"
	FSTypeLabel   string // informational only, never used to choose the type

	// Derived.
	Type            Type
	TotalSectors    uint64 // TotalSectors16, or TotalSectors32 when that is 0
	FATSize         uint32 // sectors per FAT
	RootDirSectors  uint32 // FAT12/16 fixed root directory; 0 on FAT32
	FirstDataSector uint32
	DataClusters    uint32 // whole clusters between the data start and the volume end
	FATCapacity     uint64 // entries one FAT copy can hold
	ClusterCount    uint32 // usable clusters: DataClusters bounded by FATCapacity-2
}

// SectorSize returns the logical sector size in bytes.
func (b *FATBoot) SectorSize() uint32 { return uint32(b.BytesPerSector) }

// ClusterSize returns the cluster size in bytes.
func (b *FATBoot) ClusterSize() uint32 {
	return uint32(b.BytesPerSector) * uint32(b.SectorsPerCluster)
}

// MirroringDisabled reports whether only one FAT is active (FAT32 ext flags).
func (b *FATBoot) MirroringDisabled() bool {
	return b.Type == FAT32 && b.ExtFlags&fatMirroringOffFlag != 0
}

// ActiveFAT returns the FAT copy that is read: 0 unless FAT32 mirroring is
// off, in which case the ext flags name it.
func (b *FATBoot) ActiveFAT() int {
	if b.MirroringDisabled() {
		return int(b.ExtFlags & 0x0F)
	}
	return 0
}

// FATOffset returns the byte offset of FAT copy i.
func (b *FATBoot) FATOffset(i int) int64 {
	return (int64(b.ReservedSectors) + int64(i)*int64(b.FATSize)) * int64(b.BytesPerSector)
}

// RootDirOffset returns the byte offset of the FAT12/16 fixed root directory.
func (b *FATBoot) RootDirOffset() int64 { return b.FATOffset(int(b.NumFATs)) }

// DataOffset returns the byte offset of the data area (cluster 2).
func (b *FATBoot) DataOffset() int64 {
	return int64(b.FirstDataSector) * int64(b.BytesPerSector)
}

// Size returns the bytes the file system spans.
func (b *FATBoot) Size() int64 { return int64(b.TotalSectors) * int64(b.BytesPerSector) }

// Dirty reports the boot record's dirty flag (Windows NT, bit 0 of the
// reserved byte after the drive number).
func (b *FATBoot) Dirty() bool { return b.BootSignature >= 0x28 && b.Flags&fatBootDirtyBit != 0 }

// isFATBoot reports whether b looks like a FAT boot sector. It is loose on
// purpose: damaged values are reported by ParseFATBoot, not hidden behind
// "unknown file system".
func isFATBoot(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	if !(b[0] == 0xEB && b[2] == 0x90) && b[0] != 0xE9 {
		return false
	}
	if b[fatOffSignature] != 0x55 || b[fatOffSignature+1] != 0xAA {
		return false
	}
	oem := string(b[fatOffOEMName : fatOffOEMName+8])
	if oem == "NTFS    " || oem == "EXFAT   " {
		return false
	}
	if strings.HasPrefix(string(b[54:62]), "FAT") || strings.HasPrefix(string(b[82:90]), "FAT") {
		return true
	}
	bps := binary.LittleEndian.Uint16(b[fatOffBytesPerSec:])
	media := b[fatOffMedia]
	return validSectorSize(uint32(bps)) && (media == 0xF0 || media >= 0xF8) && b[fatOffNumFATs] != 0
}

func validSectorSize(n uint32) bool { return n >= 512 && n <= 4096 && n&(n-1) == 0 }

func fatBootErr(off int64, format string, args ...any) error {
	return &FormatError{What: "FAT boot sector", Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

// ParseFATBoot parses and checks a FAT boot sector (at least 512 bytes).
// The FAT type follows the cluster count as Microsoft's specification
// says (fewer than 4085 clusters FAT12, fewer than 65525 FAT16), except
// that a boot sector in FAT32 form (16-bit FAT size 0, no fixed root
// directory, 32-bit FAT size set) is FAT32 whatever its cluster count:
// mkfs.fat makes such small FAT32 volumes and every reader, Linux and
// Windows included, treats them as FAT32.
func ParseFATBoot(b []byte) (*FATBoot, error) {
	if len(b) < 512 {
		return nil, fatBootErr(0, "boot sector is %d bytes, need 512", len(b))
	}
	le := binary.LittleEndian
	if b[fatOffSignature] != 0x55 || b[fatOffSignature+1] != 0xAA {
		return nil, fatBootErr(fatOffSignature, "signature is %02x%02x, not 55aa", b[fatOffSignature], b[fatOffSignature+1])
	}
	bs := &FATBoot{
		OEMName:           strings.TrimRight(printable(b[fatOffOEMName:fatOffOEMName+8]), " "),
		BytesPerSector:    le.Uint16(b[fatOffBytesPerSec:]),
		SectorsPerCluster: b[fatOffSecPerClus],
		ReservedSectors:   le.Uint16(b[fatOffRsvdSecCnt:]),
		NumFATs:           b[fatOffNumFATs],
		RootEntries:       le.Uint16(b[fatOffRootEntCnt:]),
		TotalSectors16:    le.Uint16(b[fatOffTotSec16:]),
		Media:             b[fatOffMedia],
		FATSize16:         le.Uint16(b[fatOffFATSz16:]),
		SectorsPerTrack:   le.Uint16(b[fatOffSecPerTrk:]),
		Heads:             le.Uint16(b[fatOffNumHeads:]),
		HiddenSectors:     le.Uint32(b[fatOffHiddSec:]),
		TotalSectors32:    le.Uint32(b[fatOffTotSec32:]),
	}
	if !validSectorSize(uint32(bs.BytesPerSector)) {
		return nil, fatBootErr(fatOffBytesPerSec, "bytes per sector is %d, want 512, 1024, 2048 or 4096", bs.BytesPerSector)
	}
	spc := bs.SectorsPerCluster
	if spc == 0 || spc&(spc-1) != 0 || spc > fatMaxSecPerClus {
		return nil, fatBootErr(fatOffSecPerClus, "sectors per cluster is %d, want a power of two from 1 to 128", spc)
	}
	if bs.ReservedSectors == 0 {
		return nil, fatBootErr(fatOffRsvdSecCnt, "reserved sector count is 0")
	}
	// Microsoft's specification asks for 2 and allows 1; mkfs.fat makes
	// up to 4. More is no volume any tool makes, only a damaged field.
	if bs.NumFATs == 0 || bs.NumFATs > fatMaxFATs {
		return nil, fatBootErr(fatOffNumFATs, "number of FATs is %d, want 1 to %d", bs.NumFATs, fatMaxFATs)
	}
	if bs.Media != 0xF0 && bs.Media < 0xF8 {
		return nil, fatBootErr(fatOffMedia, "media descriptor is %#02x, want 0xf0 or 0xf8-0xff", bs.Media)
	}
	if bs.TotalSectors16 != 0 {
		bs.TotalSectors = uint64(bs.TotalSectors16)
	} else {
		bs.TotalSectors = uint64(bs.TotalSectors32)
	}
	if bs.TotalSectors == 0 {
		return nil, fatBootErr(fatOffTotSec16, "total sector count is 0 in both the 16- and 32-bit fields")
	}

	ext := fatOffExt16
	fat32Form := bs.FATSize16 == 0
	if fat32Form {
		ext = fatOffExt32
		bs.FATSize32 = le.Uint32(b[fatOffFATSz32:])
		bs.ExtFlags = le.Uint16(b[fatOffExtFlags:])
		bs.FSVersion = le.Uint16(b[fatOffFSVer:])
		bs.RootCluster = le.Uint32(b[fatOffRootClus:])
		bs.FSInfoSector = le.Uint16(b[fatOffFSInfo:])
		bs.BackupBootSector = le.Uint16(b[fatOffBkBootSec:])
		if bs.RootEntries != 0 {
			return nil, fatBootErr(fatOffFATSz16, "FAT size is 0 in the 16-bit field, as on FAT32, but there are %d fixed root entries, as on FAT12/16", bs.RootEntries)
		}
		if bs.FATSize32 == 0 {
			return nil, fatBootErr(fatOffFATSz16, "FAT size is 0 in both the 16- and 32-bit fields")
		}
		if bs.FSVersion != 0 {
			return nil, &FormatError{What: "FAT boot sector", Offset: fatOffFSVer,
				Msg: fmt.Sprintf("FAT32 version %d.%d, only 0.0 is defined", bs.FSVersion>>8, bs.FSVersion&0xFF), Err: ErrUnsupported}
		}
		bs.FATSize = bs.FATSize32
	} else {
		if bs.RootEntries == 0 {
			return nil, fatBootErr(fatOffRootEntCnt, "FAT12/16 boot sector has 0 root directory entries")
		}
		// The specification: the root directory fills whole sectors. This
		// also bounds the count below 0xffff.
		if uint32(bs.RootEntries)*fatDirEntrySize%uint32(bs.BytesPerSector) != 0 {
			return nil, fatBootErr(fatOffRootEntCnt, "%d root directory entries do not fill whole %d-byte sectors", bs.RootEntries, bs.BytesPerSector)
		}
		bs.FATSize = uint32(bs.FATSize16)
	}
	bs.DriveNumber = b[ext+fatExtDrvNum]
	bs.Flags = b[ext+fatExtReserved1]
	bs.BootSignature = b[ext+fatExtBootSig]
	if bs.BootSignature == 0x29 || bs.BootSignature == 0x28 {
		bs.VolumeID = le.Uint32(b[ext+fatExtVolID:])
	}
	if bs.BootSignature == 0x29 {
		bs.VolumeLabel = strings.TrimRight(decodeOEM(b[ext+fatExtVolLab:ext+fatExtVolLab+11]), " ")
		if bs.VolumeLabel == "NO NAME" {
			bs.VolumeLabel = ""
		}
		bs.FSTypeLabel = strings.TrimRight(printable(b[ext+fatExtFilSysType:ext+fatExtFilSysType+8]), " ")
	}

	bps := uint64(bs.BytesPerSector)
	bs.RootDirSectors = uint32((uint64(bs.RootEntries)*32 + bps - 1) / bps)
	first := uint64(bs.ReservedSectors) + uint64(bs.NumFATs)*uint64(bs.FATSize) + uint64(bs.RootDirSectors)
	if first >= bs.TotalSectors {
		return nil, fatBootErr(fatOffTotSec16, "data area starts at sector %d (%d reserved + %d FATs of %d sectors + %d root directory sectors), beyond the volume's %d sectors",
			first, bs.ReservedSectors, bs.NumFATs, bs.FATSize, bs.RootDirSectors, bs.TotalSectors)
	}
	bs.FirstDataSector = uint32(first) // < TotalSectors, which fits in 32 bits
	data := (bs.TotalSectors - first) / uint64(spc)
	if data == 0 {
		return nil, fatBootErr(fatOffTotSec16, "no whole cluster fits between the data start (sector %d) and the volume end (sector %d)", first, bs.TotalSectors)
	}
	bs.DataClusters = uint32(data)

	switch {
	case fat32Form:
		bs.Type = FAT32
	case data <= fatMaxClusters12:
		bs.Type = FAT12
	case data <= fatMaxClusters16:
		bs.Type = FAT16
	default:
		return nil, fatBootErr(fatOffFATSz16, "%d data clusters need FAT32, but the boot sector has the FAT12/16 form (16-bit FAT size %d, %d root entries)",
			data, bs.FATSize16, bs.RootEntries)
	}
	bits := uint64(fatEntryBits(bs.Type))
	bs.FATCapacity = uint64(bs.FATSize) * bps * 8 / bits
	if bs.FATCapacity <= 2 {
		return nil, fatBootErr(fatOffFATSz16, "FAT of %d sectors holds %d entries, no room for any cluster", bs.FATSize, bs.FATCapacity)
	}
	count := min(data, bs.FATCapacity-2)
	if bs.Type == FAT32 && count > fatMaxClusters32 {
		count = fatMaxClusters32
	}
	bs.ClusterCount = uint32(count)

	if fat32Form {
		if bs.RootCluster < 2 || uint64(bs.RootCluster) >= count+2 {
			return nil, fatBootErr(fatOffRootClus, "root directory cluster %d is outside clusters 2..%d", bs.RootCluster, count+1)
		}
		if bs.MirroringDisabled() && int(bs.ExtFlags&0x0F) >= int(bs.NumFATs) {
			return nil, fatBootErr(fatOffExtFlags, "active FAT is %d, but there are only %d FATs", bs.ExtFlags&0x0F, bs.NumFATs)
		}
		if s := bs.FSInfoSector; s != 0 && s != 0xFFFF && s >= bs.ReservedSectors {
			return nil, fatBootErr(fatOffFSInfo, "FSInfo sector %d is outside the %d reserved sectors", s, bs.ReservedSectors)
		}
		if s := bs.BackupBootSector; s != 0 && s != 0xFFFF && s >= bs.ReservedSectors {
			return nil, fatBootErr(fatOffBkBootSec, "backup boot sector %d is outside the %d reserved sectors", s, bs.ReservedSectors)
		}
	}
	return bs, nil
}

func fatEntryBits(t Type) int {
	switch t {
	case FAT12:
		return 12
	case FAT16:
		return 16
	}
	return 32
}
