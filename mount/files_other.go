//go:build !linux && !windows

package mount

import iofs "io/fs"

// MountFiles is not available here; see Mount.
func MountFiles(mountpoint string, fsys iofs.FS, opts *Options) (*Mounted, error) {
	return Mount(mountpoint, nil, opts)
}
