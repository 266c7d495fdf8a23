package devguard

import (
	"strings"

	"github.com/cbimg/cbimg/internal/sysdev"
)

// Windows has no mount table to ask which volume holds a path: a path's
// drive letter says it.

// OnDriveVolume reports whether abs (an absolute Windows path) lies on the
// drive-letter volume that vol names (C:, \\.\C:): an image stored inside
// the volume it backs up or restores.
func OnDriveVolume(vol, abs string) bool {
	wp, err := sysdev.ParseWinPath(vol)
	if err != nil || wp.Kind != sysdev.WinVolume || len(wp.Open) != len(`\\.\C:`) {
		return false
	}
	letter := wp.Open[len(wp.Open)-2:]
	return len(abs) >= 2 && strings.EqualFold(abs[:2], letter)
}

// DrivePath turns an absolute path on a drive (C:\Backups\c.cbi, or
// \\?\C:\Backups\c.cbi) into the path inside the volume's file system
// (/Backups/c.cbi); ok is false for any other form.
func DrivePath(abs string) (string, bool) {
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
