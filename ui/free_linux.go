//go:build linux

package ui

import "golang.org/x/sys/unix"

// freeSpace returns the bytes available in dir and whether it lies on a
// FAT file system; -1 when unknown.
func freeSpace(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1, false
	}
	const msdosMagic = 0x4d44
	return int64(st.Bavail) * int64(st.Bsize), st.Type == msdosMagic
}
