//go:build linux

package backupcore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
)

// An exFAT volume with VolumeDirty and MediaFailure set (bytes outside the
// boot checksum) is imaged with the dirty flag in the header and both
// warnings; a damaged backup boot region is warned about, not refused.
func TestExFATStateWarnings(t *testing.T) {
	vol := testvol.Copy(t, testvol.ExFAT(t, testvol.ExFATSpec{SizeMiB: 32, Content: "basic"}))
	f, err := os.OpenFile(vol, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0x06}, 106)        // VolumeFlags: dirty, media failure
	f.WriteAt([]byte{0x42}, 12*512+100) // the backup boot sector's serial
	f.Close()
	res, err := Backup(context.Background(), Options{Source: vol, Image: filepath.Join(t.TempDir(), "x.cbi"), Codec: image.CodecZstd})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(res.Warnings, "\n")
	for _, s := range []string{"marked dirty", "MediaFailure", "backup boot region is damaged"} {
		if !strings.Contains(w, s) {
			t.Errorf("no warning %q in:\n%s", s, w)
		}
	}
	if res.Header.Flags&image.FlagDirty == 0 || res.Header.FSType != 5 {
		t.Errorf("header flags %#x, type %d", res.Header.Flags, res.Header.FSType)
	}
}
