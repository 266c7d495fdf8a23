package volume

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readVBR(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "realimages", "bootsectors", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNTFSBoot(t *testing.T) {
	tests := []struct {
		file                        string
		bps, spc, cs, rec, idx      uint32
		clusters, mft, mftMirr, hid uint64
	}{
		{"ntfs-4kn.vbr", 4096, 1, 4096, 4096, 4096, 0x37ff, 0x12aa, 2, 16},
		{"ntfs-64k-cluster.vbr", 512, 128, 65536, 1024, 4096, 0x3ffe7ff / 128, 0xc000, 1, 0x800},
		{"ntfs-128k-cluster.vbr", 512, 256, 131072, 1024, 4096, 0x3ffe7ff / 256, 0x6000, 1, 0x800},
	}
	for _, tc := range tests {
		b, err := ParseNTFSBoot(readVBR(t, tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if b.BytesPerSector != tc.bps || b.SectorsPerCluster != tc.spc || b.ClusterSize != tc.cs ||
			b.RecordSize != tc.rec || b.IndexBlockSize != tc.idx || b.ClusterCount() != tc.clusters ||
			b.MFTCluster != tc.mft || b.MFTMirrCluster != tc.mftMirr || b.HiddenSectors != tc.hid || b.OEMName != "NTFS    " {
			t.Errorf("%s: got %+v (clusters %d)", tc.file, b, b.ClusterCount())
		}
		if !isNTFSBoot(readVBR(t, tc.file)) {
			t.Errorf("%s: isNTFSBoot false", tc.file)
		}
	}
	if isNTFSBoot(readVBR(t, "win-fat32-msdos50.vbr")) {
		t.Error("FAT32 boot sector taken for NTFS")
	}
}

func TestParseNTFSBootDamaged(t *testing.T) {
	good := readVBR(t, "ntfs-64k-cluster.vbr")
	tests := []struct {
		name string
		edit func(b []byte)
		want string
	}{
		{"short", nil, "need 512 bytes"},
		{"oem", func(b []byte) { copy(b[3:], "NTFX    ") }, "OEM name"},
		{"signature", func(b []byte) { b[510] = 0 }, "signature"},
		{"bytes per sector", func(b []byte) { binary.LittleEndian.PutUint16(b[0x0B:], 1000) }, "bytes per sector 1000"},
		{"zero spc", func(b []byte) { b[0x0D] = 0 }, "sectors per cluster is 0"},
		{"odd spc", func(b []byte) { b[0x0D] = 3 }, "sectors per cluster 3"},
		{"huge spc", func(b []byte) { b[0x0D] = 0xE0 }, "too large"},
		{"cluster over 2 MiB", func(b []byte) { b[0x0D] = 0xF3 }, "exceeds"},
		{"reserved", func(b []byte) { b[0x0E] = 1 }, "reserved sectors 1"},
		{"no sectors", func(b []byte) { binary.LittleEndian.PutUint64(b[0x28:], 0) }, "total sectors is 0"},
		{"mft outside", func(b []byte) { binary.LittleEndian.PutUint64(b[0x30:], 1<<40) }, "$MFT cluster"},
		{"mirror outside", func(b []byte) { binary.LittleEndian.PutUint64(b[0x38:], 0) }, "$MFTMirr cluster"},
		{"record size zero", func(b []byte) { b[0x40] = 0 }, "MFT record size"},
		{"record size huge", func(b []byte) { b[0x40] = 0x40 }, "MFT record size"},
		{"index size", func(b []byte) { b[0x44] = 0xEF }, "index block size"},
	}
	for _, tc := range tests {
		b := bytes.Clone(good)
		if tc.edit == nil {
			b = b[:100]
		} else {
			tc.edit(b)
		}
		_, err := ParseNTFSBoot(b)
		var fe *FormatError
		if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want a FormatError mentioning %q", tc.name, err, tc.want)
		}
	}
	// 2 MiB clusters on 4Kn sectors: 512 sectors, byte 0xF7.
	b := bytes.Clone(readVBR(t, "ntfs-4kn.vbr"))
	b[0x0D] = 0xF7
	b[0x40] = 0xF6
	b[0x44] = 0xF4
	binary.LittleEndian.PutUint64(b[0x28:], 512*1000)
	binary.LittleEndian.PutUint64(b[0x30:], 4)
	bt, err := ParseNTFSBoot(b)
	if err != nil || bt.ClusterSize != 2<<20 || bt.RecordSize != 1024 {
		t.Errorf("2 MiB clusters: %+v, %v", bt, err)
	}
}

// ntfsSeedSectors returns the first sector of each real NTFS image.
func ntfsSeedSectors(t testing.TB) [][]byte {
	var out [][]byte
	for _, im := range []struct {
		file string
		off  int64
	}{
		{"win10-test-ntfs.dd.gz", 0},
		{"win10-dissect-ntfs.bin.gz", 0},
		{"winxp-ntfs-undel.dd.gz", 0},
		{"win10-mbr-disk-lastaccess.raw.gz", 128 * 512},
	} {
		f, err := os.Open(filepath.Join("..", "testdata", "realimages", "ntfs", im.file))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, zr, im.off); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		if _, err := io.ReadFull(zr, b); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out = append(out, b)
	}
	return out
}

func FuzzParseNTFSBoot(f *testing.F) {
	for _, n := range []string{"ntfs-4kn.vbr", "ntfs-64k-cluster.vbr", "ntfs-128k-cluster.vbr", "win-fat32-msdos50.vbr"} {
		f.Add(readVBR(f, n))
	}
	for _, b := range ntfsSeedSectors(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, err := ParseNTFSBoot(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FormatError: %v", err)
			}
			return
		}
		cs := uint64(bt.ClusterSize)
		if cs == 0 || cs > ntfsMaxClusterSize || cs&(cs-1) != 0 || cs != uint64(bt.SectorsPerCluster)*uint64(bt.BytesPerSector) {
			t.Fatalf("cluster size %d accepted", cs)
		}
		if bt.MFTCluster >= bt.ClusterCount() || bt.ClusterCount() == 0 {
			t.Fatalf("MFT cluster %d of %d accepted", bt.MFTCluster, bt.ClusterCount())
		}
		if bt.RecordSize < ntfsMinRecordSize || bt.RecordSize > ntfsMaxRecordSize || bt.IndexBlockSize > ntfsMaxRecordSize {
			t.Fatalf("record %d index %d accepted", bt.RecordSize, bt.IndexBlockSize)
		}
	})
}
