package sysdev

import (
	"errors"
	"testing"
)

func TestParseWinPath(t *testing.T) {
	tests := []struct {
		in   string
		want WinPath
	}{
		{`C:`, WinPath{Kind: WinVolume, Open: `\\.\C:`}},
		{`c:`, WinPath{Kind: WinVolume, Open: `\\.\C:`}},
		{`C:\`, WinPath{Kind: WinVolume, Open: `\\.\C:`}},
		{`d:/`, WinPath{Kind: WinVolume, Open: `\\.\D:`}},
		{`\\.\C:`, WinPath{Kind: WinVolume, Open: `\\.\C:`}},
		{`\\?\e:`, WinPath{Kind: WinVolume, Open: `\\.\E:`}},
		{`//./C:`, WinPath{Kind: WinVolume, Open: `\\.\C:`}},
		{`\\.\PhysicalDrive0`, WinPath{Kind: WinDisk, Open: `\\.\PhysicalDrive0`}},
		{`\\.\physicaldrive12`, WinPath{Kind: WinDisk, Open: `\\.\PhysicalDrive12`, Disk: 12}},
		{`\\?\Volume{0a1b2c3d-0000-0000-0000-100000000000}\`, WinPath{Kind: WinVolume, Open: `\\?\Volume{0a1b2c3d-0000-0000-0000-100000000000}`}},
		{`\\.\HarddiskVolume3`, WinPath{Kind: WinVolume, Open: `\\.\HarddiskVolume3`}},
		{`\\?\GLOBALROOT\Device\Harddisk0\Partition2`, WinPath{Kind: WinVolume, Open: `\\?\GLOBALROOT\Device\Harddisk0\Partition2`}},
		{`\\?\C:\long\path\c.img`, WinPath{Kind: WinFile, Open: `\\?\C:\long\path\c.img`}},
		{`\\server\share\c.img`, WinPath{Kind: WinFile, Open: `\\server\share\c.img`}},
		{`C:\backup\c.cbi`, WinPath{Kind: WinFile, Open: `C:\backup\c.cbi`}},
		{`c.img`, WinPath{Kind: WinFile, Open: `c.img`}},
		{`disk.img@1`, WinPath{Kind: WinFile, Open: `disk.img@1`}},
	}
	for _, tt := range tests {
		got, err := ParseWinPath(tt.in)
		if err != nil {
			t.Errorf("ParseWinPath(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseWinPath(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{``, `\\.\PhysicalDrive`, `\\.\PhysicalDriveX`, `\\.\PhysicalDrive01`, `\\.\PhysicalDrive1@2`,
		`\\.\C:@1`, `\\.\`, `\\.\a\b`} {
		if got, err := ParseWinPath(bad); !errors.Is(err, ErrBadPath) {
			t.Errorf("ParseWinPath(%q) = %+v, %v; want ErrBadPath", bad, got, err)
		}
	}
}
