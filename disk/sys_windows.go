//go:build windows

package disk

import (
	"errors"
	"os"

	"github.com/cbimg/cbimg/internal/sysdev"
)

// openFile opens files, volumes (C:, \\.\C:) and disks
// (\\.\PhysicalDriveN) through sysdev, which sizes devices by asking the
// driver and reads and writes them in whole, aligned sectors.
func openFile(path string, flag int, perm os.FileMode) (file, error) {
	d, err := sysdev.OpenDevice(path, flag)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return d, nil
}

func fileSize(f file) (int64, bool, error) {
	d := f.(*sysdev.Device)
	return d.Size, d.Regular, nil
}

func osFile(f file) *os.File { return f.(*sysdev.Device).File }

// sectorSizeOf returns the driver's logical sector size, or 0 ("probe the
// image") for files.
func sectorSizeOf(f file) int { return f.(*sysdev.Device).SectorSize }

// SectorSize returns the logical sector size of the disk at path: what the
// driver says, else 512 unless a GPT header sits at byte 4096.
func SectorSize(path string) (int, error) {
	f, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if n := sectorSizeOf(f); n > 0 {
		return n, nil
	}
	size, _, err := fileSize(f)
	if err != nil {
		return 0, err
	}
	return probeSectorSize(f, size), nil
}

// partitionDevices: Windows has no mount table to ask; a restore locks the
// volumes instead (Section.Lock).
func partitionDevices(f file, p Partition) []string { return nil }

// ListDisks is implemented on Linux only.
func ListDisks() ([]DiskInfo, error) {
	return nil, errors.New("disk: listing disks is not supported on Windows; name a disk directly, e.g. \\\\.\\PhysicalDrive0 (diskpart's \"list disk\" shows the numbers)")
}
