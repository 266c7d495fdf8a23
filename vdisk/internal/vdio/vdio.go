// Package vdio holds what every virtual-disk reader shares: the error
// sentinels, bounded reads from the container file, and a small cache of
// decoded tables and clusters.
package vdio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Errors of every reader; test with errors.Is.
var (
	// ErrFormat: the file is damaged or not what its magic says.
	ErrFormat = errors.New("vdisk: damaged virtual disk")
	// ErrUnsupported: a valid feature these readers do not handle.
	ErrUnsupported = errors.New("vdisk: unsupported virtual disk feature")
	// ErrMissing: a parent, backing file, extent or segment is missing.
	ErrMissing = errors.New("vdisk: missing file of a virtual disk")
)

// FormatError names the file and the byte offset of what is wrong.
type FormatError struct {
	File   string
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: damaged at byte %d: %s", e.File, e.Offset, e.Msg)
}

// Unwrap makes a FormatError match ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

// Errf returns a FormatError.
func Errf(file string, off int64, format string, a ...any) error {
	return &FormatError{File: file, Offset: off, Msg: fmt.Sprintf(format, a...)}
}

// Unsupported returns an error wrapping ErrUnsupported.
func Unsupported(file, format string, a ...any) error {
	return fmt.Errorf("%s: %w: %s", file, ErrUnsupported, fmt.Sprintf(format, a...))
}

// Disk is a whole virtual disk: its bytes and its size. ReadAt is safe for
// concurrent use.
type Disk interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// Opener opens a parent or backing disk of any kind (detected by content);
// depth counts the disks already open below the top of the chain.
type Opener func(path string, depth int) (Disk, error)

// MaxChain bounds parent and backing chains, so a file that names itself
// (directly or in a loop) fails instead of recursing.
const MaxChain = 32

// File is a read-only container file with its size.
type File struct {
	*os.File
	Size int64
}

// OpenFile opens path read-only.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrMissing, err)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return &File{File: f, Size: st.Size()}, nil
}

// ReadFull reads exactly len(p) bytes at off; anything short, or any part
// past the file's end, is a FormatError naming what was being read.
func (f *File) ReadFull(p []byte, off int64, what string) error {
	if off < 0 || off > f.Size || int64(len(p)) > f.Size-off {
		return Errf(f.Name(), off, "%s (%d bytes) lies past the end of the file (%d bytes)", what, len(p), f.Size)
	}
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return Errf(f.Name(), off+int64(n), "%s: short read", what)
	}
	return fmt.Errorf("%s: read %s at %d: %w", f.Name(), what, off, err)
}

// Table reads n bytes at off, refusing more than maxBytes (a cap on any
// size read from the file, checked before allocating).
func (f *File) Table(off, n, maxBytes int64, what string) ([]byte, error) {
	if n < 0 || n > maxBytes {
		return nil, Errf(f.Name(), off, "%s of %d bytes is larger than the %d allowed", what, n, maxBytes)
	}
	if off < 0 || off > f.Size || n > f.Size-off {
		return nil, Errf(f.Name(), off, "%s (%d bytes) lies past the end of the file (%d bytes)", what, n, f.Size)
	}
	b := make([]byte, n)
	return b, f.ReadFull(b, off, what)
}

// Cache keeps up to max decoded items (L2 tables, grain tables, chunks)
// keyed by their offset. It evicts the oldest entry, which suits both
// sequential reads and a working set of tables.
type Cache struct {
	mu    sync.Mutex
	max   int
	items map[int64][]byte
	order []int64
}

// NewCache returns a cache of at most max items.
func NewCache(max int) *Cache { return &Cache{max: max, items: map[int64][]byte{}} }

// Get returns the item at key, or nil.
func (c *Cache) Get(key int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items[key]
}

// Put stores an item; callers must not change it afterwards.
func (c *Cache) Put(key int64, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.items[key] = b
	c.order = append(c.order, key)
}

// ReadBlocks serves ReadAt over a disk of size bytes cut into blocks of
// bs bytes: each piece of p inside one block is filled by fill(piece,
// block, offset in block). It returns io.EOF when p runs past size.
func ReadBlocks(p []byte, off, size, bs int64, fill func(p []byte, block, in int64) error) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vdisk: negative offset %d", off)
	}
	if off >= size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > size-off {
		p, eof = p[:size-off], io.EOF
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		b, in := pos/bs, pos%bs
		m := int(min(int64(len(p)-n), bs-in))
		if err := fill(p[n:n+m], b, in); err != nil {
			return n, err
		}
		n += m
	}
	return n, eof
}

// ReadParent reads p at off from a parent that may be smaller than the
// child: bytes past its end read as zeros. A nil parent reads zeros.
func ReadParent(parent Disk, p []byte, off int64) error {
	if parent == nil || off >= parent.Size() {
		clear(p)
		return nil
	}
	q := p
	if rest := parent.Size() - off; int64(len(q)) > rest {
		clear(q[rest:])
		q = q[:rest]
	}
	n, err := parent.ReadAt(q, off)
	if n == len(q) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Exercise reads a few pieces spread over d, for fuzz targets: any error
// is fine, a panic or a hang is not.
func Exercise(d Disk) {
	buf := make([]byte, 70000)
	size := d.Size()
	for i := int64(0); i < 16; i++ {
		d.ReadAt(buf, size/16*i)
	}
	d.ReadAt(buf[:1], size-1)
}
