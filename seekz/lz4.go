package seekz

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// lz4 frame format (github.com/lz4/lz4 doc/lz4_Frame_format.md) and block
// format (doc/lz4_Block_format.md), decoded by our own code. Frames may be
// concatenated, skippable frames are skipped. With independent blocks (the
// lz4 tool's default) a block start is a checkpoint (In = offset of the
// block's size field, A = offset of its frame's descriptor, B = the flag
// byte); with linked blocks the indexing pass fills a cache file.

const (
	lz4Magic    = 0x184d2204
	lz4MaxBlock = 4 << 20
)

type lz4Frame struct {
	flg, bd  byte
	blockMax int
	next     int64 // offset of the first block
}

// lz4ParseFrame reads a frame descriptor at off.
func lz4ParseFrame(src io.ReaderAt, off int64) (*lz4Frame, error) {
	var h [19]byte
	if _, err := src.ReadAt(h[:7], off); err != nil {
		return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: lz4 frame header cut short", ErrTruncated)}
	}
	if binary.LittleEndian.Uint32(h[:4]) != lz4Magic {
		return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: no lz4 frame magic", ErrCorrupt)}
	}
	flg, bd := h[4], h[5]
	if flg>>6 != 1 || flg&2 != 0 || bd&0x8f != 0 || bd>>4 < 4 {
		return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: lz4 frame version or reserved bits", ErrCorrupt)}
	}
	if flg&1 != 0 {
		return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: lz4 frame with a dictionary", ErrCodec)}
	}
	n := 6
	if flg&8 != 0 {
		n += 8
	}
	if _, err := src.ReadAt(h[:n+1], off); err != nil {
		return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: lz4 frame header cut short", ErrTruncated)}
	}
	if byte(xxh32(h[4:n], 0)>>8) != h[n] {
		return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: lz4 frame header checksum", ErrChecksum)}
	}
	return &lz4Frame{flg: flg, bd: bd, blockMax: 1 << (8 + 2*uint(bd>>4)), next: off + int64(n) + 1}, nil
}

// lz4Block decodes one block into dst after hist bytes of history already
// in dst[:hist]; it returns the new length.
func lz4Block(dst []byte, hist int, src []byte) (int, error) {
	d := hist
	s := 0
	for {
		if s >= len(src) {
			return 0, fmt.Errorf("%w: lz4 block ends without last literals", ErrCorrupt)
		}
		tok := src[s]
		s++
		lit := int(tok >> 4)
		if lit == 15 {
			for {
				if s >= len(src) {
					return 0, fmt.Errorf("%w: lz4 literal length cut short", ErrCorrupt)
				}
				c := src[s]
				s++
				lit += int(c)
				if lit > len(src) {
					return 0, fmt.Errorf("%w: lz4 literal run beyond the block", ErrCorrupt)
				}
				if c != 255 {
					break
				}
			}
		}
		if s+lit > len(src) || d+lit > len(dst) {
			return 0, fmt.Errorf("%w: lz4 literals beyond the block", ErrCorrupt)
		}
		copy(dst[d:], src[s:s+lit])
		s += lit
		d += lit
		if s == len(src) {
			return d, nil
		}
		if s+2 > len(src) {
			return 0, fmt.Errorf("%w: lz4 offset cut short", ErrCorrupt)
		}
		o := int(src[s]) | int(src[s+1])<<8
		s += 2
		if o == 0 || o > d {
			return 0, fmt.Errorf("%w: lz4 match offset %d beyond the history", ErrCorrupt, o)
		}
		ml := int(tok&15) + 4
		if tok&15 == 15 {
			for {
				if s >= len(src) {
					return 0, fmt.Errorf("%w: lz4 match length cut short", ErrCorrupt)
				}
				c := src[s]
				s++
				ml += int(c)
				if ml > len(dst) {
					return 0, fmt.Errorf("%w: lz4 match beyond the block", ErrCorrupt)
				}
				if c != 255 {
					break
				}
			}
		}
		if d+ml > len(dst) {
			return 0, fmt.Errorf("%w: lz4 match beyond the block", ErrCorrupt)
		}
		for i := 0; i < ml; i++ {
			dst[d+i] = dst[d-o+i]
		}
		d += ml
	}
}

// lz4Decoder decodes blocks of one frame from a block start onwards, and
// following frames; it keeps 64 KiB of history for linked blocks.
type lz4Decoder struct {
	src   io.ReaderAt
	size  int64
	off   int64 // next block size field
	fr    *lz4Frame
	buf   []byte // history (up to 64 KiB) + current block
	hist  int
	out   []byte // undelivered output
	comp  []byte
	cs    *xxh32State // content checksum of a frame decoded from its start
	done  bool
	block func(off, out int64) // called at each block start of a frame with independent blocks
	total int64
}

func (z *lz4Decoder) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.done {
			return 0, io.EOF
		}
		if err := z.next(); err != nil {
			z.done = true
			return 0, err
		}
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

func (z *lz4Decoder) next() error {
	if z.fr == nil {
		if z.off == z.size {
			z.done = true
			return nil
		}
		var m [8]byte
		if _, err := z.src.ReadAt(m[:4], z.off); err != nil {
			return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 frame cut short", ErrTruncated)}
		}
		if v := binary.LittleEndian.Uint32(m[:4]); v&0xfffffff0 == 0x184d2a50 {
			if _, err := z.src.ReadAt(m[:8], z.off); err != nil {
				return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 skippable frame cut short", ErrTruncated)}
			}
			z.off += 8 + int64(binary.LittleEndian.Uint32(m[4:]))
			if z.off > z.size {
				return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 skippable frame cut short", ErrTruncated)}
			}
			return nil
		}
		fr, err := lz4ParseFrame(z.src, z.off)
		if err != nil {
			return err
		}
		z.fr, z.off, z.hist = fr, fr.next, 0
		z.cs = &xxh32State{}
	}
	var bs [4]byte
	if _, err := z.src.ReadAt(bs[:], z.off); err != nil {
		return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 block cut short", ErrTruncated)}
	}
	v := binary.LittleEndian.Uint32(bs[:])
	if v == 0 { // end mark, then the optional content checksum
		z.off += 4
		if z.fr.flg&4 != 0 {
			if _, err := z.src.ReadAt(bs[:], z.off); err != nil {
				return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 content checksum cut short", ErrTruncated)}
			}
			if z.cs != nil && z.cs.sum() != binary.LittleEndian.Uint32(bs[:]) {
				return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 content checksum", ErrChecksum)}
			}
			z.off += 4
		}
		z.fr, z.cs = nil, nil
		return nil
	}
	if z.block != nil && z.fr.flg&0x20 != 0 {
		z.block(z.off, z.total)
	}
	n := int(v & 0x7fffffff)
	if n > z.fr.blockMax {
		return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 block larger than the frame allows", ErrCorrupt)}
	}
	need := n
	if z.fr.flg&0x10 != 0 {
		need += 4
	}
	if cap(z.comp) < need {
		z.comp = make([]byte, need)
	}
	c := z.comp[:need]
	if _, err := z.src.ReadAt(c, z.off+4); err != nil {
		return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 block cut short", ErrTruncated)}
	}
	if z.fr.flg&0x10 != 0 && xxh32(c[:n], 0) != binary.LittleEndian.Uint32(c[n:]) {
		return &OffsetError{Offset: z.off, Err: fmt.Errorf("%w: lz4 block checksum", ErrChecksum)}
	}
	linked := z.fr.flg&0x20 == 0
	if !linked {
		z.hist = 0
	} else if z.hist > 64<<10 {
		copy(z.buf, z.buf[z.hist-64<<10:z.hist])
		z.hist = 64 << 10
	}
	if len(z.buf) < 64<<10+z.fr.blockMax {
		nb := make([]byte, 64<<10+z.fr.blockMax)
		copy(nb, z.buf[:z.hist])
		z.buf = nb
	}
	var end int
	if v&0x80000000 != 0 {
		end = z.hist + copy(z.buf[z.hist:z.hist+n], c[:n])
	} else {
		var err error
		if end, err = lz4Block(z.buf[:z.hist+z.fr.blockMax], z.hist, c[:n]); err != nil {
			return &OffsetError{Offset: z.off, Err: err}
		}
	}
	z.out = z.buf[z.hist:end]
	if z.cs != nil {
		z.cs.write(z.out)
	}
	z.total += int64(end - z.hist)
	z.hist = end
	z.off += 4 + int64(need)
	return nil
}

func indexLz4(b *builder) error {
	// Linked blocks anywhere make the cache-file strategy; find out from
	// the first frame (the lz4 tool writes one frame).
	fr, err := lz4ParseFrame(b.src, 0)
	if err != nil {
		return err
	}
	if fr.flg&0x20 == 0 {
		if err := b.startCache(); err != nil {
			return err
		}
	}
	z := &lz4Decoder{src: b.src, size: b.src.total}
	z.block = func(off, out int64) {
		if b.data == nil && (len(b.cps) == 0 || out-b.cps[len(b.cps)-1].Out >= b.opt.Spacing) {
			b.cps = append(b.cps, checkpoint{In: off, Out: out, A: frameStartOf(z), B: int64(z.fr.flg)})
		}
	}
	var w io.Writer = io.Discard
	if b.data != nil {
		w = b.data
	}
	w, done := b.sums(w)
	n, err := io.Copy(w, z)
	done()
	if err != nil {
		return err
	}
	if b.data == nil && len(b.cps) > 0 && b.cps[0].Out != 0 {
		return fmt.Errorf("%w: lz4 frames mix linked and independent blocks", ErrCodec)
	}
	b.size = n
	return nil
}

// frameStartOf is recorded so a segment can reparse its frame's flags.
func frameStartOf(z *lz4Decoder) int64 { return z.fr.next }

type lz4Segments struct{}

func (lz4Segments) open(r *Reader, i int) (io.Reader, io.Closer, error) {
	c := r.cps[i]
	z := &lz4Decoder{src: r.src, size: r.src.Size(), off: c.In}
	// The descriptor ends at A; its flags were recorded in B.
	z.fr = &lz4Frame{flg: byte(c.B), next: c.A}
	if byte(c.B)&0x20 == 0 {
		return nil, nil, fmt.Errorf("%w: lz4 checkpoint in linked blocks", ErrIndex)
	}
	// Re-read the descriptor for the block maximum.
	var bd [1]byte
	if _, err := r.src.ReadAt(bd[:], c.A-2-boolInt(c.B&8 != 0)*8); err != nil {
		return nil, nil, err
	}
	if bd[0]>>4 < 4 || bd[0]&0x8f != 0 {
		return nil, nil, fmt.Errorf("%w: lz4 checkpoint %d", ErrIndex, i)
	}
	z.fr.blockMax = 1 << (8 + 2*uint(bd[0]>>4))
	return z, nil, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// xxh32 is XXH32 (github.com/Cyan4973/xxHash doc/xxhash_spec.md).
const (
	xp1 uint32 = 2654435761
	xp2 uint32 = 2246822519
	xp3 uint32 = 3266489917
	xp4 uint32 = 668265263
	xp5 uint32 = 374761393
)

func xxh32(b []byte, seed uint32) uint32 {
	s := xxh32State{seed: seed}
	s.reset()
	s.write(b)
	return s.sum()
}

type xxh32State struct {
	seed           uint32
	v1, v2, v3, v4 uint32
	buf            [16]byte
	nbuf           int
	total          uint64
	init           bool
}

func (s *xxh32State) reset() {
	s.v1, s.v2, s.v3, s.v4 = s.seed+xp1+xp2, s.seed+xp2, s.seed, s.seed-xp1
	s.nbuf, s.total, s.init = 0, 0, true
}

func xround(acc, in uint32) uint32 { return bits.RotateLeft32(acc+in*xp2, 13) * xp1 }

func (s *xxh32State) write(b []byte) {
	if !s.init {
		s.reset()
	}
	s.total += uint64(len(b))
	le := binary.LittleEndian
	for len(b) > 0 {
		if s.nbuf == 0 && len(b) >= 16 {
			s.v1, s.v2 = xround(s.v1, le.Uint32(b)), xround(s.v2, le.Uint32(b[4:]))
			s.v3, s.v4 = xround(s.v3, le.Uint32(b[8:])), xround(s.v4, le.Uint32(b[12:]))
			b = b[16:]
			continue
		}
		k := copy(s.buf[s.nbuf:], b)
		s.nbuf += k
		b = b[k:]
		if s.nbuf == 16 {
			s.nbuf = 0
			s.v1, s.v2 = xround(s.v1, le.Uint32(s.buf[:])), xround(s.v2, le.Uint32(s.buf[4:]))
			s.v3, s.v4 = xround(s.v3, le.Uint32(s.buf[8:])), xround(s.v4, le.Uint32(s.buf[12:]))
		}
	}
}

func (s *xxh32State) sum() uint32 {
	var h uint32
	if s.total >= 16 {
		h = bits.RotateLeft32(s.v1, 1) + bits.RotateLeft32(s.v2, 7) + bits.RotateLeft32(s.v3, 12) + bits.RotateLeft32(s.v4, 18)
	} else {
		h = s.seed + xp5
	}
	h += uint32(s.total)
	b := s.buf[:s.nbuf]
	for len(b) >= 4 {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(b)*xp3, 17) * xp4
		b = b[4:]
	}
	for _, c := range b {
		h = bits.RotateLeft32(h+uint32(c)*xp5, 11) * xp1
	}
	h ^= h >> 15
	h *= xp2
	h ^= h >> 13
	h *= xp3
	h ^= h >> 16
	return h
}
