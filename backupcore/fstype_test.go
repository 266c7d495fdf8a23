package backupcore

import (
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// The header stores volume.Type numbers and names them with image.FSName:
// both packages must agree on every type, and on an unknown one.
func TestFSTypes(t *testing.T) {
	for _, tc := range []struct {
		v   volume.Type
		img uint8
	}{
		{volume.Unknown, image.FSRaw}, {volume.NTFS, image.FSNTFS}, {volume.FAT12, image.FSFAT12},
		{volume.FAT16, image.FSFAT16}, {volume.FAT32, image.FSFAT32}, {volume.ExFAT, image.FSExFAT}, {9, 9},
	} {
		if uint8(tc.v) != tc.img || tc.v.String() != image.FSName(tc.img) {
			t.Errorf("volume %d %q, image %d %q", uint8(tc.v), tc.v, tc.img, image.FSName(tc.img))
		}
	}
}
