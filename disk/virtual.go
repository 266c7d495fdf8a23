package disk

import (
	"errors"
	"fmt"
	"os"

	"github.com/cbimg/cbimg/vdisk"
)

// ErrVirtualWrite means a write was asked of a virtual disk (VHD, VHDX,
// qcow2, VMDK, E01): they are read-only sources.
var ErrVirtualWrite = errors.New("disk: virtual disks are read-only sources")

// virtual is a virtual disk file read through its vdisk reader; c is the
// container file, kept open for Stat (same-file checks) and File.
type virtual struct {
	d vdisk.Disk
	c file
}

func (v *virtual) ReadAt(p []byte, off int64) (int, error) { return v.d.ReadAt(p, off) }
func (v *virtual) WriteAt(p []byte, off int64) (int, error) {
	return 0, fmt.Errorf("%w: %s", ErrVirtualWrite, v.c.Name())
}
func (v *virtual) Stat() (os.FileInfo, error) { return v.c.Stat() }
func (v *virtual) Sync() error                { return nil }
func (v *virtual) Truncate(int64) error {
	return fmt.Errorf("%w: %s", ErrVirtualWrite, v.c.Name())
}
func (v *virtual) Name() string { return v.c.Name() }
func (v *virtual) Close() error {
	err := v.d.Close()
	if cerr := v.c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Format names the virtual disk's kind, e.g. "VHDX (dynamic)".
func (v *virtual) Format() string { return v.d.Format() }

// openSource opens path for reading, or for reading and writing when
// write is set. A regular file that is a virtual disk is read through
// its reader, and refused for writing so that a restore never turns a
// VHDX or qcow2 file into a raw one.
func openSource(path string, flag int, perm os.FileMode) (file, error) {
	f, err := openFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return f, nil
	}
	k, err := vdisk.Detect(path)
	if err != nil || k == vdisk.Raw {
		return f, nil
	}
	if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		f.Close()
		return nil, fmt.Errorf("%w: %s is a %s file: restore to a raw disk file or a device", ErrVirtualWrite, path, k)
	}
	d, err := vdisk.Open(path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &virtual{d: d, c: f}, nil
}

// sizeOfFile, osFileOf and sectorSizeOfFile add virtual disks to the
// per-system fileSize, osFile and sectorSizeOf.
func sizeOfFile(f file) (int64, bool, error) {
	if v, ok := f.(*virtual); ok {
		return v.d.Size(), false, nil
	}
	return fileSize(f)
}

func osFileOf(f file) *os.File {
	if v, ok := f.(*virtual); ok {
		return osFile(v.c)
	}
	return osFile(f)
}

func sectorSizeOfFile(f file) int {
	if _, ok := f.(*virtual); ok {
		return 0
	}
	return sectorSizeOf(f)
}

// VirtualFormat names the virtual disk format under s ("" for a raw file
// or device).
func (s *Section) VirtualFormat() string { return formatOf(s.f) }

// VirtualFormat names the virtual disk format of d ("" for a raw file or
// device).
func (d *Disk) VirtualFormat() string { return formatOf(d.f) }

func formatOf(f file) string {
	if v, ok := f.(*virtual); ok {
		return v.Format()
	}
	return ""
}
