//go:build linux

package mount

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cbimg/cbimg/internal/devguard"

	"golang.org/x/sys/unix"
)

// devFuse is the FUSE device; a variable so a test can point it elsewhere.
var devFuse = "/dev/fuse"

// fusermount returns the path of fusermount3 or fusermount, looked up the
// way go-fuse looks them up (PATH, then /bin).
func fusermount() (string, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		if p, err := exec.LookPath("/bin/" + name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: fusermount3 not found (install fuse3: apt-get install fuse3)", ErrNoFUSE)
}

// checkFUSE says why FUSE cannot be used, if it cannot.
func checkFUSE() error {
	st, err := os.Stat(devFuse)
	if err != nil {
		return fmt.Errorf("%w: %s is missing (load the module with modprobe fuse; in a container, pass --device /dev/fuse)", ErrNoFUSE, devFuse)
	}
	if st.Mode()&os.ModeCharDevice == 0 {
		return fmt.Errorf("%w: %s is not a character device", ErrNoFUSE, devFuse)
	}
	_, err = fusermount()
	return err
}

// Check says whether mountpoint can take a mount: FUSE is available and
// mountpoint is an empty directory that is not a mount itself.
func Check(mountpoint string) error {
	if err := checkFUSE(); err != nil {
		return err
	}
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return err
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return fmt.Errorf("%w: %s is a FUSE mount whose server is gone; clear it with fusermount -u %s", ErrBusy, mountpoint, mountpoint)
	case err != nil:
		return fmt.Errorf("mountpoint: %w", err)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrNotEmpty, mountpoint)
	}
	if m, ok := devguard.MountAt(abs); ok {
		var sfs unix.Statfs_t
		if err := unix.Statfs(abs, &sfs); errors.Is(err, syscall.ENOTCONN) {
			return fmt.Errorf("%w: %s is a FUSE mount whose server is gone; clear it with fusermount -u %s", ErrBusy, mountpoint, mountpoint)
		}
		return fmt.Errorf("%w: %s is already a mount point (%s from %s); unmount it first", ErrBusy, mountpoint, m.FSType, m.Source)
	}
	d, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %s holds %q; use an empty directory", ErrNotEmpty, mountpoint, names[0])
	}
	return nil
}

// setReadAhead raises the kernel readahead of the mount at mountpoint:
// FUSE caps it at 128 KiB otherwise, and 1 MiB requests read far faster.
// The device number comes from the mount table, not from a stat of
// mountpoint: a server that sends a request to its own mount can never
// finish exiting if it is killed before the answer (the kernel waits for
// that answer without a timeout).
func setReadAhead(mountpoint string, kb int) error {
	dev, err := mountDev(mountpoint)
	if err != nil {
		return fmt.Errorf("readahead: %w", err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%s/read_ahead_kb", dev)
	if err := os.WriteFile(p, []byte(strconv.Itoa(kb)), 0); err != nil {
		return fmt.Errorf("readahead: %w", err)
	}
	return nil
}

// Unmount unmounts the cbimg mount at mountpoint with fusermount -u; the
// server process then exits. It refuses mounts that are not cbimg's.
func Unmount(mountpoint string) error {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return err
	}
	m, ok := devguard.MountAt(abs)
	if !ok {
		return fmt.Errorf("%w: nothing is mounted at %s", ErrNotMounted, mountpoint)
	}
	if m.FSType != "fuse.cbimg" {
		return fmt.Errorf("%w: %s is a %s mount of %s; use umount or fusermount -u", ErrNotMounted, mountpoint, m.FSType, m.Source)
	}
	return fusermountU(abs, false)
}

// fusermountU runs fusermount -u (-z for a lazy unmount).
func fusermountU(mountpoint string, lazy bool) error {
	bin, err := fusermount()
	if err != nil {
		return err
	}
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, append(args, mountpoint)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "busy") {
			return fmt.Errorf("%w: %s is in use (a process has a file open or its working directory there): %s", ErrBusy, mountpoint, msg)
		}
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("unmount %s: %s", mountpoint, msg)
	}
	return nil
}

// UnmountLazy detaches the mount at once and lets the kernel finish it
// when the last open file closes.
func UnmountLazy(mountpoint string) error { return fusermountU(mountpoint, true) }

// mountDev returns the "major:minor" device of the mount at mountpoint, as
// /proc/self/mountinfo gives it (the last mount there wins).
func mountDev(mountpoint string) (string, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	dev := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMountinfo(f[4]) == abs {
			dev = f[2]
		}
	}
	if dev == "" {
		return "", fmt.Errorf("%w: nothing is mounted at %s", ErrNotMounted, mountpoint)
	}
	return dev, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo field.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// AbortConnection aborts the FUSE connection of the mount at mountpoint
// through the fuse control file system: every pending request fails, so a
// server that was killed while the kernel waited for one of its answers can
// finish exiting. The mount itself stays until it is unmounted.
func AbortConnection(mountpoint string) error {
	dev, err := mountDev(mountpoint)
	if err != nil {
		return err
	}
	maj, min, ok := strings.Cut(dev, ":")
	if !ok || maj != "0" {
		return fmt.Errorf("%s: device %s is not a FUSE connection", mountpoint, dev)
	}
	return os.WriteFile("/sys/fs/fuse/connections/"+min+"/abort", []byte("1"), 0)
}
