//go:build linux

package devguard

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"golang.org/x/sys/unix"
)

// Holders lists who holds sec: every mount of one of its devices (with
// the partitions of a whole disk), of a loop device over its file, or of
// the file itself, and every FUSE driver serving it (drivers such as
// fusefat name themselves, not the device, in the mount table); each mount
// point once. err says why the list may be short.
func Holders(sec *disk.Section) ([]Mount, error) {
	var out []Mount
	var firstErr error
	for _, dev := range sec.Devices {
		ms, err := mountsOf(dev)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", dev, err)
		}
		for _, m := range ms {
			out = add(out, m)
		}
	}
	table, err := Table()
	if err != nil {
		return out, err
	}
	// Mount points are never stat'ed to compare them with sec: that would
	// ask their FUSE servers, which may be busy, hung or unmounting.
	points := map[string]bool{}
	for _, e := range table {
		points[e.Point] = true
	}
	for _, e := range table {
		if m := e.mount(); m.IsFUSE() && serves(m, sec, points) {
			m.Device = sec.Spec
			out = add(out, m)
		}
	}
	return out, firstErr
}

// MountAt finds the mount whose mount point is dir; of two, the later,
// which is on top. dir itself is resolved only when its parent's path does
// not name a mount point, so that a mount whose FUSE server is busy, dying
// or gone is not asked.
func MountAt(dir string) (Mount, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Mount{}, false
	}
	table := mounts()
	at := func(p string) (Mount, bool) {
		var found Mount
		ok := false
		for _, m := range table {
			if m.Point == p {
				found, ok = m, true
			}
		}
		return found, ok
	}
	if parent, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		if m, ok := at(filepath.Join(parent, filepath.Base(abs))); ok {
			return m, true
		}
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	return at(abs)
}

// mountsOf lists the mounts that use path: the block device itself, a loop
// device backed by the file, or a FUSE driver (ntfs-3g) given the path.
func mountsOf(path string) ([]Mount, error) {
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
		m := e.mount()
		m.Device, m.Via = path, via
		out = append(out, m)
	}
	return out, nil
}

func mounts() []Mount {
	table, err := Table()
	if err != nil {
		return nil
	}
	out := make([]Mount, 0, len(table))
	for _, e := range table {
		out = append(out, e.mount())
	}
	return out
}

func (e Entry) mount() Mount {
	return Mount{Point: e.Point, Root: e.Root, FSType: e.FSType, Source: e.Source, ReadOnly: e.ReadOnly}
}

// MountHolding returns the mount that holds the directory of the file p,
// and p as an absolute path with the directory's symlinks resolved.
func MountHolding(p string) (Mount, string, bool) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return Mount{}, "", false
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return Mount{}, "", false
	}
	abs = filepath.Join(dir, filepath.Base(abs))
	var best Mount
	found := false
	for _, m := range mounts() {
		if dir != m.Point && !strings.HasPrefix(dir, strings.TrimSuffix(m.Point, "/")+"/") {
			continue
		}
		// The longest point is the innermost mount; of two lines for one
		// point the later is mounted on top.
		if !found || len(m.Point) >= len(best.Point) {
			best, found = m, true
		}
	}
	return best, abs, found
}

// serves reports whether the FUSE mount m is served from sec; points are
// the mount points, which are not compared.
func serves(m Mount, sec *disk.Section, points map[string]bool) bool {
	if !points[m.Source] && sameAs(m.Source, "", sec) {
		return true
	}
	for _, d := range daemons(m.Point) {
		for _, a := range d.args {
			for _, dir := range d.dirs {
				p := a
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				if !points[p] && sameAs(a, dir, sec) {
					return true
				}
			}
		}
	}
	return false
}

// sameAs reports whether path p (relative to dir) is sec's file or one of
// its devices.
func sameAs(p, dir string, sec *disk.Section) bool {
	if p == "" {
		return false
	}
	if !filepath.IsAbs(p) {
		if dir == "" {
			return false
		}
		p = filepath.Join(dir, p)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() {
		return false
	}
	if sec.Partition.Number == 0 {
		if sf, err := sec.Stat(); err == nil && os.SameFile(fi, sf) {
			return true
		}
	}
	for _, d := range sec.Devices {
		if df, err := os.Stat(d); err == nil && os.SameFile(fi, df) {
			return true
		}
	}
	return false
}

type daemon struct {
	dirs []string // where relative arguments may start: cwd, and PWD at start
	args []string
}

// daemons lists the processes whose command line names the mount point:
// the FUSE driver serving it is among them. A daemonized driver has moved
// to "/", so relative arguments are also tried from the PWD it was started
// with.
func daemons(point string) []daemon {
	ents, _ := os.ReadDir("/proc")
	var out []daemon
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		var dirs []string
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil {
			dirs = append(dirs, cwd)
		}
		if env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ")); err == nil {
			for _, kv := range strings.Split(string(env), "\x00") {
				if pwd, ok := strings.CutPrefix(kv, "PWD="); ok && filepath.IsAbs(pwd) {
					dirs = append(dirs, pwd)
				}
			}
		}
		hit := false
		for _, a := range args[1:] {
			if a == point {
				hit = true
			}
			for _, dir := range dirs {
				if !filepath.IsAbs(a) && filepath.Join(dir, a) == point {
					hit = true
				}
			}
		}
		if hit {
			out = append(out, daemon{dirs: dirs, args: args[1:]})
		}
	}
	return out
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
