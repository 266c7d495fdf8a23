//go:build !windows

package ui

// cellConsole is nil: terminals here interpret escape sequences.
func cellConsole() (*cellScreen, int, int) { return nil, 0, 0 }
