package seekz

import (
	"bufio"
	"compress/bzip2"
	"fmt"
	"hash/crc32"
	"io"
)

// bzip2 (the format as bzip2 1.0 writes it; no published spec, described in
// Seward's "bzip2 and libbzip2" manual and the bytes the tool writes): a
// stream is "BZh" and a level digit, blocks that each start with the 48-bit
// magic 0x314159265359 and a CRC at any bit offset, and an end marker
// 0x177245385090 with the combined CRC. Blocks are independent; one block
// is decoded on its own by handing compress/bzip2 a stream made of the
// level, that block's bits and an end marker whose combined CRC is the
// block's CRC. Checkpoints: In = the block's bit offset, A = its end bit
// offset, B = the stream's level digit.
//
// Block magics are found by scanning bits; the magic can also occur inside
// compressed data, so a candidate is accepted only when the bits up to it
// decode as a whole block with a matching CRC.

const (
	bzBlockMagic = 0x314159265359
	bzEndMagic   = 0x177245385090
)

// bitScanner reads a stream bit by bit (MSB first, as bzip2 packs).
type bitScanner struct {
	r   *bufio.Reader
	pos int64 // bits consumed
	reg uint64
	end bool
}

func (s *bitScanner) next() bool {
	if s.pos%8 == 0 {
		c, err := s.r.ReadByte()
		if err != nil {
			s.end = true
			return false
		}
		s.reg = s.reg<<8 | uint64(c)
	}
	s.pos++
	return true
}

// window48 is the 48 bits that ended at the last bit consumed.
func (s *bitScanner) window48() uint64 {
	sh := uint((8 - s.pos%8) % 8)
	return (s.reg >> sh) & (1<<48 - 1)
}

// bzBits copies bits [from, to) of src into a byte-aligned buffer.
func bzBits(src io.ReaderAt, from, to int64) ([]byte, error) {
	first, last := from/8, (to+7)/8
	raw := make([]byte, last-first+1)
	if _, err := src.ReadAt(raw[:last-first], first); err != nil {
		return nil, err
	}
	n := to - from
	out := make([]byte, (n+7)/8)
	sh := uint(from % 8)
	for i := range out {
		out[i] = raw[i]<<sh | raw[i+1]>>(8-sh)
	}
	if n%8 != 0 {
		out[len(out)-1] &= 0xff << (8 - uint(n%8))
	}
	return out, nil
}

// bzBlockStream wraps a block's bits into a one-block bzip2 stream.
func bzBlockStream(block []byte, nbits int64, level byte) []byte {
	var w bitWriter
	w.bytes = append(w.bytes, 'B', 'Z', 'h', level)
	w.bytes = append(w.bytes, block[:nbits/8]...)
	for i := nbits / 8 * 8; i < nbits; i++ {
		w.bit(uint(block[i/8]>>(7-uint(i%8))) & 1)
	}
	crc := uint64(0)
	for i := 48; i < 80; i++ { // the block CRC follows its magic
		crc = crc<<1 | uint64(block[i/8]>>(7-uint(i%8))&1)
	}
	w.bits(bzEndMagic, 48)
	w.bits(crc, 32)
	return w.flush()
}

type bitWriter struct {
	bytes []byte
	acc   byte
	n     uint
}

func (w *bitWriter) bit(b uint) {
	w.acc = w.acc<<1 | byte(b)
	w.n++
	if w.n == 8 {
		w.bytes = append(w.bytes, w.acc)
		w.acc, w.n = 0, 0
	}
}

func (w *bitWriter) bits(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bit(uint(v>>uint(i)) & 1)
	}
}

func (w *bitWriter) flush() []byte {
	for w.n != 0 {
		w.bit(0)
	}
	return w.bytes
}

// bzDecodeBlock decodes bits [from, to) as one block into w.
func bzDecodeBlock(src io.ReaderAt, from, to int64, level byte, w io.Writer) (int64, error) {
	blk, err := bzBits(src, from, to)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, bzip2.NewReader(bytesReader(bzBlockStream(blk, to-from, level))))
}

// bzMaxBlockBits bounds a compressed block: 900 kB of input expands by a
// few percent at worst.
func bzMaxBlockBits(level byte) int64 { return int64(level-'0')*100000*8*5/4 + 1<<16 }

func indexBzip2(b *builder) error {
	s := &bitScanner{r: bufio.NewReaderSize(io.NewSectionReader(b.src, 0, b.src.total), 1<<20)}
	var combined uint32
	var level byte
	streamStart := func() error {
		at := s.pos / 8
		var h [4]byte
		for i := range h {
			for k := 0; k < 8; k++ {
				if !s.next() {
					return &OffsetError{Offset: at, Err: fmt.Errorf("%w: bzip2 stream header cut short", ErrTruncated)}
				}
			}
			h[i] = byte(s.reg)
		}
		if string(h[:3]) != "BZh" || h[3] < '1' || h[3] > '9' {
			return &OffsetError{Offset: at, Err: fmt.Errorf("%w: no bzip2 stream header", ErrCorrupt)}
		}
		level, combined = h[3], 0
		return nil
	}
	if err := streamStart(); err != nil {
		return err
	}
	// Read the first magic of the stream.
	read48 := func() (uint64, error) {
		for i := 0; i < 48; i++ {
			if !s.next() {
				return 0, &OffsetError{Offset: s.pos / 8, Err: fmt.Errorf("%w: bzip2 stream cut short", ErrTruncated)}
			}
		}
		return s.window48(), nil
	}
	m, err := read48()
	if err != nil {
		return err
	}
	var spans int64
	for {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		switch m {
		case bzEndMagic:
			var crc uint32
			for i := 0; i < 32; i++ {
				if !s.next() {
					return &OffsetError{Offset: s.pos / 8, Err: fmt.Errorf("%w: bzip2 stream CRC cut short", ErrTruncated)}
				}
				crc = crc<<1 | uint32(s.reg>>uint((8-s.pos%8)%8))&1
			}
			if crc != combined {
				return &OffsetError{Offset: s.pos / 8, Err: fmt.Errorf("%w: bzip2 stream CRC", ErrChecksum)}
			}
			for s.pos%8 != 0 {
				s.next()
			}
			if _, err := s.r.Peek(1); err != nil {
				return nil // end of the last stream
			}
			if err := streamStart(); err != nil {
				return err
			}
			if m, err = read48(); err != nil {
				return err
			}
			continue
		case bzBlockMagic:
		default:
			return &OffsetError{Offset: s.pos / 8, Err: fmt.Errorf("%w: no bzip2 block or end marker", ErrCorrupt)}
		}
		from := s.pos - 48
		// Scan for the next magic that ends this block.
		var blockCRC uint32
		var firstErr error // the decode error at the first candidate end
		for {
			found := false
			for s.next() {
				if s.pos-from == 80 {
					blockCRC = uint32(s.reg >> uint((8-s.pos%8)%8))
				}
				if s.pos-from > 80 {
					if w := s.window48(); w == bzBlockMagic || w == bzEndMagic {
						found = true
						break
					}
				}
				if s.pos-from > bzMaxBlockBits(level) {
					if firstErr != nil {
						return &OffsetError{Offset: from / 8, Err: fmt.Errorf("%w: bzip2 block does not decode: %w", ErrCorrupt, firstErr)}
					}
					return &OffsetError{Offset: from / 8, Err: fmt.Errorf("%w: bzip2 block longer than its level allows", ErrCorrupt)}
				}
			}
			if !found {
				if firstErr != nil && s.pos-from <= bzMaxBlockBits(level) {
					// Cut short, or damaged with no later block to try.
					return &OffsetError{Offset: from / 8, Err: fmt.Errorf("%w: bzip2 stream ends inside a block (%w)", ErrTruncated, firstErr)}
				}
				return &OffsetError{Offset: s.pos / 8, Err: fmt.Errorf("%w: bzip2 stream ends inside a block", ErrTruncated)}
			}
			to := s.pos - 48
			sum := crc32.New(castagnoli)
			n, err := bzDecodeBlock(b.src, from, to, level, sum)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				spans++
				if spans > 1<<20 {
					return &OffsetError{Offset: from / 8, Err: fmt.Errorf("%w: bzip2 block", ErrCorrupt)}
				}
				continue // a magic inside compressed data; look further
			}
			b.cps = append(b.cps, checkpoint{In: from, Out: b.size, A: to, B: int64(level), Sum: int64(sum.Sum32())})
			b.size += n
			combined = (combined<<1 | combined>>31) ^ blockCRC
			m = s.window48()
			break
		}
	}
}

type bzip2Segments struct{}

func (bzip2Segments) open(r *Reader, i int) (io.Reader, io.Closer, error) {
	c := r.cps[i]
	if c.A-c.In > bzMaxBlockBits(byte(c.B)) || c.B < '1' || c.B > '9' {
		return nil, nil, fmt.Errorf("%w: bzip2 checkpoint %d", ErrIndex, i)
	}
	blk, err := bzBits(r.src, c.In, c.A)
	if err != nil {
		return nil, nil, err
	}
	return bzip2.NewReader(bytesReader(bzBlockStream(blk, c.A-c.In, byte(c.B)))), nil, nil
}
