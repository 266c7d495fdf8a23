//go:build !windows

package restorecore

import (
	"fmt"
	"os"
	"syscall"
)

// targetID names the target beyond its path: the device number for a
// block device, device and inode for a file.
func targetID(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("%s: no device and inode numbers", path)
	}
	if fi.Mode()&os.ModeDevice != 0 {
		return fmt.Sprintf("dev %d", st.Rdev), nil
	}
	return fmt.Sprintf("file %d:%d", st.Dev, st.Ino), nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
