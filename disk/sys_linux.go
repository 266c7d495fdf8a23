//go:build linux

package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sectorSizeOf returns the logical sector size of a block device (the
// kernel's BLKSSZGET), or 0 for a file, meaning "probe the image".
func sectorSizeOf(ff file) int {
	f, ok := ff.(*os.File)
	if !ok {
		return 0
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return 0
	}
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return 0
	}
	return n
}

// SectorSize returns the logical sector size of the disk at path: what
// the kernel says for a block device, else 512 unless a GPT header sits at
// byte 4096.
func SectorSize(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if n := sectorSizeOf(f); n > 0 {
		return n, nil
	}
	size, _, err := sizeOf(f)
	if err != nil {
		return 0, err
	}
	return probeSectorSize(f, size), nil
}

// partitionDevices finds the kernel block devices that expose partition p
// of the disk f: its partition device when f is a block device, and the
// partition devices of loop devices attached to f when f is an image file
// (losetup -P), or a loop device set up on exactly the partition's bytes.
func partitionDevices(ff file, p Partition) []string {
	f, ok := ff.(*os.File)
	if !ok {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		dir := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		return childPartitions(dir, p)
	case unix.S_IFREG:
		abs, err := filepath.Abs(f.Name())
		if err != nil {
			return nil
		}
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			abs = r
		}
		var out []string
		loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
		for _, b := range loops {
			if readTrim(b) != abs {
				continue
			}
			dir := filepath.Dir(filepath.Dir(b))
			off, _ := strconv.ParseInt(readTrim(filepath.Join(dir, "loop", "offset")), 10, 64)
			limit, _ := strconv.ParseInt(readTrim(filepath.Join(dir, "loop", "sizelimit")), 10, 64)
			if off == 0 {
				out = append(out, childPartitions(dir, p)...)
			} else if off == p.Start && limit == p.Length {
				out = append(out, devName(filepath.Base(dir)))
			}
		}
		return out
	}
	return nil
}

// childPartitions lists the partitions of the sysfs disk directory dir
// whose start and size (in 512-byte units) match p.
func childPartitions(dir string, p Partition) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		sub := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(sub, "partition")); err != nil {
			continue
		}
		start, err1 := strconv.ParseInt(readTrim(filepath.Join(sub, "start")), 10, 64)
		size, err2 := strconv.ParseInt(readTrim(filepath.Join(sub, "size")), 10, 64)
		if err1 == nil && err2 == nil && start*512 == p.Start && size*512 == p.Length {
			out = append(out, devName(e.Name()))
		}
	}
	return out
}

func devName(sysName string) string { return "/dev/" + strings.ReplaceAll(sysName, "!", "/") }

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ListDisks lists the whole disks the kernel knows (/sys/block), leaving
// out RAM disks, zram, loop devices with no backing file and empty drives.
func ListDisks() ([]DiskInfo, error) {
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, err
	}
	var out []DiskInfo
	for _, e := range ents {
		name := e.Name()
		dir := filepath.Join("/sys/block", name)
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		d := DiskInfo{Name: name, Path: devName(name)}
		if strings.HasPrefix(name, "loop") {
			d.BackingFile = readTrim(filepath.Join(dir, "loop", "backing_file"))
			if d.BackingFile == "" {
				continue
			}
		}
		sectors, _ := strconv.ParseInt(readTrim(filepath.Join(dir, "size")), 10, 64)
		if sectors <= 0 {
			continue
		}
		d.Size = sectors * 512 // sysfs counts 512-byte units whatever the sector size
		d.SectorSize, _ = strconv.Atoi(readTrim(filepath.Join(dir, "queue", "logical_block_size")))
		d.Removable = readTrim(filepath.Join(dir, "removable")) == "1"
		d.ReadOnly = readTrim(filepath.Join(dir, "ro")) == "1"
		d.Model = readTrim(filepath.Join(dir, "device", "model"))
		if vendor := readTrim(filepath.Join(dir, "device", "vendor")); vendor != "" && d.Model != "" && !strings.HasPrefix(d.Model, vendor) {
			d.Model = vendor + " " + d.Model
		}
		out = append(out, d)
	}
	return out, nil
}

func openFile(path string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

func fileSize(f file) (int64, bool, error) { return sizeOf(f.(*os.File)) }

func osFile(f file) *os.File { return f.(*os.File) }
