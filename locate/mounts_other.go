//go:build !linux

package locate

import "github.com/cbimg/cbimg/disk"

// Mount is a mount of a file system (Linux only).
type Mount struct {
	Point, Root, FSType, Source string
	ReadOnly                    bool
}

// DriverMounts finds FUSE mounts served from sec; Linux only.
func DriverMounts(sec *disk.Section) []Mount { return nil }
