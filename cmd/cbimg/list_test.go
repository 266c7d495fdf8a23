//go:build linux

package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/testvol"
)

// Images placed on several partitions of a disk are all found, read raw.
func TestListFindsImagesOnPartitions(t *testing.T) {
	testvol.Need(t, "mcopy", "mmd", "ntfs-3g", "losetup")
	dir := t.TempDir()
	d := disktest.MBR(t)
	start := func(n int) int64 {
		s, err := disk.OpenPartition(d+"@"+strconv.Itoa(n), false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return s.Start()
	}
	fat16 := filepath.Join(dir, "fat16.cbi")
	ntfs := filepath.Join(dir, "ntfs.cbi")
	for _, c := range [][2]string{{d + "@5", fat16}, {d + "@1", ntfs}} {
		if _, stderr, code := cbimg(t, nil, "backup", c[0], c[1]); code != 0 {
			t.Fatalf("backup %s: %s", c[0], stderr)
		}
	}
	// The FAT16 image goes onto the FAT32 partition with mtools …
	img := d + "@@" + strconv.FormatInt(start(2), 10)
	testvol.Run(t, "mmd", "-i", img, "::/Backups")
	testvol.Run(t, "mcopy", "-i", img, fat16, "::/Backups/fat16.cbi")
	// … and the NTFS image onto the logical NTFS partition with ntfs-3g.
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", "-o", strconv.FormatInt(start(6), 10), d))
	defer exec.Command("losetup", "-d", loop).Run()
	mnt := filepath.Join(dir, "mnt")
	testvol.Run(t, "mkdir", "-p", mnt)
	testvol.Run(t, "ntfs-3g", loop, mnt)
	testvol.Run(t, "cp", ntfs, filepath.Join(mnt, "c.cbi"))
	testvol.Run(t, "fusermount", "-u", mnt)

	out, stderr, code := cbimg(t, nil, "list", "--json", d)
	if code != 0 {
		t.Fatalf("list: %d %s", code, stderr)
	}
	var list []listJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]string{d + "@2:/Backups/fat16.cbi": "fat16", d + "@6:/c.cbi": "ntfs"}
	for _, j := range list {
		fs, ok := want[j.Location]
		if !ok {
			continue
		}
		if j.FileSystem != fs || j.Error != "" {
			t.Errorf("%s: %+v", j.Location, j)
		}
		if fs == "fat16" && (len(j.InPlace) != 1 || j.InPlace[0] != d+"@5") {
			t.Errorf("%s: in place %v, want [%s@5]", j.Location, j.InPlace, d)
		}
		delete(want, j.Location)
	}
	if len(want) > 0 {
		t.Fatalf("not found: %v in %s", want, out)
	}
	// A directory is searched too.
	out, _, _ = cbimg(t, nil, "list", "--json", dir)
	if !strings.Contains(out, "fat16.cbi") || !strings.Contains(out, "ntfs.cbi") {
		t.Fatalf("directory list: %s", out)
	}
}
