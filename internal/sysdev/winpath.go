package sysdev

// Windows names for sources and targets, kept free of system calls so that
// they are tested on every platform.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// WinKind says what a Windows source or target path names.
type WinKind int

// Kinds of Windows paths.
const (
	WinFile   WinKind = iota // an image or volume file
	WinVolume                // a volume: C:, \\.\C:, \\?\Volume{GUID}, \\.\HarddiskVolumeN
	WinDisk                  // a whole disk: \\.\PhysicalDriveN
)

func (k WinKind) String() string {
	switch k {
	case WinVolume:
		return "volume"
	case WinDisk:
		return "disk"
	}
	return "file"
}

// WinPath is a source or target as Windows opens it.
type WinPath struct {
	Kind WinKind
	Open string // what CreateFile opens: `\\.\C:`, `\\.\PhysicalDrive1`, a file path
	Disk int    // N of \\.\PhysicalDriveN, for WinDisk
}

// ErrBadPath means a path has a device form cbimg does not understand.
var ErrBadPath = errors.New("sysdev: bad device path")

// ParseWinPath says what a command-line path names on Windows:
//
//	C:  C:\  \\.\C:  \\?\C:              the volume of drive C
//	\\?\Volume{GUID}  \\.\HarddiskVolume3  other volume device names
//	\\.\PhysicalDrive1                  the whole disk
//	anything else                       a file
//
// Partitions of disks ("\\.\PhysicalDrive1@2") are split off by the
// caller (package disk) before the disk is opened.
func ParseWinPath(s string) (WinPath, error) {
	if s == "" {
		return WinPath{}, fmt.Errorf("%w: empty path", ErrBadPath)
	}
	if isDriveSpec(s) {
		return WinPath{Kind: WinVolume, Open: `\\.\` + strings.ToUpper(s[:2])}, nil
	}
	p := strings.ReplaceAll(s, "/", `\`)
	if !strings.HasPrefix(p, `\\.\`) && !strings.HasPrefix(p, `\\?\`) {
		return WinPath{Kind: WinFile, Open: s}, nil
	}
	rest := p[4:]
	switch {
	case isDriveSpec(rest):
		return WinPath{Kind: WinVolume, Open: `\\.\` + strings.ToUpper(rest[:2])}, nil
	case len(rest) > 3 && rest[1] == ':' && rest[2] == '\\', hasPrefixFold(rest, `UNC\`):
		// \\?\C:\dir\file and \\?\UNC\server\share\file are long file paths.
		return WinPath{Kind: WinFile, Open: s}, nil
	case strings.Contains(rest, "@"):
		return WinPath{}, fmt.Errorf("%w: %q: a partition (@N) is opened through its disk", ErrBadPath, s)
	case hasPrefixFold(rest, "PhysicalDrive"):
		num := strings.TrimSuffix(rest[len("PhysicalDrive"):], `\`)
		d, err := strconv.Atoi(num)
		if err != nil || d < 0 || d > 9999 || num != strconv.Itoa(d) {
			return WinPath{}, fmt.Errorf("%w: %q: PhysicalDrive needs a disk number", ErrBadPath, s)
		}
		return WinPath{Kind: WinDisk, Open: `\\.\PhysicalDrive` + num, Disk: d}, nil
	case hasPrefixFold(rest, "Volume{"), hasPrefixFold(rest, `GLOBALROOT\`):
		return WinPath{Kind: WinVolume, Open: `\\?\` + strings.TrimSuffix(rest, `\`)}, nil
	case rest != "" && !strings.Contains(strings.TrimSuffix(rest, `\`), `\`):
		// Any other device name (HarddiskVolume3, a mapped device).
		return WinPath{Kind: WinVolume, Open: `\\.\` + strings.TrimSuffix(rest, `\`)}, nil
	}
	return WinPath{}, fmt.Errorf("%w: %q", ErrBadPath, s)
}

// isDriveSpec matches "C:" and "C:\" (and "C:/"): a whole drive, never a file.
func isDriveSpec(s string) bool {
	if len(s) < 2 || len(s) > 3 || s[1] != ':' {
		return false
	}
	c := s[0] | 0x20
	if c < 'a' || c > 'z' {
		return false
	}
	return len(s) == 2 || s[2] == '\\' || s[2] == '/'
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
