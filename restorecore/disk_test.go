//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
)

func partStart(t *testing.T, spec string) int64 {
	s, err := disk.OpenPartition(spec, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.Start()
}

func bootOf(t *testing.T, spec string, off int64) []byte {
	s, err := disk.OpenPartition(spec, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := make([]byte, 512)
	if _, err := s.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// Partitions of disk images back up and restore through DISK@N, also into a
// partition at another offset: only "hidden sectors" changes, and sleuthkit
// sees the same files.
func TestDiskPartitions(t *testing.T) {
	testvol.Need(t, "fls", "icat", "fsck.fat")
	dir := t.TempDir()
	mbr, gpt := disktest.MBR(t), disktest.GPT(t)
	for _, c := range []struct{ src, dst string }{
		{gpt + "@1", mbr + "@5"}, // FAT16 8 MiB into a 16 MiB logical partition
		{mbr + "@1", gpt + "@3"}, // NTFS 24 MiB, MBR primary into GPT
	} {
		name := filepath.Base(c.src) + "-" + filepath.Base(c.dst)
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(dir, name+".cbi")
			res := backup(t, c.src, img, true)
			if res.Header.PartStart != partStart(t, c.src) || res.Header.Scheme == 0 {
				t.Errorf("header: start %d scheme %d", res.Header.PartStart, res.Header.Scheme)
			}
			rr, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: c.dst})
			if err != nil {
				t.Fatal(err)
			}
			dstStart := partStart(t, c.dst)
			if want := uint64(dstStart / 512); rr.HiddenSectors != want {
				t.Errorf("hidden sectors %d, want %d", rr.HiddenSectors, want)
			}
			a, b := bootOf(t, c.src, 0), bootOf(t, c.dst, 0)
			if got := binary.LittleEndian.Uint32(b[0x1C:]); got != uint32(dstStart/512) {
				t.Errorf("boot sector hidden sectors %d, want %d", got, dstStart/512)
			}
			copy(a[0x1C:0x20], b[0x1C:0x20])
			if !bytes.Equal(a, b) {
				t.Error("boot sector differs in more than hidden sectors")
			}
			srcOff := strconv.FormatInt(partStart(t, c.src)/512, 10)
			dstOff := strconv.FormatInt(dstStart/512, 10)
			srcDisk, dstDisk := strings.Split(c.src, "@")[0], strings.Split(c.dst, "@")[0]
			fa := oracle.Live(strings.Split(testvol.Run(t, "fls", "-r", "-p", "-o", srcOff, srcDisk), "\n"))
			fb := oracle.Live(strings.Split(testvol.Run(t, "fls", "-r", "-p", "-o", dstOff, dstDisk), "\n"))
			if strings.Join(fa, "\n") != strings.Join(fb, "\n") {
				t.Fatalf("fls differs:\n%v\n%v", fa, fb)
			}
		})
	}
	// Into a partition that is too small: refused with the size needed.
	img := filepath.Join(dir, "big.cbi")
	backup(t, disktest.MBR(t)+"@5", img, true) // a fresh disk: the one above now holds the 8 MiB volume
	_, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: gpt + "@1"})
	if !errors.Is(err, restorecore.ErrTargetTooSmall) || !strings.Contains(err.Error(), "needs") {
		t.Fatalf("restore into a smaller partition: %v", err)
	}
}
