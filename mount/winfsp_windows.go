//go:build windows

package mount

import (
	"fmt"
	"os"
)

// Check says whether mountpoint can take a mount: WinFsp wants a free drive
// letter or a directory path that does not exist yet.
func Check(mountpoint string) error {
	if len(mountpoint) == 2 && mountpoint[1] == ':' {
		if _, err := os.Stat(mountpoint + `\`); err == nil {
			return fmt.Errorf("%w: drive %s is in use", ErrBusy, mountpoint)
		}
		return nil
	}
	if _, err := os.Stat(mountpoint); err == nil {
		return fmt.Errorf("%w: %s exists; WinFsp mounts on a drive letter (X:) or a path that does not exist yet", ErrNotEmpty, mountpoint)
	}
	return nil
}

// Unmount cannot reach another process's WinFsp mount; stop that process.
func Unmount(mountpoint string) error {
	return fmt.Errorf("%w: on Windows, stop the cbimg mount process (Ctrl-C in its window, or taskkill) to unmount %s", ErrUnsupported, mountpoint)
}

// UnmountLazy is Unmount on Windows.
func UnmountLazy(mountpoint string) error { return Unmount(mountpoint) }
