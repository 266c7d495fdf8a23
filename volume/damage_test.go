//go:build linux

package volume

import (
	"context"
	"os"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// checkVolume runs Check over the volume file at path.
func checkVolume(t *testing.T, path string) []Damage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	v, err := Open(f, fi.Size())
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	var out []Damage
	if err := v.Check(context.Background(), func(d Damage) { out = append(out, d) }); err != nil {
		t.Fatalf("check %s: %v", path, err)
	}
	return out
}

// Healthy volumes made by the real tools and by Windows check clean.
func TestCheckCleanVolumes(t *testing.T) {
	vols := map[string]string{
		"fat12": testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"}),
		"fat16": testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "full"}),
		"fat32": testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "full"}),
		"ntfs":  testvol.NTFS(t, testvol.NTFSSpec{Content: "full"}),
	}
	for _, rel := range testvol.RealList(t) {
		vols[rel] = testvol.Real(t, rel)
	}
	for name, p := range vols {
		for _, d := range checkVolume(t, p) {
			t.Errorf("%s: %s", name, d)
		}
	}
}
