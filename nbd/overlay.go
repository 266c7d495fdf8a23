package nbd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Overlay is a copy-on-write layer over a read-only base: writes land in a
// file, reads take written blocks from it and the rest from the base.
//
// The file: a 4 KiB header (magic "CBIMGOVL", version u32, block size u32,
// export size u64, identity length u32 and the identity of the base, all
// little-endian), the written-block bitmap (one bit per block, LSB first,
// padded to 4 KiB), then block i at dataOff + i×4096 (sparse where never
// written). A block's data is written before its bit, so a crash never
// exposes a block that was not written.
type Overlay struct {
	base    io.ReaderAt
	f       *os.File
	size    int64
	bitmap  []byte
	dataOff int64
	mu      sync.RWMutex
}

// ErrOverlayMismatch is returned for an overlay file made over another base.
var ErrOverlayMismatch = errors.New("nbd: the overlay file belongs to another image")

const (
	overlayMagic   = "CBIMGOVL"
	overlayVersion = 1
	overlayBlock   = 4096
	overlayHeader  = 4096
	maxIdentity    = 2048
)

// OpenOverlay opens or creates the overlay file path over base (size
// bytes); identity names the base (an image digest or path) and must match
// the one the file was created with.
func OpenOverlay(path string, base io.ReaderAt, size int64, identity string) (*Overlay, error) {
	if len(identity) > maxIdentity {
		identity = identity[:maxIdentity]
	}
	blocks := (size + overlayBlock - 1) / overlayBlock
	bmLen := (blocks + 7) / 8
	o := &Overlay{base: base, size: size, bitmap: make([]byte, bmLen),
		dataOff: overlayHeader + (bmLen+overlayBlock-1)/overlayBlock*overlayBlock}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	o.f = f
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	h := make([]byte, overlayHeader)
	if st.Size() == 0 {
		copy(h, overlayMagic)
		binary.LittleEndian.PutUint32(h[8:], overlayVersion)
		binary.LittleEndian.PutUint32(h[12:], overlayBlock)
		binary.LittleEndian.PutUint64(h[16:], uint64(size))
		binary.LittleEndian.PutUint32(h[24:], uint32(len(identity)))
		copy(h[28:], identity)
		if _, err := f.WriteAt(h, 0); err == nil {
			err = f.Truncate(o.dataOff + blocks*overlayBlock)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("overlay %s: %w", path, err)
		}
		return o, nil
	}
	if _, err := f.ReadAt(h, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("overlay %s: %w", path, err)
	}
	idLen := binary.LittleEndian.Uint32(h[24:])
	switch {
	case string(h[:8]) != overlayMagic:
		err = fmt.Errorf("overlay %s: not a cbimg overlay file", path)
	case binary.LittleEndian.Uint32(h[8:]) != overlayVersion || binary.LittleEndian.Uint32(h[12:]) != overlayBlock:
		err = fmt.Errorf("overlay %s: unknown version or block size", path)
	case int64(binary.LittleEndian.Uint64(h[16:])) != size || idLen > maxIdentity || !bytes.Equal(h[28:28+idLen], []byte(identity)):
		err = fmt.Errorf("overlay %s: %w", path, ErrOverlayMismatch)
	case st.Size() < o.dataOff:
		err = fmt.Errorf("overlay %s: truncated", path)
	}
	if err == nil {
		if _, err = f.ReadAt(o.bitmap, overlayHeader); err != nil {
			err = fmt.Errorf("overlay %s: bitmap: %w", path, err)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return o, nil
}

func (o *Overlay) written(b int64) bool { return o.bitmap[b/8]>>(b%8)&1 != 0 }

// ReadAt reads written blocks from the file and the rest from the base.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > o.size {
		return 0, io.EOF
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	n := 0
	for n < len(p) && off < o.size {
		b := off / overlayBlock
		l := min(int64(len(p)-n), (b+1)*overlayBlock-off, o.size-off)
		src := o.base
		at := off
		if o.written(b) {
			src, at = o.f, o.dataOff+off
		}
		// Coalesce the following blocks of the same source.
		for e := b + 1; int64(n)+l < int64(len(p)) && off+l < o.size && o.written(e) == o.written(b); e++ {
			l = min(int64(len(p)-n), (e+1)*overlayBlock-off, o.size-off)
		}
		if _, err := src.ReadAt(p[n:n+int(l)], at); err != nil && !(err == io.EOF && src == o.base) {
			return n, err
		}
		n += int(l)
		off += l
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes into the file, completing partial blocks from the base.
func (o *Overlay) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > o.size {
		return 0, errors.New("nbd: write outside the export")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	buf := make([]byte, overlayBlock)
	n := 0
	for n < len(p) {
		b := off / overlayBlock
		in := off - b*overlayBlock
		l := min(int64(len(p)-n), overlayBlock-in)
		blk := buf[:min(overlayBlock, o.size-b*overlayBlock)]
		if l < int64(len(blk)) {
			src, at := o.base, b*overlayBlock
			if o.written(b) {
				src, at = o.f, o.dataOff+b*overlayBlock
			}
			if _, err := src.ReadAt(blk, at); err != nil && err != io.EOF {
				return n, err
			}
		}
		copy(blk[in:], p[n:n+int(l)])
		if _, err := o.f.WriteAt(blk, o.dataOff+b*overlayBlock); err != nil {
			return n, err
		}
		if !o.written(b) {
			o.bitmap[b/8] |= 1 << (b % 8)
			if _, err := o.f.WriteAt(o.bitmap[b/8:b/8+1], overlayHeader+b/8); err != nil {
				return n, err
			}
		}
		n += int(l)
		off += l
	}
	return n, nil
}

// Written reports whether any byte of [off, off+n) was written.
func (o *Overlay) Written(off, n int64) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for b := off / overlayBlock; b*overlayBlock < off+n && b*overlayBlock < o.size; b++ {
		if o.written(b) {
			return true
		}
	}
	return false
}

// Sync makes written data durable (NBD_CMD_FLUSH).
func (o *Overlay) Sync() error { return o.f.Sync() }

// Close closes the file.
func (o *Overlay) Close() error { return o.f.Close() }

// Extents wraps base's runs so that written blocks count as data.
func (o *Overlay) Extents(base func(off, n int64) []Extent) func(off, n int64) []Extent {
	return func(off, n int64) []Extent {
		var in []Extent
		if base != nil {
			in = base(off, n)
		}
		if len(in) == 0 {
			in = []Extent{{n, false}}
		}
		var out []Extent
		add := func(l int64, hole bool) { out = appendExtent(out, l, hole) }
		o.mu.RLock()
		defer o.mu.RUnlock()
		pos := off
		for _, e := range in {
			if !e.Hole || len(out) >= maxDescriptors {
				add(e.Length, e.Hole)
				pos += e.Length
				continue
			}
			for end := pos + e.Length; pos < end; {
				b := pos / overlayBlock
				next := min(end, (b+1)*overlayBlock)
				add(next-pos, !(b*overlayBlock < o.size && o.written(b)))
				pos = next
			}
		}
		return out
	}
}
