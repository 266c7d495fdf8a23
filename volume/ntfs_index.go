package volume

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// Directory indexes ($I30): a B+ tree of $FILE_NAME keys. The root node is
// the resident $INDEX_ROOT; further nodes are fixed-size "INDX" blocks in
// $INDEX_ALLOCATION, and $BITMAP:$I30 says which blocks are live. A listing
// reads every live node; freed blocks still hold old names and are skipped.
const (
	idxRootHeader   = 0x10 // node header inside $INDEX_ROOT
	idxBlockHeader  = 0x18 // node header inside an INDX block
	idxEntryHasSub  = 0x01
	idxEntryLast    = 0x02
	idxNodeMinSize  = 0x10
	idxMaxEntries   = 1 << 24 // entries in one directory
	fnFlagDirectory = 0x10000000
	i30             = "$I30"
	dirCacheSize    = 64
)

// ntfsDirEntry is one live name in a directory index.
type ntfsDirEntry struct {
	rec uint64
	seq uint16
	fn  ntfsFileName
}

type ntfsDirCacheEntry struct {
	seq    uint16
	byName map[string][]int // upcased name -> indexes into entries
	entrs  []ntfsDirEntry
	tick   uint64
}

// listDir returns the live entries of directory record dir (all namespaces,
// in index order: root node first, then blocks by VCN).
func (v *ntfsVol) listDir(dir uint64, seq uint16) ([]ntfsDirEntry, error) {
	rec, err := v.readBaseRecord(dir, seq)
	if err != nil {
		return nil, err
	}
	if !rec.isDir() {
		return nil, recErr(dir, v.recordOffset(dir), "not a directory")
	}
	attrs, err := v.loadAttrs(rec)
	if err != nil {
		return nil, err
	}
	root := attrsOf(attrs, attrIndexRoot, i30)
	if len(root) != 1 || !root[0].resident {
		return nil, recErr(dir, v.recordOffset(dir), "directory without a resident $INDEX_ROOT:$I30")
	}
	rv := root[0].value
	what := fmt.Sprintf("MFT record %d $INDEX_ROOT", dir)
	if len(rv) < idxRootHeader+idxNodeMinSize {
		return nil, &FormatError{What: what, Offset: -1, Msg: fmt.Sprintf("%d bytes", len(rv)), Err: ErrCorrupt}
	}
	le := binary.LittleEndian
	if t := le.Uint32(rv[0:]); t != attrFileName {
		return nil, &FormatError{What: what, Offset: -1, Msg: fmt.Sprintf("indexes attribute %#x, not $FILE_NAME", t), Err: ErrCorrupt}
	}
	ibs := le.Uint32(rv[8:])
	var out []ntfsDirEntry
	if err := parseIndexNode(rv[idxRootHeader:], &out, what); err != nil {
		return nil, err
	}
	alloc := attrsOf(attrs, attrIndexAlloc, i30)
	if len(alloc) == 0 {
		return out, nil
	}
	if ibs != v.boot.IndexBlockSize {
		return nil, &FormatError{What: what, Offset: -1, Err: ErrCorrupt,
			Msg: fmt.Sprintf("index block size %d, boot sector says %d", ibs, v.boot.IndexBlockSize)}
	}
	as, err := v.fileStream(attrs, dir, attrIndexAlloc, i30)
	if err != nil {
		return nil, err
	}
	bs, err := v.fileStream(attrs, dir, attrBitmap, i30)
	if err != nil {
		return nil, err
	}
	nblocks := as.dataSize / uint64(ibs)
	if nblocks > uint64(v.inf.Size)/uint64(ibs) {
		return nil, as.err(-1, "%d index blocks on a %d-byte volume", nblocks, v.inf.Size)
	}
	bmLen := (nblocks + 7) / 8
	if bs.dataSize < bmLen {
		bmLen = bs.dataSize
	}
	bm := make([]byte, bmLen)
	if err := bs.readFull(bm, 0); err != nil {
		return nil, err
	}
	buf := make([]byte, ibs)
	cs := uint64(v.inf.ClusterSize)
	for i := uint64(0); i < nblocks; i++ {
		if i/8 >= bmLen || bm[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		off := i * uint64(ibs)
		if err := as.readFull(buf, int64(off)); err != nil {
			return nil, err
		}
		bwhat := func() string { return fmt.Sprintf("MFT record %d index block %d", dir, i) }
		phys := as.physOffset(int64(off))
		if string(buf[0:4]) != "INDX" {
			return nil, &FormatError{What: bwhat(), Offset: phys, Err: ErrCorrupt,
				Msg: fmt.Sprintf("magic %q instead of \"INDX\" in a block the index bitmap marks live", printable(buf[0:4]))}
		}
		if err := applyFixups(buf, int(le.Uint16(buf[4:])), int(le.Uint16(buf[6:])), bwhat, phys); err != nil {
			return nil, err
		}
		// Block VCNs count clusters, or 512-byte units when blocks are
		// smaller than clusters.
		vcn := le.Uint64(buf[0x10:])
		if vcn != off/cs && vcn != off/512 {
			return nil, &FormatError{What: bwhat(), Offset: phys, Err: ErrCorrupt,
				Msg: fmt.Sprintf("block says VCN %d, it sits at byte %d of the index", vcn, off)}
		}
		if err := parseIndexNode(buf[idxBlockHeader:], &out, bwhat()); err != nil {
			return nil, err
		}
		if len(out) > idxMaxEntries {
			return nil, as.err(-1, "more than %d entries", idxMaxEntries)
		}
	}
	return out, nil
}

// physOffset is the partition offset of stream byte off, or -1.
func (s *ntfsStream) physOffset(off int64) int64 {
	if s.resident || s.compressed {
		return -1
	}
	cs := int64(s.v.inf.ClusterSize)
	i := s.findRun(uint64(off / cs))
	if i < 0 || s.runs[i].lcn < 0 {
		return -1
	}
	r := s.runs[i]
	return (r.lcn+(off/cs-int64(r.vcn)))*cs + off%cs
}

// parseIndexNode appends the entries of one index node; b starts at the
// node header.
func parseIndexNode(b []byte, out *[]ntfsDirEntry, what string) error {
	le := binary.LittleEndian
	bad := func(format string, args ...any) error {
		return &FormatError{What: what, Offset: -1, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if len(b) < idxNodeMinSize {
		return bad("node header truncated")
	}
	start := int(le.Uint32(b[0:]))
	end := int(le.Uint32(b[4:]))
	if start < idxNodeMinSize || end > len(b) || start > end {
		return bad("entries %d..%d outside the node's %d bytes", start, end, len(b))
	}
	for p := start; ; {
		if p+0x10 > end {
			return bad("entry at %d passes the node end %d without a last entry", p, end)
		}
		ref := le.Uint64(b[p:])
		l := int(le.Uint16(b[p+8:]))
		kl := int(le.Uint16(b[p+10:]))
		flags := le.Uint16(b[p+12:])
		if l < 0x10 || l&7 != 0 || p+l > end || 0x10+kl > l {
			return bad("entry at %d: length %d, key length %d, node end %d", p, l, kl, end)
		}
		if flags&idxEntryLast != 0 {
			break
		}
		fn, err := parseFileName(b[p+0x10 : p+0x10+kl])
		if err != nil {
			return bad("entry at %d: %v", p, err)
		}
		*out = append(*out, ntfsDirEntry{rec: ref & ntfsRefMask, seq: uint16(ref >> 48), fn: fn})
		p += l
	}
	return nil
}

// loadUpcase reads $UpCase, the table NTFS compares names with.
func (v *ntfsVol) loadUpcase() ([]uint16, error) {
	v.upcaseOnce.Do(func() {
		v.upcase, v.upcaseErr = v.readUpcase()
	})
	return v.upcase, v.upcaseErr
}

func (v *ntfsVol) readUpcase() ([]uint16, error) {
	rec, err := v.readBaseRecord(mftRecUpCase, 0)
	if err != nil {
		return nil, fmt.Errorf("$UpCase: %w", err)
	}
	attrs, err := v.loadAttrs(rec)
	if err != nil {
		return nil, fmt.Errorf("$UpCase: %w", err)
	}
	s, err := v.fileStream(attrs, mftRecUpCase, attrData, "")
	if err != nil {
		return nil, err
	}
	if s.dataSize != 2*65536 {
		return nil, s.err(-1, "$UpCase holds %d bytes, want 131072", s.dataSize)
	}
	b := make([]byte, s.dataSize)
	if err := s.readFull(b, 0); err != nil {
		return nil, err
	}
	t := make([]uint16, 65536)
	for i := range t {
		t[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return t, nil
}

// upcaseKey maps a name to its case-folded form under the volume's table.
func upcaseKey(t []uint16, raw []uint16) string {
	b := make([]byte, 2*len(raw))
	for i, c := range raw {
		binary.LittleEndian.PutUint16(b[2*i:], t[c])
	}
	return string(b)
}

// dirIndex returns directory dir's entries with a case-insensitive name
// map, cached for the most recently used directories.
func (v *ntfsVol) dirIndex(dir uint64, seq uint16) (*ntfsDirCacheEntry, error) {
	v.dirMu.Lock()
	v.dirTick++
	if e := v.dirCache[dir]; e != nil && (seq == 0 || e.seq == 0 || e.seq == seq) {
		e.tick = v.dirTick
		v.dirMu.Unlock()
		return e, nil
	}
	v.dirMu.Unlock()
	up, err := v.loadUpcase()
	if err != nil {
		return nil, err
	}
	ents, err := v.listDir(dir, seq)
	if err != nil {
		return nil, err
	}
	e := &ntfsDirCacheEntry{seq: seq, byName: make(map[string][]int, len(ents)), entrs: ents}
	for i := range ents {
		k := upcaseKey(up, ents[i].fn.raw)
		e.byName[k] = append(e.byName[k], i)
	}
	v.dirMu.Lock()
	defer v.dirMu.Unlock()
	if v.dirCache == nil {
		v.dirCache = map[uint64]*ntfsDirCacheEntry{}
	}
	if len(v.dirCache) >= dirCacheSize {
		var old uint64
		oldTick := ^uint64(0)
		for k, c := range v.dirCache {
			if c.tick < oldTick {
				old, oldTick = k, c.tick
			}
		}
		delete(v.dirCache, old)
	}
	e.tick = v.dirTick
	v.dirCache[dir] = e
	return e, nil
}

// lookup finds name in directory dir, case-insensitively (an exact match
// wins when names differ only in case). It returns nil when absent.
func (v *ntfsVol) lookup(dir uint64, name string) (*ntfsDirEntry, error) {
	return v.lookupSeq(dir, 0, name)
}

// lookupSeq is lookup in directory dir with sequence number seq (0: any).
func (v *ntfsVol) lookupSeq(dir uint64, seq uint16, name string) (*ntfsDirEntry, error) {
	d, err := v.dirIndex(dir, seq)
	if err != nil {
		return nil, err
	}
	up, _ := v.loadUpcase()
	raw := utf16.Encode([]rune(name))
	idx := d.byName[upcaseKey(up, raw)]
	if len(idx) == 0 {
		return nil, nil
	}
	for _, i := range idx {
		if d.entrs[i].fn.name == name {
			return &d.entrs[i], nil
		}
	}
	return &d.entrs[idx[0]], nil
}
