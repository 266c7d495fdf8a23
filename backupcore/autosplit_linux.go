//go:build linux

package backupcore

import "github.com/cbimg/cbimg/internal/devguard"

// onFAT reports whether the directory of path lies on a FAT file system
// (the kernel's vfat/msdos or the fusefat driver), where no file may reach
// 4 GiB.
func onFAT(path string) bool {
	m, _, ok := devguard.MountHolding(path)
	if !ok {
		return false
	}
	switch m.FSType {
	case "vfat", "msdos", "fat", "fuse.fusefat":
		return true
	}
	return false
}
