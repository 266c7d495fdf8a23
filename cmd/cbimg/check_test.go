//go:build linux

package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/faultdev"
	"github.com/cbimg/cbimg/internal/testvol"
)

func checkFindings(t *testing.T, out string) (checkJSON, []string) {
	t.Helper()
	var j checkJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	var found []string
	for _, d := range j.Damage {
		found = append(found, fmt.Sprintf("%s|%s|%d", d.Kind, d.Path, d.Offset))
	}
	return j, found
}

// check lists the damage of a source and of its image, with offsets, and
// exits 5; backup of the damaged volume succeeds with warnings and info
// lists what it recorded.
func TestCheckDamagedVolumes(t *testing.T) {
	for name, d := range map[string]*testvol.Damaged{"fat16": testvol.DamagedFAT(t, 16), "fat32": testvol.DamagedFAT32(t), "ntfs": testvol.DamagedNTFS(t)} {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := cbimg(t, nil, "check", "--json", d.Path)
			if code != exitFS {
				t.Fatalf("check exit %d, want %d: %s", code, exitFS, stderr)
			}
			j, found := checkFindings(t, out)
			if j.OK || j.Kind != "source" || j.FileSystem != name {
				t.Errorf("check: %+v", j)
			}
			for _, w := range d.Want {
				if !testvol.HasDamage(found, w) {
					t.Errorf("check does not list %+v; it lists %v", w, found)
				}
			}
			text, _, code := cbimg(t, nil, "check", d.Path)
			if code != exitFS || !strings.Contains(text, "DAMAGE ") || !strings.Contains(text, " at byte ") {
				t.Errorf("check exit %d:\n%s", code, text)
			}

			img := filepath.Join(t.TempDir(), "d.cbi")
			_, stderr, code = cbimg(t, nil, "backup", d.Path, img)
			if code != 0 || !strings.Contains(stderr, "file-system damage") {
				t.Fatalf("backup exit %d: %s", code, stderr)
			}
			// The image holds the volume as it was: check finds the same.
			out, _, code = cbimg(t, nil, "check", "--json", img)
			ji, foundImg := checkFindings(t, out)
			if code != exitFS || ji.Kind != "image" || len(ji.Recorded) == 0 {
				t.Errorf("check of the image: exit %d, %+v", code, ji)
			}
			if strings.Join(foundImg, "\n") != strings.Join(found, "\n") {
				t.Errorf("check of the image:\n%s\nof the source:\n%s", strings.Join(foundImg, "\n"), strings.Join(found, "\n"))
			}
			out, _, code = cbimg(t, nil, "info", "--json", img)
			var info infoJSON
			if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 {
				t.Fatalf("info exit %d: %v", code, err)
			}
			if len(info.Damage) == 0 || info.Damage[0].Kind == "" {
				t.Errorf("info lists no damage: %+v", info.Damage)
			}
			text, _, _ = cbimg(t, nil, "info", img)
			if !strings.Contains(text, "Damage:") {
				t.Errorf("info:\n%s", text)
			}
		})
	}
}

// A healthy volume checks clean (exit 0).
func TestCheckClean(t *testing.T) {
	out, stderr, code := cbimg(t, nil, "check", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}))
	if code != 0 || !strings.Contains(out, "No damage found") {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
}

// A volume whose $Bitmap or FAT cannot be read is refused with exit 5 and
// the advice to copy it sector by sector.
func TestBackupUnreadableMapExit5(t *testing.T) {
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"})
	b := make([]byte, 512)
	f, _ := testvol.OpenFile(t, fat)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	// Entries 50000.. of the first FAT: the boot sector reads, the FAT not.
	fatOff := int64(binary.LittleEndian.Uint16(b[14:])) * 512
	for _, src := range []string{
		testvol.UnreadableBitmapNTFS(t),
		faultdev.Serve(t, fat, faultdev.Range{Off: fatOff + 4*50000, Len: 512}),
	} {
		_, stderr, code := cbimg(t, nil, "backup", "--no-default-excludes", src, filepath.Join(t.TempDir(), "x.cbi"))
		if code != exitFS || !strings.Contains(stderr, "--sector-by-sector") {
			t.Fatalf("%s: exit %d: %s", src, code, stderr)
		}
	}
}

// A damaged image is reported as such (exit 3), not as file-system damage.
func TestCheckDamagedImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "c.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", "--compress", "none", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}), img); code != 0 {
		t.Fatalf("backup exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// The first chunk holds the boot sector: its data starts after the
	// header, the bitmap and its CRC, and the 64-byte frame header.
	h := int64(binary.LittleEndian.Uint32(b[8:]))
	bm := int64(binary.LittleEndian.Uint64(b[128:]))
	b[h+bm+4+64+100] ^= 0xFF
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := cbimg(t, nil, "check", img)
	if code != exitDamaged || !strings.Contains(stderr, "image is damaged") {
		t.Fatalf("check of a damaged image: exit %d: %s", code, stderr)
	}
}
