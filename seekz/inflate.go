package seekz

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Our own DEFLATE (RFC 1951) and gzip (RFC 1952) decoder. It exists because
// random access needs what compress/flate does not offer: starting at any
// block boundary (a bit offset) with a preset 32 KiB history, and reporting
// the bit offset of every block start during the indexing pass.

const (
	maxHist  = 32 << 10 // DEFLATE's largest distance
	winBytes = 1 << 17  // circular output buffer: history + unread output
	winMask  = winBytes - 1
	fastBits = 10
	maxCode  = 15
)

// bitReader reads LSB-first bits and counts the bytes it took, so the bit
// position of anything decoded is known.
type bitReader struct {
	r     *bufio.Reader
	base  int64 // stream offset of the first byte read
	taken int64 // bytes taken from r
	acc   uint64
	n     uint
}

func (b *bitReader) bitPos() int64 { return (b.base+b.taken)*8 - int64(b.n) }

// refill tops the accumulator up to at least 56 bits from buffered input,
// eight bytes at a time; near the end of the input it may add fewer.
func (b *bitReader) refill() {
	if b.n > 56 {
		return
	}
	p, _ := b.r.Peek(8)
	if len(p) < 8 {
		for b.n <= 56 {
			c, err := b.r.ReadByte()
			if err != nil {
				return
			}
			b.taken++
			b.acc |= uint64(c) << b.n
			b.n += 8
		}
		return
	}
	k := (64 - b.n) >> 3
	nn := b.n + k*8
	// Bits above nn are cleared: other paths append bytes there.
	b.acc = (b.acc | binary.LittleEndian.Uint64(p)<<b.n) & (uint64(1)<<nn - 1)
	b.n = nn
	b.r.Discard(int(k))
	b.taken += int64(k)
}

func (b *bitReader) fill(need uint) error {
	if b.n < need {
		b.refill()
	}
	for b.n < need {
		c, err := b.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return truncatedAt(b.base + b.taken)
			}
			return err
		}
		b.taken++
		b.acc |= uint64(c) << b.n
		b.n += 8
	}
	return nil
}

func (b *bitReader) bits(k uint) (uint32, error) {
	if k == 0 {
		return 0, nil
	}
	if err := b.fill(k); err != nil {
		return 0, err
	}
	v := uint32(b.acc & (1<<k - 1))
	b.acc >>= k
	b.n -= k
	return v, nil
}

// alignByte drops the bits left in the current byte.
func (b *bitReader) alignByte() {
	d := b.n % 8
	b.acc >>= d
	b.n -= d
}

// atEOF says whether no whole byte is left, after alignByte.
func (b *bitReader) atEOF() bool {
	if b.n >= 8 {
		return false
	}
	_, err := b.r.Peek(1)
	return err != nil
}

// huffman is a canonical Huffman decoder: a fastBits lookup table for short
// codes and the count/symbol walk for the rest.
type huffman struct {
	count [maxCode + 1]uint16
	sym   [288]uint16
	fast  [1 << fastBits]uint16 // len<<9 | sym, 0 = not in table
}

// build sets up the code for lengths; a code that is over-subscribed, or
// incomplete while using more than one symbol, is refused.
func (h *huffman) build(lengths []uint8) error {
	h.count = [maxCode + 1]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	used := 0
	for l := 1; l <= maxCode; l++ {
		left <<= 1
		left -= int(h.count[l])
		used += int(h.count[l])
		if left < 0 {
			return fmt.Errorf("%w: over-subscribed Huffman code", ErrCorrupt)
		}
	}
	if left > 0 && used > 1 {
		return fmt.Errorf("%w: incomplete Huffman code", ErrCorrupt)
	}
	var offs [maxCode + 2]uint16
	for l := 1; l <= maxCode; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for s, l := range lengths {
		if l != 0 {
			h.sym[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	// Fast table: codes are assigned in canonical order; store them bit-reversed.
	h.fast = [1 << fastBits]uint16{}
	code, idx := 0, 0
	for l := 1; l <= fastBits; l++ {
		for i := 0; i < int(h.count[l]); i++ {
			rev := reverse(code, l)
			for f := rev; f < 1<<fastBits; f += 1 << l {
				h.fast[f] = uint16(l)<<9 | h.sym[idx]
			}
			code++
			idx++
		}
		code <<= 1
	}
	return nil
}

func reverse(code, l int) int {
	r := 0
	for i := 0; i < l; i++ {
		r = r<<1 | code&1
		code >>= 1
	}
	return r
}

func (h *huffman) decode(b *bitReader) (int, error) {
	if b.n < maxCode {
		b.refill() // a short tail is handled by the slow walk
	}
	if e := h.fast[b.acc&(1<<fastBits-1)]; e != 0 && uint(e>>9) <= b.n {
		l := uint(e >> 9)
		b.acc >>= l
		b.n -= l
		return int(e & 511), nil
	}
	code, first, index := 0, 0, 0
	for l := 1; l <= maxCode; l++ {
		v, err := b.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(v)
		c := int(h.count[l])
		if code-c < first {
			return int(h.sym[index+(code-first)]), nil
		}
		index += c
		first += c
		first <<= 1
		code <<= 1
	}
	return 0, fmt.Errorf("%w: invalid Huffman code", ErrCorrupt)
}

var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = [30]uint32{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

var fixedLit, fixedDist huffman

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	// The fixed codes are complete by construction.
	if err := fixedLit.build(l[:]); err != nil {
		panic(err)
	}
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	// 30 of 32 five-bit codes: incomplete, allowed for the fixed code.
	fixedDist.buildLoose(d[:])
}

// buildLoose builds without the completeness check (the fixed distance code).
func (h *huffman) buildLoose(lengths []uint8) {
	var full [32]uint8
	copy(full[:], lengths)
	full[30], full[31] = 5, 5
	if err := h.build(full[:]); err != nil {
		panic(err)
	}
}

type inflateState int

const (
	stMemberHeader inflateState = iota
	stBlockHeader
	stStored
	stHuffman
	stTrailer
	stDone
)

// inflater decodes gzip members (or one block run of them starting mid
// member) into a circular window. Output is pulled with Read.
type inflater struct {
	br    bitReader
	state inflateState
	final bool

	win  [winBytes]byte
	wpos int64 // bytes produced (including a preset window)
	rpos int64 // bytes handed out
	// histStart is the output position before which back-references are
	// invalid (start of the member or of the preset window).
	histStart int64

	stored   int // bytes left in a stored block
	copyLen  int // pending match bytes
	copyDist int // its distance
	lit      *huffman
	dist     *huffman
	dyn      [2]huffman
	lens     [320]uint8
	memStart int64 // output position where the current member began (-1: unknown)
	crc      uint32
	crcPos   int64

	// onBlock, if set, is called at every block start with its bit offset.
	onBlock func(bit int64, out int64)
	// minRef is the lowest output position a match has copied from since
	// the indexing pass last set it: how much history a checkpoint needs.
	minRef int64
	// onMember, if set, is called at each member header with its byte offset.
	onMember func(in int64, out int64)
}

// newInflater starts at byte offset in of src, on a gzip member header.
func newInflater(src io.ReaderAt, size, in int64) *inflater {
	f := &inflater{}
	f.br = bitReader{r: bufio.NewReaderSize(io.NewSectionReader(src, in, size-in), 256<<10), base: in}
	f.state = stMemberHeader
	return f
}

// newInflaterAt starts at a block boundary bit, with window as history.
func newInflaterAt(src io.ReaderAt, size, bit int64, window []byte) (*inflater, error) {
	in := bit / 8
	if in >= size || len(window) > maxHist {
		return nil, fmt.Errorf("%w: checkpoint at bit %d out of range", ErrIndex, bit)
	}
	f := &inflater{}
	// A small buffer: a random read decodes a few KiB of input.
	f.br = bitReader{r: bufio.NewReaderSize(io.NewSectionReader(src, in, size-in), 32<<10), base: in}
	if _, err := f.br.bits(uint(bit % 8)); err != nil {
		return nil, err
	}
	copy(f.win[:], window)
	f.wpos, f.rpos, f.histStart = int64(len(window)), int64(len(window)), 0
	f.memStart = -1
	f.crcPos = f.wpos
	f.state = stBlockHeader
	return f, nil
}

// history copies the last n bytes of output.
func (f *inflater) history(n int) []byte {
	if avail := f.wpos - f.histStart; int64(n) > avail {
		n = int(avail)
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = f.win[(f.wpos-int64(n)+int64(i))&winMask]
	}
	return out
}

func (f *inflater) Read(p []byte) (int, error) {
	for f.wpos == f.rpos {
		if f.state == stDone {
			return 0, io.EOF
		}
		if err := f.step(); err != nil {
			f.state = stDone
			return 0, err
		}
	}
	n := 0
	for n < len(p) && f.rpos < f.wpos {
		s := int(f.rpos & winMask)
		e := s + int(f.wpos-f.rpos)
		if e > winBytes {
			e = winBytes
		}
		c := copy(p[n:], f.win[s:e])
		n += c
		f.rpos += int64(c)
	}
	return n, nil
}

// step decodes until some output is ready, or the stream ends.
func (f *inflater) step() error {
	defer f.sumTo()
	// Leave room: unread output plus 32 KiB of history must fit the window.
	for f.wpos-f.rpos < winBytes-maxHist-1024 {
		switch f.state {
		case stDone:
			return nil
		case stMemberHeader:
			if err := f.memberHeader(); err != nil {
				return err
			}
		case stBlockHeader:
			if f.final {
				f.state = stTrailer
				continue
			}
			if f.onBlock != nil {
				f.onBlock(f.br.bitPos(), f.wpos)
			}
			if err := f.blockHeader(); err != nil {
				return err
			}
		case stStored:
			if f.stored == 0 {
				f.state = stBlockHeader
				continue
			}
			if f.br.n >= 8 { // bytes already in the accumulator (n is a multiple of 8 here)
				f.put(byte(f.br.acc))
				f.br.acc >>= 8
				f.br.n -= 8
				f.stored--
				continue
			}
			if f.br.n == 0 {
				// Byte aligned with nothing buffered: copy straight in.
				s := int(f.wpos & winMask)
				e := min(s+f.stored, winBytes, s+int(winBytes-maxHist-1024-(f.wpos-f.rpos)))
				n, err := io.ReadFull(f.br.r, f.win[s:e])
				f.br.taken += int64(n)
				f.wpos += int64(n)
				f.stored -= n
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					return truncatedAt(f.br.base + f.br.taken)
				}
				if err != nil {
					return err
				}
				continue
			}
			v, err := f.br.bits(8)
			if err != nil {
				return err
			}
			f.put(byte(v))
			f.stored--
		case stHuffman:
			if err := f.huffmanRun(); err != nil {
				return err
			}
		case stTrailer:
			if err := f.trailer(); err != nil {
				return err
			}
			if f.wpos > f.rpos {
				return nil
			}
		}
	}
	return nil
}

func (f *inflater) put(c byte) {
	f.win[f.wpos&winMask] = c
	f.wpos++
}

func (f *inflater) memberHeader() error {
	f.br.alignByte()
	at := f.br.base + f.br.taken - int64(f.br.n/8)
	var h [10]byte
	for i := range h {
		v, err := f.br.bits(8)
		if err != nil {
			return err
		}
		h[i] = byte(v)
	}
	if h[0] != 0x1f || h[1] != 0x8b {
		return &OffsetError{Offset: at, Err: fmt.Errorf("%w: no gzip member header", ErrCorrupt)}
	}
	if h[2] != 8 || h[3]&0xe0 != 0 {
		return &OffsetError{Offset: at, Err: fmt.Errorf("%w: gzip method %d or flags %#x not defined", ErrCorrupt, h[2], h[3])}
	}
	flg := h[3]
	if flg&4 != 0 { // FEXTRA
		xl, err := f.br.bits(16)
		if err != nil {
			return err
		}
		for i := 0; i < int(xl); i++ {
			if _, err := f.br.bits(8); err != nil {
				return err
			}
		}
	}
	for _, bit := range []byte{8, 16} { // FNAME, FCOMMENT: zero-terminated
		if flg&bit == 0 {
			continue
		}
		for i := 0; ; i++ {
			if i > 1<<16 {
				return &OffsetError{Offset: at, Err: fmt.Errorf("%w: gzip name or comment longer than 64 KiB", ErrCorrupt)}
			}
			v, err := f.br.bits(8)
			if err != nil {
				return err
			}
			if v == 0 {
				break
			}
		}
	}
	if flg&2 != 0 { // FHCRC
		if _, err := f.br.bits(16); err != nil {
			return err
		}
	}
	if f.onMember != nil {
		f.onMember(at, f.wpos)
	}
	f.memStart = f.wpos
	f.histStart = f.wpos
	f.crc = 0
	f.crcPos = f.wpos
	f.final = false
	f.state = stBlockHeader
	return nil
}

func (f *inflater) trailer() error {
	f.sumTo()
	f.br.alignByte()
	at := f.br.base + f.br.taken - int64(f.br.n/8)
	crc, err := f.br.bits(32)
	if err != nil {
		return err
	}
	isize, err := f.br.bits(32)
	if err != nil {
		return err
	}
	if f.memStart >= 0 {
		// The CRC covers the member's output; computed over the window as
		// it passes is not possible once handed out, so it is kept running.
		if crc != f.crc || isize != uint32(f.wpos-f.memStart) {
			return &OffsetError{Offset: at, Err: fmt.Errorf("%w: gzip member CRC or size mismatch", ErrChecksum)}
		}
	}
	if f.br.atEOF() {
		f.state = stDone
		return nil
	}
	f.state = stMemberHeader
	return nil
}

func (f *inflater) blockHeader() error {
	h, err := f.br.bits(3)
	if err != nil {
		return err
	}
	f.final = h&1 != 0
	switch h >> 1 {
	case 0:
		f.br.alignByte()
		v, err := f.br.bits(32)
		if err != nil {
			return err
		}
		if uint16(v) != ^uint16(v>>16) {
			return f.errAt(fmt.Errorf("%w: stored block length check fails", ErrCorrupt))
		}
		f.stored = int(uint16(v))
		f.state = stStored
	case 1:
		f.lit, f.dist = &fixedLit, &fixedDist
		f.state = stHuffman
	case 2:
		if err := f.dynamic(); err != nil {
			return err
		}
		f.state = stHuffman
	default:
		return f.errAt(fmt.Errorf("%w: reserved block type", ErrCorrupt))
	}
	return nil
}

func (f *inflater) errAt(err error) error {
	return &OffsetError{Offset: f.br.bitPos() / 8, Err: err}
}

func (f *inflater) dynamic() error {
	v, err := f.br.bits(14)
	if err != nil {
		return err
	}
	nlit, ndist, ncl := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlit > 286 || ndist > 30 {
		return f.errAt(fmt.Errorf("%w: too many length or distance codes", ErrCorrupt))
	}
	var cl [19]uint8
	for i := 0; i < ncl; i++ {
		x, err := f.br.bits(3)
		if err != nil {
			return err
		}
		cl[clOrder[i]] = uint8(x)
	}
	var clh huffman
	if err := clh.build(cl[:]); err != nil {
		return f.errAt(err)
	}
	lens := f.lens[:nlit+ndist]
	for i := range lens {
		lens[i] = 0
	}
	for i := 0; i < len(lens); {
		s, err := clh.decode(&f.br)
		if err != nil {
			return err
		}
		if s < 16 {
			lens[i] = uint8(s)
			i++
			continue
		}
		var rep int
		var val uint8
		switch s {
		case 16:
			if i == 0 {
				return f.errAt(fmt.Errorf("%w: repeat with no previous length", ErrCorrupt))
			}
			x, err := f.br.bits(2)
			if err != nil {
				return err
			}
			rep, val = 3+int(x), lens[i-1]
		case 17:
			x, err := f.br.bits(3)
			if err != nil {
				return err
			}
			rep = 3 + int(x)
		default:
			x, err := f.br.bits(7)
			if err != nil {
				return err
			}
			rep = 11 + int(x)
		}
		if i+rep > len(lens) {
			return f.errAt(fmt.Errorf("%w: code lengths overrun", ErrCorrupt))
		}
		for ; rep > 0; rep-- {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 {
		return f.errAt(fmt.Errorf("%w: no end-of-block code", ErrCorrupt))
	}
	if err := f.dyn[0].build(lens[:nlit]); err != nil {
		return f.errAt(err)
	}
	if err := f.dyn[1].build(lens[nlit:]); err != nil {
		return f.errAt(err)
	}
	f.lit, f.dist = &f.dyn[0], &f.dyn[1]
	return nil
}

// huffmanRun decodes symbols until the window needs draining or the block ends.
func (f *inflater) huffmanRun() error {
	for f.wpos-f.rpos < winBytes-maxHist-1024 {
		if f.copyLen > 0 {
			// Copy in pieces that never overlap and never cross the
			// window's end. The output from src on repeats with period
			// dist and wpos-src stays a multiple of it, so each piece may
			// be as long as wpos-src: a run with a short distance (zeros)
			// doubles its pieces instead of copying dist bytes at a time.
			dist := int64(f.copyDist)
			src := f.wpos - dist
			for n := f.copyLen; n > 0; {
				s, d := int(src&winMask), int(f.wpos&winMask)
				k := min(n, int(f.wpos-src), winBytes-s, winBytes-d)
				copy(f.win[d:d+k], f.win[s:s+k])
				f.wpos += int64(k)
				n -= k
				src += (f.wpos - src) % dist
			}
			f.copyLen = 0
			continue
		}
		s, err := f.lit.decode(&f.br)
		if err != nil {
			return err
		}
		switch {
		case s < 256:
			f.put(byte(s))
		case s == 256:
			f.state = stBlockHeader
			return nil
		case s > 285:
			return f.errAt(fmt.Errorf("%w: invalid length symbol %d", ErrCorrupt, s))
		default:
			s -= 257
			x, err := f.br.bits(uint(lenExtra[s]))
			if err != nil {
				return err
			}
			length := int(lenBase[s]) + int(x)
			d, err := f.dist.decode(&f.br)
			if err != nil {
				return err
			}
			if d > 29 {
				return f.errAt(fmt.Errorf("%w: invalid distance symbol %d", ErrCorrupt, d))
			}
			x, err = f.br.bits(uint(dstExtra[d]))
			if err != nil {
				return err
			}
			dist := int(dstBase[d]) + int(x)
			if int64(dist) > f.wpos-f.histStart {
				return f.errAt(fmt.Errorf("%w: distance %d beyond the history", ErrCorrupt, dist))
			}
			if ref := f.wpos - int64(dist); ref < f.minRef {
				f.minRef = ref
			}
			f.copyLen, f.copyDist = length, dist
		}
	}
	return nil
}

// sumTo brings the member CRC up to the output produced; the bytes are
// still in the window because one step produces less than the window.
func (f *inflater) sumTo() {
	if f.memStart < 0 {
		f.crcPos = f.wpos
		return
	}
	for f.crcPos < f.wpos {
		s := int(f.crcPos & winMask)
		e := s + int(f.wpos-f.crcPos)
		if e > winBytes {
			e = winBytes
		}
		f.crc = crc32.Update(f.crc, crc32.IEEETable, f.win[s:e])
		f.crcPos += int64(e - s)
	}
}

func truncatedAt(off int64) error {
	return &OffsetError{Offset: off, Err: fmt.Errorf("%w: the stream ends here", ErrTruncated)}
}
