package volume

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Checking a directory index entry against the file's own MFT record. The
// index holds a copy of the file's $FILE_NAME; on a damaged (or hostile)
// volume the two can disagree, and an entry can point back at its own
// directory or one above it. Such an entry is damaged: browsing lists it
// with the reason and never enters or reads it, so a tree can neither loop
// nor show one file's data under another's name.

// entryCheckCache bounds the remembered results of checkEntry.
const entryCheckCache = 1 << 14

type entryKey struct {
	dir  uint64
	rec  uint64
	seq  uint16
	flag bool
	name string
}

type entryCheck struct {
	attr uint32
	err  error
}

// checkEntry returns why index entry ent of directory dir cannot be
// trusted, or nil, and the file attributes its record holds (the index's
// copy may lag). above lists the directories from the root down to dir's
// parent.
func (v *ntfsVol) checkEntry(dir uint64, ent *ntfsDirEntry, above []uint64) (uint32, error) {
	attr := ent.fn.flags &^ fnFlagDirectory
	idxDir := ent.fn.flags&fnFlagDirectory != 0
	what := fmt.Sprintf("entry %q of directory record %d", ent.fn.name, dir)
	bad := func(off int64, format string, args ...any) error {
		return &FormatError{What: what, Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if !validEntryName(ent.fn.name) {
		return attr, bad(-1, "the name cannot be a path component")
	}
	if ent.rec == dir {
		return attr, bad(-1, "points to record %d, its own directory", ent.rec)
	}
	for _, a := range above {
		if ent.rec == a {
			return attr, bad(-1, "points to record %d, a directory above it", ent.rec)
		}
	}
	k := entryKey{dir, ent.rec, ent.seq, idxDir, ent.fn.name}
	v.checkMu.Lock()
	c, ok := v.checked[k]
	v.checkMu.Unlock()
	if ok {
		return c.attr, c.err
	}
	c.attr = attr
	c.err = v.checkRecord(dir, ent, idxDir, &c.attr, bad)
	v.checkMu.Lock()
	if v.checked == nil || len(v.checked) >= entryCheckCache {
		v.checked = make(map[entryKey]entryCheck)
	}
	v.checked[k] = c
	v.checkMu.Unlock()
	return c.attr, c.err
}

func (v *ntfsVol) checkRecord(dir uint64, ent *ntfsDirEntry, idxDir bool, attr *uint32, bad func(int64, string, ...any) error) error {
	r, attrs, err := v.fileAttrs(ent.rec, ent.seq)
	if err != nil {
		return bad(-1, "points to record %d: %v", ent.rec, err)
	}
	off := v.recordOffset(ent.rec)
	if r.isDir() != idxDir {
		return bad(off, "the index says %s, record %d is %s", kind(idxDir), ent.rec, kind(r.isDir()))
	}
	if si := attrsOf(attrs, attrStandardInfo, ""); len(si) > 0 && si[0].resident && len(si[0].value) >= 0x24 {
		*attr = binary.LittleEndian.Uint32(si[0].value[0x20:])
	}
	var names []string
	for _, a := range attrsOf(attrs, attrFileName, "") {
		if !a.resident {
			continue
		}
		fn, err := parseFileName(a.value)
		if err != nil {
			return bad(off, "record %d: $FILE_NAME: %v", ent.rec, err)
		}
		if fn.parent == dir && fn.name == ent.fn.name {
			return nil
		}
		if len(names) < 4 {
			names = append(names, fmt.Sprintf("%q in record %d", fn.name, fn.parent))
		}
	}
	if len(names) == 0 {
		return bad(off, "record %d has no $FILE_NAME", ent.rec)
	}
	return bad(off, "record %d is named %s, not %q in record %d", ent.rec, strings.Join(names, ", "), ent.fn.name, dir)
}

func kind(dir bool) string {
	if dir {
		return "a directory"
	}
	return "a file"
}

// validEntryName rejects names that cannot be one path component.
func validEntryName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}
