// Package browse serves the file tree inside a cbimg image — or any NTFS or
// FAT partition given as an io.ReaderAt — as a read-only io/fs.FS, so single
// files can be listed, read and extracted without restoring.
//
// Paths follow io/fs: slash-separated, no leading "/", "." for the root.
// Names match as the file system does (case-insensitively, and by 8.3 alias
// on FAT). Directory listings are sorted by name. NTFS reparse points
// (symbolic links, junctions, ...) are shown as entries of type
// fs.ModeIrregular and never followed. Files left out of the image at backup
// time are listed with their size and an exclusion reason, and read as
// zeros. Named NTFS streams are reached through Streams and OpenStream.
package browse

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// ErrNoFileSystem means the image is a sector-by-sector copy with no file
// system this package can read.
var ErrNoFileSystem = fmt.Errorf("browse: the image holds no NTFS or FAT file system (sector-by-sector copy): %w", volume.ErrUnsupported)

// FS is the file tree of one NTFS or FAT volume. It implements fs.FS,
// fs.StatFS, fs.ReadDirFS and fs.ReadLinkFS and is safe for concurrent use.
type FS struct {
	typ   volume.Type
	ntfs  *volume.NTFSFS
	fat   *volume.FATFS
	exfat *volume.ExFATFS

	// Exclusions by lower-cased "/path" or "/path:stream", and for NTFS by
	// MFT record (so every hard link of an excluded file is marked too).
	exclPath map[string]string
	exclRec  map[recStream]string
}

type recStream struct {
	rec    uint64
	stream string
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// New opens the file tree of the partition an image holds. r is the image's
// logical partition (an *image.Reader) and h its header, whose exclusions
// are marked in the tree.
func New(r io.ReaderAt, h *image.Header) (*FS, error) {
	if h.FSType == uint8(volume.Unknown) {
		return nil, ErrNoFileSystem
	}
	return NewVolume(r, h.PartLength, h.Exclusions)
}

// NewVolume opens the NTFS or FAT file system at the start of r (size
// bytes), marking the given exclusions (nil for none).
func NewVolume(r io.ReaderAt, size int64, excl []image.Exclusion) (*FS, error) {
	v, err := volume.Open(r, size)
	if err != nil {
		return nil, err
	}
	f := &FS{typ: v.Info.Type, exclPath: map[string]string{}, exclRec: map[recStream]string{}}
	switch {
	case v.Info.Type == volume.NTFS:
		f.ntfs = v.NTFS()
	case v.Info.Type.IsFAT():
		f.fat = v.FAT()
	case v.Info.Type == volume.ExFAT:
		f.exfat = v.ExFAT()
	default:
		return nil, ErrNoFileSystem
	}
	for _, x := range excl {
		p, stream := x.Path, ""
		if f.ntfs != nil {
			if i := strings.LastIndexByte(p, ':'); i > strings.LastIndexByte(p, '/') {
				p, stream = p[:i], p[i+1:]
			}
		}
		key := strings.ToLower(p)
		if stream != "" {
			key += ":" + strings.ToLower(stream)
		}
		f.exclPath[key] = x.Reason
		if f.ntfs != nil {
			// The path may have gone; the record still marks its links.
			if st, err := f.ntfs.Stat(p); err == nil {
				f.exclRec[recStream{st.Record, stream}] = x.Reason
			}
		}
	}
	return f, nil
}

// Type returns the file-system type.
func (f *FS) Type() volume.Type { return f.typ }

// Entry is what FileInfo.Sys returns: everything the file system says about
// a name.
type Entry struct {
	Path      string // fs.FS path, "." for the root
	Name      string // as stored (FAT: the long name when there is one)
	ShortName string // FAT 8.3 name; "" on NTFS
	Dir       bool
	Reparse   bool // NTFS reparse point: listed, never followed
	Size      int64
	Created   time.Time
	Modified  time.Time
	Changed   time.Time // NTFS MFT record change time; zero on FAT
	Accessed  time.Time // FAT: date only
	Attr      uint32    // NTFS file attributes (volume.NTFSAttr*) or the FAT attribute byte
	ID        uint64    // NTFS MFT record number; FAT first cluster
	Excluded  string    // exclusion reason when the data was left out at backup; "" otherwise
	// Damage, set in listings, says why the entry cannot be trusted: its
	// directory entry disagrees with the file's own record (NTFS: record
	// missing or reused, name, parent or directory flag differs), or it
	// points back at its own directory or one above it (a loop). A
	// damaged entry is listed but never entered, opened or extracted.
	Damage error
}

// Mode returns the fs.FileMode of the entry.
func (e *Entry) Mode() fs.FileMode {
	switch {
	case e.Reparse:
		return fs.ModeIrregular | 0o444
	case e.Dir:
		return fs.ModeDir | 0o555
	}
	return 0o444
}

// fileInfo is an fs.FileInfo over an Entry.
type fileInfo struct{ e *Entry }

func (i fileInfo) Name() string {
	if i.e.Path == "." {
		return "."
	}
	return i.e.Name
}
func (i fileInfo) Size() int64        { return i.e.Size }
func (i fileInfo) Mode() fs.FileMode  { return i.e.Mode() }
func (i fileInfo) ModTime() time.Time { return i.e.Modified }
func (i fileInfo) IsDir() bool        { return i.e.Mode().IsDir() }
func (i fileInfo) Sys() any           { return i.e }

// volPath turns an fs.FS path into the volume's "/"-rooted form.
func volPath(name string) string {
	if name == "." {
		return "/"
	}
	return "/" + name
}

// check validates an fs.FS path.
func check(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// pathErr re-labels a volume error with the fs.FS operation and path.
func pathErr(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Lstat returns the entry at name; reparse points are described, not
// followed (Stat does the same).
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	if err := check("lstat", name); err != nil {
		return nil, err
	}
	e, err := f.entry(name)
	if err != nil {
		return nil, pathErr("lstat", name, err)
	}
	return fileInfo{e}, nil
}

// Stat returns the entry at name.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if err := check("stat", name); err != nil {
		return nil, err
	}
	e, err := f.entry(name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return fileInfo{e}, nil
}

// ReadLink is part of fs.ReadLinkFS; no entry of this tree is a symbolic
// link (reparse points are irregular files), so it always fails.
func (f *FS) ReadLink(name string) (string, error) {
	if err := check("readlink", name); err != nil {
		return "", err
	}
	if _, err := f.entry(name); err != nil {
		return "", pathErr("readlink", name, err)
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

// entry stats name with authoritative sizes and times.
func (f *FS) entry(name string) (*Entry, error) {
	vp := volPath(name)
	var e *Entry
	if f.ntfs != nil {
		st, err := f.ntfs.Stat(vp)
		if err != nil {
			return nil, err
		}
		e = ntfsEntry(name, st)
		if name == "." {
			e.Name = "."
		}
	} else if f.exfat != nil {
		var err error
		if e, err = f.exfatStat(name, vp); err != nil {
			return nil, err
		}
	} else {
		st, err := f.fat.Stat(vp)
		if err != nil {
			return nil, err
		}
		e = fatEntry(name, st)
		if name == "." {
			e.Name = "."
		}
	}
	e.Excluded = f.excluded(vp, e.ID, "")
	return e, nil
}

func ntfsEntry(name string, st volume.NTFSDirEntry) *Entry {
	e := &Entry{Path: name, Name: st.Name, Dir: st.Dir, Reparse: st.Attr&volume.NTFSAttrReparsePoint != 0,
		Size: st.Size, Created: st.Created, Modified: st.Modified, Changed: st.Changed, Accessed: st.Accessed,
		Attr: st.Attr, ID: st.Record}
	if e.Dir {
		e.Size = 0
	}
	return e
}

func fatEntry(name string, st volume.FATDirEntry) *Entry {
	return &Entry{Path: name, Name: st.Name, ShortName: st.ShortName, Dir: st.IsDir(), Size: int64(st.Size),
		Created: st.Created, Modified: st.Modified, Accessed: st.Accessed, Attr: uint32(st.Attr), ID: uint64(st.Cluster)}
}

// excluded returns the exclusion reason for a volume path (and NTFS record)
// and stream, or "".
func (f *FS) excluded(vp string, rec uint64, stream string) string {
	if len(f.exclPath) == 0 {
		return ""
	}
	key := strings.ToLower(vp)
	if stream != "" {
		key += ":" + strings.ToLower(stream)
	}
	if r, ok := f.exclPath[key]; ok {
		return r
	}
	if f.ntfs != nil && rec != 0 {
		return f.exclRec[recStream{rec, stream}]
	}
	return ""
}

// ReadDir lists the directory name, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := check("readdir", name); err != nil {
		return nil, err
	}
	ents, err := f.readDir(name)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	return ents, nil
}

func (f *FS) readDir(name string) ([]fs.DirEntry, error) {
	vp := volPath(name)
	prefix := ""
	if name != "." {
		prefix = name + "/"
	}
	var out []fs.DirEntry
	if f.ntfs != nil {
		if name != "." {
			// A reparse point is shown, not entered.
			st, err := f.ntfs.Stat(vp)
			if err != nil {
				return nil, err
			}
			if !st.Dir || st.Attr&volume.NTFSAttrReparsePoint != 0 {
				return nil, errors.New("not a directory")
			}
		}
		list, err := f.ntfs.ReadDir(vp)
		if err != nil {
			return nil, err
		}
		out = make([]fs.DirEntry, 0, len(list))
		for _, le := range list {
			if le.Err != nil {
				// A name that cannot be one path element ("a/b", "..") is
				// shown made safe: it is damaged and never looked up.
				le.Name, _ = SafeName(le.Name, false)
			}
			p := prefix + le.Name
			e := ntfsEntry(p, le)
			e.Damage = le.Err
			if e.Damage == nil {
				e.Excluded = f.excluded(volPath(p), e.ID, "")
			}
			out = append(out, &dirEntry{fs: f, e: e})
		}
	} else if f.exfat != nil {
		var err error
		if out, err = f.exfatList(prefix, vp); err != nil {
			return nil, err
		}
	} else {
		list, err := f.fat.ReadDir(vp)
		if err != nil {
			return nil, err
		}
		out = make([]fs.DirEntry, 0, len(list))
		for _, le := range list {
			p := prefix + le.Name
			e := fatEntry(p, le)
			e.Damage = le.Err
			e.Excluded = f.excluded(volPath(p), 0, "")
			out = append(out, &dirEntry{fs: f, e: e, final: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// dirEntry is one name of a listing. On NTFS the listing's sizes and times
// are the index's copies, which Windows updates late, so Info reads the
// file's record; the type and name come from the index.
type dirEntry struct {
	fs    *FS
	e     *Entry
	final bool // e is authoritative (FAT)
}

func (d *dirEntry) Name() string      { return d.e.Name }
func (d *dirEntry) IsDir() bool       { return d.e.Mode().IsDir() }
func (d *dirEntry) Type() fs.FileMode { return d.e.Mode().Type() }
func (d *dirEntry) Info() (fs.FileInfo, error) {
	if d.e.Damage != nil {
		return nil, pathErr("stat", d.e.Path, d.e.Damage)
	}
	if d.final {
		return fileInfo{d.e}, nil
	}
	e, err := d.fs.entry(d.e.Path)
	if err != nil {
		return nil, pathErr("stat", d.e.Path, err)
	}
	return fileInfo{e}, nil
}

// Entry returns the listing's own view of the entry (on NTFS, sizes and
// times from the directory index), with Damage set when it cannot be
// trusted.
func (d *dirEntry) Entry() *Entry { return d.e }

// Stream describes one named NTFS data stream.
type Stream struct {
	Name     string
	Size     int64
	Excluded string // exclusion reason, or ""
}

// Streams lists the named data streams of the file or directory at name,
// sorted by name. FAT has none.
func (f *FS) Streams(name string) ([]Stream, error) {
	if err := check("streams", name); err != nil {
		return nil, err
	}
	if f.ntfs == nil {
		if _, err := f.entry(name); err != nil {
			return nil, pathErr("streams", name, err)
		}
		return nil, nil
	}
	vp := volPath(name)
	st, err := f.ntfs.Stat(vp)
	if err != nil {
		return nil, pathErr("streams", name, err)
	}
	ss, err := f.ntfs.Streams(vp)
	if err != nil {
		return nil, pathErr("streams", name, err)
	}
	out := make([]Stream, 0, len(ss))
	for _, s := range ss {
		out = append(out, Stream{Name: s.Name, Size: s.Size, Excluded: f.excluded(vp, st.Record, s.Name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Open opens the file or directory at name. A file reads its main data
// stream (zeros when it was excluded at backup); a reparse point reads its
// main stream when it has one and is empty otherwise.
func (f *FS) Open(name string) (fs.File, error) {
	if err := check("open", name); err != nil {
		return nil, err
	}
	e, err := f.entry(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if e.Mode().IsDir() {
		return &dir{fs: f, e: e}, nil
	}
	data, err := f.data(e, "")
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return &file{e: e, r: data, size: e.Size}, nil
}

// OpenStream opens the named data stream of the file or directory at name;
// "" is the main stream. The returned file's Stat describes the stream:
// its name is "name:stream" and its size the stream's size.
func (f *FS) OpenStream(name, stream string) (fs.File, error) {
	if stream == "" {
		return f.Open(name)
	}
	if err := check("open", name); err != nil {
		return nil, err
	}
	e, err := f.entry(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if f.ntfs == nil {
		return nil, pathErr("open", name+":"+stream, fmt.Errorf("FAT has no named streams: %w", fs.ErrNotExist))
	}
	se := *e
	se.Name = e.Name + ":" + stream
	se.Dir, se.Reparse = false, false
	se.Excluded = f.excluded(volPath(name), e.ID, stream)
	nf, err := f.ntfs.OpenStream(volPath(name), stream)
	if err != nil {
		return nil, pathErr("open", name+":"+stream, err)
	}
	se.Size = nf.Size()
	var r io.ReaderAt = nf
	if se.Excluded != "" {
		r = zeros{}
	}
	return &file{e: &se, r: r, size: se.Size}, nil
}

// data returns the reader of an entry's main stream.
func (f *FS) data(e *Entry, stream string) (io.ReaderAt, error) {
	if e.Excluded != "" {
		return zeros{}, nil
	}
	vp := volPath(e.Path)
	if f.ntfs != nil {
		nf, err := f.ntfs.OpenStream(vp, stream)
		if err != nil {
			if e.Reparse && (e.Dir || errors.Is(err, fs.ErrNotExist)) {
				return zeros{}, nil // a reparse point without data
			}
			return nil, err
		}
		if nf.Size() != e.Size {
			return nil, fmt.Errorf("stream size %d, record says %d: %w", nf.Size(), e.Size, volume.ErrCorrupt)
		}
		return nf, nil
	}
	if f.exfat != nil {
		return f.exfatData(vp)
	}
	ff, err := f.fat.Open(vp)
	if err != nil {
		return nil, err
	}
	return ff, nil
}

// zeros reads as zero bytes (the file's size bounds reads).
type zeros struct{}

func (zeros) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}
