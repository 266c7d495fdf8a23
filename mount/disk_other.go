//go:build !linux || (cgofuse && cgo)

package mount

import (
	"fmt"
	"runtime"
)

// MountDisk is available with go-fuse on Linux only; elsewhere a partition
// of a disk is mounted by its DISK@N name.
func MountDisk(mountpoint string, files []Named, opts *Options) (*Mounted, error) {
	return nil, fmt.Errorf("%w (%s): a whole-disk mount needs Linux", ErrUnsupported, runtime.GOOS)
}
