//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/cbimg/cbimg/volume"
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

// exfatFixOffset sets the partition offset of both boot regions of the
// exFAT volume at byte start of path and rewrites their checksums.
func exfatFixOffset(t *testing.T, path string, start int64, offset uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	region := make([]byte, 12*512)
	for _, base := range []int64{start, start + 12*512} {
		if _, err := f.ReadAt(region, base); err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint64(region[volume.ExFATPartitionOffset:], offset)
		sum := volume.ExFATBootChecksum(region, 512)
		for i := 11 * 512; i < 12*512; i += 4 {
			binary.LittleEndian.PutUint32(region[i:], sum)
		}
		if _, err := f.WriteAt(region, base); err != nil {
			t.Fatal(err)
		}
	}
}

// A restore into a partition at another offset moves exFAT's partition
// offset in both boot regions, with their checksums; nothing else of the
// boot regions changes and fsck.exfat finds the partition clean.
func TestExFATPartitionOffset(t *testing.T) {
	testvol.Need(t, "sfdisk", "fsck.exfat")
	vol := testvol.ExFAT(t, testvol.ExFATSpec{SizeMiB: 32, Content: "basic"})
	d := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(d, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(d, 80<<20)
	cmd := exec.Command("sfdisk", "-q", d)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, size=65536, type=7\nstart=75776, size=65536, type=7\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	b, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(d, os.O_RDWR, 0)
	f.WriteAt(b, 2048*512)
	f.Close()
	exfatFixOffset(t, d, 2048*512, 2048)

	img := filepath.Join(t.TempDir(), "p.cbi")
	res := backup(t, d+"@1", img, true)
	if res.Header.HiddenSectors != 2048 {
		t.Errorf("header partition offset %d, want 2048", res.Header.HiddenSectors)
	}
	rr, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: d + "@2"})
	if err != nil {
		t.Fatal(err)
	}
	if rr.HiddenSectors != 75776 {
		t.Errorf("restore reports partition offset %d, want 75776", rr.HiddenSectors)
	}
	src, dst := extractPartition(t, d+"@1"), extractPartition(t, d+"@2")
	fsckExFAT(t, dst)
	sf, size := testvol.OpenFile(t, dst)
	v, err := volume.Open(sf, size)
	if err != nil {
		t.Fatal(err)
	}
	if v.Info.HiddenSectors != 75776 || v.ExFAT().BackupBootError() != nil {
		t.Errorf("partition offset %d, backup boot region: %v", v.Info.HiddenSectors, v.ExFAT().BackupBootError())
	}
	// The boot regions differ only in the offset and the checksum sectors.
	a, _ := os.ReadFile(src)
	c, _ := os.ReadFile(dst)
	for _, base := range []int{0, 12 * 512} {
		copy(a[base+64:base+72], c[base+64:base+72])
		copy(a[base+11*512:base+12*512], c[base+11*512:base+12*512])
	}
	sameUsedBytesBuf(t, a, c)
}

func sameUsedBytesBuf(t *testing.T, a, c []byte) {
	t.Helper()
	dir := t.TempDir()
	pa, pc := filepath.Join(dir, "a"), filepath.Join(dir, "c")
	os.WriteFile(pa, a, 0o644)
	os.WriteFile(pc, c, 0o644)
	sameUsedBytes(t, pa, pc)
}

// A restore of an exFAT image that fails midway (disk full) leaves both
// boot regions zeroed: nothing mounts a half-written volume.
func TestExFATRestoreDiskFull(t *testing.T) {
	img := filepath.Join(t.TempDir(), "x.cbi")
	backup(t, testvol.ExFAT(t, testvol.ExFATSpec{Content: "full"}), img, true)
	target := filepath.Join(smallFS(t, "8m"), "target")
	_, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: target})
	var we *restorecore.WriteError
	if !errors.As(err, &we) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("restore to a full disk: %v", err)
	}
	b, err := os.ReadFile(target)
	if err != nil || len(b) < 24*512 {
		t.Fatalf("target: %d bytes, %v", len(b), err)
	}
	if !oracle.IsZero(b[:24*512]) {
		t.Fatal("an exFAT boot region is present after a failed restore")
	}
}

// The exFAT volume from dsoprea/go-exfat's test assets (made by another
// tool: a 15-character label, deleted entries) round-trips too.
func TestExFATRealImageRoundTrip(t *testing.T) {
	testvol.Need(t, "fsck.exfat", "fls")
	dir := t.TempDir()
	src := testvol.Gunzip(t, "../testdata/exfat/go-exfat-test.img.gz")
	img, out := filepath.Join(dir, "i.cbi"), filepath.Join(dir, "restored")
	backup(t, src, img, true)
	restore(t, img, out)
	sameUsedBytes(t, src, out)
	fsckExFAT(t, out)
	a, c := oracle.Live(oracle.FLS(t, src)), oracle.Live(oracle.FLS(t, out))
	if strings.Join(a, "\n") != strings.Join(c, "\n") {
		t.Fatalf("fls listings differ:\n%q\n%q", a, c)
	}
}
