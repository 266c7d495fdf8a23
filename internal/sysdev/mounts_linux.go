//go:build linux

package sysdev

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount that uses a device or file.
type Mount struct {
	Point    string
	FSType   string
	ReadOnly bool
	Via      string // how it is connected, e.g. "/dev/loop3" for a file
}

// MountsOf lists the mounts that use path: the block device itself, a loop
// device backed by the file, or a FUSE driver (ntfs-3g) given the path.
func MountsOf(path string) ([]Mount, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return nil, err
	}
	// Device numbers that stand for this source.
	devs := map[uint64]string{}
	names := map[string]string{abs: ""}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		devs[st.Rdev] = ""
		addPartitions(devs, st.Rdev, "")
	} else if st.Mode&unix.S_IFMT == unix.S_IFREG {
		for _, loop := range loopsBackedBy(abs) {
			var ls unix.Stat_t
			if unix.Stat(loop, &ls) == nil {
				devs[ls.Rdev] = loop
				names[loop] = loop
				addPartitions(devs, ls.Rdev, loop)
			}
		}
	}
	table, err := Table()
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, e := range table {
		src := e.Source
		if r, err := filepath.EvalSymlinks(src); err == nil {
			src = r
		}
		via, byDev := devs[e.Dev]
		viaName, byName := names[src]
		if !byDev && !byName {
			continue
		}
		if byName {
			via = viaName
		}
		out = append(out, Mount{Point: e.Point, FSType: e.FSType, ReadOnly: e.ReadOnly, Via: via})
	}
	return out, nil
}

// Entry is one line of the mount table (/proc/self/mountinfo).
type Entry struct {
	Dev      uint64 // device number of the mounted file system
	Root     string // directory of that file system mounted here ("/" unless a bind mount)
	Point    string // where it is mounted
	FSType   string // e.g. "ext4", "fuseblk", "fuse.fusefat"
	Source   string // as the table says; FUSE drivers may put anything here
	ReadOnly bool
}

// Table reads the mount table, in mount order (later entries are on top).
func Table() ([]Entry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || sep+2 >= len(fields) {
			continue
		}
		var maj, min uint32
		fmt.Sscanf(fields[2], "%d:%d", &maj, &min)
		e := Entry{Dev: unix.Mkdev(maj, min), Root: Unescape(fields[3]), Point: Unescape(fields[4]),
			FSType: fields[sep+1], Source: Unescape(fields[sep+2])}
		for _, o := range strings.Split(fields[5], ",") {
			if o == "ro" {
				e.ReadOnly = true
			}
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// addPartitions adds the partitions of a whole-disk device (as the kernel
// knows them in /sys): writing the disk overwrites them too.
func addPartitions(devs map[uint64]string, disk uint64, via string) {
	dir, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(disk), unix.Minor(disk)))
	if err != nil {
		return
	}
	parts, _ := filepath.Glob(filepath.Join(dir, filepath.Base(dir)+"*", "dev"))
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err == nil {
			if via == "" {
				via = "/dev/" + filepath.Base(filepath.Dir(p))
			}
			devs[unix.Mkdev(maj, min)] = via
		}
	}
}

func loopsBackedBy(file string) []string {
	ents, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(b)) == file {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(e))))
		}
	}
	return out
}

// Unescape undoes mountinfo's octal escapes (\040 for space).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
