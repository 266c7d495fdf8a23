//go:build linux

package volume

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

func fatReadVBR(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/realimages/bootsectors/win-fat32-msdos50.vbr")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFATBootWindowsVBR(t *testing.T) {
	b := fatReadVBR(t)
	if !isFATBoot(b) {
		t.Fatal("isFATBoot rejects a Windows FAT32 boot sector")
	}
	bs, err := ParseFATBoot(b)
	if err != nil {
		t.Fatal(err)
	}
	// Values read with `xxd` and minfo from the same sector.
	want := FATBoot{
		OEMName: "MSDOS5.0", BytesPerSector: 512, SectorsPerCluster: 32, ReservedSectors: 2860,
		NumFATs: 2, Media: 0xF8, SectorsPerTrack: 63, Heads: 255, HiddenSectors: 0,
		TotalSectors32: 0x03A71947, FATSize32: 0x3A6A, RootCluster: 2, FSInfoSector: 1, BackupBootSector: 6,
		DriveNumber: 0x80, BootSignature: 0x29, VolumeID: 0x4E42EF07, FSTypeLabel: "FAT32", Type: FAT32,
	}
	got := *bs
	got.TotalSectors, got.FATSize, got.FirstDataSector, got.DataClusters, got.FATCapacity, got.ClusterCount = 0, 0, 0, 0, 0, 0
	if got != want {
		t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
	}
	if bs.ClusterSize() != 16384 || bs.FirstDataSector != 2860+2*0x3A6A || bs.TotalSectors != 0x03A71947 {
		t.Errorf("cluster size %d, data start %d, total %d", bs.ClusterSize(), bs.FirstDataSector, bs.TotalSectors)
	}
	wantClusters := (uint32(0x03A71947) - (2860 + 2*0x3A6A)) / 32
	if bs.DataClusters != wantClusters || bs.ClusterCount != wantClusters {
		t.Errorf("clusters %d/%d, want %d", bs.DataClusters, bs.ClusterCount, wantClusters)
	}
}

// fatBootFixture returns a valid FAT16 boot sector to damage.
func fatBootFixture() []byte {
	b := make([]byte, 512)
	b[0], b[1], b[2] = 0xEB, 0x3C, 0x90
	copy(b[3:], "MSWIN4.1")
	le := binary.LittleEndian
	le.PutUint16(b[11:], 512)
	b[13] = 4
	le.PutUint16(b[14:], 4)
	b[16] = 2
	le.PutUint16(b[17:], 512)
	le.PutUint16(b[19:], 0)
	b[21] = 0xF8
	le.PutUint16(b[22:], 64) // 64*256 = 16384 entries
	le.PutUint32(b[32:], 65536)
	b[38] = 0x29
	le.PutUint32(b[39:], 0xDEADBEEF)
	copy(b[43:], "LABEL      ")
	copy(b[54:], "FAT16   ")
	b[510], b[511] = 0x55, 0xAA
	return b
}

func TestParseFATBootTypes(t *testing.T) {
	bs, err := ParseFATBoot(fatBootFixture())
	if err != nil {
		t.Fatal(err)
	}
	// 65536 - (4 + 128 + 32) = 65372 sectors / 4 = 16343 clusters: FAT16.
	if bs.Type != FAT16 || bs.ClusterCount != 16343 || bs.VolumeLabel != "LABEL" || bs.VolumeID != 0xDEADBEEF {
		t.Errorf("got %v, %d clusters, label %q, id %#x", bs.Type, bs.ClusterCount, bs.VolumeLabel, bs.VolumeID)
	}
	// The type follows the cluster count, not the label: 4084 clusters is
	// FAT12, 4085 FAT16 (Microsoft's thresholds).
	for _, c := range []struct {
		clusters uint32
		want     Type
	}{{4084, FAT12}, {4085, FAT16}, {65524, FAT16}} {
		b := fatBootFixture()
		spc := uint32(1)
		b[13] = byte(spc)
		binary.LittleEndian.PutUint16(b[22:], 256)
		binary.LittleEndian.PutUint32(b[32:], 4+512+32+c.clusters*spc)
		bs, err := ParseFATBoot(b)
		if err != nil {
			t.Fatalf("%d clusters: %v", c.clusters, err)
		}
		if bs.Type != c.want || bs.DataClusters != c.clusters {
			t.Errorf("%d clusters: type %v (%d clusters), want %v", c.clusters, bs.Type, bs.DataClusters, c.want)
		}
	}
	// 65525 clusters in FAT12/16 form cannot be read.
	b := fatBootFixture()
	b[13] = 1
	binary.LittleEndian.PutUint16(b[22:], 256)
	binary.LittleEndian.PutUint32(b[32:], 4+512+32+65525)
	if _, err := ParseFATBoot(b); err == nil || !strings.Contains(err.Error(), "FAT32") {
		t.Errorf("65525 clusters in FAT16 form: %v", err)
	}
	// FAT capacity bounds the cluster count.
	b = fatBootFixture()
	binary.LittleEndian.PutUint16(b[22:], 8) // 2048 entries
	bs, err = ParseFATBoot(b)
	if err != nil {
		t.Fatal(err)
	}
	if bs.ClusterCount != 2046 {
		t.Errorf("cluster count %d, want the FAT's 2046", bs.ClusterCount)
	}
}

func TestParseFATBootDamaged(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		name   string
		damage func(b []byte)
		want   string
		off    int64
	}{
		{"short", nil, "need 512", 0},
		{"signature", func(b []byte) { b[511] = 0 }, "signature", 510},
		{"sector size 0", func(b []byte) { le.PutUint16(b[11:], 0) }, "bytes per sector is 0", 11},
		{"sector size 513", func(b []byte) { le.PutUint16(b[11:], 513) }, "bytes per sector is 513", 11},
		{"sector size 8192", func(b []byte) { le.PutUint16(b[11:], 8192) }, "bytes per sector is 8192", 11},
		{"zero sectors per cluster", func(b []byte) { b[13] = 0 }, "sectors per cluster is 0", 13},
		{"non-power-of-two cluster", func(b []byte) { b[13] = 3 }, "sectors per cluster is 3", 13},
		{"no reserved sectors", func(b []byte) { le.PutUint16(b[14:], 0) }, "reserved sector count is 0", 14},
		{"no FATs", func(b []byte) { b[16] = 0 }, "number of FATs is 0", 16},
		{"5 FATs", func(b []byte) { b[16] = 5 }, "number of FATs is 5, want 1 to 4", 16},
		{"255 FATs", func(b []byte) { b[16] = 255 }, "number of FATs is 255", 16},
		{"0xffff root entries", func(b []byte) { le.PutUint16(b[17:], 0xffff) }, "65535 root directory entries do not fill whole 512-byte sectors", 17},
		{"root entries not a whole sector", func(b []byte) { le.PutUint16(b[17:], 17) }, "17 root directory entries", 17},
		{"media", func(b []byte) { b[21] = 0x12 }, "media descriptor", 21},
		{"no sectors", func(b []byte) { le.PutUint32(b[32:], 0) }, "total sector count is 0", 19},
		{"FAT size 0", func(b []byte) { le.PutUint16(b[22:], 0) }, "FAT size is 0", 22},
		{"no root entries", func(b []byte) { le.PutUint16(b[17:], 0) }, "0 root directory entries", 17},
		{"data beyond volume", func(b []byte) { le.PutUint32(b[32:], 100) }, "beyond the volume", 19},
		{"no whole cluster", func(b []byte) { le.PutUint32(b[32:], 4+128+32+3) }, "no whole cluster", 19},
		{"FAT32 root entries", func(b []byte) { le.PutUint16(b[22:], 0); le.PutUint32(b[36:], 64) }, "fixed root entries", 22},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := fatBootFixture()
			if c.damage == nil {
				b = b[:100]
			} else {
				c.damage(b)
			}
			_, err := ParseFATBoot(b)
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want a *FormatError wrapping ErrCorrupt", err)
			}
			if !strings.Contains(fe.Msg, c.want) || fe.Offset != c.off {
				t.Errorf("got %q at %d, want %q at %d", fe.Msg, fe.Offset, c.want, c.off)
			}
		})
	}

	// FAT32 fields.
	vbr := fatReadVBR(t)
	for _, c := range []struct {
		name   string
		damage func(b []byte)
		want   string
		is     error
	}{
		{"root cluster 0", func(b []byte) { le.PutUint32(b[44:], 0) }, "root directory cluster 0", ErrCorrupt},
		{"root cluster past end", func(b []byte) { le.PutUint32(b[44:], 0x0FFFFFF0) }, "root directory cluster", ErrCorrupt},
		{"version", func(b []byte) { le.PutUint16(b[42:], 0x0100) }, "version 1.0", ErrUnsupported},
		{"active FAT", func(b []byte) { le.PutUint16(b[40:], 0x0083) }, "active FAT is 3", ErrCorrupt},
		{"FSInfo", func(b []byte) { le.PutUint16(b[48:], 5000) }, "FSInfo sector 5000", ErrCorrupt},
		{"backup boot", func(b []byte) { le.PutUint16(b[50:], 5000) }, "backup boot sector 5000", ErrCorrupt},
		{"both FAT sizes 0", func(b []byte) { le.PutUint32(b[36:], 0) }, "FAT size is 0", ErrCorrupt},
	} {
		t.Run("fat32 "+c.name, func(t *testing.T) {
			b := append([]byte(nil), vbr...)
			c.damage(b)
			_, err := ParseFATBoot(b)
			if !errors.Is(err, c.is) || err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q (%v)", err, c.want, c.is)
			}
		})
	}
}

func TestIsFATBoot(t *testing.T) {
	if !isFATBoot(fatBootFixture()) {
		t.Error("rejects a FAT16 boot sector")
	}
	b := fatBootFixture()
	b[13] = 0 // damaged, but still FAT: ParseFATBoot must say why
	if !isFATBoot(b) {
		t.Error("rejects a FAT boot sector with a damaged field")
	}
	for _, name := range []string{"ntfs-4kn.vbr", "ntfs-64k-cluster.vbr"} {
		nb, err := os.ReadFile(filepath.Join("../testdata/realimages/bootsectors", name))
		if err != nil {
			t.Fatal(err)
		}
		if isFATBoot(nb) {
			t.Errorf("%s taken for FAT", name)
		}
	}
	if isFATBoot(make([]byte, 512)) {
		t.Error("zeros taken for FAT")
	}
}

func FuzzParseFATBoot(f *testing.F) {
	f.Add(fatReadVBR(f))
	f.Add(fatBootFixture())
	dir := f.TempDir()
	for _, name := range []string{"mkfs-fat12-lfn.img.gz", "mkfs-fat16-lfn.img.gz", "mkfs-fat32-2048-byte-sectors.raw.gz", "winxp-fat16-undel.dd.gz"} {
		img := fatGunzip(f, filepath.Join("../testdata/realimages/fat", name), dir)
		fh, err := os.Open(img)
		if err != nil {
			f.Fatal(err)
		}
		b := make([]byte, 512)
		if _, err := fh.ReadAt(b, 0); err != nil {
			f.Fatal(err)
		}
		fh.Close()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := ParseFATBoot(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		// Whatever parses must describe a consistent layout.
		if bs.ClusterCount == 0 || uint64(bs.ClusterCount) > uint64(bs.DataClusters) || uint64(bs.ClusterCount)+2 > bs.FATCapacity {
			t.Fatalf("cluster count %d, data clusters %d, FAT capacity %d", bs.ClusterCount, bs.DataClusters, bs.FATCapacity)
		}
		end := uint64(bs.FirstDataSector) + uint64(bs.ClusterCount)*uint64(bs.SectorsPerCluster)
		if end > bs.TotalSectors {
			t.Fatalf("cluster area ends at sector %d, past the volume's %d", end, bs.TotalSectors)
		}
		if bs.Type == FAT12 && bs.ClusterCount > fatMaxClusters12 || bs.Type == FAT16 && bs.ClusterCount > fatMaxClusters16 {
			t.Fatalf("type %v with %d clusters", bs.Type, bs.ClusterCount)
		}
		if bs.Type == FAT32 && (bs.RootCluster < 2 || bs.RootCluster > bs.ClusterCount+1) {
			t.Fatalf("root cluster %d of %d", bs.RootCluster, bs.ClusterCount)
		}
	})
}

// FuzzFATVolume overwrites the start of a real FAT12 volume (boot sector,
// FATs, root directory and the first directories) with fuzzed bytes: open,
// bitmap and walk must return errors, never panic or run away.
func FuzzFATVolume(f *testing.F) {
	img, err := os.ReadFile(testvol.Real(f, "fat/mkfs-fat12-lfn.img"))
	if err != nil {
		f.Fatal(err)
	}
	const head = 8 << 10 // boot sector, both FATs and the start of the root directory
	f.Add(img[:head])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > head {
			b = b[:head]
		}
		vol := append([]byte(nil), img...)
		copy(vol, b)
		v, err := Open(bytes.NewReader(vol), int64(len(vol)))
		if err != nil {
			return
		}
		bm, err := v.Bitmap()
		if err == nil && uint64(len(bm)) != (v.Info.ClusterCount+7)/8 {
			t.Fatalf("bitmap %d bytes for %d clusters", len(bm), v.Info.ClusterCount)
		}
		n := 0
		_ = v.Walk(context.Background(), func(f File) error {
			n++
			for _, r := range f.Runs {
				if r.Start+r.Count > v.Info.ClusterCount {
					t.Fatalf("%s: run %v past %d clusters", f.Path, r, v.Info.ClusterCount)
				}
			}
			return nil
		})
		_, _ = v.FAT().CompareFATCopies()
		if ents, err := v.FAT().ReadDir("/"); err == nil {
			for _, e := range ents {
				if ff, err := v.FAT().Open(e.Name); err == nil {
					_, _ = ff.ReadAt(make([]byte, min(ff.Size(), 1<<20)), 0)
				}
			}
		}
	})
}

// The FAT and root-directory bounds accept what mkfs.fat makes at its
// limits: 1 and 4 FATs, the largest root directory it writes.
func TestFATBootBoundsRealVolumes(t *testing.T) {
	testvol.Need(t, "mkfs.fat", "mcopy")
	for _, args := range [][]string{{"-F", "16", "-f", "1"}, {"-F", "16", "-f", "4"}, {"-F", "12", "-f", "4", "-r", "4080"}, {"-F", "32", "-f", "4"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "v")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Truncate(p, 40<<20)
			testvol.Run(t, "mkfs.fat", append(args, p)...)
			testvol.Run(t, "mcopy", "-i", p, "../README.md", "::/README.MD")
			f, size := testvol.OpenFile(t, p)
			ffs, err := OpenFATFS(f, size)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			ents, err := ffs.ReadDir("/")
			if err != nil || len(ents) != 1 || ents[0].Name != "README.MD" {
				t.Fatalf("root: %v %v", ents, err)
			}
		})
	}
}
