//go:build linux

package backupcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/cbimg/cbimg/disk"
)

// An exFAT source named SOURCE:/path gets its image file through a
// temporary exfat-fuse mount. Run as root, exfat-fuse wants a block
// device: a source that is a file (or a partition of a disk image) is
// attached to a loop device for the mount and detached after.

func (m *fuseMount) driverName() string {
	if m.name == "" {
		return "ntfs-3g"
	}
	return m.name
}

// withExFATFuse mounts src read-write with exfat-fuse, calls fn with the
// mount point, and unmounts, waiting for the driver to write everything.
func withExFATFuse(ctx context.Context, src *disk.Section, fn func(dir string) error) error {
	if _, err := exec.LookPath("mount.exfat-fuse"); err != nil {
		return fmt.Errorf("%w: the image file is created through a temporary exfat-fuse mount, and mount.exfat-fuse is not installed (apt-get install exfat-fuse)", ErrInPlaceUnsafe)
	}
	dev, detach, err := exfatDevice(src)
	if err != nil {
		return err
	}
	defer detach()
	// -d keeps the driver in the foreground, so unmount can wait for it.
	m, err := startDriver(ctx, "exfat-fuse", dev, func(dir string) *exec.Cmd {
		return exec.Command("mount.exfat-fuse", "-d", "-o", "noatime", dev, dir)
	})
	if err != nil {
		return err
	}
	err = fn(m.dir)
	if uerr := m.unmount(); err == nil {
		err = uerr
	}
	return err
}

// exfatDevice returns a block device with src's bytes: its own, or a new
// loop device (with the function that detaches it).
func exfatDevice(src *disk.Section) (string, func(), error) {
	for _, d := range append([]string{src.Path}, src.Devices...) {
		if st, err := os.Stat(d); err == nil && st.Mode()&os.ModeDevice != 0 && (d != src.Path || src.Partition.Number == 0) {
			return d, func() {}, nil
		}
	}
	out, err := exec.Command("losetup", "-f", "--show", "-o", strconv.FormatInt(src.Start(), 10),
		"--sizelimit", strconv.FormatInt(src.Size(), 10), src.Path).CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", nil, fmt.Errorf("%w: exfat-fuse needs a block device, and losetup is not installed", ErrInPlaceUnsafe)
		}
		return "", nil, fmt.Errorf("%w: exfat-fuse needs a block device, and losetup failed: %v: %s", ErrInPlaceUnsafe, err, bytes.TrimSpace(out))
	}
	loop := strings.TrimSpace(string(out))
	return loop, func() {
		if f, err := os.Open(loop); err == nil {
			f.Sync()
			f.Close()
		}
		exec.Command("losetup", "-d", loop).Run()
	}, nil
}
