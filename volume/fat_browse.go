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
// the volume label left out). An entry that would make the tree loop (a
// directory whose first cluster is this directory's or one above it, or a
// directory without a cluster) is listed with Err set.
func (f *FATFS) ReadDir(path string) ([]FATDirEntry, error) {
	e, p, above, err := f.lookupChain(path)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: path, Err: fmt.Errorf("not a directory")}
	}
	d := f.rootRef()
	if p != "/" {
		d = fatDirRef{path: p, cluster: e.Cluster}
	}
	dd, err := f.readDirTable(d)
	if err != nil {
		return nil, err
	}
	above = append(above, d.cluster)
	out := make([]FATDirEntry, len(dd.scan.entries))
	for i, c := range dd.scan.entries {
		c.Err = f.checkEntry(d.path, &c, above)
		out[i] = c
	}
	return out, nil
}

// checkEntry says why entry e of directory dir would make the tree loop,
// or nil. above holds the first clusters of dir and the directories above
// it (0 for the FAT12/16 fixed root).
func (f *FATFS) checkEntry(dir string, e *FATDirEntry, above []uint32) error {
	bad := func(format string, args ...any) error {
		return &FormatError{What: fmt.Sprintf("directory entry %s", joinFATPath(dir, e.Name)), Offset: e.offset,
			Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if e.IsDir() && e.Cluster == 0 {
		return bad("directory without a first cluster (cluster 0 is the root's alias, used only by \"..\")")
	}
	if e.IsDir() && e.Size != 0 {
		return bad("directory entry with a size of %d bytes (directories have none: a file flagged as a directory?)", e.Size)
	}
	if e.Cluster == 0 {
		return nil
	}
	if last := f.boot.ClusterCount + 1; e.Cluster < 2 || e.Cluster > last {
		return bad("first cluster %d is outside clusters 2..%d", e.Cluster, last)
	}
	if t, err := f.table(); err == nil && t.get(e.Cluster) == 0 && (e.IsDir() || e.Size > 0) {
		return bad("first cluster %d is free in the FAT", e.Cluster)
	}
	for i, c := range above {
		if c != e.Cluster {
			continue
		}
		where := "the directory holding it"
		if up := len(above) - 1 - i; up > 0 {
			where = fmt.Sprintf("a directory %d level(s) above it", up)
		}
		if e.IsDir() {
			return bad("directory loop: its first cluster %d is that of %s", c, where)
		}
		return bad("file starts at cluster %d, the first cluster of %s (cross-linked)", c, where)
	}
	return nil
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
	e, p, _, err := f.lookupChain(path)
	return e, p, err
}

// lookupChain is lookup that also returns the first clusters of the
// directories from the root down to the entry's parent, inclusive. An entry that
// would make the tree loop (checkEntry) is an error, never followed.
func (f *FATFS) lookupChain(path string) (FATDirEntry, string, []uint32, error) {
	elems := splitFATPath(path)
	cur := f.rootRef()
	entry := FATDirEntry{Name: "/", ShortName: "/", Attr: fatAttrDir, Cluster: cur.cluster}
	var above []uint32
	for _, name := range elems {
		if !entry.IsDir() {
			return FATDirEntry{}, "", nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%s is not a directory: %w", cur.path, fs.ErrNotExist)}
		}
		dd, err := f.readDirTable(cur)
		if err != nil {
			return FATDirEntry{}, "", nil, err
		}
		found := false
		for _, e := range dd.scan.entries {
			if strings.EqualFold(e.Name, name) || strings.EqualFold(e.ShortName, name) {
				entry, found = e, true
				break
			}
		}
		if !found {
			return FATDirEntry{}, "", nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		}
		above = append(above, cur.cluster)
		if err := f.checkEntry(cur.path, &entry, above); err != nil {
			return FATDirEntry{}, "", nil, err
		}
		cur = fatDirRef{path: joinFATPath(cur.path, entry.Name), cluster: entry.Cluster}
	}
	return entry, cur.path, above, nil
}
