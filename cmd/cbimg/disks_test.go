//go:build linux

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/testvol"
)

func partitionsOf(t *testing.T, img string) partitionsJSON {
	t.Helper()
	out, stderr, code := cbimg(t, nil, "partitions", "--json", img)
	if code != 0 {
		t.Fatalf("partitions --json %s: exit %d %s", img, code, stderr)
	}
	// The keys README.md documents, read without the Go types.
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("partitions --json: %v\n%s", err, out)
	}
	for _, k := range []string{"disk", "size", "scheme", "sector_size", "disk_id", "warnings", "partitions"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("partitions --json lacks %q", k)
		}
	}
	for _, p := range raw["partitions"].([]any) {
		for _, k := range []string{"number", "spec", "start", "size", "type", "type_name", "guid", "name", "bootable", "extended", "file_system", "label", "cluster_size", "used_bytes"} {
			if _, ok := p.(map[string]any)[k]; !ok {
				t.Errorf("partition lacks %q", k)
			}
		}
	}
	var j partitionsJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// checkPartitions compares the listing with sfdisk and with the file
// systems the disk was built with.
func checkPartitions(t *testing.T, img string, j partitionsJSON, parts []disktest.Part) {
	t.Helper()
	sf := disktest.SfdiskJSON(t, img)
	if j.Scheme != sf.Label && !(j.Scheme == "mbr" && sf.Label == "dos") || len(j.Partitions) != len(parts) || len(j.Warnings) != 0 {
		t.Fatalf("listing %+v", j)
	}
	for i, want := range parts {
		p := j.Partitions[i]
		q, ok := sf.Part(want.Number)
		if !ok || p.Number != want.Number || p.Start != q.Start*512 || p.Size != q.Size*512 || p.Spec != img+"@"+strconv.Itoa(want.Number) {
			t.Errorf("partition %+v; sfdisk %+v", p, q)
		}
		fs := want.FS
		if fs == "" {
			fs = "-"
		}
		if p.FileSystem != fs || p.Label != want.Label || p.Name != want.Name {
			t.Errorf("partition %d: %s %q %q; want %s %q %q", p.Number, p.FileSystem, p.Label, p.Name, fs, want.Label, want.Name)
		}
		switch {
		case want.FS == "" && p.UsedBytes != nil:
			t.Errorf("partition %d: used bytes without a file system", p.Number)
		case want.FS == "ntfs" && (p.UsedBytes == nil || *p.UsedBytes <= 0 || *p.UsedBytes > p.Size):
			t.Errorf("partition %d: used bytes %v", p.Number, p.UsedBytes)
		case strings.HasPrefix(want.FS, "fat") && (p.UsedBytes == nil || *p.UsedBytes%int64(p.ClusterSize) != 0):
			t.Errorf("partition %d: used bytes %v", p.Number, p.UsedBytes)
		}
	}
}

func TestPartitionsCommand(t *testing.T) {
	mbr := disktest.MBR(t)
	j := partitionsOf(t, mbr)
	checkPartitions(t, mbr, j, disktest.MBRParts)
	if p := j.Partitions[2]; !p.Extended || p.Type != "0x05" || p.TypeName != "Extended" {
		t.Errorf("extended partition: %+v", p)
	}
	if p := j.Partitions[0]; !p.Bootable || p.Type != "0x07" || p.GUID != "" {
		t.Errorf("partition 1: %+v", p)
	}

	gpt := disktest.GPT(t)
	j = partitionsOf(t, gpt)
	checkPartitions(t, gpt, j, disktest.GPTParts)
	sf := disktest.SfdiskJSON(t, gpt)
	if j.DiskID != sf.ID {
		t.Errorf("disk id %s, sfdisk %s", j.DiskID, sf.ID)
	}
	for i, p := range j.Partitions {
		if p.Type != sf.Partitions[i].Type || p.GUID != sf.Partitions[i].UUID {
			t.Errorf("partition %d: %s %s; sfdisk %s %s", p.Number, p.Type, p.GUID, sf.Partitions[i].Type, sf.Partitions[i].UUID)
		}
	}
	if j.Partitions[2].TypeName != "Microsoft basic data" {
		t.Errorf("type name %q", j.Partitions[2].TypeName)
	}

	// Human output names every partition's spec.
	out, _, code := cbimg(t, nil, "partitions", gpt)
	if code != 0 || !strings.Contains(out, gpt+"@4") || !strings.Contains(out, "linux ü") {
		t.Errorf("partitions: exit %d\n%s", code, out)
	}

	// Damaged primary GPT: listed from the backup, with a warning.
	patchByte(t, gpt, 512+60)
	out, stderr, code := cbimg(t, nil, "partitions", gpt)
	if code != 0 || !strings.Contains(stderr, "primary GPT damaged") || !strings.Contains(out, "GPTNTFS") {
		t.Errorf("damaged primary: exit %d\n%s%s", code, out, stderr)
	}
	// Both copies damaged: the source is damaged (exit 5).
	fi, _ := os.Stat(gpt)
	patchByte(t, gpt, fi.Size()-512+60)
	if _, stderr, code := cbimg(t, nil, "partitions", "--json", gpt); code != exitFS || !strings.Contains(stderr, "GPT header") {
		t.Errorf("damaged GPT: exit %d %s", code, stderr)
	}
	if _, _, code := cbimg(t, nil, "partitions", filepath.Join(t.TempDir(), "none")); code != exitError {
		t.Errorf("missing disk: exit %d", code)
	}
	// A bare volume has no partition table.
	j = partitionsOf(t, testvol.Real(t, "fat/mkfs-fat16-lfn.img"))
	if j.Scheme != "none" || len(j.Partitions) != 0 {
		t.Errorf("bare volume: %+v", j)
	}
}

func patchByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A disk image attached to a loop device is listed with its backing file.
func TestDisksCommand(t *testing.T) {
	testvol.Need(t, "losetup")
	img := disktest.MBR(t)
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", img))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	out, stderr, code := cbimg(t, nil, "disks", "--json")
	if code != 0 {
		t.Fatalf("disks: exit %d %s", code, stderr)
	}
	var j disksJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("disks --json: %v\n%s", err, out)
	}
	found := false
	for _, d := range j.Disks {
		if strings.HasPrefix(d.Name, "ram") || strings.HasPrefix(d.Name, "zram") || strings.HasPrefix(d.Name, "loop") && d.BackingFile == "" {
			t.Errorf("listed %+v", d)
		}
		if d.Path == loop {
			found = true
			if d.BackingFile != img || d.Size != 128<<20 || d.SectorSize != 512 {
				t.Errorf("loop device: %+v", d)
			}
		}
	}
	if !found {
		t.Fatalf("%s not listed:\n%s", loop, out)
	}
	out, _, code = cbimg(t, nil, "disks")
	if code != 0 || !strings.Contains(out, loop) || !strings.Contains(out, "loop: "+img) {
		t.Errorf("disks: exit %d\n%s", code, out)
	}
}
