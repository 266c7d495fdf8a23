package volume

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Browsing an NTFS volume: look paths up through the directory indexes,
// list directories, and read streams. The API has the same shape as FATFS
// (ReadDir, Stat, Open returning an io.ReaderAt that can also list its
// clusters), so one fs.FS adapter can serve both. Listings come from the
// index alone (cheap for large directories); Stat and Open read the file's
// MFT record, which is authoritative for sizes and times.

// NTFSFS is an opened NTFS file system. Volume.NTFS returns it for NTFS
// volumes.
type NTFSFS struct {
	v *ntfsVol
}

var _ fsImpl = (*ntfsVol)(nil)

// OpenNTFSFS opens the NTFS file system at the start of r (size bytes).
func OpenNTFSFS(r io.ReaderAt, size int64) (*NTFSFS, error) {
	v, err := openNTFSVol(r, size)
	if err != nil {
		return nil, err
	}
	return &NTFSFS{v: v}, nil
}

// NTFS returns the NTFS file system of v, or nil when v is not NTFS.
func (v *Volume) NTFS() *NTFSFS {
	n, _ := v.impl.(*ntfsVol)
	if n == nil {
		return nil
	}
	return &NTFSFS{v: n}
}

// Boot returns the parsed boot sector.
func (f *NTFSFS) Boot() *NTFSBoot { return f.v.boot }

// Info returns the volume parameters.
func (f *NTFSFS) Info() *Info { return &f.v.inf }

// File attribute flags ($STANDARD_INFORMATION and $FILE_NAME).
const (
	NTFSAttrReadOnly     = 0x0001
	NTFSAttrHidden       = 0x0002
	NTFSAttrSystem       = 0x0004
	NTFSAttrArchive      = 0x0020
	NTFSAttrSparse       = 0x0200
	NTFSAttrReparsePoint = 0x0400
	NTFSAttrCompressed   = 0x0800
	NTFSAttrEncrypted    = 0x4000
)

// NTFSDirEntry is one name in a directory.
type NTFSDirEntry struct {
	Name     string // as stored (Win32 or POSIX name; DOS 8.3 aliases are not listed)
	Record   uint64 // MFT record number
	Seq      uint16 // record sequence number
	Dir      bool
	Size     int64  // main stream size; in ReadDir results, the index's copy, which Windows may update late
	Attr     uint32 // NTFSAttr* flags (in ReadDir results, from the file's record, as Stat gives them)
	Created  time.Time
	Modified time.Time
	Changed  time.Time // MFT record change time
	Accessed time.Time
	Parent   uint64 // record of the directory holding the entry (ReadDir)
	// Err, set by ReadDir, says why the entry cannot be trusted: its index
	// entry and the file's record disagree (sequence number, name, parent,
	// directory flag), the record is missing, or it points back at its own
	// directory or one above it. Such an entry is listed, never followed.
	Err error
}

// IsDir reports whether the entry is a directory.
func (e *NTFSDirEntry) IsDir() bool { return e.Dir }

// ntfsTime converts an NTFS timestamp (100 ns units since 1601) to UTC.
func ntfsTime(t uint64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	v := int64(t) - epochDiff
	return time.Unix(v/1e7, (v%1e7)*100).UTC()
}

func (f *NTFSFS) pathErr(op, path string, err error) error {
	return &fs.PathError{Op: op, Path: path, Err: err}
}

// splitPath turns "/a/b", "a/b", "", "/" and "." into components.
func splitPath(path string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(path, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fs.ErrInvalid
		}
		out = append(out, c)
	}
	return out, nil
}

// resolve looks path up from the root and returns the directory entry of
// its last component (nil for the root) and the directory records from the
// root down to the one holding it. Every component is checked against its
// record (checkEntry): a damaged entry is an error, never followed.
func (f *NTFSFS) resolve(op, path string) (*ntfsDirEntry, []uint64, error) {
	parts, err := splitPath(path)
	if err != nil {
		return nil, nil, f.pathErr(op, path, err)
	}
	if len(parts) > ntfsMaxPathDepth {
		return nil, nil, f.pathErr(op, path, fmt.Errorf("deeper than %d components: %w", ntfsMaxPathDepth, fs.ErrInvalid))
	}
	dir, dirSeq := uint64(mftRecRoot), uint16(0)
	var ent *ntfsDirEntry
	var chain []uint64
	for i, name := range parts {
		if i > 0 && ent.fn.flags&fnFlagDirectory == 0 {
			return nil, nil, f.pathErr(op, path, fmt.Errorf("%s is not a directory: %w", strings.Join(parts[:i], "/"), fs.ErrNotExist))
		}
		ent, err = f.v.lookupSeq(dir, dirSeq, name)
		if err != nil {
			return nil, nil, f.pathErr(op, path, err)
		}
		if ent == nil {
			return nil, nil, f.pathErr(op, path, fs.ErrNotExist)
		}
		if _, err := f.v.checkEntry(dir, ent, chain); err != nil {
			return nil, nil, f.pathErr(op, path, err)
		}
		chain = append(chain, dir)
		dir, dirSeq = ent.rec, ent.seq
	}
	return ent, chain, nil
}

// ReadDir lists the directory at path, in index (collation) order. DOS 8.3
// aliases and, in the root, its own "." entry and the metadata files
// ($MFT ... $Extend) are left out, as Windows and ntfs-3g show it. Every
// other name is listed; one whose index entry disagrees with the file's
// record (or points back at this directory or one above it) comes with
// Err set.
func (f *NTFSFS) ReadDir(path string) ([]NTFSDirEntry, error) {
	ent, chain, err := f.resolve("readdir", path)
	if err != nil {
		return nil, err
	}
	dir, seq := uint64(mftRecRoot), uint16(0)
	if ent != nil {
		if ent.fn.flags&fnFlagDirectory == 0 {
			return nil, f.pathErr("readdir", path, fmt.Errorf("not a directory"))
		}
		dir, seq = ent.rec, ent.seq
	}
	d, err := f.v.dirIndex(dir, seq)
	if err != nil {
		return nil, f.pathErr("readdir", path, err)
	}
	out := make([]NTFSDirEntry, 0, len(d.entrs))
	seen := make(map[string]bool, len(d.entrs))
	for i := range d.entrs {
		e := &d.entrs[i]
		if e.fn.namespace == nsDOS || dir == mftRecRoot && e.rec < mftFirstUser && (e.fn.name == "." || strings.HasPrefix(e.fn.name, "$")) {
			continue
		}
		le := indexEntry(e)
		le.Parent = dir
		le.Attr, le.Err = f.v.checkEntry(dir, e, chain)
		// Lookups find the first of two equal names; the second could
		// only ever show the first one's data.
		if seen[e.fn.name] && le.Err == nil {
			le.Err = &FormatError{What: fmt.Sprintf("entry %q of directory record %d", e.fn.name, dir), Offset: -1, Err: ErrCorrupt,
				Msg: fmt.Sprintf("a second entry with this name (record %d): it cannot be told from the first", e.rec)}
		}
		seen[e.fn.name] = true
		out = append(out, le)
	}
	return out, nil
}

// indexEntry fills an entry from the index's copy of $FILE_NAME.
func indexEntry(e *ntfsDirEntry) NTFSDirEntry {
	return NTFSDirEntry{
		Name:     e.fn.name,
		Record:   e.rec,
		Seq:      e.seq,
		Dir:      e.fn.flags&fnFlagDirectory != 0,
		Size:     int64(e.fn.dataSize),
		Attr:     e.fn.flags &^ fnFlagDirectory,
		Created:  ntfsTime(e.fn.times[0]),
		Modified: ntfsTime(e.fn.times[1]),
		Changed:  ntfsTime(e.fn.times[2]),
		Accessed: ntfsTime(e.fn.times[3]),
	}
}

// Stat returns the entry at path with size, attributes and times read from
// the file's MFT record. The root is an entry named "/".
func (f *NTFSFS) Stat(path string) (NTFSDirEntry, error) {
	ent, _, err := f.resolve("stat", path)
	if err != nil {
		return NTFSDirEntry{}, err
	}
	var e NTFSDirEntry
	rec, seq := uint64(mftRecRoot), uint16(0)
	if ent == nil {
		e = NTFSDirEntry{Name: "/", Record: mftRecRoot, Dir: true}
	} else {
		e = indexEntry(ent)
		rec, seq = ent.rec, ent.seq
	}
	r, attrs, err := f.v.fileAttrs(rec, seq)
	if err != nil {
		return NTFSDirEntry{}, f.pathErr("stat", path, err)
	}
	e.Seq = r.seq
	e.Dir = r.isDir()
	if si := attrsOf(attrs, attrStandardInfo, ""); len(si) > 0 && si[0].resident && len(si[0].value) >= 0x24 {
		v := si[0].value
		le := binary.LittleEndian
		e.Created = ntfsTime(le.Uint64(v[0x00:]))
		e.Modified = ntfsTime(le.Uint64(v[0x08:]))
		e.Changed = ntfsTime(le.Uint64(v[0x10:]))
		e.Accessed = ntfsTime(le.Uint64(v[0x18:]))
		e.Attr = le.Uint32(v[0x20:])
	}
	e.Size = 0
	if !e.Dir {
		if d := attrsOf(attrs, attrData, ""); len(d) > 0 {
			s, err := f.v.fileStream(attrs, rec, attrData, "")
			if err != nil {
				return NTFSDirEntry{}, f.pathErr("stat", path, err)
			}
			e.Size = s.size()
		}
	}
	return e, nil
}

// fileAttrs reads base record rec and all its attributes.
func (v *ntfsVol) fileAttrs(rec uint64, seq uint16) (*mftRecord, []ntfsAttr, error) {
	r, err := v.readBaseRecord(rec, seq)
	if err != nil {
		return nil, nil, err
	}
	attrs, err := v.loadAttrs(r)
	if err != nil {
		return nil, nil, err
	}
	return r, attrs, nil
}

// NTFSStreamInfo describes one named data stream.
type NTFSStreamInfo struct {
	Name string
	Size int64
}

// Streams lists the named $DATA streams of the file or directory at path.
func (f *NTFSFS) Streams(path string) ([]NTFSStreamInfo, error) {
	ent, _, err := f.resolve("streams", path)
	if err != nil {
		return nil, err
	}
	rec, seq := uint64(mftRecRoot), uint16(0)
	if ent != nil {
		rec, seq = ent.rec, ent.seq
	}
	_, attrs, err := f.v.fileAttrs(rec, seq)
	if err != nil {
		return nil, f.pathErr("streams", path, err)
	}
	var out []NTFSStreamInfo
	seen := map[string]bool{}
	for _, a := range attrs {
		if a.typ != attrData || a.name == "" || seen[a.name] {
			continue
		}
		seen[a.name] = true
		s, err := f.v.fileStream(attrs, rec, attrData, a.name)
		if err != nil {
			return nil, f.pathErr("streams", path, err)
		}
		out = append(out, NTFSStreamInfo{Name: a.name, Size: s.size()})
	}
	return out, nil
}

// Open opens the main data stream of the file at path.
func (f *NTFSFS) Open(path string) (*NTFSFile, error) {
	return f.OpenStream(path, "")
}

// OpenStream opens the named data stream of the file (or directory) at
// path; "" is the main stream.
func (f *NTFSFS) OpenStream(path, stream string) (*NTFSFile, error) {
	ent, _, err := f.resolve("open", path)
	if err != nil {
		return nil, err
	}
	rec, seq := uint64(mftRecRoot), uint16(0)
	if ent != nil {
		rec, seq = ent.rec, ent.seq
	}
	r, attrs, err := f.v.fileAttrs(rec, seq)
	if err != nil {
		return nil, f.pathErr("open", path, err)
	}
	if len(attrsOf(attrs, attrData, stream)) == 0 {
		if stream == "" && r.isDir() {
			return nil, f.pathErr("open", path, fmt.Errorf("is a directory"))
		}
		return nil, f.pathErr("open", path, fmt.Errorf("no data stream %q: %w", stream, fs.ErrNotExist))
	}
	s, err := f.v.fileStream(attrs, rec, attrData, stream)
	if err != nil {
		return nil, f.pathErr("open", path, err)
	}
	return &NTFSFile{Record: rec, Stream: stream, s: s}, nil
}

// OpenRecord opens a data stream of the file whose base MFT record is rec
// (any sequence number).
func (f *NTFSFS) OpenRecord(rec uint64, stream string) (*NTFSFile, error) {
	_, attrs, err := f.v.fileAttrs(rec, 0)
	if err != nil {
		return nil, err
	}
	s, err := f.v.fileStream(attrs, rec, attrData, stream)
	if err != nil {
		return nil, err
	}
	return &NTFSFile{Record: rec, Stream: stream, s: s}, nil
}

// NTFSFile reads one data stream. It is safe for concurrent use.
type NTFSFile struct {
	Record uint64
	Stream string
	s      *ntfsStream
}

// Size returns the stream's logical size.
func (nf *NTFSFile) Size() int64 { return nf.s.size() }

// Runs returns the clusters holding the stream's data in file order; sparse
// ranges are left out; nil for resident data. For a compressed stream these
// are the compressed clusters.
func (nf *NTFSFile) Runs() []Run { return nf.s.clusterRuns() }

// Resident reports whether the data is stored inside the MFT record.
func (nf *NTFSFile) Resident() bool { return nf.s.resident }

// Compressed reports whether the stream is LZNT1-compressed.
func (nf *NTFSFile) Compressed() bool { return nf.s.compressed }

// Sparse reports whether the stream has the sparse flag.
func (nf *NTFSFile) Sparse() bool { return nf.s.sparse }

// Encrypted reports whether the stream is EFS-encrypted; ReadAt refuses
// such streams.
func (nf *NTFSFile) Encrypted() bool { return nf.s.encrypted }

// ReadAt reads the stream's bytes: sparse ranges, and bytes between the
// valid data length and the size, read as zeros; compressed units are
// decompressed. Reads past the end return io.EOF.
func (nf *NTFSFile) ReadAt(p []byte, off int64) (int, error) {
	if nf.s.encrypted {
		return 0, &FormatError{What: nf.s.what, Offset: -1, Msg: "EFS-encrypted data cannot be read", Err: ErrUnsupported}
	}
	return nf.s.ReadAt(p, off)
}
