//go:build linux

// Package disktest builds whole-disk image files for tests with the real
// tools: sfdisk or sgdisk write the partition table, mkntfs and mkfs.fat
// format partition-sized files that are then copied into place, so no
// loop device is needed.
package disktest

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// Part is what a test expects of one partition.
type Part struct {
	Number int
	FS     string // "ntfs", "fat12", "fat16", "fat32", or "" for none
	Label  string
	Name   string // GPT partition name
}

// MBRParts are the partitions MBR builds: two primaries, an extended
// partition (3) and two logical partitions in it.
var MBRParts = []Part{
	{Number: 1, FS: "ntfs", Label: "PRIMNTFS"},
	{Number: 2, FS: "fat32", Label: "PRIMFAT32"},
	{Number: 3},
	{Number: 5, FS: "fat16", Label: "LOGFAT16"},
	{Number: 6, FS: "ntfs", Label: "LOGNTFS"},
}

// GPTParts are the partitions GPT builds.
var GPTParts = []Part{
	{Number: 1, FS: "fat16", Label: "EFIFAT", Name: "EFI system partition"},
	{Number: 2, Name: "Microsoft reserved partition"},
	{Number: 3, FS: "ntfs", Label: "GPTNTFS", Name: "Basic data partition"},
	{Number: 4, Name: "linux ü"},
}

// MBR returns a new 128 MiB disk image with an MBR (see MBRParts):
// 1 NTFS 24 MiB (active), 2 FAT32 40 MiB, 3 extended holding 5 FAT16
// 16 MiB and 6 NTFS to the end.
func MBR(t testing.TB) string {
	t.Helper()
	testvol.Need(t, "sfdisk", "mkntfs", "mkfs.fat")
	img := newDisk(t, 128<<20)
	sfdisk(t, img, "label: dos\nunit: sectors\n\n,24M,7,*\n,40M,c\n,,5\n,16M,6\n,,7\n")
	format(t, img)
	return img
}

// GPT returns a new 64 MiB disk image with a GPT (see GPTParts): 1 EFI
// system 8 MiB (FAT16), 2 Microsoft reserved 4 MiB, 3 Microsoft basic
// data 24 MiB (NTFS), 4 Linux to the end.
func GPT(t testing.TB) string {
	t.Helper()
	testvol.Need(t, "sgdisk", "sfdisk", "mkntfs", "mkfs.fat")
	img := newDisk(t, 64<<20)
	testvol.Run(t, "sgdisk", "-n", "1:2048:+8M", "-t", "1:ef00", "-c", "1:EFI system partition",
		"-n", "2:0:+4M", "-t", "2:0c01", "-c", "2:Microsoft reserved partition",
		"-n", "3:0:+24M", "-t", "3:0700", "-c", "3:Basic data partition",
		"-n", "4:0:0", "-t", "4:8300", "-c", "4:linux ü", img)
	format(t, img)
	return img
}

func newDisk(t testing.TB, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return img
}

func sfdisk(t testing.TB, img, script string) {
	t.Helper()
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
}

// format formats every partition named in the spec lists with the file
// system they say, taking start and size from sfdisk --json.
func format(t testing.TB, img string) {
	t.Helper()
	j := SfdiskJSON(t, img)
	parts := MBRParts
	if j.Label == "gpt" {
		parts = GPTParts
	}
	for _, want := range parts {
		if want.FS == "" {
			continue
		}
		p, ok := j.Part(want.Number)
		if !ok {
			t.Fatalf("disktest: sfdisk shows no partition %d", want.Number)
		}
		FormatAt(t, img, p.Start*int64(j.SectorSize), p.Size*int64(j.SectorSize), want.FS, want.Label)
	}
}

// FormatAt formats a partition-sized file with fs and copies it into img
// at start, skipping zero blocks.
func FormatAt(t testing.TB, img string, start, length int64, fs, label string) {
	t.Helper()
	part := filepath.Join(t.TempDir(), "part")
	f, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(length)
	f.Close()
	hidden := strconv.FormatInt(start/512, 10)
	switch fs {
	case "ntfs":
		testvol.Run(t, "mkntfs", "-F", "-Q", "-q", "-L", label, "-p", hidden, "-H", "255", "-S", "63", part)
	case "fat12", "fat16", "fat32":
		args := []string{"-F", fs[3:], "-n", label, "-h", hidden, "-s", "1"}
		testvol.Run(t, "mkfs.fat", append(args, part)...)
	default:
		t.Fatalf("disktest: unknown file system %q", fs)
	}
	src, err := os.Open(part)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	for off := int64(0); ; off += int64(len(buf)) {
		n, err := io.ReadFull(src, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := dst.WriteAt(buf[:n], start+off); err != nil {
				t.Fatal(err)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// SfdiskTable is the output of sfdisk --json.
type SfdiskTable struct {
	Label      string       `json:"label"`
	ID         string       `json:"id"`
	SectorSize int          `json:"sectorsize"`
	FirstLBA   int64        `json:"firstlba"`
	LastLBA    int64        `json:"lastlba"`
	Partitions []SfdiskPart `json:"partitions"`
}

// SfdiskPart is one partition as sfdisk --json shows it; Start and Size
// are in sectors.
type SfdiskPart struct {
	Node     string `json:"node"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	Bootable bool   `json:"bootable"`
	Attrs    string `json:"attrs"`
}

// Number is the partition number: the digits that end the node name.
func (p SfdiskPart) Number() int {
	i := len(p.Node)
	for i > 0 && p.Node[i-1] >= '0' && p.Node[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(p.Node[i:])
	return n
}

// Part returns partition n.
func (s *SfdiskTable) Part(n int) (SfdiskPart, bool) {
	for _, p := range s.Partitions {
		if p.Number() == n {
			return p, true
		}
	}
	return SfdiskPart{}, false
}

// SfdiskJSON runs sfdisk --json on a disk or image.
func SfdiskJSON(t testing.TB, disk string) *SfdiskTable {
	t.Helper()
	var j struct {
		Table SfdiskTable `json:"partitiontable"`
	}
	out := testvol.Run(t, "sfdisk", "--json", disk)
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("sfdisk --json %s: %v\n%s", disk, err, out)
	}
	return &j.Table
}
