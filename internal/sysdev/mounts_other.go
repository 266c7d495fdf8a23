//go:build !linux

package sysdev

// Mount is one mount that uses a device or file.
type Mount struct {
	Point    string
	FSType   string
	ReadOnly bool
	Via      string
}

// MountsOf reports no mounts where the platform offers no mount table;
// Windows restores lock the volume instead.
func MountsOf(path string) ([]Mount, error) { return nil, nil }
