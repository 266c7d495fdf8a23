package volume

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// ntfsStream is one attribute's value with all its pieces joined in VCN
// order: the data of a file stream, an index allocation, a bitmap.
type ntfsStream struct {
	v          *ntfsVol
	what       string // for errors, e.g. "MFT record 42 $DATA:foo"
	resident   bool
	value      []byte
	runs       []ntfsRun // VCN-ordered, contiguous from VCN 0
	dataSize   uint64
	initSize   uint64
	allocSize  uint64
	compUnit   uint8 // log2 clusters per compression unit; 0 when not compressed
	compressed bool
	encrypted  bool
	sparse     bool

	// Last decompressed compression unit, guarded by mu.
	mu       sync.Mutex
	unitIdx  int64
	unitData []byte
}

func (s *ntfsStream) err(off int64, format string, args ...any) error {
	return &FormatError{What: s.what, Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

// joinStream builds a stream from the pieces of one attribute (same type and
// name), which may come from several MFT records.
func (v *ntfsVol) joinStream(pieces []ntfsAttr, what string) (*ntfsStream, error) {
	if len(pieces) == 0 {
		return nil, &FormatError{What: what, Offset: -1, Msg: "attribute missing", Err: ErrCorrupt}
	}
	s := &ntfsStream{v: v, what: what, unitIdx: -1}
	if len(pieces) == 1 && pieces[0].resident {
		s.resident = true
		s.value = pieces[0].value
		s.dataSize = uint64(len(s.value))
		s.initSize = s.dataSize
		s.allocSize = s.dataSize
		return s, nil
	}
	ps := make([]ntfsAttr, len(pieces))
	copy(ps, pieces)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].startVCN < ps[j].startVCN })
	var next uint64
	for i, p := range ps {
		if p.resident {
			return nil, s.err(-1, "resident piece among %d pieces", len(ps))
		}
		if p.startVCN != next {
			return nil, s.err(-1, "piece %d starts at VCN %d, expected %d (record %d)", i, p.startVCN, next, p.rec)
		}
		s.runs = append(s.runs, p.runs...)
		next = runsEnd(p.runs, p.startVCN)
	}
	first := ps[0]
	s.dataSize, s.initSize, s.allocSize = first.dataSize, first.initSize, first.allocSize
	s.encrypted = first.flags&attrFlagEncrypted != 0
	s.sparse = first.flags&attrFlagSparse != 0
	if first.flags&attrFlagCompressed != 0 && first.compUnit > 0 {
		s.compressed = true
		s.compUnit = first.compUnit
	}
	cs := uint64(v.inf.ClusterSize)
	if next > (1<<62)/cs || next*cs < s.dataSize {
		return nil, s.err(-1, "runs map %d clusters, data size is %d bytes", next, s.dataSize)
	}
	nc := v.inf.ClusterCount
	for _, r := range s.runs {
		if r.lcn >= 0 && (uint64(r.lcn) >= nc || r.length > nc-uint64(r.lcn)) {
			return nil, s.err(-1, "run of %d clusters at LCN %d passes the volume's %d clusters", r.length, r.lcn, nc)
		}
	}
	return s, nil
}

// size is the logical size of the stream.
func (s *ntfsStream) size() int64 { return int64(s.dataSize) }

// clusterRuns returns the allocated clusters in file order; sparse runs are
// left out.
func (s *ntfsStream) clusterRuns() []Run {
	if s.resident {
		return nil
	}
	out := []Run{}
	for _, r := range s.runs {
		if r.lcn < 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Start+out[n-1].Count == uint64(r.lcn) {
			out[n-1].Count += r.length
			continue
		}
		out = append(out, Run{Start: uint64(r.lcn), Count: r.length})
	}
	return out
}

// findRun returns the index of the run holding vcn, or -1.
func (s *ntfsStream) findRun(vcn uint64) int {
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].vcn+s.runs[i].length > vcn })
	if i < len(s.runs) && s.runs[i].vcn <= vcn {
		return i
	}
	return -1
}

// ReadAt reads the stream's logical bytes: sparse ranges and bytes past the
// initialized size read as zeros; reads past the end return io.EOF.
func (s *ntfsStream) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", s.what, off)
	}
	size := int64(s.dataSize)
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > size-off {
		n = int(size - off)
		eof = io.EOF
	}
	if err := s.read(p[:n], off); err != nil {
		return 0, err
	}
	return n, eof
}

// readFull reads exactly len(p) bytes at off, all within the data size.
func (s *ntfsStream) readFull(p []byte, off int64) error {
	if off < 0 || off > int64(s.dataSize) || int64(len(p)) > int64(s.dataSize)-off {
		return s.err(-1, "read of %d bytes at %d past data size %d", len(p), off, s.dataSize)
	}
	return s.read(p, off)
}

func (s *ntfsStream) read(p []byte, off int64) error {
	if s.resident {
		copy(p, s.value[off:])
		return nil
	}
	// Bytes past the initialized size are zero whatever the clusters hold.
	init := int64(s.initSize)
	if end := off + int64(len(p)); end > init {
		z := init - off
		if z < 0 {
			z = 0
		}
		clear(p[z:])
		p = p[:z]
	}
	if s.compressed {
		return s.readCompressed(p, off)
	}
	cs := int64(s.v.inf.ClusterSize)
	for len(p) > 0 {
		vcn := uint64(off / cs)
		i := s.findRun(vcn)
		if i < 0 {
			return s.err(-1, "byte %d (VCN %d) not mapped by the runlist", off, vcn)
		}
		r := s.runs[i]
		runEnd := int64(r.vcn+r.length) * cs
		k := int64(len(p))
		if k > runEnd-off {
			k = runEnd - off
		}
		if r.lcn < 0 {
			clear(p[:k])
		} else {
			phys := (r.lcn+int64(vcn-r.vcn))*cs + off%cs
			if err := readFull(s.v.r, p[:k], phys); err != nil {
				return fmt.Errorf("%s: %w", s.what, err)
			}
		}
		p = p[k:]
		off += k
	}
	return nil
}

// ntfsMaxCompUnit bounds a compression unit; Windows uses 16 clusters of
// at most 4 KiB.
const ntfsMaxCompUnit = 1 << 20

// readCompressed serves reads of an LZNT1-compressed stream one compression
// unit at a time.
func (s *ntfsStream) readCompressed(p []byte, off int64) error {
	unit := int64(s.v.inf.ClusterSize) << s.compUnit
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 {
		u := off / unit
		data, err := s.unit(u)
		if err != nil {
			return err
		}
		k := copy(p, data[off-u*unit:])
		p = p[k:]
		off += int64(k)
	}
	return nil
}

// unit returns compression unit u decoded: all clusters allocated means
// stored raw, none means zeros, otherwise the allocated clusters hold LZNT1
// data and the rest of the unit is sparse.
func (s *ntfsStream) unit(u int64) ([]byte, error) {
	if s.unitIdx == u {
		return s.unitData, nil
	}
	cs := uint64(s.v.inf.ClusterSize)
	per := uint64(1) << s.compUnit
	unitBytes := cs * per
	if unitBytes > ntfsMaxCompUnit {
		return nil, &FormatError{What: s.what, Offset: -1, Err: ErrUnsupported,
			Msg: fmt.Sprintf("compression unit of %d clusters of %d bytes", per, cs)}
	}
	if s.unitData == nil {
		s.unitData = make([]byte, unitBytes)
	}
	s.unitIdx = -1
	out := s.unitData
	start := uint64(u) * per
	var raw []byte
	var alloc uint64
	for vcn := start; vcn < start+per; {
		i := s.findRun(vcn)
		if i < 0 {
			return nil, s.err(-1, "compression unit %d: VCN %d not mapped", u, vcn)
		}
		r := s.runs[i]
		k := r.vcn + r.length - vcn
		if k > start+per-vcn {
			k = start + per - vcn
		}
		if r.lcn >= 0 {
			if raw == nil {
				raw = make([]byte, unitBytes)
			}
			phys := int64(uint64(r.lcn)+vcn-r.vcn) * int64(cs)
			if err := readFull(s.v.r, raw[alloc*cs:(alloc+k)*cs], phys); err != nil {
				return nil, fmt.Errorf("%s: %w", s.what, err)
			}
			alloc += k
		}
		vcn += k
	}
	switch {
	case alloc == 0:
		clear(out)
	case alloc == per:
		copy(out, raw)
	default:
		n, err := lznt1Decompress(out, raw[:alloc*cs])
		if err != nil {
			return nil, s.err(-1, "compression unit %d (VCN %d): %v", u, start, err)
		}
		clear(out[n:])
	}
	s.unitIdx = u
	return out, nil
}
