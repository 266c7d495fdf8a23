package devguard

import "testing"

func TestOnDriveVolume(t *testing.T) {
	for _, c := range []struct {
		src, img string
		want     bool
	}{
		{`C:`, `C:\Backups\c.cbi`, true},
		{`\\.\c:`, `c:\x.cbi`, true},
		{`C:\`, `C:\x.cbi`, true},
		{`C:`, `D:\Backups\c.cbi`, false},
		{`\\.\PhysicalDrive0@2`, `C:\x.cbi`, false},
		{`disk.img`, `C:\x.cbi`, false},
	} {
		if got := OnDriveVolume(c.src, c.img); got != c.want {
			t.Errorf("OnDriveVolume(%q, %q) = %v", c.src, c.img, got)
		}
	}
}

func TestDrivePath(t *testing.T) {
	for _, c := range []struct {
		abs, want string
		ok        bool
	}{
		{`C:\Backups\c.cbi`, "/Backups/c.cbi", true},
		{`e:\img.cbi`, "/img.cbi", true},
		{`\\?\C:\a\.\b.cbi`, "/a/b.cbi", true},
		{`C:/a/b.cbi`, "/a/b.cbi", true},
		{`C:\`, "", false},
		{`C:x.cbi`, "", false},
		{`C:\a\..\b`, "", false},
		{`\\server\share\x.cbi`, "", false},
		{`x.cbi`, "", false},
	} {
		got, ok := DrivePath(c.abs)
		if got != c.want || ok != c.ok {
			t.Errorf("DrivePath(%q) = %q, %v; want %q, %v", c.abs, got, ok, c.want, c.ok)
		}
	}
}
