package backupcore

// Windows names, kept free of system calls so that they are tested on
// every platform.

import (
	"strings"

	"github.com/cbimg/cbimg/internal/sysdev"
)

// winSameVolume reports whether imageAbs (an absolute Windows path) lies on
// the drive-letter volume that source names (C:, \\.\C:): then the image is
// stored inside the volume it backs up (inplace_windows.go).
func winSameVolume(source, imageAbs string) bool {
	wp, err := sysdev.ParseWinPath(source)
	if err != nil || wp.Kind != sysdev.WinVolume || len(wp.Open) != len(`\\.\C:`) {
		return false
	}
	letter := wp.Open[len(wp.Open)-2:]
	return len(imageAbs) >= 2 && strings.EqualFold(imageAbs[:2], letter)
}

// winVolPath turns an absolute path on a drive (C:\Backups\c.cbi, or
// \\?\C:\Backups\c.cbi) into the path inside the volume's file system
// (/Backups/c.cbi); ok is false for any other form.
func winVolPath(abs string) (string, bool) {
	p := strings.ReplaceAll(abs, "/", `\`)
	if strings.HasPrefix(p, `\\?\`) || strings.HasPrefix(p, `\\.\`) {
		p = p[4:]
	}
	if len(p) < 4 || p[1] != ':' || p[2] != '\\' {
		return "", false
	}
	var parts []string
	for _, s := range strings.Split(p[3:], `\`) {
		switch s {
		case "", ".":
		case "..":
			return "", false // filepath.Abs has cleaned it; anything left is suspicious
		default:
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "", false
	}
	return "/" + strings.Join(parts, "/"), true
}
