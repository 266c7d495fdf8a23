//go:build linux

package volume

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// exfatBootSector is the main boot sector of a real compact volume.
func exfatBootSector(t testing.TB) []byte {
	t.Helper()
	f, _ := testvol.OpenFile(t, testvol.ExFAT(t, exfatSmall))
	b := make([]byte, 512)
	if err := readFull(f, b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseExFATBoot(t *testing.T) {
	good := exfatBootSector(t)
	if _, err := ParseExFATBoot(good); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		name  string
		patch func(b []byte)
		want  string
	}{
		{"jump", func(b []byte) { b[1] = 0x3c }, "jump"},
		{"BPB bytes", func(b []byte) { b[11] = 2 }, "must be zero"},
		{"sector shift", func(b []byte) { b[exfatOffSectorShift] = 13 }, "9..12"},
		{"33 MiB clusters", func(b []byte) { b[exfatOffClusterShift] = 17 }, "32 MiB"},
		{"three FATs", func(b []byte) { b[exfatOffNumFATs] = 3 }, "want 1 or 2"},
		{"FAT in the boot regions", func(b []byte) { le.PutUint32(b[exfatOffFATOffset:], 20) }, "boot regions"},
		{"heap over the FAT", func(b []byte) { le.PutUint32(b[exfatOffHeapOffset:], le.Uint32(b[exfatOffFATOffset:])+1) }, "overlaps the FATs"},
		{"root outside", func(b []byte) { le.PutUint32(b[exfatOffRootCluster:], 1) }, "root directory cluster"},
		{"revision 2", func(b []byte) { b[exfatOffRevision+1] = 2 }, "revision"},
		{"signature", func(b []byte) { b[511] = 0 }, "signature"},
	} {
		b := append([]byte(nil), good...)
		c.patch(b)
		if _, err := ParseExFATBoot(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// FuzzParseExFATBoot: any 512 bytes parse or give an error; a parsed boot
// sector describes a heap inside the volume.
func FuzzParseExFATBoot(f *testing.F) {
	f.Add(exfatBootSector(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := ParseExFATBoot(b)
		if err != nil {
			return
		}
		if bs.HeapEnd() > bs.Size() || bs.ClusterSize() > 32<<20 {
			t.Fatalf("heap end %d, size %d, cluster %d", bs.HeapEnd(), bs.Size(), bs.ClusterSize())
		}
	})
}
