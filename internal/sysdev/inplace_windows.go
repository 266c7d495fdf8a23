//go:build windows

package sysdev

// What an image stored inside the volume it backs up needs from Windows:
// its file created through the file system at full size in real clusters,
// the driver's own list of those clusters (FSCTL_GET_RETRIEVAL_POINTERS),
// and the volume handle turned into one that may write and holds the
// volume locked while the image goes into the clusters raw.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ErrLockUnsupported means the volume's driver does not implement
// FSCTL_LOCK_VOLUME (Wine, some drivers of mapped devices), as opposed to
// refusing it: no exclusive use can be had at all.
var ErrLockUnsupported = errors.New("the volume driver does not implement locking (FSCTL_LOCK_VOLUME)")

// ErrNoRetrieval means the file system driver does not implement
// FSCTL_GET_RETRIEVAL_POINTERS.
var ErrNoRetrieval = errors.New("the file system driver does not tell where a file's clusters are (FSCTL_GET_RETRIEVAL_POINTERS)")

const fsctlUnlockVolume = 0x0009001C

// devices maps the handle of every open volume or disk to its Device, so
// that code holding only a disk.Section's File can reach it.
var devices sync.Map // *os.File → *Device

// DeviceOf returns the volume or disk Device whose handle f is.
func DeviceOf(f *os.File) (*Device, bool) {
	d, ok := devices.Load(f)
	if !ok {
		return nil, false
	}
	return d.(*Device), true
}

// notImplemented reports the answers of a driver that lacks a control code.
func notImplemented(err error) bool {
	return err == windows.ERROR_INVALID_FUNCTION || err == windows.ERROR_NOT_SUPPORTED ||
		err == windows.ERROR_CALL_NOT_IMPLEMENTED
}

// ReopenWrite replaces the handle of a volume opened for reading with one
// that may also write, in place: readers of the Device continue through
// the new handle. A volume locked through one handle can be read and
// written only through that handle, so the reading and the writing of an
// in-place backup must share it.
func (d *Device) ReopenWrite() error {
	if d.Path.Kind != WinVolume {
		return fmt.Errorf("%s is not a volume", d.Path.Open)
	}
	h, err := createFile(d.Path.Open, windows.GENERIC_READ|windows.GENERIC_WRITE)
	if err != nil {
		return err
	}
	var n uint32
	windows.DeviceIoControl(h, fsctlAllowExtendedDASDIO, nil, 0, nil, 0, &n, nil)
	f := os.NewFile(uintptr(h), d.Path.Open)
	old := d.File
	devices.Delete(old)
	d.File, d.io.Dev = f, f
	devices.Store(f, d)
	old.Close()
	return nil
}

// LockVolume locks and dismounts a volume for writing inside its file
// system: Windows flushes every cached byte first, and no one else can
// open a file on it until Unlock or Close. It fails with ErrInUse when
// Windows refuses (files are open on it, or Windows runs from it), and
// with ErrLockUnsupported when the driver has no locking.
func (d *Device) LockVolume() error {
	if d.Path.Kind != WinVolume {
		return fmt.Errorf("%s is not a volume", d.Path.Open)
	}
	if d.locked {
		return nil
	}
	h := windows.Handle(d.File.Fd())
	err := tryLock(h)
	if err != nil && !notImplemented(err) && leaveVolume(d.Path.Open) {
		err = tryLock(h)
	}
	var n uint32
	switch {
	case notImplemented(err):
		return fmt.Errorf("lock %s: %w (%v)", d.Path.Open, ErrLockUnsupported, err)
	case err != nil:
		return fmt.Errorf("lock %s: %w (%v)", d.Path.Open, ErrInUse, err)
	}
	d.locked = true
	// Dismounting makes the file system read everything afresh when the
	// lock ends, so no cached copy of the bytes written meanwhile is used.
	if err := windows.DeviceIoControl(h, fsctlDismountVolume, nil, 0, nil, 0, &n, nil); err != nil && !notImplemented(err) && err != windows.ERROR_INVALID_PARAMETER {
		d.Unlock()
		return fmt.Errorf("dismount %s: %w", d.Path.Open, err)
	}
	return nil
}

// tryLock asks for the lock a few times: Windows advises retrying, as a
// volume's own background users (indexer, antivirus) let go within moments.
func tryLock(h windows.Handle) error {
	var n uint32
	var err error
	for i := 0; i < lockTries; i++ {
		if err = windows.DeviceIoControl(h, fsctlLockVolume, nil, 0, nil, 0, &n, nil); err == nil || notImplemented(err) {
			return err
		}
		time.Sleep(lockPause)
	}
	return err
}

// Unlock ends a lock taken by LockVolume or Lock (closing the handle ends
// it too).
func (d *Device) Unlock() error {
	if !d.locked {
		return nil
	}
	var n uint32
	err := windows.DeviceIoControl(windows.Handle(d.File.Fd()), fsctlUnlockVolume, nil, 0, nil, 0, &n, nil)
	if err != nil && !notImplemented(err) {
		return fmt.Errorf("unlock %s: %w", d.Path.Open, err)
	}
	d.locked = false
	return nil
}

// Placed is a file made by PlaceFile.
type Placed struct {
	Runs      []ClusterRun // the driver's list of the file's clusters
	RunsErr   error        // why Runs is missing (wraps ErrNoRetrieval when the driver lacks it)
	ValidData bool         // made with SetFileValidData: its bytes are whatever the clusters held
}

// PlaceFile creates path (which must not exist) with size bytes in
// allocated clusters, flushed to the volume, and asks the driver where the
// clusters are. With the privilege to manage volumes (Administrators have
// it) the valid data length is set at once (SetFileValidData); otherwise,
// or when the file system refuses that, every byte is written as zero,
// which also makes the valid data length the size. The handle is closed on
// return: an open file keeps a volume from being locked. On error the
// file is deleted.
func PlaceFile(path string, size int64) (*Placed, error) {
	if !underWine() && enableManageVolume() {
		pl, err := place(path, size, true)
		if !errors.Is(err, errNoValidData) {
			return pl, err
		}
	}
	return place(path, size, false)
}

// underWine reports whether Windows is Wine, whose SetFileValidData
// reports success where the host file system cannot allocate (and then
// the file may be sparse, or worse, under a FUSE driver).
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// errNoValidData means SetFileValidData was refused; the file is gone.
var errNoValidData = errors.New("SetFileValidData refused")

func place(path string, size int64, validData bool) (*Placed, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	switch {
	case err == windows.ERROR_FILE_EXISTS || err == windows.ERROR_ALREADY_EXISTS:
		return nil, fmt.Errorf("create %s: it already exists: %w", path, os.ErrExist)
	case err == windows.ERROR_ACCESS_DENIED && !windows.GetCurrentProcessToken().IsElevated():
		return nil, fmt.Errorf("create %s: %w (%v)", path, ErrNotElevated, err)
	case err != nil:
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	pl := &Placed{ValidData: validData}
	if validData {
		err = setValidData(h, size)
	} else {
		err = writeZeros(h, size)
	}
	if err == nil {
		err = windows.FlushFileBuffers(h)
	}
	if err == nil {
		pl.Runs, pl.RunsErr = retrievalPointers(h)
	}
	if cerr := windows.CloseHandle(h); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		if errors.Is(err, errNoValidData) {
			return nil, err
		}
		return nil, fmt.Errorf("allocate %s (%d bytes): %w", path, size, err)
	}
	return pl, nil
}

// setValidData allocates size bytes and declares them valid without
// writing them.
func setValidData(h windows.Handle, size int64) error {
	if _, err := windows.Seek(h, size, 0); err != nil {
		return err
	}
	if err := windows.SetEndOfFile(h); err != nil {
		return err
	}
	if err := windows.SetFileValidData(h, size); err != nil {
		return fmt.Errorf("%w: %v", errNoValidData, err)
	}
	return nil
}

// writeZeros writes size zero bytes from the start: every cluster is
// allocated by a write (an extended end could leave it sparse).
func writeZeros(h windows.Handle, size int64) error {
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		k := uint32(min(left, int64(len(buf))))
		var n uint32
		if err := windows.WriteFile(h, buf[:k], &n, nil); err != nil {
			return err
		}
		if n != k {
			return fmt.Errorf("short write: %d of %d bytes", n, k)
		}
		left -= int64(n)
	}
	return nil
}

// enableManageVolume turns on SeManageVolumePrivilege for this process if
// its token holds it; SetFileValidData then tells whether it did.
func enableManageVolume() bool {
	var tok windows.Token
	if windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok) != nil {
		return false
	}
	defer tok.Close()
	name, err := windows.UTF16PtrFromString("SeManageVolumePrivilege")
	if err != nil {
		return false
	}
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	if windows.LookupPrivilegeValue(nil, name, &tp.Privileges[0].Luid) != nil {
		return false
	}
	tp.Privileges[0].Attributes = windows.SE_PRIVILEGE_ENABLED
	return windows.AdjustTokenPrivileges(tok, false, &tp, 0, nil, nil) == nil
}

// retrievalPointers asks the driver for the file's clusters, in pieces of
// up to 4095 extents (ERROR_MORE_DATA), bounded by MaxRetrievalRuns.
func retrievalPointers(h windows.Handle) ([]ClusterRun, error) {
	buf := make([]byte, 64<<10)
	var runs []ClusterRun
	var vcn int64
	for len(runs) <= MaxRetrievalRuns {
		var n uint32
		in := vcn
		err := windows.DeviceIoControl(h, windows.FSCTL_GET_RETRIEVAL_POINTERS, (*byte)(unsafe.Pointer(&in)), 8, &buf[0], uint32(len(buf)), &n, nil)
		switch {
		case err == windows.ERROR_HANDLE_EOF && vcn == 0:
			return nil, nil // no clusters at all
		case notImplemented(err):
			return nil, fmt.Errorf("%w (%v)", ErrNoRetrieval, err)
		case err != nil && err != windows.ERROR_MORE_DATA:
			return nil, fmt.Errorf("FSCTL_GET_RETRIEVAL_POINTERS: %w", err)
		}
		if err == nil && vcn == 0 && IsPlaceholderRetrieval(buf[:n]) {
			return nil, fmt.Errorf("%w (it answers with a placeholder)", ErrNoRetrieval)
		}
		got, next, perr := ParseRetrievalPointers(buf[:n], vcn)
		if perr != nil {
			return nil, perr
		}
		runs = append(runs, got...)
		if err == nil {
			return runs, nil
		}
		if next == vcn {
			return nil, fmt.Errorf("%w: ERROR_MORE_DATA without progress at VCN %d", ErrRetrieval, vcn)
		}
		vcn = next
	}
	return nil, fmt.Errorf("%w: more than %d extents", ErrRetrieval, MaxRetrievalRuns)
}

// leaveVolume moves the process's current directory off the drive-letter
// volume open names (\\.\C:) after a refused lock, and reports whether
// it did: Windows holds the current directory open, and an open file
// keeps a volume from being locked. It stays where it is when the system
// directory is on the same volume (which cannot be locked anyway).
func leaveVolume(open string) bool {
	if len(open) != len(`\\.\C:`) {
		return false
	}
	drive := open[4:]
	wd, err := os.Getwd()
	wd = strings.TrimPrefix(wd, `\\?\`)
	if err != nil || len(wd) < 2 || !strings.EqualFold(wd[:2], drive) {
		return false
	}
	sys, err := windows.GetSystemDirectory()
	return err == nil && len(sys) >= 2 && !strings.EqualFold(sys[:2], drive) && os.Chdir(sys) == nil
}

// VolumeOnDisk reports whether the volume mounted at root (C:\) has an
// extent on disk number disk that overlaps [start, start+length).
func VolumeOnDisk(root string, disk int, start, length int64) bool {
	name, err := VolumeName(root)
	if err != nil {
		return false
	}
	on, err := volumeOnDisk(name, disk, start, length)
	return err == nil && on
}

// VolumeName is the \\?\Volume{GUID} name (without the trailing
// backslash) of the volume mounted at root (C:\).
func VolumeName(root string) (string, error) {
	p, err := windows.UTF16PtrFromString(root)
	if err != nil {
		return "", err
	}
	buf := make([]uint16, 64)
	if err := windows.GetVolumeNameForVolumeMountPoint(p, &buf[0], uint32(len(buf))); err != nil {
		return "", err
	}
	return strings.TrimSuffix(windows.UTF16ToString(buf), `\`), nil
}
