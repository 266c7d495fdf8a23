package backupcore

import "testing"

func TestWinSameVolume(t *testing.T) {
	for _, c := range []struct {
		src, img string
		want     bool
	}{
		{`C:`, `C:\Backups\c.cbi`, true},
		{`\\.\c:`, `c:\x.cbi`, true},
		{`C:`, `D:\Backups\c.cbi`, false},
		{`\\.\PhysicalDrive0@2`, `C:\x.cbi`, false},
		{`disk.img`, `C:\x.cbi`, false},
	} {
		if got := winSameVolume(c.src, c.img); got != c.want {
			t.Errorf("winSameVolume(%q, %q) = %v", c.src, c.img, got)
		}
	}
}
