package browse

import (
	"io"
	"io/fs"

	"github.com/cbimg/cbimg/volume"
)

// exFAT: entries are final as listed (sizes and times live in the entry
// set itself); times are UTC with the 10 ms fields.

func exfatEntry(name string, st volume.ExFATDirEntry) *Entry {
	e := &Entry{Path: name, Name: st.Name, Dir: st.IsDir(), Size: st.Size,
		Created: st.Created, Modified: st.Modified, Accessed: st.Accessed, Attr: uint32(st.Attr), ID: uint64(st.Cluster)}
	if e.Dir {
		e.Size = 0
	}
	return e
}

func (f *FS) exfatStat(name, vp string) (*Entry, error) {
	st, err := f.exfat.Stat(vp)
	if err != nil {
		return nil, err
	}
	e := exfatEntry(name, st)
	if name == "." {
		e.Name = "."
	}
	return e, nil
}

func (f *FS) exfatList(prefix, vp string) ([]fs.DirEntry, error) {
	list, err := f.exfat.ReadDir(vp)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(list))
	for _, le := range list {
		p := prefix + le.Name
		e := exfatEntry(p, le)
		e.Excluded = f.excluded(volPath(p), 0, "")
		out = append(out, &dirEntry{fs: f, e: e, final: true})
	}
	return out, nil
}

func (f *FS) exfatData(vp string) (io.ReaderAt, error) {
	xf, err := f.exfat.Open(vp)
	if err != nil {
		return nil, err
	}
	return xf, nil
}
