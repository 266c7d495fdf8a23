//go:build !linux && !windows

package mount

import (
	"fmt"
	"runtime"
)

// Mount is not available here: it needs FUSE (Linux, hanwen/go-fuse) or
// WinFsp (Windows, winfsp/cgofuse). macFUSE through cgofuse would need cgo
// and is not built.
func Mount(mountpoint string, src Source, opts *Options) (*Mounted, error) {
	return nil, fmt.Errorf("%w (%s): mount needs Linux with FUSE or Windows with WinFsp; use cbimg restore to a file instead", ErrUnsupported, runtime.GOOS)
}

// Check always fails here; see Mount.
func Check(mountpoint string) error { return unsupported() }

// Unmount always fails here; see Mount.
func Unmount(mountpoint string) error { return unsupported() }

// UnmountLazy always fails here; see Mount.
func UnmountLazy(mountpoint string) error { return unsupported() }

func unsupported() error {
	_, err := Mount("", nil, nil)
	return err
}
