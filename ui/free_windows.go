//go:build windows

package ui

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// freeSpace returns the bytes available in dir and whether it lies on a
// FAT file system; -1 when unknown.
func freeSpace(dir string) (int64, bool) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return -1, false
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return -1, false
	}
	isFAT := false
	if abs, err := filepath.Abs(dir); err == nil {
		root := filepath.VolumeName(abs) + `\`
		if rp, err := windows.UTF16PtrFromString(root); err == nil {
			name := make([]uint16, 64)
			if windows.GetVolumeInformation(rp, nil, 0, nil, nil, nil, &name[0], uint32(len(name))) == nil {
				isFAT = strings.HasPrefix(strings.ToUpper(windows.UTF16ToString(name)), "FAT")
			}
		}
	}
	return int64(avail), isFAT
}
