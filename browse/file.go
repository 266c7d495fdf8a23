package browse

import (
	"errors"
	"io"
	"io/fs"
	"sync"
)

// file is an open file or stream: Read, ReadAt and Seek over its data,
// clamped to its size.
type file struct {
	e    *Entry
	r    io.ReaderAt
	size int64

	mu     sync.Mutex
	off    int64
	closed bool
}

var (
	_ io.ReaderAt = (*file)(nil)
	_ io.Seeker   = (*file)(nil)
)

func (f *file) Stat() (fs.FileInfo, error) { return fileInfo{f.e}, nil }

// Entry returns the file's entry.
func (f *file) Entry() *Entry { return f.e }

func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}

func (f *file) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.e.Path, Err: fs.ErrClosed}
	}
	if f.off >= f.size {
		return 0, io.EOF
	}
	if int64(len(p)) > f.size-f.off {
		p = p[:f.size-f.off]
	}
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.e.Path, Err: fs.ErrInvalid}
	}
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return 0, &fs.PathError{Op: "read", Path: f.e.Path, Err: fs.ErrClosed}
	}
	return f.readAt(p, off)
}

// readAt reads within the size and reports io.EOF on a short read.
func (f *file) readAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > f.size-off {
		p = p[:f.size-off]
	}
	n, err := f.r.ReadAt(p, off)
	if n < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, &fs.PathError{Op: "read", Path: f.e.Path, Err: err}
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.e.Path, Err: fs.ErrClosed}
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.e.Path, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.e.Path, Err: fs.ErrInvalid}
	}
	f.off = offset
	return offset, nil
}

// dir is an open directory; its listing is read on the first ReadDir.
type dir struct {
	fs *FS
	e  *Entry

	mu     sync.Mutex
	list   []fs.DirEntry
	loaded bool
	pos    int
	closed bool
}

var _ fs.ReadDirFile = (*dir)(nil)

func (d *dir) Stat() (fs.FileInfo, error) { return fileInfo{d.e}, nil }

func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.e.Path, Err: errors.New("is a directory")}
}

func (d *dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fs.ErrClosed
	}
	d.closed = true
	return nil
}

func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.e.Path, Err: fs.ErrClosed}
	}
	if !d.loaded {
		list, err := d.fs.readDir(d.e.Path)
		if err != nil {
			return nil, pathErr("readdir", d.e.Path, err)
		}
		d.list, d.loaded = list, true
	}
	rest := d.list[d.pos:]
	if n <= 0 {
		d.pos = len(d.list)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.pos += len(rest)
	return rest, nil
}
