//go:build linux

package locate

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/sysdev"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point    string // where it is mounted
	Root     string // the directory of the file system mounted there ("/" unless a bind mount)
	FSType   string // e.g. "fuseblk", "fuse.fusefat", "vfat"
	Source   string // as the mount table says; FUSE drivers may put anything here
	ReadOnly bool
}

// PathInside returns the path inside the mounted file system of abs, a
// path under the mount point.
func (m Mount) PathInside(abs string) string {
	rel, _ := filepath.Rel(m.Point, abs)
	return path.Join("/", m.Root, filepath.ToSlash(rel))
}

// IsFUSE reports whether a mount table's file-system type is a FUSE driver.
func IsFUSE(fsType string) bool {
	return fsType == "fuse" || fsType == "fuseblk" || strings.HasPrefix(fsType, "fuse.") || strings.HasPrefix(fsType, "fuseblk.")
}

func mounts() []Mount {
	table, err := sysdev.Table()
	if err != nil {
		return nil
	}
	out := make([]Mount, 0, len(table))
	for _, e := range table {
		out = append(out, Mount{Point: e.Point, Root: e.Root, FSType: e.FSType, Source: e.Source, ReadOnly: e.ReadOnly})
	}
	return out
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

// DriverMounts lists the FUSE mounts whose driver serves sec: the mount
// table names sec's file or device, or (drivers such as fusefat put their
// own name there) the driver's command line does.
func DriverMounts(sec *disk.Section) []Mount {
	var out []Mount
	for _, m := range mounts() {
		if IsFUSE(m.FSType) && Serves(m, sec) {
			out = append(out, m)
		}
	}
	return out
}

// Serves reports whether the FUSE mount m is served from sec.
func Serves(m Mount, sec *disk.Section) bool {
	if sameAs(m.Source, "", sec) {
		return true
	}
	for _, d := range daemons(m.Point) {
		for _, a := range d.args {
			for _, dir := range d.dirs {
				if sameAs(a, dir, sec) {
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
