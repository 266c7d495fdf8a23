//go:build !linux

package devguard

import "github.com/cbimg/cbimg/disk"

// Holders finds nothing where the platform offers no mount table; Windows
// restores and in-place backups lock the volume instead.
func Holders(sec *disk.Section) ([]Mount, error) { return nil, nil }

// MountAt finds nothing without a mount table.
func MountAt(dir string) (Mount, bool) { return Mount{}, false }

// MountHolding finds nothing without a mount table.
func MountHolding(p string) (Mount, string, bool) { return Mount{}, "", false }
