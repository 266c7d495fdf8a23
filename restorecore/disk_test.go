//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
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
	mbr2 := disktest.MBR(t)
	real := testvol.Copy(t, testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw"))
	realTarget := testvol.Copy(t, real)
	for _, c := range []struct{ src, dst string }{
		{gpt + "@1", mbr + "@5"},         // FAT16 8 MiB into a 16 MiB logical partition
		{mbr + "@1", gpt + "@3"},         // NTFS 24 MiB, MBR primary into GPT
		{mbr2 + "@2", mbr2 + "@6"},       // FAT32 40 MiB into the larger logical partition behind it
		{real + "@1", realTarget + "@1"}, // the Windows-made disk, same place on a copy
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
			if want := uint64(dstStart / 512); rr.HiddenSectors != want && !(rr.HiddenSectors == 0 && res.Header.HiddenSectors == want) {
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
			// Every file's contents, and the file system's own checkers, on a
			// copy of the restored partition alone.
			part := extractPartition(t, c.dst)
			src := extractPartition(t, c.src)
			for i, f := range oracle.Files(t, src) {
				if i%10 == 0 && oracle.ICatHash(t, src, f.Addr) != oracle.ICatHash(t, part, f.Addr) {
					t.Errorf("%s differs", f.Path)
				}
			}
			if res.Header.FSType == 1 {
				testvol.Run(t, "ntfsinfo", "-m", part)
			} else if a, b := oracle.Fsck(t, src), oracle.Fsck(t, part); a != b {
				t.Errorf("fsck.fat differs:\n%s\n%s", a, b)
			}
			fs1 := strings.ReplaceAll(testvol.Run(t, "fsstat", src), src, "X")
			fs2 := strings.ReplaceAll(testvol.Run(t, "fsstat", part), part, "X")
			if a, b := stripHidden(fs1), stripHidden(fs2); a != b {
				al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
				for i := range min(len(al), len(bl)) {
					if al[i] != bl[i] {
						t.Errorf("fsstat differs: %q vs %q", al[i], bl[i])
						break
					}
				}
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

// extractPartition copies a DISK@N partition into a file of its own.
func extractPartition(t *testing.T, spec string) string {
	t.Helper()
	s, err := disk.OpenPartition(spec, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := filepath.Join(t.TempDir(), "part")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, io.NewSectionReader(s, 0, s.Size())); err != nil {
		t.Fatal(err)
	}
	return out
}

// stripHidden drops the fsstat lines that follow the partition's place
// (hidden sectors) and the volume's write times.
func stripHidden(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "Hidden") || strings.Contains(l, "Sectors before") || strings.Contains(l, "Written") || strings.Contains(l, "Last") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
