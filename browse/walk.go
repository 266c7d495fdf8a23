package browse

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/cbimg/cbimg/volume"
)

// maxDepth bounds a walk: a damaged volume can make a directory its own
// descendant, and no real tree is this deep.
const maxDepth = 1024

// WalkFunc is called by Walk for each entry. e is the listing's view (on
// NTFS: sizes and times from the directory index; use Stat for the
// record's). A damaged entry (Entry.Damage) is passed once, with e and an
// error that names the damage, and is not entered. When reading a
// directory fails, fn is called a second time for it with the error;
// returning nil then skips the directory and the walk goes on. Returning
// fs.SkipDir skips a directory, fs.SkipAll stops.
type WalkFunc func(name string, e *Entry, err error) error

// Walk calls fn for root (an fs.FS path) and, when it is a directory,
// everything below it, in sorted order, parents before children. Reparse
// points are not entered; a directory met twice on one path (a damaged
// volume) is reported as an error, not entered again.
func (f *FS) Walk(root string, fn WalkFunc) error {
	root, err := f.Canonical(root)
	var info fs.FileInfo
	if err == nil {
		info, err = f.Lstat(root)
	}
	if err != nil {
		err = fn(root, nil, err)
	} else if e, ok := info.Sys().(*Entry); ok {
		err = f.walk(root, e, fn, map[uint64]bool{}, 0)
	} else {
		err = fn(root, nil, pathErr("stat", root, errors.New("no entry")))
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func (f *FS) walk(name string, e *Entry, fn WalkFunc, onPath map[uint64]bool, depth int) error {
	if e.Damage != nil {
		return skip(fn(name, e, pathErr("stat", name, e.Damage)))
	}
	if err := fn(name, e, nil); err != nil || !e.Mode().IsDir() {
		if err == fs.SkipDir && !e.Mode().IsDir() {
			err = nil
		}
		return err
	}
	// FAT's root and empty directories have no cluster to key on.
	key := e.ID
	if f.fat != nil && key == 0 {
		key = ^uint64(0) - uint64(depth)
	}
	if onPath[key] || depth >= maxDepth {
		err := &volume.FormatError{What: "directory " + volPath(name), Offset: -1, Msg: fmt.Sprintf("directory loop (id %d, depth %d)", e.ID, depth), Err: volume.ErrCorrupt}
		return skip(fn(name, e, err))
	}
	onPath[key] = true
	defer delete(onPath, key)
	list, err := f.ReadDir(name)
	if err != nil {
		return skip(fn(name, e, err))
	}
	for _, de := range list {
		d, ok := de.(*dirEntry)
		if !ok {
			continue // never: readDir makes only these
		}
		child := d.e
		if err := f.walk(child.Path, child, fn, onPath, depth+1); err != nil {
			if err == fs.SkipDir {
				continue
			}
			return err
		}
	}
	return nil
}

func skip(err error) error {
	if errors.Is(err, fs.SkipDir) {
		return nil
	}
	return err
}

// Canonical returns name with every component spelled as stored: a path
// matched case-insensitively (or, on FAT, by 8.3 alias) comes back with the
// names a listing shows.
func (f *FS) Canonical(name string) (string, error) {
	if err := check("stat", name); err != nil {
		return "", err
	}
	if name == "." {
		return name, nil
	}
	out := ""
	rest := name
	for rest != "" {
		elem, tail, _ := strings.Cut(rest, "/")
		p := elem
		if out != "" {
			p = out + "/" + elem
		}
		e, err := f.entry(p)
		if err != nil {
			return "", pathErr("stat", name, err)
		}
		if out == "" {
			out = e.Name
		} else {
			out += "/" + e.Name
		}
		rest = tail
	}
	return out, nil
}
