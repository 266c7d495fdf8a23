package volume

import (
	"fmt"
	"io"
	"io/fs"
)

// Browsing: list directories and read files by path. Names match
// case-insensitively through the volume's up-case table, as exFAT does.
// Paths are "/" separated; "", "/" and "." name the root.

// ReadDir lists the directory at path.
func (x *ExFATFS) ReadDir(path string) ([]ExFATDirEntry, error) {
	e, p, err := x.lookup(path)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: path, Err: fmt.Errorf("not a directory")}
	}
	_, scan, err := x.cachedDir(x.dirRef(e, p))
	if err != nil {
		return nil, err
	}
	return append([]ExFATDirEntry(nil), scan.entries...), nil
}

// Stat returns the entry at path. The root is a synthetic entry named "/".
func (x *ExFATFS) Stat(path string) (ExFATDirEntry, error) {
	e, _, err := x.lookup(path)
	return e, err
}

// Open opens the file at path for reading. Its clusters are checked
// (length against size, loops, range) before it is returned.
func (x *ExFATFS) Open(path string) (*ExFATFile, error) {
	e, p, err := x.lookup(path)
	if err != nil {
		return nil, err
	}
	if e.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("is a directory")}
	}
	runs, err := x.chain(p, exfatStream{cluster: e.Cluster, size: uint64(e.Size), noFatChain: e.NoFatChain}, e.Size, 0)
	if err != nil {
		return nil, err
	}
	return &ExFATFile{fs: x, Entry: e, runs: runs}, nil
}

func (x *ExFATFS) dirRef(e ExFATDirEntry, p string) exfatDirRef {
	if p == "/" {
		return x.rootRef()
	}
	return exfatDirRef{path: p, st: exfatStream{cluster: e.Cluster, size: uint64(e.Size), noFatChain: e.NoFatChain}, size: e.Size}
}

// lookup finds the entry at path and returns it with its canonical path.
func (x *ExFATFS) lookup(path string) (ExFATDirEntry, string, error) {
	entry := ExFATDirEntry{Name: "/", Attr: ExFATAttrDirectory, Cluster: x.boot.RootCluster}
	cur := "/"
	for _, name := range splitFATPath(path) {
		if !entry.IsDir() {
			return ExFATDirEntry{}, "", &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%s is not a directory: %w", cur, fs.ErrNotExist)}
		}
		_, scan, err := x.cachedDir(x.dirRef(entry, cur))
		if err != nil {
			return ExFATDirEntry{}, "", err
		}
		i, found := scan.byName[x.up.key(name)]
		if !found {
			return ExFATDirEntry{}, "", &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		}
		entry = scan.entries[i]
		cur = joinFATPath(cur, entry.Name)
	}
	return entry, cur, nil
}

// ExFATFile reads one file's bytes; bytes past its valid data length read
// as zeros.
type ExFATFile struct {
	fs    *ExFATFS
	Entry ExFATDirEntry
	runs  []Run
}

var _ io.ReaderAt = (*ExFATFile)(nil)

// Size returns the file size in bytes.
func (f *ExFATFile) Size() int64 { return f.Entry.Size }

// Runs returns the file's clusters in bitmap numbering, in file order.
func (f *ExFATFile) Runs() []Run { return f.runs }

// ReadAt reads from the file; reads past the end return io.EOF.
func (f *ExFATFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.Entry.Name, Err: fs.ErrInvalid}
	}
	size := f.Size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	// Past the valid data length: zeros, not whatever the clusters hold.
	if v := f.Entry.ValidSize; off+int64(len(p)) > v {
		z := max(v-off, 0)
		clear(p[z:])
		p = p[:z]
	}
	cs := int64(f.fs.boot.ClusterSize())
	n := 0
	pos := int64(0)
	for _, r := range f.runs {
		if n == len(p) {
			break
		}
		l := int64(r.Count) * cs
		if off+int64(n) >= pos+l {
			pos += l
			continue
		}
		in := off + int64(n) - pos
		k := min(int64(len(p)-n), l-in)
		if err := readFull(f.fs.r, p[n:n+int(k)], f.fs.inf.ClusterOffset(r.Start)+in); err != nil {
			return n, fmt.Errorf("volume: reading %s: %w", f.Entry.Name, err)
		}
		n += int(k)
		pos += l
	}
	if n < len(p) {
		return n, fmt.Errorf("volume: reading %s: clusters end before byte %d: %w", f.Entry.Name, off+int64(n), ErrCorrupt)
	}
	got := int(min(int64(want), size-off))
	if got < want {
		return got, io.EOF
	}
	return got, nil
}
