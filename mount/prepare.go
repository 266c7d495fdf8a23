//go:build linux || windows

package mount

import "log"

// prepare fills in the defaults of opts and checks the mountpoint: the
// start of every Mount and MountFiles.
func prepare(mountpoint string, opts *Options) (Options, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = log.Default()
	}
	return o, Check(mountpoint)
}
