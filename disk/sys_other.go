//go:build !linux && !windows

package disk

import (
	"errors"
	"os"
)

// sectorSizeOf returns 0 ("probe the image") where the system's sector
// size query is not wired in.
func sectorSizeOf(f file) int { return 0 }

// SectorSize returns the logical sector size of the disk at path: 512
// unless a GPT header sits at byte 4096.
func SectorSize(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, _, err := sizeOf(f)
	if err != nil {
		return 0, err
	}
	return probeSectorSize(f, size), nil
}

func partitionDevices(f file, p Partition) []string { return nil }

func openFile(path string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

func fileSize(f file) (int64, bool, error) { return sizeOf(f.(*os.File)) }

func osFile(f file) *os.File { return f.(*os.File) }

// ListDisks is implemented on Linux only.
func ListDisks() ([]DiskInfo, error) {
	return nil, errors.New("disk: listing disks is not supported on this system; name a disk directly, e.g. \\\\.\\PhysicalDrive0")
}
