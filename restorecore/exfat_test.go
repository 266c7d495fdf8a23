//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
)

func exfatVolumes(t *testing.T) []fixture {
	return []fixture{
		{"exfat-4k", testvol.ExFAT(t, testvol.ExFATSpec{Content: "full"})},
		{"exfat-32k-4096", testvol.ExFAT(t, testvol.ExFATSpec{ClusterSize: 32768, SectorSize: 4096, Content: "full"})},
	}
}

func fsckExFAT(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("fsck.exfat", "-n", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "clean") {
		t.Fatalf("fsck.exfat -n: %v\n%s", err, out)
	}
}

// exFAT round trip: every used cluster and the system area equal, the
// restored volume clean for fsck.exfat, and sleuthkit's listing and file
// contents equal. With the default exclusions and a glob, the excluded
// files keep their size and read as zeros.
func TestExFATRoundTrip(t *testing.T) {
	testvol.Need(t, "fsck.exfat", "fls", "icat")
	for _, f := range exfatVolumes(t) {
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			img, out := filepath.Join(dir, "i.cbi"), filepath.Join(dir, "restored")
			backup(t, f.path, img, true)
			restore(t, img, out)
			sameUsedBytes(t, f.path, out)
			fsckExFAT(t, out)
			a, b := oracle.Live(oracle.FLS(t, f.path)), oracle.Live(oracle.FLS(t, out))
			if strings.Join(a, "\n") != strings.Join(b, "\n") {
				t.Fatalf("fls listings differ (%d vs %d lines)", len(a), len(b))
			}
			for i, fl := range oracle.Files(t, f.path) {
				if i%100 != 0 && !strings.HasPrefix(fl.Path, "Data/") {
					continue
				}
				if oracle.ICatHash(t, f.path, fl.Addr) != oracle.ICatHash(t, out, fl.Addr) {
					t.Errorf("%s differs after restore", fl.Path)
				}
			}

			// Default exclusions and a glob.
			img2, out2 := filepath.Join(dir, "x.cbi"), filepath.Join(dir, "restored-x")
			res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: f.path, Image: img2,
				Codec: image.CodecZstd, Excludes: []string{"/Data/*MiB.bin"}})
			if err != nil {
				t.Fatal(err)
			}
			restore(t, img2, out2)
			fsckExFAT(t, out2)
			want := map[string]bool{"pagefile.sys": true, "Backups/old.cbi": true, "Data/1MiB.bin": true, "Data/8MiB.bin": true}
			got := map[string]bool{}
			for _, x := range res.Header.Exclusions {
				got[strings.TrimPrefix(x.Path, "/")] = true
			}
			for p := range want {
				if !got[p] {
					t.Errorf("%s not excluded: %+v", p, res.Header.Exclusions)
				}
			}
			zeroed := 0
			for _, fl := range oracle.Files(t, f.path) {
				if !want[fl.Path] && !strings.HasPrefix(fl.Path, "Data/") && !strings.HasPrefix(fl.Path, "Frag/fragmented") {
					continue
				}
				src, dst := oracle.ICat(t, f.path, fl.Addr), oracle.ICat(t, out2, fl.Addr)
				switch {
				case want[fl.Path]:
					if len(dst) != len(src) || !oracle.IsZero(dst) {
						t.Errorf("excluded %s: %d bytes, zero=%v; want %d zero bytes", fl.Path, len(dst), oracle.IsZero(dst), len(src))
					}
					zeroed++
				case strings.HasPrefix(fl.Path, "Data/") || strings.HasPrefix(fl.Path, "Frag/fragmented"):
					if !bytes.Equal(src, dst) {
						t.Errorf("%s differs after restore", fl.Path)
					}
				}
			}
			if zeroed != len(want) {
				t.Errorf("%d excluded files seen, want %d", zeroed, len(want))
			}
		})
	}
}
