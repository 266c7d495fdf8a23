//go:build windows

package backupcore

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// onFAT reports whether path lies on a FAT or FAT32 volume, where no file
// may reach 4 GiB.
func onFAT(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	root := filepath.VolumeName(abs) + `\`
	p, err := windows.UTF16PtrFromString(root)
	if err != nil {
		return false
	}
	var fsName [64]uint16
	if windows.GetVolumeInformation(p, nil, 0, nil, nil, nil, &fsName[0], uint32(len(fsName))) != nil {
		return false
	}
	return strings.HasPrefix(strings.ToUpper(windows.UTF16ToString(fsName[:])), "FAT")
}
