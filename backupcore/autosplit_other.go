//go:build !linux && !windows

package backupcore

func onFAT(path string) bool { return false }
