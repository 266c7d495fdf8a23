package volume

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// MFT record ("FILE") header layout.
const (
	recMagic      = 0x00 // "FILE"
	recUSAOffset  = 0x04 // uint16
	recUSACount   = 0x06 // uint16: 1 + number of 512-byte strides
	recSequence   = 0x10 // uint16
	recLinkCount  = 0x12 // uint16
	recAttrOffset = 0x14 // uint16: first attribute
	recFlags      = 0x16 // uint16
	recBytesInUse = 0x18 // uint32
	recBytesAlloc = 0x1C // uint32
	recBaseRef    = 0x20 // uint64: base record reference, 0 in a base record
	recHeaderMin  = 0x30

	recFlagInUse     = 0x0001
	recFlagDirectory = 0x0002

	// Update sequence arrays protect every 512-byte stride of a multi-sector
	// structure, whatever the sector size.
	ntfsFixupStride = 512
)

// Attribute type codes.
const (
	attrStandardInfo  = 0x10
	attrAttributeList = 0x20
	attrFileName      = 0x30
	attrVolumeName    = 0x60
	attrVolumeInfo    = 0x70
	attrData          = 0x80
	attrIndexRoot     = 0x90
	attrIndexAlloc    = 0xA0
	attrBitmap        = 0xB0
	attrEnd           = 0xFFFFFFFF
)

// Attribute flags.
const (
	attrFlagCompressed = 0x0001
	attrFlagEncrypted  = 0x4000
	attrFlagSparse     = 0x8000
)

// Well-known MFT record numbers.
const (
	mftRecMFT     = 0
	mftRecVolume  = 3
	mftRecRoot    = 5
	mftRecBitmap  = 6
	mftRecUpCase  = 10
	mftFirstUser  = 16
	ntfsRefMask   = 1<<48 - 1
	ntfsMaxAttrs  = 1024 // attributes in one record (a 64 KiB record holds fewer)
	ntfsMaxPieces = 1 << 16
)

// mftRecord is one MFT record after fixups.
type mftRecord struct {
	num      uint64
	seq      uint16
	flags    uint16
	links    uint16
	baseRef  uint64
	attrs    []ntfsAttr
	inUseLen uint32
}

func (r *mftRecord) inUse() bool { return r.flags&recFlagInUse != 0 }
func (r *mftRecord) isDir() bool { return r.flags&recFlagDirectory != 0 }

// ntfsAttr is one attribute header and its value or runlist.
type ntfsAttr struct {
	typ      uint32
	name     string
	flags    uint16
	id       uint16
	rec      uint64 // record number holding it
	resident bool
	value    []byte // resident value (aliases the record buffer copy)

	// Non-resident fields.
	startVCN  uint64
	lastVCN   uint64
	compUnit  uint8 // log2 of clusters per compression unit
	allocSize uint64
	dataSize  uint64
	initSize  uint64
	runs      []ntfsRun
}

// ntfsRun is a decoded runlist entry; lcn < 0 marks a sparse run.
type ntfsRun struct {
	vcn    uint64
	lcn    int64
	length uint64
}

func recErr(num uint64, off int64, format string, args ...any) error {
	return &FormatError{What: fmt.Sprintf("MFT record %d", num), Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

// applyFixups checks and undoes the update sequence array of a multi-sector
// structure (MFT record or index block) in place. what names it for errors.
func applyFixups(b []byte, usaOff, usaCount int, what func() string, off int64) error {
	strides := len(b) / ntfsFixupStride
	if usaCount != strides+1 {
		return &FormatError{What: what(), Offset: off, Err: ErrCorrupt,
			Msg: fmt.Sprintf("update sequence count %d, want %d for %d bytes", usaCount, strides+1, len(b))}
	}
	if usaOff < 0x08 || usaOff&1 != 0 || usaOff+2*usaCount > len(b) || usaOff+2*usaCount > ntfsFixupStride-2 {
		return &FormatError{What: what(), Offset: off, Err: ErrCorrupt,
			Msg: fmt.Sprintf("update sequence array at %#x (%d entries) does not fit", usaOff, usaCount)}
	}
	le := binary.LittleEndian
	usn := le.Uint16(b[usaOff:])
	for i := 0; i < strides; i++ {
		p := (i+1)*ntfsFixupStride - 2
		if got := le.Uint16(b[p:]); got != usn {
			return &FormatError{What: what(), Offset: off + int64(p), Err: ErrCorrupt,
				Msg: fmt.Sprintf("fixup mismatch in stride %d: %04x, update sequence number %04x (torn write)", i, got, usn)}
		}
		copy(b[p:p+2], b[usaOff+2+2*i:usaOff+4+2*i])
	}
	return nil
}

// parseRecord decodes an MFT record read from partition offset off. b is
// modified (fixups) and retained.
func parseRecord(b []byte, num uint64, off int64) (*mftRecord, error) {
	le := binary.LittleEndian
	if string(b[0:4]) != "FILE" {
		if allZero(b) {
			return nil, recErr(num, off, "record is all zeros")
		}
		return nil, recErr(num, off, "magic %q instead of \"FILE\"", printable(b[0:4]))
	}
	name := func() string { return fmt.Sprintf("MFT record %d", num) }
	if err := applyFixups(b, int(le.Uint16(b[recUSAOffset:])), int(le.Uint16(b[recUSACount:])), name, off); err != nil {
		return nil, err
	}
	r := &mftRecord{
		num:      num,
		seq:      le.Uint16(b[recSequence:]),
		links:    le.Uint16(b[recLinkCount:]),
		flags:    le.Uint16(b[recFlags:]),
		baseRef:  le.Uint64(b[recBaseRef:]),
		inUseLen: le.Uint32(b[recBytesInUse:]),
	}
	if r.inUseLen > uint32(len(b)) || r.inUseLen < recHeaderMin {
		return nil, recErr(num, off, "bytes in use %d, record size %d", r.inUseLen, len(b))
	}
	if !r.inUse() {
		return r, nil
	}
	p := int(le.Uint16(b[recAttrOffset:]))
	end := int(r.inUseLen)
	for n := 0; ; n++ {
		if p < recHeaderMin || p+4 > end || p&7 != 0 {
			return nil, recErr(num, off+int64(p), "attribute offset %#x outside the record's %d bytes in use", p, end)
		}
		typ := le.Uint32(b[p:])
		if typ == attrEnd {
			break
		}
		if n >= ntfsMaxAttrs {
			return nil, recErr(num, off+int64(p), "more than %d attributes", ntfsMaxAttrs)
		}
		if p+16 > end {
			return nil, recErr(num, off+int64(p), "attribute header past bytes in use")
		}
		alen := int(le.Uint32(b[p+4:]))
		if alen < 16 || alen&7 != 0 || p+alen > end {
			return nil, recErr(num, off+int64(p), "attribute type %#x length %d does not fit (at %#x of %d)", typ, alen, p, end)
		}
		a, err := parseAttr(b[p:p+alen], num)
		if err != nil {
			return nil, recErr(num, off+int64(p), "attribute type %#x: %v", typ, err)
		}
		r.attrs = append(r.attrs, a)
		p += alen
	}
	return r, nil
}

// parseAttr decodes one attribute; b is exactly the attribute's bytes.
func parseAttr(b []byte, rec uint64) (ntfsAttr, error) {
	le := binary.LittleEndian
	a := ntfsAttr{
		typ:      le.Uint32(b[0:]),
		flags:    le.Uint16(b[0x0C:]),
		id:       le.Uint16(b[0x0E:]),
		rec:      rec,
		resident: b[0x08] == 0,
	}
	nameLen := int(b[0x09])
	nameOff := int(le.Uint16(b[0x0A:]))
	if nameLen > 0 {
		if nameOff+2*nameLen > len(b) {
			return a, fmt.Errorf("name (%d chars at %#x) past attribute end %d", nameLen, nameOff, len(b))
		}
		a.name = utf16le(b[nameOff : nameOff+2*nameLen])
	}
	if a.resident {
		if len(b) < 0x18 {
			return a, fmt.Errorf("resident header needs 24 bytes, attribute has %d", len(b))
		}
		vlen := int(le.Uint32(b[0x10:]))
		voff := int(le.Uint16(b[0x14:]))
		if voff > len(b) || vlen > len(b)-voff {
			return a, fmt.Errorf("resident value (%d bytes at %#x) past attribute end %d", vlen, voff, len(b))
		}
		a.value = b[voff : voff+vlen]
		return a, nil
	}
	if len(b) < 0x40 {
		return a, fmt.Errorf("non-resident header needs 64 bytes, attribute has %d", len(b))
	}
	a.startVCN = le.Uint64(b[0x10:])
	a.lastVCN = le.Uint64(b[0x18:])
	runOff := int(le.Uint16(b[0x20:]))
	cu := le.Uint16(b[0x22:])
	if cu > 16 {
		return a, fmt.Errorf("compression unit 2^%d clusters", cu)
	}
	a.compUnit = uint8(cu)
	a.allocSize = le.Uint64(b[0x28:])
	a.dataSize = le.Uint64(b[0x30:])
	a.initSize = le.Uint64(b[0x38:])
	// lastVCN is -1 in an attribute with no clusters.
	end := a.lastVCN + 1
	if end < a.startVCN || end > 1<<62 {
		return a, fmt.Errorf("VCN range %d..%d", a.startVCN, int64(a.lastVCN))
	}
	if a.startVCN == 0 && (a.dataSize > a.allocSize || a.initSize > a.dataSize || a.allocSize > 1<<62) {
		return a, fmt.Errorf("sizes: allocated %d, data %d, initialized %d", a.allocSize, a.dataSize, a.initSize)
	}
	if runOff < 0x40 || runOff > len(b) {
		return a, fmt.Errorf("runlist offset %#x outside attribute of %d bytes", runOff, len(b))
	}
	runs, err := decodeRunlist(b[runOff:], a.startVCN)
	if err != nil {
		return a, err
	}
	if n := runsEnd(runs, a.startVCN); n != end {
		return a, fmt.Errorf("runlist covers VCN %d..%d, header says %d..%d", a.startVCN, int64(n)-1, a.startVCN, int64(a.lastVCN))
	}
	a.runs = runs
	return a, nil
}

func runsEnd(runs []ntfsRun, start uint64) uint64 {
	if len(runs) == 0 {
		return start
	}
	last := runs[len(runs)-1]
	return last.vcn + last.length
}

// decodeRunlist decodes mapping pairs starting at VCN start. Each pair is a
// header byte (low nibble: length bytes, high nibble: LCN-delta bytes), the
// run length, and a signed LCN delta; no delta bytes means sparse.
func decodeRunlist(b []byte, start uint64) ([]ntfsRun, error) {
	var runs []ntfsRun
	vcn := start
	var lcn int64
	for p := 0; ; {
		if p >= len(b) {
			return nil, fmt.Errorf("runlist not terminated within %d bytes", len(b))
		}
		h := b[p]
		if h == 0 {
			break
		}
		ln, on := int(h&0x0F), int(h>>4)
		if ln == 0 || ln > 8 || on > 8 || p+1+ln+on > len(b) {
			return nil, fmt.Errorf("bad runlist pair header %#x at byte %d", h, p)
		}
		var length uint64
		for i := ln - 1; i >= 0; i-- {
			length = length<<8 | uint64(b[p+1+i])
		}
		if length == 0 || length > 1<<62 || int64(length) < 0 {
			return nil, fmt.Errorf("run length %d at byte %d", length, p)
		}
		r := ntfsRun{vcn: vcn, length: length, lcn: -1}
		if on > 0 {
			var d int64
			for i := on - 1; i >= 0; i-- {
				d = d<<8 | int64(b[p+1+ln+i])
			}
			// Sign-extend from on bytes.
			if on < 8 {
				shift := uint(64 - 8*on)
				d = d << shift >> shift
			}
			lcn += d
			if lcn < 0 {
				return nil, fmt.Errorf("run at byte %d starts at negative cluster %d", p, lcn)
			}
			r.lcn = lcn
		}
		runs = append(runs, r)
		if len(runs) > ntfsMaxPieces*16 {
			return nil, fmt.Errorf("more than %d runs", ntfsMaxPieces*16)
		}
		vcn += length
		if vcn > 1<<62 {
			return nil, fmt.Errorf("runs exceed 2^62 clusters")
		}
		p += 1 + ln + on
	}
	return runs, nil
}

func utf16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ntfsFileName is a decoded $FILE_NAME value.
type ntfsFileName struct {
	parent    uint64 // record number
	parentSeq uint16
	namespace uint8
	flags     uint32
	times     [4]uint64 // created, modified, MFT changed, accessed
	dataSize  uint64
	name      string
	raw       []uint16
}

// Filename namespaces.
const (
	nsPOSIX    = 0
	nsWin32    = 1
	nsDOS      = 2
	nsWin32DOS = 3
)

func parseFileName(v []byte) (ntfsFileName, error) {
	if len(v) < 0x42 {
		return ntfsFileName{}, fmt.Errorf("$FILE_NAME of %d bytes, need at least 66", len(v))
	}
	le := binary.LittleEndian
	ref := le.Uint64(v[0:])
	fn := ntfsFileName{
		parent:    ref & ntfsRefMask,
		parentSeq: uint16(ref >> 48),
		dataSize:  le.Uint64(v[0x30:]),
		flags:     le.Uint32(v[0x38:]),
		namespace: v[0x41],
	}
	for i := range fn.times {
		fn.times[i] = le.Uint64(v[0x08+8*i:])
	}
	n := int(v[0x40])
	if 0x42+2*n > len(v) {
		return fn, fmt.Errorf("$FILE_NAME name of %d chars past value end %d", n, len(v))
	}
	fn.raw = make([]uint16, n)
	for i := range fn.raw {
		fn.raw[i] = le.Uint16(v[0x42+2*i:])
	}
	fn.name = string(utf16.Decode(fn.raw))
	return fn, nil
}
