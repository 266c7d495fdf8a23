package volume

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// ntfsVol is an opened NTFS volume. Layout references: the NTFS chapters of
// Carrier's "File System Forensic Analysis" and the Linux-NTFS project's
// documentation of the on-disk format.
type ntfsVol struct {
	r    io.ReaderAt
	boot *NTFSBoot
	inf  Info

	recSize   uint32
	mft       *ntfsStream // $MFT's unnamed $DATA
	nrec      uint64      // records the $MFT data holds
	mftBitmap []byte      // $MFT's $BITMAP, one bit per record

	upcaseOnce sync.Once
	upcase     []uint16
	upcaseErr  error

	dirMu    sync.Mutex
	dirCache map[uint64]*ntfsDirCacheEntry
	dirTick  uint64

	opened  []Damage // damage Open tolerated
	checkMu sync.Mutex
	checked map[entryKey]entryCheck // results of checkEntry
}

// Caps on what on-disk counts may make us allocate or loop over.
const (
	ntfsMaxRecords      = 1 << 32 // MFT records
	ntfsMaxAttrListSize = 16 << 20
	ntfsMaxPathDepth    = 2048
)

// openNTFS opens the NTFS file system at the start of r (size bytes).
func openNTFS(r io.ReaderAt, size int64) (fsImpl, error) {
	return openNTFSVol(r, size)
}

func openNTFSVol(r io.ReaderAt, size int64) (*ntfsVol, error) {
	var b [512]byte
	if err := readFull(r, b[:], 0); err != nil {
		return nil, &FormatError{What: "NTFS boot sector", Offset: 0, Msg: err.Error(), Err: ErrCorrupt}
	}
	boot, err := ParseNTFSBoot(b[:])
	if err != nil {
		return nil, err
	}
	v := &ntfsVol{r: r, boot: boot, recSize: boot.RecordSize}
	bps := int64(boot.BytesPerSector)
	fsBytes := int64(boot.TotalSectors) * bps
	if size < fsBytes {
		return nil, &FormatError{What: "NTFS volume", Offset: size, Err: ErrCorrupt,
			Msg: fmt.Sprintf("truncated: boot sector says %d sectors (%d bytes), partition has %d bytes", boot.TotalSectors, fsBytes, size)}
	}
	// The backup boot sector sits in the sector after the last one counted.
	vsize := fsBytes + bps
	if vsize > size {
		vsize = size
	}
	v.inf = Info{
		Type:          NTFS,
		SectorSize:    boot.BytesPerSector,
		ClusterSize:   boot.ClusterSize,
		TotalSectors:  boot.TotalSectors,
		Size:          vsize,
		ClusterCount:  boot.ClusterCount(),
		HiddenSectors: boot.HiddenSectors,
		Serial:        boot.Serial,
		OEMName:       boot.OEMName,
	}
	if err := v.loadMFT(); err != nil {
		return nil, err
	}
	// $Volume holds only the label and the dirty flag: without it the
	// volume can still be copied.
	if err := v.loadVolumeInfo(); err != nil {
		v.opened = append(v.opened, damageOf(DamageVolume, "/$Volume", err))
	}
	return v, nil
}

func (v *ntfsVol) damageAtOpen() []Damage { return v.opened }

func (v *ntfsVol) info() *Info { return &v.inf }

// loadMFT reads record 0 from the boot sector's $MFT cluster and builds the
// map of the whole $MFT from its $DATA, following its attribute list.
func (v *ntfsVol) loadMFT() error {
	off := int64(v.boot.MFTCluster) * int64(v.inf.ClusterSize)
	buf := make([]byte, v.recSize)
	if err := readFull(v.r, buf, off); err != nil {
		return recErr(0, off, "%v", err)
	}
	rec0, err := parseRecord(buf, 0, off)
	if err != nil {
		return err
	}
	if !rec0.inUse() {
		return recErr(0, off, "$MFT record is not marked in use")
	}
	var first []ntfsAttr
	hasList := false
	for _, a := range rec0.attrs {
		if a.typ == attrData && a.name == "" {
			first = append(first, a)
		}
		if a.typ == attrAttributeList {
			hasList = true
		}
	}
	if len(first) == 0 || first[0].resident {
		return recErr(0, off, "$MFT has no non-resident $DATA")
	}
	// Bootstrap with the pieces in record 0, then, if the attribute list
	// names pieces in extension records, read those through that map.
	if v.mft, err = v.joinPartial(first, "$MFT $DATA"); err != nil {
		return err
	}
	v.nrec = v.mft.dataSize / uint64(v.recSize)
	attrs := rec0.attrs
	if hasList {
		if attrs, err = v.loadAttrs(rec0); err != nil {
			return fmt.Errorf("$MFT attribute list: %w", err)
		}
	}
	if v.mft, err = v.joinStream(attrsOf(attrs, attrData, ""), "$MFT $DATA"); err != nil {
		return err
	}
	if v.mft.dataSize%uint64(v.recSize) != 0 {
		return recErr(0, off, "$MFT data size %d is not a multiple of the record size %d", v.mft.dataSize, v.recSize)
	}
	v.nrec = v.mft.dataSize / uint64(v.recSize)
	if v.nrec > ntfsMaxRecords || v.mft.dataSize > uint64(v.inf.Size) {
		return recErr(0, off, "$MFT data size %d bytes for a %d-byte volume", v.mft.dataSize, v.inf.Size)
	}
	if v.nrec < mftFirstUser {
		return recErr(0, off, "$MFT holds %d records, fewer than the %d system files", v.nrec, mftFirstUser)
	}
	bm, err := v.joinStream(attrsOf(attrs, attrBitmap, ""), "$MFT $BITMAP")
	if err != nil {
		return err
	}
	n := (v.nrec + 7) / 8
	if bm.dataSize < n {
		n = bm.dataSize
	}
	v.mftBitmap = make([]byte, n)
	if err := bm.readFull(v.mftBitmap, 0); err != nil {
		return err
	}
	return nil
}

// joinPartial maps the leading pieces of $MFT's $DATA found in record 0,
// enough to reach its extension records.
func (v *ntfsVol) joinPartial(pieces []ntfsAttr, what string) (*ntfsStream, error) {
	s := &ntfsStream{v: v, what: what, unitIdx: -1}
	var next uint64
	for _, p := range pieces {
		if p.resident || p.startVCN != next {
			break
		}
		s.runs = append(s.runs, p.runs...)
		next = runsEnd(p.runs, p.startVCN)
	}
	s.dataSize, s.initSize, s.allocSize = pieces[0].dataSize, pieces[0].initSize, pieces[0].allocSize
	if m := next * uint64(v.inf.ClusterSize); m < s.dataSize {
		s.dataSize = m
		if s.initSize > m {
			s.initSize = m
		}
	}
	nc := v.inf.ClusterCount
	for _, r := range s.runs {
		if r.lcn >= 0 && (uint64(r.lcn) >= nc || r.length > nc-uint64(r.lcn)) {
			return nil, s.err(-1, "run of %d clusters at LCN %d passes the volume's %d clusters", r.length, r.lcn, nc)
		}
	}
	return s, nil
}

// attrsOf returns the attributes of type typ and name name, in order.
func attrsOf(attrs []ntfsAttr, typ uint32, name string) []ntfsAttr {
	var out []ntfsAttr
	for _, a := range attrs {
		if a.typ == typ && a.name == name {
			out = append(out, a)
		}
	}
	return out
}

// recordInUse reports the $MFT bitmap bit of record n.
func (v *ntfsVol) recordInUse(n uint64) bool {
	i := n / 8
	return i < uint64(len(v.mftBitmap)) && v.mftBitmap[i]&(1<<(n%8)) != 0
}

// recordOffset returns the partition offset of record n's first byte, or -1.
func (v *ntfsVol) recordOffset(n uint64) int64 {
	pos := n * uint64(v.recSize)
	cs := uint64(v.inf.ClusterSize)
	i := v.mft.findRun(pos / cs)
	if i < 0 || v.mft.runs[i].lcn < 0 {
		return -1
	}
	r := v.mft.runs[i]
	return int64((uint64(r.lcn)+pos/cs-r.vcn)*cs + pos%cs)
}

// readRecord reads and parses MFT record n.
func (v *ntfsVol) readRecord(n uint64) (*mftRecord, error) {
	if n >= v.nrec {
		return nil, recErr(n, -1, "record number past the %d records of $MFT", v.nrec)
	}
	buf := make([]byte, v.recSize)
	if err := v.mft.readFull(buf, int64(n)*int64(v.recSize)); err != nil {
		return nil, fmt.Errorf("MFT record %d: %w", n, err)
	}
	return parseRecord(buf, n, v.recordOffset(n))
}

// readBaseRecord reads record n and checks that it is an in-use base record
// (with sequence number seq when seq != 0).
func (v *ntfsVol) readBaseRecord(n uint64, seq uint16) (*mftRecord, error) {
	rec, err := v.readRecord(n)
	if err != nil {
		return nil, err
	}
	if !rec.inUse() {
		return nil, recErr(n, v.recordOffset(n), "record not in use")
	}
	if rec.baseRef != 0 {
		return nil, recErr(n, v.recordOffset(n), "extension record of %d, not a base record", rec.baseRef&ntfsRefMask)
	}
	if seq != 0 && rec.seq != seq {
		return nil, recErr(n, v.recordOffset(n), "sequence number %d, reference expects %d (stale reference)", rec.seq, seq)
	}
	return rec, nil
}

// ntfsAttrListEntry is one $ATTRIBUTE_LIST entry.
type ntfsAttrListEntry struct {
	typ      uint32
	name     string
	startVCN uint64
	rec      uint64
	seq      uint16
	id       uint16
}

func parseAttrList(b []byte, what string) ([]ntfsAttrListEntry, error) {
	le := binary.LittleEndian
	var out []ntfsAttrListEntry
	for p := 0; p < len(b); {
		if p+0x1A > len(b) {
			return nil, &FormatError{What: what, Offset: -1, Err: ErrCorrupt,
				Msg: fmt.Sprintf("attribute list entry at byte %d truncated (list has %d bytes)", p, len(b))}
		}
		typ := le.Uint32(b[p:])
		if typ == attrEnd || typ == 0 {
			break
		}
		l := int(le.Uint16(b[p+4:]))
		nl := int(b[p+6])
		no := int(b[p+7])
		if l < 0x1A || p+l > len(b) || (nl > 0 && no+2*nl > l) {
			return nil, &FormatError{What: what, Offset: -1, Err: ErrCorrupt,
				Msg: fmt.Sprintf("attribute list entry at byte %d: length %d, name %d chars at %d", p, l, nl, no)}
		}
		ref := le.Uint64(b[p+0x10:])
		e := ntfsAttrListEntry{
			typ:      typ,
			startVCN: le.Uint64(b[p+8:]),
			rec:      ref & ntfsRefMask,
			seq:      uint16(ref >> 48),
			id:       le.Uint16(b[p+0x18:]),
		}
		if nl > 0 {
			e.name = utf16le(b[p+no : p+no+2*nl])
		}
		out = append(out, e)
		p += l
	}
	return out, nil
}

// loadAttrs returns all attributes of the file whose base record is base,
// gathering those that its $ATTRIBUTE_LIST places in extension records. The
// order is the attribute list's (by type, name, then starting VCN).
func (v *ntfsVol) loadAttrs(base *mftRecord) ([]ntfsAttr, error) {
	lists := attrsOf(base.attrs, attrAttributeList, "")
	if len(lists) == 0 {
		return base.attrs, nil
	}
	what := fmt.Sprintf("MFT record %d $ATTRIBUTE_LIST", base.num)
	if len(lists) > 1 {
		return nil, &FormatError{What: what, Offset: -1, Msg: "more than one attribute list", Err: ErrCorrupt}
	}
	ls, err := v.joinStream(lists, what)
	if err != nil {
		return nil, err
	}
	if ls.dataSize > ntfsMaxAttrListSize {
		return nil, &FormatError{What: what, Offset: -1, Msg: fmt.Sprintf("%d bytes", ls.dataSize), Err: ErrCorrupt}
	}
	lb := make([]byte, ls.dataSize)
	if err := ls.readFull(lb, 0); err != nil {
		return nil, err
	}
	entries, err := parseAttrList(lb, what)
	if err != nil {
		return nil, err
	}
	recs := map[uint64]*mftRecord{base.num: base}
	out := make([]ntfsAttr, 0, len(entries)+1)
	out = append(out, lists[0])
	for _, e := range entries {
		if e.typ == attrAttributeList {
			continue
		}
		r := recs[e.rec]
		if r == nil {
			if len(recs) > ntfsMaxPieces {
				return nil, &FormatError{What: what, Offset: -1, Msg: "too many extension records", Err: ErrCorrupt}
			}
			if r, err = v.readRecord(e.rec); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			if !r.inUse() || r.baseRef&ntfsRefMask != base.num || r.seq != e.seq {
				return nil, &FormatError{What: what, Offset: -1, Err: ErrCorrupt,
					Msg: fmt.Sprintf("entry for type %#x names record %d (seq %d), which is not an in-use extension of this file (in use %v, base %d, seq %d)",
						e.typ, e.rec, e.seq, r.inUse(), r.baseRef&ntfsRefMask, r.seq)}
			}
			recs[e.rec] = r
		}
		found := false
		for _, a := range r.attrs {
			if a.typ == e.typ && a.id == e.id && a.name == e.name {
				if !a.resident && a.startVCN != e.startVCN {
					break
				}
				out = append(out, a)
				found = true
				break
			}
		}
		if !found {
			return nil, &FormatError{What: what, Offset: -1, Err: ErrCorrupt,
				Msg: fmt.Sprintf("attribute type %#x id %d name %q VCN %d not found in record %d", e.typ, e.id, e.name, e.startVCN, e.rec)}
		}
	}
	return out, nil
}

// loadVolumeInfo reads the label and dirty flag from $Volume.
func (v *ntfsVol) loadVolumeInfo() error {
	rec, err := v.readBaseRecord(mftRecVolume, 0)
	if err != nil {
		return fmt.Errorf("$Volume: %w", err)
	}
	attrs, err := v.loadAttrs(rec)
	if err != nil {
		return fmt.Errorf("$Volume: %w", err)
	}
	if a := attrsOf(attrs, attrVolumeName, ""); len(a) > 0 && a[0].resident {
		v.inf.Label = utf16le(a[0].value)
	}
	vi := attrsOf(attrs, attrVolumeInfo, "")
	if len(vi) == 0 || !vi[0].resident || len(vi[0].value) < 12 {
		return recErr(mftRecVolume, v.recordOffset(mftRecVolume), "$Volume has no valid $VOLUME_INFORMATION")
	}
	flags := binary.LittleEndian.Uint16(vi[0].value[0x0A:])
	v.inf.Dirty = flags&0x0001 != 0
	return nil
}

// fileStream joins the $DATA (or other) attribute typ/name of a file.
func (v *ntfsVol) fileStream(attrs []ntfsAttr, rec uint64, typ uint32, name string) (*ntfsStream, error) {
	what := fmt.Sprintf("MFT record %d %s", rec, attrLabel(typ, name))
	return v.joinStream(attrsOf(attrs, typ, name), what)
}

func attrLabel(typ uint32, name string) string {
	t := fmt.Sprintf("attribute %#x", typ)
	switch typ {
	case attrData:
		t = "$DATA"
	case attrIndexRoot:
		t = "$INDEX_ROOT"
	case attrIndexAlloc:
		t = "$INDEX_ALLOCATION"
	case attrBitmap:
		t = "$BITMAP"
	}
	if name != "" {
		t += ":" + name
	}
	return t
}

// bitmap returns the $Bitmap contents, ceil(ClusterCount/8) bytes with the
// padding bits past the last cluster cleared.
func (v *ntfsVol) bitmap() ([]byte, error) {
	rec, err := v.readBaseRecord(mftRecBitmap, 0)
	if err != nil {
		return nil, fmt.Errorf("$Bitmap: %w", err)
	}
	attrs, err := v.loadAttrs(rec)
	if err != nil {
		return nil, fmt.Errorf("$Bitmap: %w", err)
	}
	s, err := v.fileStream(attrs, mftRecBitmap, attrData, "")
	if err != nil {
		return nil, err
	}
	nc := v.inf.ClusterCount
	n := (nc + 7) / 8
	if s.dataSize < n {
		return nil, s.err(-1, "$Bitmap holds %d bytes, %d clusters need %d", s.dataSize, nc, n)
	}
	out := make([]byte, n)
	if err := s.readFull(out, 0); err != nil {
		return nil, err
	}
	if r := nc % 8; r != 0 {
		out[n-1] &= byte(1<<r - 1)
	}
	return out, nil
}

// systemExtents: the sectors past the last whole cluster, which hold the
// backup boot sector.
func (v *ntfsVol) systemExtents() []Extent {
	start := int64(v.inf.ClusterCount) * int64(v.inf.ClusterSize)
	if start >= v.inf.Size {
		return nil
	}
	return []Extent{{Offset: start, Length: v.inf.Size - start}}
}

// hibernated looks for /hiberfil.sys and checks its signature.
func (v *ntfsVol) hibernated() (bool, error) {
	ref, err := v.lookup(mftRecRoot, "hiberfil.sys")
	if err != nil {
		return false, err
	}
	if ref == nil {
		return false, nil
	}
	rec, err := v.readBaseRecord(ref.rec, ref.seq)
	if err != nil {
		return false, fmt.Errorf("hiberfil.sys: %w", err)
	}
	attrs, err := v.loadAttrs(rec)
	if err != nil {
		return false, fmt.Errorf("hiberfil.sys: %w", err)
	}
	if len(attrsOf(attrs, attrData, "")) == 0 {
		return false, nil
	}
	s, err := v.fileStream(attrs, rec.num, attrData, "")
	if err != nil {
		return false, err
	}
	if s.dataSize < 4 {
		return false, nil
	}
	var sig [4]byte
	if err := s.readFull(sig[:], 0); err != nil {
		return false, err
	}
	switch string(toLowerASCII(sig[:])) {
	case "hibr": // "wake" means Windows resumed from it: not hibernated
		return true, nil
	}
	return false, nil
}

func toLowerASCII(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
