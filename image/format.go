// Package image reads and writes .cbi images: a header, the used-cluster
// bitmap, the partition's system areas and used clusters in independently
// compressed, checksummed chunks, a chunk table and a footer. FORMAT.md in
// the repository root documents every byte; this file is its counterpart and
// the two are kept in step.
//
// The package knows nothing of file systems or devices: a backup feeds a
// Writer the logical stream (system extents, then used clusters in ascending
// order) and a Reader maps any partition offset back to its bytes.
package image

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"
)

// Magic numbers and fixed sizes of the on-disk structures.
const (
	Magic        = "CBIMG\x1a\n\x00" // first 8 bytes of every image
	FrameMagic   = "CBCK"            // start of every chunk frame
	TableMagic   = "CBTB"            // start of the chunk table
	FooterMagic  = "CBIMGEND"        // start of the footer
	TrailerMagic = "CBTR"            // start of the optional trailer records

	Version = 1 // the only format version this package writes and reads

	fixedHeaderLen = 192 // fixed header fields before the TLV records
	frameHeaderLen = 64  // chunk frame header
	tableEntryLen  = 56  // one chunk table entry
	FooterLen      = 80  // footer, always the last bytes of the image

	// Hard caps so that counts read off disk never size an allocation
	// unchecked.
	maxHeaderLen = 64 << 20
	maxChunkSize = 64 << 20
	minChunkSize = 4 << 10
	maxClusterSz = 1 << 30

	// DefaultChunkSize is the logical bytes per chunk.
	DefaultChunkSize = 1 << 20

	// BlockSize is the unit of the block checksums of raw chunks: a read
	// of a few KiB checks only the blocks it touches.
	BlockSize = 4096
)

// Required-feature flags (header bytes 14-15): a reader that does not know
// one of them must refuse the image.
const (
	// RequireBlockCRC: raw chunks may carry block checksums (FrameBlockCRC).
	RequireBlockCRC = 1 << 0
	// RequireSubFrames: compressed chunks may consist of independent zstd
	// frames of Header.SubFrameSize logical bytes each (FrameSubFrames).
	RequireSubFrames = 1 << 1
	// RequireXXH3: chunk sums are XXH3-128 of the logical bytes (16 bytes,
	// then 16 zero bytes) instead of BLAKE3-256 (see FORMAT.md, threat model).
	RequireXXH3   = 1 << 2
	knownRequired = RequireBlockCRC | RequireSubFrames | RequireXXH3
)

// Frame flags (frame header byte 17, table entry byte 17).
const (
	// FrameBlockCRC: the chunk is stored raw and its logical bytes are
	// followed by one CRC32C per BlockSize block, little-endian.
	FrameBlockCRC = 1 << 0
	// FrameSubFrames: the chunk is compressed as independent zstd frames of
	// Header.SubFrameSize logical bytes each (the last may be shorter),
	// followed by an index of 8 bytes per frame: its stored length and the
	// CRC32C of its stored bytes, little-endian. A read of a few KiB decodes
	// only the frames it touches.
	FrameSubFrames = 1 << 1
	knownFrame     = FrameBlockCRC | FrameSubFrames

	// DefaultSubFrameSize is the logical bytes per zstd frame of a
	// compressed chunk: a random 4 KiB read decodes this much (about 30 µs
	// here) instead of a whole chunk, for 5-10 % more stored bytes of
	// text-like data.
	DefaultSubFrameSize = 32 << 10
)

// subFrameCount is the number of zstd frames of a chunk of n logical bytes
// compressed in frames of s bytes.
func subFrameCount(n, s uint32) int { return int((int64(n) + int64(s) - 1) / int64(s)) }

// blockCount is the number of block checksums of a chunk of n logical bytes.
func blockCount(n uint32) int { return int((int64(n) + BlockSize - 1) / BlockSize) }

// Codec says how a chunk's bytes are stored.
type Codec uint8

// Chunk codecs.
const (
	CodecNone Codec = 0
	CodecZstd Codec = 1
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// State flags (header byte 19).
const (
	FlagDirty      = 1 << 0 // the file system was marked dirty
	FlagHibernated = 1 << 1 // hiberfil.sys held an active hibernation image
	FlagRescue     = 1 << 2 // unreadable clusters were stored as zeros (see TagUnreadable)
	knownFlags     = FlagDirty | FlagHibernated | FlagRescue
)

// Partition table schemes (header byte 144).
const (
	SchemeNone = 0 // the source was a bare partition or file
	SchemeMBR  = 1
	SchemeGPT  = 2
)

// TLV record tags. Tags with bit 15 set are critical: a reader that does not
// know one must refuse the image.
const (
	TagSourceName  = 1 // UTF-8: the source device or file
	TagToolVersion = 2 // UTF-8: the cbimg version that wrote the image
	TagLabel       = 3 // UTF-8: volume label
	TagOEMName     = 4 // UTF-8: boot record OEM name
	TagPartName    = 5 // UTF-8: GPT partition name
	TagExclusion   = 6 // one excluded file, see Exclusion
	TagSysExtents  = 0x8001
	TagUnreadable  = 7  // runs of clusters that could not be read (stored as zeros)
	TagDamage      = 8  // one damaged file-system structure found at backup, see Damage
	TagOrigin      = 9  // UTF-8: the image this one was converted from (cbimg convert)
	TagBootCode    = 10 // the first 440 bytes of the source disk (its MBR boot code)
	tagCritical    = 0x8000

	// BootCodeLen is the length of an MBR's boot code (before the disk
	// signature at byte 440).
	BootCodeLen = 440
)

// Extent is a byte range of the partition stored verbatim.
type Extent struct {
	Offset int64
	Length int64
}

// Run is a range of clusters.
type Run struct {
	Start uint64
	Count uint64
}

// Exclusion describes one file left out of the image.
type Exclusion struct {
	Reason   string // the default rule or glob that matched, e.g. "pagefile.sys", "cbimg image"
	Path     string
	Clusters uint64
	Runs     []Run
}

// Damage is one damaged file-system structure found at backup (a broken
// chain, a directory loop, an unreadable MFT record, ...): the backup went
// on and copied every allocated cluster, so the image holds the damage as
// it was.
type Damage struct {
	Kind   string // short class, e.g. "cross-linked chain"
	Path   string // the file or directory concerned; "" when none
	What   string // the structure, e.g. "FAT entry 12", "MFT record 40"
	Offset int64  // partition byte offset of the structure; -1 when unknown
	Msg    string
}

// Limits on a Damage record's strings; Encode shortens longer ones.
const (
	maxDamageKind = 64
	maxDamageText = 1024
)

// File-system types (Header.FSType). volume.Type uses the same numbers, and
// FSName gives the same names as its String (backupcore's TestFSTypes
// checks both).
const (
	FSRaw   = 0 // a sector-by-sector copy, no file-system knowledge
	FSNTFS  = 1
	FSFAT12 = 2
	FSFAT16 = 3
	FSFAT32 = 4
	FSExFAT = 5
)

// FSName names a file-system type: "raw", "ntfs", "fat12", "fat16",
// "fat32" or "exfat", so that faces need not know the volume package to show it.
func FSName(t uint8) string {
	switch t {
	case FSRaw:
		return "raw"
	case FSNTFS:
		return "ntfs"
	case FSFAT12:
		return "fat12"
	case FSFAT16:
		return "fat16"
	case FSFAT32:
		return "fat32"
	case FSExFAT:
		return "exfat"
	}
	return fmt.Sprintf("unknown(%d)", t)
}

// FSName names the header's file-system type (see FSName).
func (h *Header) FSName() string { return FSName(h.FSType) }

// Header is the image header: the file-system parameters, the partition
// parameters and the metadata computed from them.
type Header struct {
	Version       uint16
	RequiredFlags uint16
	FSType        uint8 // FSRaw, FSNTFS, FSFAT12, FSFAT16, FSFAT32, FSExFAT
	Codec         Codec
	Level         uint8
	Flags         uint8
	SectorSize    uint32
	ClusterSize   uint32
	ChunkSize     uint32
	FSSectors     uint64 // total sectors per the boot record
	FSSize        int64  // bytes of the partition the file system spans
	ClusterCount  uint64 // partition cluster count
	BitmapBits    uint64 // bits in the bitmap (equals ClusterCount)
	ImageClusters uint64 // clusters stored (set bits)
	ClusterOrigin int64  // partition byte offset of cluster 0
	PartStart     int64  // partition start, bytes from the disk start (0 when unknown)
	PartLength    int64  // partition length in bytes
	HiddenSectors uint64
	Serial        uint64
	Created       time.Time
	LogicalLen    int64 // bytes in the logical stream: system extents + stored clusters
	BitmapLen     int64 // bytes of bitmap on disk (ceil(BitmapBits/8))
	ChunkCount    uint32
	SplitSize     int64 // bytes per split volume, 0 when not split
	Scheme        uint8
	MBRType       uint8
	GPTType       [16]byte
	GPTGUID       [16]byte // unique GUID of the source partition
	SubFrameSize  uint32   // logical bytes per zstd frame of a FrameSubFrames chunk; 0 when none are

	SourceName  string
	ToolVersion string
	Label       string
	OEMName     string
	PartName    string
	Origin      string // the image this one was converted from; "" for a backup
	// BootCode is the first BootCodeLen bytes of the disk the partition was
	// backed up from (the MBR's boot code); nil for a bare partition. A
	// virtual disk made of the image gets it back, so it can start.
	BootCode   []byte
	SysExtents []Extent
	Exclusions []Exclusion
	Unreadable []Run
	Damage     []Damage

	Len int64 // encoded length, set by Encode and Decode
}

// SysBytes is the sum of the system extents' lengths.
func (h *Header) SysBytes() int64 {
	var n int64
	for _, e := range h.SysExtents {
		n += e.Length
	}
	return n
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// writeBuf appends little-endian fields in spec order.
type writeBuf []byte

func (b *writeBuf) u8(v uint8)   { *b = append(*b, v) }
func (b *writeBuf) u16(v uint16) { *b = binary.LittleEndian.AppendUint16(*b, v) }
func (b *writeBuf) u32(v uint32) { *b = binary.LittleEndian.AppendUint32(*b, v) }
func (b *writeBuf) u64(v uint64) { *b = binary.LittleEndian.AppendUint64(*b, v) }
func (b *writeBuf) bytes(p []byte) {
	*b = append(*b, p...)
}
func (b *writeBuf) str16(s string) { b.u16(uint16(len(s))); *b = append(*b, s...) }

// readBuf consumes little-endian fields in spec order; reading past the end
// sets bad instead of panicking.
type readBuf struct {
	b   []byte
	bad bool
}

func (r *readBuf) take(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad = true
		r.b = nil
		return make([]byte, max(n, 0))
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}
func (r *readBuf) u8() uint8   { return r.take(1)[0] }
func (r *readBuf) u16() uint16 { return binary.LittleEndian.Uint16(r.take(2)) }
func (r *readBuf) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *readBuf) u64() uint64 { return binary.LittleEndian.Uint64(r.take(8)) }
func (r *readBuf) str16() string {
	n := int(r.u16())
	return string(r.take(n))
}

// Encode serializes the header, TLV records and trailing CRC32C.
func (h *Header) Encode() ([]byte, error) {
	if len(h.SourceName) > 4096 || len(h.ToolVersion) > 255 || len(h.Label) > 1024 || len(h.OEMName) > 255 || len(h.PartName) > 1024 || len(h.Origin) > 4096 {
		return nil, fmt.Errorf("image: header string too long")
	}
	b := writeBuf(make([]byte, 0, 1024))
	b.bytes([]byte(Magic))
	b.u32(0) // length, patched below
	b.u16(Version)
	b.u16(h.RequiredFlags)
	b.u8(h.FSType)
	b.u8(uint8(h.Codec))
	b.u8(h.Level)
	b.u8(h.Flags)
	b.u32(h.SectorSize)
	b.u32(h.ClusterSize)
	b.u32(h.ChunkSize)
	b.u64(h.FSSectors)
	b.u64(uint64(h.FSSize))
	b.u64(h.ClusterCount)
	b.u64(h.BitmapBits)
	b.u64(h.ImageClusters)
	b.u64(uint64(h.ClusterOrigin))
	b.u64(uint64(h.PartStart))
	b.u64(uint64(h.PartLength))
	b.u64(h.HiddenSectors)
	b.u64(h.Serial)
	b.u64(uint64(h.Created.UnixNano()))
	b.u64(uint64(h.LogicalLen))
	b.u64(uint64(h.BitmapLen))
	b.u32(h.ChunkCount)
	b.u32(uint32(len(h.SysExtents)))
	b.u8(h.Scheme)
	b.u8(h.MBRType)
	b.u16(0)
	b.bytes(h.GPTType[:])
	b.bytes(h.GPTGUID[:])
	b.u64(uint64(h.SplitSize))
	b.u32(h.SubFrameSize)
	for len(b) < fixedHeaderLen {
		b.u8(0)
	}
	tlv := func(tag uint16, val []byte) {
		b.u16(tag)
		b.u32(uint32(len(val)))
		b.bytes(val)
	}
	str := func(tag uint16, s string) {
		if s != "" {
			tlv(tag, []byte(s))
		}
	}
	str(TagSourceName, h.SourceName)
	str(TagToolVersion, h.ToolVersion)
	str(TagLabel, h.Label)
	str(TagOEMName, h.OEMName)
	str(TagPartName, h.PartName)
	str(TagOrigin, h.Origin)
	if len(h.BootCode) == BootCodeLen {
		tlv(TagBootCode, h.BootCode)
	}
	var v writeBuf
	for _, e := range h.SysExtents {
		v.u64(uint64(e.Offset))
		v.u64(uint64(e.Length))
	}
	tlv(TagSysExtents, v)
	for _, x := range h.Exclusions {
		var v writeBuf
		v.str16(x.Reason)
		v.str16(x.Path)
		v.u64(x.Clusters)
		v.u32(uint32(len(x.Runs)))
		for _, r := range x.Runs {
			v.u64(r.Start)
			v.u64(r.Count)
		}
		tlv(TagExclusion, v)
	}
	for _, d := range h.Damage {
		var v writeBuf
		kind := shorten(d.Kind, maxDamageKind)
		v.u8(uint8(len(kind)))
		v.bytes([]byte(kind))
		v.str16(shorten(d.Path, maxDamageText))
		v.str16(shorten(d.What, maxDamageText))
		v.u64(uint64(d.Offset))
		v.str16(shorten(d.Msg, maxDamageText))
		tlv(TagDamage, v)
	}
	if len(h.Unreadable) > 0 {
		var v writeBuf
		for _, r := range h.Unreadable {
			v.u64(r.Start)
			v.u64(r.Count)
		}
		tlv(TagUnreadable, v)
	}
	if len(b)+4 > maxHeaderLen {
		return nil, fmt.Errorf("image: header would be %d bytes, over the %d limit", len(b)+4, maxHeaderLen)
	}
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)+4))
	b.u32(crc(b))
	h.Len = int64(len(b))
	h.Version = Version
	return b, nil
}

// shorten cuts s to at most n bytes at a UTF-8 character boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// PeekHeaderLen validates the first 16 bytes of an image and returns the
// header length they announce.
func PeekHeaderLen(p []byte) (int64, error) {
	if len(p) < 16 || string(p[:8]) != Magic {
		return 0, &FormatError{Region: "header", Offset: 0, Msg: "not a cbimg image (bad magic)", Err: ErrFormat}
	}
	v := binary.LittleEndian.Uint16(p[12:])
	if v != Version {
		return 0, &FormatError{Region: "header", Offset: 12, Msg: fmt.Sprintf("format version %d; this cbimg reads version %d", v, Version), Err: ErrVersion}
	}
	n := int64(binary.LittleEndian.Uint32(p[8:]))
	if n < fixedHeaderLen+4 || n > maxHeaderLen {
		return 0, &FormatError{Region: "header", Offset: 8, Msg: fmt.Sprintf("header length %d out of range", n), Err: ErrFormat}
	}
	return n, nil
}

// DecodeHeader parses and checks a header (the whole PeekHeaderLen bytes).
func DecodeHeader(p []byte) (*Header, error) {
	n, err := PeekHeaderLen(p)
	if err != nil {
		return nil, err
	}
	if int64(len(p)) < n {
		return nil, &FormatError{Region: "header", Offset: int64(len(p)), Msg: fmt.Sprintf("truncated: %d of %d bytes", len(p), n), Err: ErrTruncated}
	}
	p = p[:n]
	if got, want := crc(p[:n-4]), binary.LittleEndian.Uint32(p[n-4:]); got != want {
		return nil, &FormatError{Region: "header", Offset: n - 4, Msg: fmt.Sprintf("CRC32C %08x, stored %08x", got, want), Err: ErrChecksum}
	}
	r := readBuf{b: p[12 : n-4]}
	h := &Header{Len: n}
	h.Version = r.u16()
	h.RequiredFlags = r.u16()
	h.FSType = r.u8()
	h.Codec = Codec(r.u8())
	h.Level = r.u8()
	h.Flags = r.u8()
	h.SectorSize = r.u32()
	h.ClusterSize = r.u32()
	h.ChunkSize = r.u32()
	h.FSSectors = r.u64()
	h.FSSize = int64(r.u64())
	h.ClusterCount = r.u64()
	h.BitmapBits = r.u64()
	h.ImageClusters = r.u64()
	h.ClusterOrigin = int64(r.u64())
	h.PartStart = int64(r.u64())
	h.PartLength = int64(r.u64())
	h.HiddenSectors = r.u64()
	h.Serial = r.u64()
	h.Created = time.Unix(0, int64(r.u64())).UTC()
	h.LogicalLen = int64(r.u64())
	h.BitmapLen = int64(r.u64())
	h.ChunkCount = r.u32()
	nExt := r.u32()
	h.Scheme = r.u8()
	h.MBRType = r.u8()
	r.u16()
	copy(h.GPTType[:], r.take(16))
	copy(h.GPTGUID[:], r.take(16))
	h.SplitSize = int64(r.u64())
	h.SubFrameSize = r.u32()
	r.take(fixedHeaderLen - int(n-4-int64(len(r.b)))) // skip reserved bytes
	bad := func(off int64, format string, a ...any) error {
		return &FormatError{Region: "header", Offset: off, Msg: fmt.Sprintf(format, a...), Err: ErrFormat}
	}
	if r.bad {
		return nil, bad(0, "fixed fields truncated")
	}
	if h.RequiredFlags&^knownRequired != 0 {
		return nil, &FormatError{Region: "header", Offset: 14, Msg: fmt.Sprintf("required-feature flags %#04x not understood by this cbimg", h.RequiredFlags&^knownRequired), Err: ErrVersion}
	}
	sawExtents := false
	for len(r.b) > 0 && !r.bad {
		off := n - 4 - int64(len(r.b))
		tag := r.u16()
		l := r.u32()
		if int64(l) > int64(len(r.b)) {
			return nil, bad(off, "record %#x length %d past header end", tag, l)
		}
		v := readBuf{b: r.take(int(l))}
		switch tag {
		case TagSourceName:
			h.SourceName = string(v.b)
		case TagToolVersion:
			h.ToolVersion = string(v.b)
		case TagLabel:
			h.Label = string(v.b)
		case TagOEMName:
			h.OEMName = string(v.b)
		case TagPartName:
			h.PartName = string(v.b)
		case TagOrigin:
			h.Origin = string(v.b)
		case TagBootCode:
			if l != BootCodeLen {
				return nil, bad(off, "boot code record holds %d bytes, not %d", l, BootCodeLen)
			}
			h.BootCode = append([]byte(nil), v.b...)
		case TagSysExtents:
			if uint64(l) != uint64(nExt)*16 {
				return nil, bad(off, "system extent record holds %d bytes for %d extents", l, nExt)
			}
			sawExtents = true
			h.SysExtents = make([]Extent, nExt)
			for i := range h.SysExtents {
				h.SysExtents[i] = Extent{int64(v.u64()), int64(v.u64())}
			}
		case TagExclusion:
			var x Exclusion
			x.Reason = v.str16()
			x.Path = v.str16()
			x.Clusters = v.u64()
			nr := v.u32()
			if uint64(nr)*16 != uint64(len(v.b)) {
				return nil, bad(off, "exclusion record of %q: %d runs do not fit", x.Path, nr)
			}
			x.Runs = make([]Run, nr)
			for i := range x.Runs {
				x.Runs[i] = Run{v.u64(), v.u64()}
			}
			h.Exclusions = append(h.Exclusions, x)
		case TagUnreadable:
			if l%16 != 0 {
				return nil, bad(off, "unreadable-cluster record length %d", l)
			}
			for len(v.b) > 0 {
				h.Unreadable = append(h.Unreadable, Run{v.u64(), v.u64()})
			}
		case TagDamage:
			var d Damage
			d.Kind = string(v.take(int(v.u8())))
			d.Path = v.str16()
			d.What = v.str16()
			d.Offset = int64(v.u64())
			d.Msg = v.str16()
			if !v.bad && len(v.b) != 0 {
				return nil, bad(off, "damage record of %q: %d bytes left over", d.Path, len(v.b))
			}
			h.Damage = append(h.Damage, d)
		default:
			if tag&tagCritical != 0 {
				return nil, &FormatError{Region: "header", Offset: off, Msg: fmt.Sprintf("critical record %#04x not understood by this cbimg", tag), Err: ErrVersion}
			}
		}
		if v.bad {
			return nil, bad(off, "record %#x truncated", tag)
		}
	}
	if r.bad {
		return nil, bad(0, "records truncated")
	}
	if !sawExtents {
		return nil, bad(fixedHeaderLen, "system extent record missing")
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	return h, nil
}

// check validates relations between header fields, so that later
// arithmetic on them cannot overflow or index out of range.
func (h *Header) check() error {
	bad := func(format string, a ...any) error {
		return &FormatError{Region: "header", Offset: 0, Msg: fmt.Sprintf(format, a...), Err: ErrFormat}
	}
	pow2 := func(v uint32) bool { return v != 0 && v&(v-1) == 0 }
	switch {
	case h.Flags&^knownFlags != 0:
		return bad("unknown state flags %#02x", h.Flags)
	case h.RequiredFlags&^knownRequired != 0:
		return &FormatError{Region: "header", Offset: 14, Msg: fmt.Sprintf("required-feature flags %#04x not understood by this cbimg", h.RequiredFlags&^knownRequired), Err: ErrVersion}
	case h.Codec != CodecNone && h.Codec != CodecZstd:
		return &FormatError{Region: "header", Offset: 17, Msg: fmt.Sprintf("unknown compression %d", h.Codec), Err: ErrVersion}
	case !pow2(h.SectorSize) || h.SectorSize < 256 || h.SectorSize > 65536:
		return bad("sector size %d", h.SectorSize)
	case !pow2(h.ClusterSize) || h.ClusterSize < h.SectorSize || h.ClusterSize > maxClusterSz:
		return bad("cluster size %d", h.ClusterSize)
	case h.ChunkSize < minChunkSize || h.ChunkSize > maxChunkSize:
		return bad("chunk size %d", h.ChunkSize)
	case h.PartLength <= 0 || h.PartLength > 1<<56:
		return bad("partition length %d", h.PartLength)
	case h.FSSize <= 0 || h.FSSize > h.PartLength:
		return bad("file-system size %d, partition %d", h.FSSize, h.PartLength)
	case h.BitmapBits != h.ClusterCount:
		return bad("bitmap bits %d differ from cluster count %d", h.BitmapBits, h.ClusterCount)
	case h.BitmapLen != int64((h.BitmapBits+7)/8):
		return bad("bitmap length %d for %d bits", h.BitmapLen, h.BitmapBits)
	case h.ClusterOrigin < 0 || h.ClusterOrigin > h.PartLength:
		return bad("cluster origin %d", h.ClusterOrigin)
	case h.ClusterCount > uint64(h.PartLength-h.ClusterOrigin)/uint64(h.ClusterSize):
		return bad("%d clusters of %d bytes do not fit the partition (%d bytes)", h.ClusterCount, h.ClusterSize, h.PartLength)
	case h.ImageClusters > h.ClusterCount:
		return bad("%d stored clusters of %d", h.ImageClusters, h.ClusterCount)
	case h.SplitSize < 0:
		return bad("split size %d", h.SplitSize)
	case h.RequiredFlags&RequireSubFrames != 0 && (h.Codec != CodecZstd || !pow2(h.SubFrameSize) || h.SubFrameSize < BlockSize || h.SubFrameSize >= h.ChunkSize):
		return bad("zstd frame size %d for chunks of %d bytes, compression %s", h.SubFrameSize, h.ChunkSize, h.Codec)
	case h.RequiredFlags&RequireSubFrames == 0 && h.SubFrameSize != 0:
		return bad("zstd frame size %d without the required flag", h.SubFrameSize)
	}
	var sys int64
	for _, e := range h.SysExtents {
		if e.Offset < 0 || e.Length <= 0 || e.Offset > h.PartLength || e.Length > h.PartLength-e.Offset {
			return bad("system extent [%d,+%d) outside the partition", e.Offset, e.Length)
		}
		sys += e.Length
	}
	if want := sys + int64(h.ImageClusters)*int64(h.ClusterSize); h.LogicalLen != want {
		return bad("logical length %d, expected %d", h.LogicalLen, want)
	}
	if want := (h.LogicalLen + int64(h.ChunkSize) - 1) / int64(h.ChunkSize); int64(h.ChunkCount) != want {
		return bad("chunk count %d, expected %d", h.ChunkCount, want)
	}
	for _, x := range h.Exclusions {
		for _, r := range x.Runs {
			if r.Start > h.ClusterCount || r.Count > h.ClusterCount-r.Start {
				return bad("exclusion run %d+%d of %q outside the volume", r.Start, r.Count, x.Path)
			}
		}
	}
	return nil
}

// frame is a chunk frame header / chunk table entry.
type frame struct {
	Index      uint32
	Offset     int64 // image offset of the frame header (table only)
	LogicalLen uint32
	StoredLen  uint32
	Codec      Codec
	Flags      uint8  // FrameBlockCRC, FrameSubFrames
	sub        uint32 // Header.SubFrameSize (not stored in the frame)
	xxh        bool   // Header.RequiredFlags has RequireXXH3 (not stored)
	StoredCRC  uint32
	Sum        [32]byte // checksum of the logical bytes (logicalSum)
}

func (f *frame) encodeHeader() []byte {
	b := writeBuf(make([]byte, 0, frameHeaderLen))
	b.bytes([]byte(FrameMagic))
	b.u32(f.Index)
	b.u32(f.LogicalLen)
	b.u32(f.StoredLen)
	b.u8(uint8(f.Codec))
	b.u8(f.Flags)
	b.u16(0)
	b.u32(f.StoredCRC)
	b.bytes(f.Sum[:])
	b.u32(0)
	b.u32(crc(b))
	return b
}

func decodeFrameHeader(p []byte, off int64) (frame, error) {
	var f frame
	if len(p) < frameHeaderLen || string(p[:4]) != FrameMagic {
		return f, &FormatError{Region: "chunk", Offset: off, Msg: "chunk frame magic missing", Err: ErrFormat}
	}
	if got, want := crc(p[:frameHeaderLen-4]), binary.LittleEndian.Uint32(p[frameHeaderLen-4:]); got != want {
		return f, &FormatError{Region: "chunk", Offset: off, Msg: fmt.Sprintf("frame header CRC32C %08x, stored %08x", got, want), Err: ErrChecksum}
	}
	r := readBuf{b: p[4:frameHeaderLen]}
	f.Offset = off
	f.Index = r.u32()
	f.LogicalLen = r.u32()
	f.StoredLen = r.u32()
	f.Codec = Codec(r.u8())
	f.Flags = r.u8()
	r.take(2)
	f.StoredCRC = r.u32()
	copy(f.Sum[:], r.take(32))
	return f, nil
}

func (f *frame) appendEntry(b *writeBuf) {
	b.u64(uint64(f.Offset))
	b.u32(f.StoredLen)
	b.u32(f.LogicalLen)
	b.u8(uint8(f.Codec))
	b.u8(f.Flags)
	b.u16(0)
	b.u32(f.StoredCRC)
	b.bytes(f.Sum[:])
}

func (f *frame) readEntry(r *readBuf) {
	f.Offset = int64(r.u64())
	f.StoredLen = r.u32()
	f.LogicalLen = r.u32()
	f.Codec = Codec(r.u8())
	f.Flags = r.u8()
	r.take(2)
	f.StoredCRC = r.u32()
	copy(f.Sum[:], r.take(32))
}

// storedLenOK reports whether a frame's stored length fits its codec and
// flags: raw chunks store their logical bytes (and block checksums); a
// chunk of zstd frames holds at least a byte per frame and their index.
func (f *frame) storedLenOK() bool {
	switch {
	case f.Flags&^knownFrame != 0, f.Flags == FrameBlockCRC|FrameSubFrames:
		return false
	case f.Flags&FrameBlockCRC != 0:
		return f.Codec == CodecNone && int64(f.StoredLen) == int64(f.LogicalLen)+4*int64(blockCount(f.LogicalLen))
	case f.Flags&FrameSubFrames != 0:
		return f.Codec == CodecZstd && f.sub != 0 && f.LogicalLen > 0 && int64(f.StoredLen) >= 9*int64(subFrameCount(f.LogicalLen, f.sub))
	case f.Codec == CodecNone:
		return f.StoredLen == f.LogicalLen
	}
	return f.Codec == CodecZstd
}

// Footer is the fixed-size record at the end of an image.
type Footer struct {
	TableOffset int64
	ImageLen    int64 // total bytes of the image including the footer
	ChunkCount  uint32
	TableCRC    uint32
	Digest      [32]byte // BLAKE3-256 over header, bitmap, every chunk sum and the trailer
	HeaderCRC   uint32
	BitmapCRC   uint32
	TrailerLen  uint32 // bytes of trailer records between the table and the footer, 0 when none
}

func (f *Footer) encode() []byte {
	b := writeBuf(make([]byte, 0, FooterLen))
	b.bytes([]byte(FooterMagic))
	b.u64(uint64(f.TableOffset))
	b.u64(uint64(f.ImageLen))
	b.u32(f.ChunkCount)
	b.u32(f.TableCRC)
	b.bytes(f.Digest[:])
	b.u32(f.HeaderCRC)
	b.u32(f.BitmapCRC)
	b.u32(f.TrailerLen)
	b.u32(crc(b))
	return b
}

func decodeFooter(p []byte, off int64) (*Footer, error) {
	if len(p) != FooterLen || string(p[:8]) != FooterMagic {
		return nil, &FormatError{Region: "footer", Offset: off, Msg: "footer magic missing: the image is truncated or incomplete", Err: ErrTruncated}
	}
	if got, want := crc(p[:FooterLen-4]), binary.LittleEndian.Uint32(p[FooterLen-4:]); got != want {
		return nil, &FormatError{Region: "footer", Offset: off + FooterLen - 4, Msg: fmt.Sprintf("CRC32C %08x, stored %08x", got, want), Err: ErrChecksum}
	}
	r := readBuf{b: p[8:]}
	f := &Footer{}
	f.TableOffset = int64(r.u64())
	f.ImageLen = int64(r.u64())
	f.ChunkCount = r.u32()
	f.TableCRC = r.u32()
	copy(f.Digest[:], r.take(32))
	f.HeaderCRC = r.u32()
	f.BitmapCRC = r.u32()
	f.TrailerLen = r.u32()
	return f, nil
}

// Finish computes BitmapBits, BitmapLen, LogicalLen and ChunkCount from the
// other fields (ClusterCount, ImageClusters, SysExtents, ChunkSize).
func (h *Header) Finish() {
	if h.ChunkSize == 0 {
		h.ChunkSize = DefaultChunkSize
	}
	h.BitmapBits = h.ClusterCount
	h.BitmapLen = int64((h.ClusterCount + 7) / 8)
	h.LogicalLen = h.SysBytes() + int64(h.ImageClusters)*int64(h.ClusterSize)
	h.ChunkCount = uint32((h.LogicalLen + int64(h.ChunkSize) - 1) / int64(h.ChunkSize))
}

// encodeTrailer builds the trailer: facts known only at the end of a
// backup, such as clusters that could not be read.
func encodeTrailer(unreadable []Run) []byte {
	b := writeBuf(make([]byte, 0, 16+16*len(unreadable)))
	b.bytes([]byte(TrailerMagic))
	b.u32(0) // length, patched below
	b.u16(TagUnreadable)
	b.u32(uint32(16 * len(unreadable)))
	for _, r := range unreadable {
		b.u64(r.Start)
		b.u64(r.Count)
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)+4))
	b.u32(crc(b))
	return b
}

// decodeTrailer checks a trailer and returns the unreadable-cluster runs,
// bounded by the cluster count.
func decodeTrailer(p []byte, off int64, clusters uint64) ([]Run, error) {
	bad := func(err error, format string, a ...any) error {
		return &FormatError{Region: "trailer", Offset: off, Msg: fmt.Sprintf(format, a...), Err: err}
	}
	if len(p) < 12 || string(p[:4]) != TrailerMagic || int(binary.LittleEndian.Uint32(p[4:])) != len(p) {
		return nil, bad(ErrFormat, "trailer magic or length wrong")
	}
	if got, want := crc(p[:len(p)-4]), binary.LittleEndian.Uint32(p[len(p)-4:]); got != want {
		return nil, bad(ErrChecksum, "CRC32C %08x, stored %08x", got, want)
	}
	var runs []Run
	r := readBuf{b: p[8 : len(p)-4]}
	for len(r.b) > 0 && !r.bad {
		tag := r.u16()
		l := r.u32()
		if int64(l) > int64(len(r.b)) {
			return nil, bad(ErrFormat, "record %#x length %d past the trailer", tag, l)
		}
		v := readBuf{b: r.take(int(l))}
		switch {
		case tag == TagUnreadable:
			if l%16 != 0 {
				return nil, bad(ErrFormat, "unreadable-cluster record length %d", l)
			}
			for len(v.b) > 0 {
				run := Run{v.u64(), v.u64()}
				if run.Start > clusters || run.Count > clusters-run.Start {
					return nil, bad(ErrFormat, "unreadable run %d+%d outside the volume", run.Start, run.Count)
				}
				runs = append(runs, run)
			}
		case tag&tagCritical != 0:
			return nil, bad(ErrVersion, "critical record %#04x not understood by this cbimg", tag)
		}
	}
	if r.bad {
		return nil, bad(ErrFormat, "records truncated")
	}
	return runs, nil
}
