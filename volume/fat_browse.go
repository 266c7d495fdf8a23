package volume

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Browsing: list directories and read files by path. Names match
// case-insensitively, by long or 8.3 name, as FAT does. Paths are "/"
// separated; "", "/" and "." name the root.

// ReadDir lists the directory at path ("." and "..", deleted entries and
// the volume label left out).
func (f *FATFS) ReadDir(path string) ([]FATDirEntry, error) {
	d, err := f.lookupDir(path)
	if err != nil {
		return nil, err
	}
	dd, err := f.readDirTable(d)
	if err != nil {
		return nil, err
	}
	return dd.scan.entries, nil
}

// Stat returns the entry at path. The root is a synthetic entry named "/".
func (f *FATFS) Stat(path string) (FATDirEntry, error) {
	e, _, err := f.lookup(path)
	return e, err
}

// Open opens the file at path for reading. Its cluster chain is checked
// (length against size, loops, range) before it is returned.
func (f *FATFS) Open(path string) (*FATFile, error) {
	e, p, err := f.lookup(path)
	if err != nil {
		return nil, err
	}
	if e.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("is a directory")}
	}
	t, err := f.table()
	if err != nil {
		return nil, err
	}
	runs, _, err := f.chain(p, e.Cluster, e.Size, false, func(c uint32) (uint32, error) { return t.get(c), nil }, nil)
	if err != nil {
		return nil, err
	}
	return &FATFile{fs: f, Entry: e, runs: runs}, nil
}

// FATFile reads one file's bytes through its cluster chain.
type FATFile struct {
	fs    *FATFS
	Entry FATDirEntry
	runs  []Run
}

var _ io.ReaderAt = (*FATFile)(nil)

// Size returns the file size in bytes.
func (ff *FATFile) Size() int64 { return int64(ff.Entry.Size) }

// Runs returns the file's clusters in bitmap numbering, in file order.
func (ff *FATFile) Runs() []Run { return ff.runs }

// ReadAt reads from the file; reads past the end return io.EOF.
func (ff *FATFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: ff.Entry.Name, Err: fs.ErrInvalid}
	}
	size := ff.Size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	cs := int64(ff.fs.boot.ClusterSize())
	n := 0
	pos := int64(0) // file offset of the current run
	for _, r := range ff.runs {
		l := int64(r.Count) * cs
		if off+int64(n) >= pos+l {
			pos += l
			continue
		}
		for n < len(p) && off+int64(n) < pos+l {
			in := off + int64(n) - pos
			k := min(int64(len(p)-n), l-in)
			if err := readFull(ff.fs.r, p[n:n+int(k)], ff.fs.inf.ClusterOffset(r.Start)+in); err != nil {
				return n, fmt.Errorf("volume: reading %s: %w", ff.Entry.Name, err)
			}
			n += int(k)
		}
		if n == len(p) {
			break
		}
		pos += l
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// readDirTable reads a directory with the loaded FAT.
func (f *FATFS) readDirTable(d fatDirRef) (*fatDirData, error) {
	t, err := f.table()
	if err != nil {
		return nil, err
	}
	return f.readDir(d, func(c uint32) (uint32, error) { return t.get(c), nil }, nil)
}

// lookup finds the entry at path and returns it with its canonical path.
func (f *FATFS) lookup(path string) (FATDirEntry, string, error) {
	elems := splitFATPath(path)
	cur := f.rootRef()
	entry := FATDirEntry{Name: "/", ShortName: "/", Attr: fatAttrDir, Cluster: cur.cluster}
	for _, name := range elems {
		if !entry.IsDir() {
			return FATDirEntry{}, "", &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%s is not a directory: %w", cur.path, fs.ErrNotExist)}
		}
		dd, err := f.readDirTable(cur)
		if err != nil {
			return FATDirEntry{}, "", err
		}
		found := false
		for _, e := range dd.scan.entries {
			if strings.EqualFold(e.Name, name) || strings.EqualFold(e.ShortName, name) {
				entry, found = e, true
				break
			}
		}
		if !found {
			return FATDirEntry{}, "", &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		}
		cur = fatDirRef{path: joinFATPath(cur.path, entry.Name), cluster: entry.Cluster}
	}
	return entry, cur.path, nil
}

// lookupDir resolves path to a directory.
func (f *FATFS) lookupDir(path string) (fatDirRef, error) {
	e, p, err := f.lookup(path)
	if err != nil {
		return fatDirRef{}, err
	}
	if !e.IsDir() {
		return fatDirRef{}, &fs.PathError{Op: "readdir", Path: path, Err: fmt.Errorf("not a directory")}
	}
	if p == "/" {
		return f.rootRef(), nil
	}
	return fatDirRef{path: p, cluster: e.Cluster}, nil
}
