//go:build windows

package sysdev

// Windows volumes and disks: opened shared, sized by the driver, read and
// written in whole aligned sectors (volume handles are uncached, with the
// rules of uncached I/O), and locked and dismounted before a restore.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ErrInUse means Windows refused exclusive use of a volume: programs have
// files open on it, or Windows runs from it. It matches ErrMounted.
var ErrInUse = fmt.Errorf("volume is in use (%w)", ErrMounted)

// ErrNotElevated means a device needs Administrator rights this process
// lacks.
var ErrNotElevated = errors.New("access to disks and volumes needs Administrator rights: run cbimg from an elevated command prompt (Run as administrator)")

// Control codes (winioctl.h).
const (
	ioctlDiskGetLengthInfo          = 0x0007405C
	ioctlDiskGetDriveGeometry       = 0x00070000
	ioctlVolumeGetVolumeDiskExtents = 0x00560000
	fsctlLockVolume                 = 0x00090018
	fsctlDismountVolume             = 0x00090020
	fsctlAllowExtendedDASDIO        = 0x00090083
)

// Lock attempts: Windows advises retrying, as a volume's own background
// users (indexer, antivirus) let go within moments.
const (
	lockTries = 10
	lockPause = 200 * time.Millisecond
)

// Device is a file, volume or disk opened by OpenDevice. Its ReadAt and
// WriteAt take any offset and length; a volume or disk is sent only whole,
// aligned sectors. The embedded File is the handle: use Device's methods,
// not the File's, for I/O.
type Device struct {
	*os.File
	Path       WinPath
	Size       int64
	SectorSize int  // the driver's logical sector size; 0 for files, or when it does not say
	Regular    bool // a regular file, which may grow and have holes
	io         *SectorIO
	held       []windows.Handle // volumes locked for a disk
	locked     bool             // a volume locked through its own handle
}

// OpenDevice opens a file, a volume (C:, \\.\C:, \\?\Volume{...}) or a
// whole disk (\\.\PhysicalDriveN) for reading, or for reading and writing
// when flag has os.O_RDWR; os.O_CREATE creates a missing file (mode 0600).
// Volumes and disks are opened shared with other readers and writers, as
// Windows requires; Lock takes exclusive use before writing.
func OpenDevice(path string, flag int) (*Device, error) {
	wp, err := ParseWinPath(path)
	if err != nil {
		return nil, err
	}
	write := flag&(os.O_RDWR|os.O_WRONLY) != 0
	if wp.Kind == WinFile {
		return openFile(wp, flag)
	}
	access := uint32(windows.GENERIC_READ)
	if write {
		access |= windows.GENERIC_WRITE
	}
	h, err := createFile(wp.Open, access)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(h), wp.Open)
	var n uint32
	if wp.Kind == WinVolume {
		// Lets reads and writes reach the volume's last sectors (the NTFS
		// backup boot sector) beyond what the file system claims.
		windows.DeviceIoControl(h, fsctlAllowExtendedDASDIO, nil, 0, nil, 0, &n, nil)
	}
	size, err := deviceSize(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("size of %s: %w", wp.Open, err)
	}
	ss := sectorSize(h)
	sio := &SectorIO{Dev: f, Size: size, Sector: int64(ss)}
	if ss == 0 {
		sio.Sector = unknownSector
	}
	d := &Device{File: f, Path: wp, Size: size, SectorSize: ss, io: sio}
	devices.Store(f, d)
	return d, nil
}

func openFile(wp WinPath, flag int) (*Device, error) {
	f, err := os.OpenFile(wp.Open, flag, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory", wp.Open)
	}
	return &Device{File: f, Path: wp, Size: st.Size(), Regular: st.Mode().IsRegular(),
		io: &SectorIO{Dev: f, Size: st.Size(), Sector: 1}}, nil
}

// ReadAt reads at off; at the end it returns io.EOF like os.File.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if d.Regular {
		return d.File.ReadAt(p, off)
	}
	return d.io.ReadAt(p, off)
}

// WriteAt writes at off; a volume or disk cannot grow (ErrPastEnd).
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if d.Regular {
		return d.File.WriteAt(p, off)
	}
	return d.io.WriteAt(p, off)
}

// Truncate sets the size of a regular file; devices keep theirs.
func (d *Device) Truncate(size int64) error {
	if !d.Regular {
		return fmt.Errorf("%s cannot change size", d.Path.Open)
	}
	if err := d.File.Truncate(size); err != nil {
		return err
	}
	d.Size = size
	return nil
}

// Close closes the device, which also ends its volume locks.
func (d *Device) Close() error {
	for _, h := range d.held {
		windows.CloseHandle(h)
	}
	d.held = nil
	d.locked = false
	devices.Delete(d.File)
	return d.File.Close()
}

// Lock takes exclusive use of the bytes [start, start+length) of a device
// opened for writing, until Close: a volume is locked (FSCTL_LOCK_VOLUME)
// and dismounted (FSCTL_DISMOUNT_VOLUME); on a disk, so is every volume
// with an extent in the range, as Windows refuses writes to a mounted
// volume's sectors through the disk. Files need nothing. It fails with
// ErrInUse when Windows refuses the lock.
func (d *Device) Lock(start, length int64) error {
	switch d.Path.Kind {
	case WinVolume:
		if d.locked {
			return nil // locked already, e.g. for reading an image inside it
		}
		err := lockVolume(windows.Handle(d.File.Fd()), d.Path.Open)
		if err != nil && errors.Is(err, ErrInUse) && leaveVolume(d.Path.Open) {
			err = lockVolume(windows.Handle(d.File.Fd()), d.Path.Open) // cbimg's own current directory was on it
		}
		if err != nil {
			return err
		}
		d.locked = true
	case WinDisk:
		vols, err := volumesOn(d.Path.Disk, start, length)
		if err != nil {
			return fmt.Errorf("list the volumes on %s: %w", d.Path.Open, err)
		}
		for _, v := range vols {
			h, err := createFile(v, windows.GENERIC_READ|windows.GENERIC_WRITE)
			if err != nil {
				return fmt.Errorf("open volume %s on %s: %w", v, d.Path.Open, err)
			}
			d.held = append(d.held, h)
			if err := lockVolume(h, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func lockVolume(h windows.Handle, name string) error {
	var n uint32
	var err error
	for i := 0; i < lockTries; i++ {
		if err = windows.DeviceIoControl(h, fsctlLockVolume, nil, 0, nil, 0, &n, nil); err == nil {
			break
		}
		time.Sleep(lockPause)
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w: close the programs and windows that use it; the volume Windows runs from can only be restored from WinPE (%v)", name, ErrInUse, err)
	}
	err = windows.DeviceIoControl(h, fsctlDismountVolume, nil, 0, nil, 0, &n, nil)
	// A locked device with no file system to dismount (e.g. a file mapped
	// as a drive) answers with these; the lock alone gives exclusive use.
	if err != nil && err != windows.ERROR_INVALID_PARAMETER && err != windows.ERROR_NOT_SUPPORTED && err != windows.ERROR_INVALID_FUNCTION {
		return fmt.Errorf("dismount %s: %w", name, err)
	}
	return nil
}

// createFile opens a device shared for reading and writing, as Windows
// requires for volumes, and turns the common failures into advice.
func createFile(name string, access uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return windows.InvalidHandle, err
	}
	h, err := windows.CreateFile(p, access, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err == nil {
		return h, nil
	}
	switch err {
	case windows.ERROR_ACCESS_DENIED:
		if !windows.GetCurrentProcessToken().IsElevated() {
			return h, fmt.Errorf("open %s: %w (%v)", name, ErrNotElevated, err)
		}
		return h, fmt.Errorf("open %s: access denied although cbimg runs as Administrator (is the disk write-protected or offline?): %w", name, err)
	case windows.ERROR_SHARING_VIOLATION, windows.ERROR_LOCK_VIOLATION:
		return h, fmt.Errorf("open %s: %w (%v)", name, ErrInUse, err)
	case windows.ERROR_FILE_NOT_FOUND, windows.ERROR_PATH_NOT_FOUND, windows.ERROR_NOT_READY:
		return h, fmt.Errorf("open %s: no such volume or disk (%v): %w", name, err, os.ErrNotExist)
	}
	return h, fmt.Errorf("open %s: %w", name, err)
}

// deviceSize asks the driver (IOCTL_DISK_GET_LENGTH_INFO), and falls back
// to the end-of-file position for devices that do not answer, such as a
// file mapped as a drive.
func deviceSize(h windows.Handle, f *os.File) (int64, error) {
	var size int64
	var n uint32
	err := windows.DeviceIoControl(h, ioctlDiskGetLengthInfo, nil, 0, (*byte)(unsafe.Pointer(&size)), 8, &n, nil)
	if err == nil && n == 8 && size > 0 {
		return size, nil
	}
	end, serr := f.Seek(0, io.SeekEnd)
	if serr != nil || end <= 0 {
		if err == nil {
			err = serr
		}
		return 0, fmt.Errorf("the device reports no size: %v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return end, nil
}

// unknownSector is assumed for I/O when the driver does not tell the
// sector size: a multiple of every real one (requests are cut at the
// device's end, so a smaller device is still served).
const unknownSector = 4096

// sectorSize returns the logical sector size from the drive geometry, or 0
// when the driver does not tell.
func sectorSize(h windows.Handle) int {
	var g struct {
		Cylinders         int64
		MediaType         uint32
		TracksPerCylinder uint32
		SectorsPerTrack   uint32
		BytesPerSector    uint32
	}
	var n uint32
	err := windows.DeviceIoControl(h, ioctlDiskGetDriveGeometry, nil, 0, (*byte)(unsafe.Pointer(&g)), uint32(unsafe.Sizeof(g)), &n, nil)
	if err != nil || g.BytesPerSector < 512 || g.BytesPerSector > 65536 || g.BytesPerSector&(g.BytesPerSector-1) != 0 {
		return 0
	}
	return int(g.BytesPerSector)
}

// volumesOn lists the volumes (\\?\Volume{GUID}) with an extent on disk
// that overlaps [start, start+length).
func volumesOn(disk int, start, length int64) ([]string, error) {
	buf := make([]uint16, windows.MAX_PATH+1)
	fh, err := windows.FindFirstVolume(&buf[0], uint32(len(buf)))
	if err != nil {
		return nil, err
	}
	defer windows.FindVolumeClose(fh)
	var out []string
	for i := 0; i < 4096; i++ {
		name := windows.UTF16ToString(buf)
		if len(name) > 0 && name[len(name)-1] == '\\' {
			name = name[:len(name)-1] // the volume device, not its root directory
		}
		if on, err := volumeOnDisk(name, disk, start, length); err == nil && on {
			out = append(out, name)
		}
		if err := windows.FindNextVolume(fh, &buf[0], uint32(len(buf))); err != nil {
			if err == windows.ERROR_NO_MORE_FILES {
				return out, nil
			}
			return out, err
		}
	}
	return out, nil
}

func volumeOnDisk(name string, disk int, start, length int64) (bool, error) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return false, err
	}
	h, err := windows.CreateFile(p, 0, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return false, err
	}
	defer windows.CloseHandle(h)
	// VOLUME_DISK_EXTENTS: a DWORD count, then DISK_EXTENTs of
	// {DWORD DiskNumber; LARGE_INTEGER StartingOffset, ExtentLength}, 8-aligned.
	var out [8 + 24*32]byte
	var n uint32
	if err := windows.DeviceIoControl(h, ioctlVolumeGetVolumeDiskExtents, nil, 0, &out[0], uint32(len(out)), &n, nil); err != nil {
		return false, err
	}
	count := binary.LittleEndian.Uint32(out[0:])
	for i := 0; i < int(count) && 8+24*(i+1) <= int(n); i++ {
		e := out[8+24*i:]
		d := binary.LittleEndian.Uint32(e[0:])
		s := int64(binary.LittleEndian.Uint64(e[8:]))
		l := int64(binary.LittleEndian.Uint64(e[16:]))
		if int(d) == disk && s < start+length && start < s+l {
			return true, nil
		}
	}
	return false, nil
}
