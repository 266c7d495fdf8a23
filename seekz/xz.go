package seekz

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// xz (the .xz file format 1.2.0, tukaani.org/xz/xz-file-format.txt): each
// stream ends with an index listing its blocks' unpadded and uncompressed
// sizes; every block is independent, so each block start is a checkpoint
// (A = unpadded size, B = uncompressed size). Blocks are decoded as raw
// LZMA2 (the only filter xz uses by default). The indexing pass decodes the
// whole file once with every check verified.

type xzBlock struct{ off, unpadded, size int64 }

// xzReadVarint reads xz's multibyte integer (at most 9 bytes).
func xzReadVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 9 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0, fmt.Errorf("%w: xz integer not minimal", ErrCorrupt)
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: xz integer too long", ErrCorrupt)
}

// xzBlocks reads the blocks of every stream from the streams' indexes,
// walking from the end of the file.
func xzBlocks(src io.ReaderAt, size int64) ([]xzBlock, error) {
	var all []xzBlock
	le := binary.LittleEndian
	pos := size
	for streams := 0; pos > 0; streams++ {
		if streams > 1<<20 {
			return nil, fmt.Errorf("%w: too many xz streams", ErrCorrupt)
		}
		var w [4]byte
		for pos >= 4 { // stream padding: zero bytes in groups of four
			if _, err := src.ReadAt(w[:], pos-4); err != nil {
				return nil, err
			}
			if le.Uint32(w[:]) != 0 {
				break
			}
			pos -= 4
		}
		if pos < 24 {
			return nil, &OffsetError{Offset: 0, Err: fmt.Errorf("%w: xz stream too short", ErrTruncated)}
		}
		var foot [12]byte
		if _, err := src.ReadAt(foot[:], pos-12); err != nil {
			return nil, err
		}
		if string(foot[10:]) != "YZ" || crc32.ChecksumIEEE(foot[4:10]) != le.Uint32(foot[:4]) {
			return nil, &OffsetError{Offset: pos - 12, Err: fmt.Errorf("%w: no xz stream footer (stream cut short?)", ErrTruncated)}
		}
		isize := (int64(le.Uint32(foot[4:8])) + 1) * 4
		if isize > pos-24 || isize > 64<<20 { // 64 MiB: millions of blocks
			return nil, &OffsetError{Offset: pos - 12, Err: fmt.Errorf("%w: xz index size", ErrCorrupt)}
		}
		ioff := pos - 12 - isize
		ib := make([]byte, isize)
		if _, err := src.ReadAt(ib, ioff); err != nil {
			return nil, err
		}
		if ib[0] != 0 || crc32.ChecksumIEEE(ib[:isize-4]) != le.Uint32(ib[isize-4:]) {
			return nil, &OffsetError{Offset: ioff, Err: fmt.Errorf("%w: xz index", ErrCorrupt)}
		}
		p := 1
		cnt, k, err := xzReadVarint(ib[p:])
		if err != nil {
			return nil, &OffsetError{Offset: ioff, Err: err}
		}
		p += k
		if cnt > uint64(isize/2) {
			return nil, &OffsetError{Offset: ioff, Err: fmt.Errorf("%w: xz index count", ErrCorrupt)}
		}
		var blocks []xzBlock
		var total int64
		for i := uint64(0); i < cnt; i++ {
			u, k, err := xzReadVarint(ib[p : isize-4])
			if err != nil {
				return nil, &OffsetError{Offset: ioff, Err: err}
			}
			p += k
			s, k, err := xzReadVarint(ib[p : isize-4])
			if err != nil {
				return nil, &OffsetError{Offset: ioff, Err: err}
			}
			p += k
			if u < 5 || u > 1<<62 || s > 1<<62 {
				return nil, &OffsetError{Offset: ioff, Err: fmt.Errorf("%w: xz index record", ErrCorrupt)}
			}
			blocks = append(blocks, xzBlock{off: total, unpadded: int64(u), size: int64(s)})
			total += (int64(u) + 3) &^ 3
			if total > ioff {
				return nil, &OffsetError{Offset: ioff, Err: fmt.Errorf("%w: xz blocks larger than the file", ErrCorrupt)}
			}
		}
		for ; p < int(isize-4); p++ {
			if ib[p] != 0 {
				return nil, &OffsetError{Offset: ioff, Err: fmt.Errorf("%w: xz index padding", ErrCorrupt)}
			}
		}
		start := ioff - total - 12
		if start < 0 {
			return nil, &OffsetError{Offset: ioff, Err: fmt.Errorf("%w: xz stream header missing", ErrCorrupt)}
		}
		var head [12]byte
		if _, err := src.ReadAt(head[:], start); err != nil {
			return nil, err
		}
		if string(head[:6]) != "\xfd7zXZ\x00" || !bytes.Equal(head[6:8], foot[8:10]) || crc32.ChecksumIEEE(head[6:8]) != le.Uint32(head[8:]) {
			return nil, &OffsetError{Offset: start, Err: fmt.Errorf("%w: xz stream header does not match its index", ErrCorrupt)}
		}
		for i := range blocks {
			blocks[i].off += start + 12
		}
		all = append(blocks, all...)
		pos = start
	}
	return all, nil
}

func indexXz(b *builder) error {
	blocks, err := xzBlocks(b.src, b.src.total)
	if err != nil {
		return err
	}
	var largest int64
	for _, k := range blocks {
		largest = max(largest, k.size)
	}
	if largest > b.opt.SegmentLimit {
		if err := b.startCache(); err != nil {
			return err
		}
	} else {
		for _, k := range blocks {
			if k.size > 0 {
				b.cps = append(b.cps, checkpoint{In: k.off, Out: b.size, A: k.unpadded, B: k.size})
				b.size += k.size
			}
		}
	}
	// One pass through the whole file checks every block's check and the
	// indexes; it fills the cache file when there is one.
	cfg := xz.ReaderConfig{DictCap: 0}
	d, err := cfg.NewReader(io.NewSectionReader(b.src, 0, b.src.total))
	if err != nil {
		return &OffsetError{Offset: 0, Err: fmt.Errorf("%w: xz: %w", ErrCorrupt, err)}
	}
	var w io.Writer = io.Discard
	if b.data != nil {
		w = b.data
	}
	w, done := b.sums(w)
	n, err := io.Copy(w, d)
	done()
	if err != nil {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		return &OffsetError{Offset: b.src.high, Err: fmt.Errorf("%w: xz: %w", ErrCorrupt, err)}
	}
	if b.data != nil {
		b.size = n
	} else if n != b.size {
		return fmt.Errorf("%w: xz decodes to %d bytes, its index says %d", ErrCorrupt, n, b.size)
	}
	return nil
}

type xzSegments struct{}

func (xzSegments) open(r *Reader, i int) (io.Reader, io.Closer, error) {
	c := r.cps[i]
	var hb [1024]byte
	if _, err := r.src.ReadAt(hb[:1], c.In); err != nil {
		return nil, nil, err
	}
	hs := int64(hb[0]+1) * 4
	if hb[0] == 0 || hs > c.A {
		return nil, nil, &OffsetError{Offset: c.In, Err: fmt.Errorf("%w: xz block header", ErrCorrupt)}
	}
	h := hb[:hs]
	if _, err := r.src.ReadAt(h, c.In); err != nil {
		return nil, nil, err
	}
	if crc32.ChecksumIEEE(h[:hs-4]) != binary.LittleEndian.Uint32(h[hs-4:]) {
		return nil, nil, &OffsetError{Offset: c.In, Err: fmt.Errorf("%w: xz block header CRC", ErrChecksum)}
	}
	flags := h[1]
	p := 2
	if flags&0x3c != 0 || flags&3 != 0 {
		return nil, nil, &OffsetError{Offset: c.In, Err: fmt.Errorf("%w: xz block with filters other than LZMA2 alone", ErrCodec)}
	}
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if flags&bit != 0 {
			_, k, err := xzReadVarint(h[p : hs-4])
			if err != nil {
				return nil, nil, &OffsetError{Offset: c.In, Err: err}
			}
			p += k
		}
	}
	if int64(p+3) > hs-4 || h[p] != 0x21 || h[p+1] != 1 || h[p+2] > 40 {
		return nil, nil, &OffsetError{Offset: c.In, Err: fmt.Errorf("%w: xz block filter is not LZMA2", ErrCodec)}
	}
	dictProp := h[p+2]
	dict := int64(0xffffffff)
	if dictProp < 40 {
		dict = int64(2|dictProp&1) << (dictProp/2 + 11)
	}
	// The dictionary never needs to exceed the block's output.
	dict = max(min(dict, c.B), lzma.MinDictCap)
	comp := c.A - hs // data plus check; the LZMA2 end marker stops the reader
	d, err := lzma.Reader2Config{DictCap: int(dict)}.NewReader2(io.NewSectionReader(r.src, c.In+hs, comp))
	if err != nil {
		return nil, nil, &OffsetError{Offset: c.In, Err: fmt.Errorf("%w: xz block: %w", ErrCorrupt, err)}
	}
	return d, nil, nil
}
