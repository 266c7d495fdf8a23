package partclone

// The on-disk truth of partclone images, versions 0001 and 0002.
//
// Sources of the facts: partclone's src/partclone.h (image_head_v1/v2,
// file_system_info_v1/v2, image_options_v2, bitmap_mode_t, all packed, "Disable
// fields alignment for struct stored in the image"), src/checksum.h and
// src/checksum.c (checksum modes; the CRC32 with seed 0xFFFFFFFF and no final
// inversion; crc32_0001, which reads the first byte of a block over and
// over), src/partclone.c (set_image_options_v1: version 0001 is a byte map
// bitmap, one CRC per block, never reseeded; write_image_bitmap: "BiTmAgIc"
// after a 0001 bitmap, a CRC32 of the bit bitmap after a 0002 one;
// load_image_desc: the 0002 header CRC covers the descriptor before it),
// src/main.c (the clone loop: used blocks in ascending order, a checksum
// after every blocks_per_checksum blocks and one after the last partial
// group, reseeded after each when reseed_checksum is 1), and the bytes
// partclone 0.3.23 writes (partclone.info shows the same fields).
// All integers are little-endian: images with endianess != 0xC0DE are
// refused (partclone refuses them too).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

const (
	magic     = "partclone-image" // 15 bytes, NUL-terminated in 0002
	bitMagic  = "BiTmAgIc"        // after a 0001 byte-map bitmap
	endianLE  = 0xC0DE
	probeLen  = 36 // magic + enough of the head to see the version
	maxBlock  = 64 << 20
	minBlock  = 512
	headV1Len = 15 + 15 + 4 + 2 // magic, fs, version, padding
	fsV1Len   = 4 + 8 + 8 + 8   // block_size, device_size, totalblock, usedblocks
	optV1Len  = 4096            // image_options_v1: unused buffer
	descV1Len = headV1Len + fsV1Len + optV1Len
	headV2Len = 16 + 14 + 4 + 2 // magic, ptc_version, version, endianess
	fsV2Len   = 16 + 8 + 8 + 8 + 8 + 4
	optV2Len  = 4 + 2 + 2 + 2 + 2 + 4 + 1 + 1
	descV2Len = headV2Len + fsV2Len + optV2Len + 4 // + CRC32 of the bytes before it
)

// Checksum modes (checksum_mode_enum).
const (
	CsumNone     = 0x00
	CsumCRC32    = 0x20
	CsumXXH64    = 0x30 // defined, not read by cbimg (builds without xxhash never write it)
	CsumXXH128   = 0x31
	CsumCRC32v1  = 0xFF // version 0001's flawed CRC32
	crcSeed      = 0xFFFFFFFF
	crcSize      = 4
	csumV1Bugged = 8 // 0001 images from old 64-bit builds store each CRC in 8 bytes
)

// Bitmap modes (bitmap_mode_t).
const (
	BitmapNone = 0x00 // no bitmap: every block is stored
	BitmapBit  = 0x01 // one bit per block, LSB first, then a CRC32 (0002)
	BitmapByte = 0x08 // one byte per block, 1 = used (0001: then "BiTmAgIc")
)

// Header is a partclone image descriptor, either version, with version
// 0001's fixed options filled in as partclone does.
type Header struct {
	Version      int    // 1 or 2
	PtcVersion   string // partclone version that wrote it (0002 only)
	FS           string // file-system name as partclone writes it: "NTFS", "FAT16", ...
	DeviceSize   uint64 // bytes of the source device
	TotalBlocks  uint64
	SBUsedBlocks uint64 // used blocks according to the file system (0002)
	UsedBlocks   uint64 // used blocks according to the bitmap
	BlockSize    uint32
	CPUBits      uint16
	CsumMode     uint16
	CsumSize     uint16 // bytes per stored checksum
	BlocksPerSum uint32 // 0 when CsumMode is none
	Reseed       bool
	BitmapMode   uint8

	DescLen   int64 // bytes of the descriptor
	BitmapLen int64 // bytes of the bitmap and what follows it (CRC or magic)
}

// partclone's CRC32: the reflected IEEE polynomial from seed, with neither
// initial nor final inversion: crc(seed, p) = ^crc32.Update(^seed, p).
func crcUpdate(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, crc32.IEEETable, p)
}

// crcV1 is version 0001's CRC of a block: the first byte, len(p) times.
func crcV1(seed uint32, p []byte) uint32 {
	if len(p) == 0 {
		return seed
	}
	var one [256]byte
	for i := range one {
		one[i] = p[0]
	}
	crc := seed
	for n := len(p); n > 0; n -= len(one) {
		crc = crcUpdate(crc, one[:min(n, len(one))])
	}
	return crc
}

type readBuf []byte

func (b *readBuf) u8() uint8   { v := (*b)[0]; *b = (*b)[1:]; return v }
func (b *readBuf) u16() uint16 { v := binary.LittleEndian.Uint16(*b); *b = (*b)[2:]; return v }
func (b *readBuf) u32() uint32 { v := binary.LittleEndian.Uint32(*b); *b = (*b)[4:]; return v }
func (b *readBuf) u64() uint64 { v := binary.LittleEndian.Uint64(*b); *b = (*b)[8:]; return v }
func (b *readBuf) str(n int) string {
	v := (*b)[:n]
	*b = (*b)[n:]
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return strings.TrimRight(string(v), " ")
}

// Probe reports whether head starts like a partclone image of a version
// this package reads.
func Probe(head []byte) bool {
	if len(head) < probeLen || string(head[:len(magic)]) != magic {
		return false
	}
	return string(head[30:34]) == "0001" || string(head[30:34]) == "0002"
}

// versionOf reads the version field: at byte 30 in both layouts.
func versionOf(head []byte) string { return string(head[30:34]) }

// parseHeader decodes the descriptor at the start of b (descV1Len bytes
// for 0001, descV2Len for 0002) and checks every relation between its
// fields. bitmap lengths are checked against the image size by the caller.
func parseHeader(b []byte) (*Header, error) {
	if len(b) < descV2Len || string(b[:len(magic)]) != magic {
		return nil, errFormat(0, "not a partclone image (no \"partclone-image\" magic)")
	}
	h := &Header{}
	switch versionOf(b) {
	case "0001":
		if len(b) < descV1Len {
			return nil, errTrunc(int64(len(b)), "the 0001 descriptor is %d bytes, the image has %d", descV1Len, len(b))
		}
		r := readBuf(b[len(magic):])
		h.Version = 1
		h.FS = r.str(15)
		r = r[4+2:]
		h.BlockSize = r.u32()
		h.DeviceSize = r.u64()
		h.TotalBlocks = r.u64()
		h.UsedBlocks = r.u64()
		h.SBUsedBlocks = h.UsedBlocks
		h.CsumMode, h.CsumSize, h.BlocksPerSum, h.BitmapMode = CsumCRC32v1, crcSize, 1, BitmapByte
		h.DescLen = descV1Len
	case "0002":
		if got, want := binary.LittleEndian.Uint32(b[descV2Len-4:]), crcUpdate(crcSeed, b[:descV2Len-4]); got != want {
			return nil, errSum(descV2Len-4, "header CRC32 is %08x, the header's bytes give %08x", got, want)
		}
		r := readBuf(b[16:])
		h.Version = 2
		h.PtcVersion = r.str(14)
		r = r[4:]
		if e := r.u16(); e != endianLE {
			return nil, errVersion(34, "written on a big-endian machine (endianess %04x); cbimg reads little-endian images only", e)
		}
		h.FS = r.str(16)
		h.DeviceSize = r.u64()
		h.TotalBlocks = r.u64()
		h.SBUsedBlocks = r.u64()
		h.UsedBlocks = r.u64()
		h.BlockSize = r.u32()
		featureSize := r.u32()
		imgVer := r.u16()
		h.CPUBits = r.u16()
		h.CsumMode = r.u16()
		h.CsumSize = r.u16()
		h.BlocksPerSum = r.u32()
		h.Reseed = r.u8() != 0
		h.BitmapMode = r.u8()
		if featureSize != optV2Len || imgVer != 2 {
			return nil, errVersion(headV2Len+fsV2Len, "image options of %d bytes, version %d: this reader knows 0002's %d bytes", featureSize, imgVer, optV2Len)
		}
		h.DescLen = descV2Len
	default:
		return nil, errVersion(30, "partclone image version %q: this reader knows 0001 and 0002", versionOf(b))
	}
	if h.BlockSize < minBlock || h.BlockSize > maxBlock || h.BlockSize%minBlock != 0 {
		return nil, errFormat(0, "block size %d (must be a multiple of 512 up to 64 MiB)", h.BlockSize)
	}
	if h.TotalBlocks == 0 || h.TotalBlocks > maxTotalBlocks {
		return nil, errFormat(0, "%d blocks (at most %d are read)", h.TotalBlocks, uint64(maxTotalBlocks))
	}
	if h.UsedBlocks > h.TotalBlocks {
		return nil, errFormat(0, "%d used blocks of %d", h.UsedBlocks, h.TotalBlocks)
	}
	if h.DeviceSize/uint64(h.BlockSize) < h.TotalBlocks || h.DeviceSize > 1<<62 {
		return nil, errFormat(0, "%d blocks of %d bytes do not fit the device size %d", h.TotalBlocks, h.BlockSize, h.DeviceSize)
	}
	switch h.CsumMode {
	case CsumNone:
		if h.CsumSize != 0 {
			return nil, errFormat(0, "checksum size %d without a checksum", h.CsumSize)
		}
		h.BlocksPerSum = 0
	case CsumCRC32, CsumCRC32v1:
		if h.CsumSize != crcSize || h.BlocksPerSum == 0 {
			return nil, errFormat(0, "CRC32 of %d bytes every %d blocks", h.CsumSize, h.BlocksPerSum)
		}
	case CsumXXH64, CsumXXH128:
		return nil, errVersion(0, "checksum mode XXH%d (partclone built with xxhash): not read by cbimg", map[uint16]int{CsumXXH64: 64, CsumXXH128: 128}[h.CsumMode])
	default:
		return nil, errVersion(0, "unknown checksum mode 0x%02x", h.CsumMode)
	}
	switch h.BitmapMode {
	case BitmapBit:
		h.BitmapLen = int64((h.TotalBlocks+7)/8) + crcSize
	case BitmapByte:
		h.BitmapLen = int64(h.TotalBlocks) + len64(bitMagic)
		if h.Version == 2 {
			h.BitmapLen = int64(h.TotalBlocks) + crcSize
		}
	case BitmapNone:
		if h.UsedBlocks != h.TotalBlocks {
			return nil, errFormat(0, "no bitmap, but %d used blocks of %d", h.UsedBlocks, h.TotalBlocks)
		}
	default:
		return nil, errVersion(0, "unknown bitmap mode 0x%02x", h.BitmapMode)
	}
	return h, nil
}

// maxTotalBlocks caps the block count: its bit bitmap is at most 1 GiB
// (32 TiB in 4 KiB blocks).
const maxTotalBlocks = 1 << 33

func len64(s string) int64 { return int64(len(s)) }

// Checksums names the checksum layout for people.
func (h *Header) Checksums() string {
	switch h.CsumMode {
	case CsumNone:
		return "none"
	case CsumCRC32v1:
		return "CRC32 (version 0001) per block"
	}
	s := fmt.Sprintf("CRC32 per %d blocks", h.BlocksPerSum)
	if !h.Reseed {
		s += ", chained"
	}
	return s
}
