//go:build !linux && !windows

package ui

// freeSpace is unknown on this system.
func freeSpace(dir string) (int64, bool) { return -1, false }
