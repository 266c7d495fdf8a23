package backupcore

import (
	"strings"

	"github.com/cbimg/cbimg/internal/sysdev"
)

// winSameVolume reports whether imageAbs (an absolute Windows path) lies on
// the drive-letter volume that source names (C:, \\.\C:). Writing the image
// into the volume being read raw would copy a file system that changes under
// the copy, so such a backup is refused on Windows.
func winSameVolume(source, imageAbs string) bool {
	wp, err := sysdev.ParseWinPath(source)
	if err != nil || wp.Kind != sysdev.WinVolume || len(wp.Open) != len(`\\.\C:`) {
		return false
	}
	letter := wp.Open[len(wp.Open)-2:]
	return len(imageAbs) >= 2 && strings.EqualFold(imageAbs[:2], letter)
}
