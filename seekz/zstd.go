package seekz

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// zstd (RFC 8878): every frame is independent, so each frame start is a
// checkpoint (A = the frame's compressed length). Frame boundaries are found
// by walking frame and block headers, which costs a few bytes per 128 KiB
// block; the decoding pass then checks every frame's content.

const zstdMaxWindow = 256 << 20

type zframe struct{ off, n int64 }

// zstdFrames walks the frame and block headers of the whole stream.
func zstdFrames(src io.ReaderAt, size int64) ([]zframe, error) {
	var frames []zframe
	var h [18]byte
	for off := int64(0); off < size; {
		if _, err := src.ReadAt(h[:4], off); err != nil {
			return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: frame header cut short", ErrTruncated)}
		}
		magic := binary.LittleEndian.Uint32(h[:4])
		if magic&0xfffffff0 == 0x184d2a50 { // skippable frame
			if _, err := src.ReadAt(h[:8], off); err != nil {
				return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: skippable frame cut short", ErrTruncated)}
			}
			off += 8 + int64(binary.LittleEndian.Uint32(h[4:8]))
			if off > size {
				return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: skippable frame beyond the end", ErrTruncated)}
			}
			continue
		}
		if magic != 0xfd2fb528 {
			return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: no zstd frame magic", ErrCorrupt)}
		}
		start := off
		if _, err := src.ReadAt(h[4:5], off+4); err != nil {
			return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: frame header cut short", ErrTruncated)}
		}
		fhd := h[4]
		if fhd&0x08 != 0 {
			return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: reserved frame header bit", ErrCorrupt)}
		}
		single := fhd&0x20 != 0
		hs := int64(1)
		if !single {
			hs++
		}
		hs += []int64{0, 1, 2, 4}[fhd&3]
		fcs := []int64{0, 2, 4, 8}[fhd>>6]
		if fcs == 0 && single {
			fcs = 1
		}
		hs += fcs
		off += 4 + hs
		for last := false; !last; {
			var bh [3]byte
			if _, err := src.ReadAt(bh[:], off); err != nil {
				return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: block header cut short", ErrTruncated)}
			}
			v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
			last = v&1 != 0
			bsize := int64(v >> 3)
			switch (v >> 1) & 3 {
			case 1:
				bsize = 1 // RLE: one byte stored
			case 3:
				return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: reserved block type", ErrCorrupt)}
			}
			if bsize > 128<<10 {
				return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: block larger than 128 KiB", ErrCorrupt)}
			}
			off += 3 + bsize
			if off > size {
				return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: block beyond the end", ErrTruncated)}
			}
		}
		if fhd&0x04 != 0 {
			off += 4
		}
		if off > size {
			return nil, &OffsetError{Offset: off, Err: fmt.Errorf("%w: frame checksum beyond the end", ErrTruncated)}
		}
		frames = append(frames, zframe{start, off - start})
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%w: no zstd frame", ErrCorrupt)
	}
	return frames, nil
}

func newZstdDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecodeAllCapLimit(true))
}

func indexZstd(b *builder) error {
	frames, err := zstdFrames(b.src, b.src.total)
	if err != nil {
		return err
	}
	var largest int64
	for _, f := range frames {
		largest = max(largest, f.n)
	}
	// A frame's output is unknown until decoded; a compressed frame larger
	// than a quarter of the limit is taken to be too long to decode from
	// its start on every read.
	if largest > b.opt.SegmentLimit/4 {
		if err := b.startCache(); err != nil {
			return err
		}
	}
	var out io.Writer = io.Discard
	if b.data != nil {
		out = b.data
	}
	out, done := b.sums(out)
	defer done()
	for _, f := range frames {
		if b.data == nil {
			b.cps = append(b.cps, checkpoint{In: f.off, Out: b.size, A: f.n})
		}
		d, err := newZstdDecoder(io.NewSectionReader(b.src, f.off, f.n))
		if err != nil {
			return err
		}
		n, err := io.Copy(out, d)
		d.Close()
		if err != nil {
			if b.ctx.Err() != nil {
				return b.ctx.Err()
			}
			return &OffsetError{Offset: f.off, Err: fmt.Errorf("%w: zstd frame: %w", ErrCorrupt, err)}
		}
		if n == 0 && b.data == nil {
			b.cps = b.cps[:len(b.cps)-1] // an empty frame holds no offset
		}
		b.size += n
	}
	return nil
}

type zstdSegments struct{}

func (zstdSegments) open(r *Reader, i int) (io.Reader, io.Closer, error) {
	c := r.cps[i]
	d, err := newZstdDecoder(io.NewSectionReader(r.src, c.In, c.A))
	if err != nil {
		return nil, nil, err
	}
	return d, closerFunc(d.Close), nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }
