// Package devguard answers the questions a backup, a restore, a mount and
// the menu must ask before they touch a device or a file holding a
// partition: who holds it (the kernel's mounts of its devices or of a loop
// device over the file, and FUSE drivers serving it), may it be written,
// which mount holds a path, and does one partition lie inside another.
// Windows has no mount table: there the volumes written to are locked
// instead (disk.Section.Lock), Holders finds nothing, and a path's drive
// letter says which volume holds it (OnDriveVolume, DrivePath).
package devguard

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/disk"
)

// ErrMounted means a device or file is mounted where that is unsafe. It is
// disk.ErrMounted, which Windows locking (Section.Lock) returns too.
var ErrMounted = disk.ErrMounted

// Mount is one mount of a file system.
type Mount struct {
	Point    string // where it is mounted
	Root     string // the directory of the file system mounted there ("/" unless a bind mount)
	FSType   string // e.g. "ext4", "fuseblk", "fuse.fusefat", "vfat"
	Source   string // as the mount table says; FUSE drivers may put anything here
	ReadOnly bool
	Device   string // the device or file it holds, as the caller named it (Holders only)
	Via      string // how it is connected, e.g. "/dev/loop3" for a file (Holders only)
}

// IsFUSE reports whether m is served by a FUSE driver.
func (m Mount) IsFUSE() bool { return IsFUSE(m.FSType) }

// IsFUSE reports whether a mount table's file-system type is a FUSE driver.
func IsFUSE(fsType string) bool {
	return fsType == "fuse" || fsType == "fuseblk" || strings.HasPrefix(fsType, "fuse.") || strings.HasPrefix(fsType, "fuseblk.")
}

// PathInside returns the path inside the mounted file system of abs, a
// path under the mount point.
func (m Mount) PathInside(abs string) string {
	rel, _ := filepath.Rel(m.Point, abs)
	return path.Join("/", m.Root, filepath.ToSlash(rel))
}

// HeldError says which mount holds a device that was to be written.
type HeldError struct{ Mount Mount }

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s at %s (%s)", e.Mount.Device, e.Mount.Point, e.Mount.FSType)
}

// Is makes a HeldError match ErrMounted.
func (e *HeldError) Is(target error) bool { return target == ErrMounted }

// MayWrite returns nil when nothing holds sec, and otherwise a *HeldError
// naming the first mount that does. A mount table that cannot be read
// counts as holding nothing; Windows locks the volume before writing.
func MayWrite(sec *disk.Section) error {
	if ms, _ := Holders(sec); len(ms) > 0 {
		return &HeldError{Mount: ms[0]}
	}
	return nil
}

// Inside reports whether the file path lies in the file system of one of
// holders (a list from Holders), and returns that mount and path as an
// absolute path with its directory's symlinks resolved.
func Inside(path string, holders []Mount) (Mount, string, bool) {
	m, abs, ok := MountHolding(path)
	if !ok {
		return Mount{}, "", false
	}
	for _, h := range holders {
		if h.Point == m.Point {
			return m, abs, true
		}
	}
	return Mount{}, "", false
}

// add appends m to ms unless a mount at the same point is there already.
func add(ms []Mount, m Mount) []Mount {
	for _, x := range ms {
		if x.Point == m.Point {
			return ms
		}
	}
	return append(ms, m)
}
