//go:build linux

package backupcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"time"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
	"golang.org/x/sys/unix"
)

// findInPlace recognizes an image that is to be stored inside the source
// partition — IMAGE under a mount of SOURCE, or SOURCE:/path — and plans
// its file (inPlace.plan); nothing is written yet. It returns nil for an
// image stored elsewhere.
func findInPlace(ctx context.Context, opts *Options, src *disk.Section, mounts []devguard.Mount, warn func(string, ...any)) (*inPlace, error) {
	if opts.Image == "" || opts.Image == "-" {
		return nil, nil
	}
	ip := &inPlace{warn: warn, devSpec: opts.Source}
	if part, p, ok := locate.Split(opts.Image); ok {
		other, err := disk.OpenPartition(part, false)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", part, err)
		}
		same, _ := devguard.Overlap(src, other)
		other.Close()
		if !same {
			return nil, fmt.Errorf("%w: %s names a file inside %s; PARTITION:PATH as a backup target is only for the partition being backed up", ErrInPlaceUnsafe, opts.Image, part)
		}
		if len(mounts) > 0 {
			p := mounts[0].Point
			return nil, fmt.Errorf("%w: %s is mounted at %s: name the image by its path under %s, or unmount it first", ErrInPlaceUnsafe, opts.Source, p, p)
		}
		ip.volPath = path.Clean(p)
		ip.how = viaNTFS3G // or viaMtools, decided from the file system below
	} else {
		m, abs, ok := devguard.Inside(opts.Image, mounts)
		if !ok {
			return nil, nil
		}
		switch {
		case m.ReadOnly:
			return nil, fmt.Errorf("%w: %s is inside %s, which is mounted read-only at %s: remount it read-write, or unmount it and name the image %s:%s",
				ErrInPlaceUnsafe, opts.Image, opts.Source, m.Point, opts.Source, m.PathInside(abs))
		case !m.IsFUSE():
			return nil, fmt.Errorf("%w: %s is inside %s, mounted at %s by the kernel's %s driver, whose caches make raw writes under it unsafe: unmount it and name the image %s:%s (cbimg then creates the file itself)",
				ErrInPlaceUnsafe, opts.Image, opts.Source, m.Point, m.FSType, opts.Source, m.PathInside(abs))
		}
		ip.how, ip.mountPath, ip.volPath = viaUserMount, abs, m.PathInside(abs)
	}
	switch {
	case opts.Split > 0:
		return nil, fmt.Errorf("%w: an image inside its own partition cannot be split", ErrInPlaceUnsafe)
	case opts.SectorBySector:
		return nil, fmt.Errorf("%w: a sector-by-sector image cannot be stored inside the partition it copies", ErrInPlaceUnsafe)
	case opts.Rescue:
		return nil, fmt.Errorf("%w: --rescue cannot be combined with an image inside the source", ErrInPlaceUnsafe)
	}
	vol, err := volume.Open(src, src.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.Source, err)
	}
	if ip.how == viaNTFS3G && vol.Info.Type.IsFAT() {
		ip.how = viaMtools
	}
	if ip.how == viaNTFS3G && vol.Info.Type == volume.ExFAT {
		ip.how = viaExFATFuse
	}
	dir, _ := splitVolPath(ip.volPath)
	if !dirExists(vol, dir) {
		return nil, fmt.Errorf("%w: there is no directory %s in %s", ErrInPlaceUnsafe, dir, opts.Source)
	}
	if fileExists(vol, ip.volPath) || ip.mountPath != "" && exists(ip.mountPath) {
		return nil, fmt.Errorf("%w: %s already exists in %s: delete it or choose another name", ErrInPlaceUnsafe, ip.volPath, opts.Source)
	}
	if err := ip.plan(ctx, vol, src, opts); err != nil {
		return nil, err
	}
	return ip, nil
}

// make creates the planned file through a driver and finds it in the raw
// metadata; on failure nothing of it is left.
func (ip *inPlace) make(ctx context.Context, src *disk.Section) error {
	if err := ip.create(ctx, src); err != nil {
		ip.remove()
		return err
	}
	// What the driver wrote must be read from the device, not from pages
	// this process cached before.
	dropCache(src.File())
	vol, err := volume.Open(src, src.Size())
	if err == nil {
		ip.dev, err = disk.OpenPartition(ip.devSpec, true)
	}
	if err == nil {
		err = ip.found(vol, ip.dev)
	}
	if err != nil {
		if ip.dev != nil {
			ip.dev.Close()
		}
		ip.remove()
		return err
	}
	return nil
}

// create makes the file, ip.size bytes of zeros in real clusters, and
// makes sure the driver has written everything out.
func (ip *inPlace) create(ctx context.Context, src *disk.Section) error {
	switch ip.how {
	case viaUserMount:
		return writeZeros(ip.mountPath, ip.size)
	case viaNTFS3G:
		dev, err := driverDevice(src)
		if err != nil {
			return err
		}
		m, err := mountNTFS(ctx, dev)
		if err != nil {
			return err
		}
		err = writeZeros(filepath.Join(m.dir, filepath.FromSlash(ip.volPath)), ip.size)
		if uerr := m.unmount(); err == nil {
			err = uerr
		}
		return err
	case viaExFATFuse:
		return withExFATFuse(ctx, src, func(dir string) error {
			return writeZeros(filepath.Join(dir, filepath.FromSlash(ip.volPath)), ip.size)
		})
	case viaMtools:
		img, err := mtoolsImage(src)
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "mcopy", "-i", img, "-D", "s", "-", "::"+ip.volPath)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		cmd.Stdin = io.LimitReader(zeroReader{}, ip.size)
		if out, err := cmd.CombinedOutput(); err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return fmt.Errorf("%w: the image file is created with mtools' mcopy, which is not installed (apt-get install mtools)", ErrInPlaceUnsafe)
			}
			return fmt.Errorf("mcopy the image file into %s: %v: %s", ip.devSpec, err, bytes.TrimSpace(out))
		}
		return nil
	}
	return errors.New("backupcore: unknown way to create the image file")
}

// remove deletes the image file (after a failure), in the way it was made.
func (ip *inPlace) remove() {
	var err error
	switch ip.how {
	case viaUserMount:
		err = os.Remove(ip.mountPath)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	case viaNTFS3G:
		var src *disk.Section
		if src, err = disk.OpenPartition(ip.devSpec, false); err == nil {
			var dev string
			dev, err = driverDevice(src)
			src.Close()
			if err == nil {
				var m *fuseMount
				if m, err = mountNTFS(context.Background(), dev); err == nil {
					err = os.Remove(filepath.Join(m.dir, filepath.FromSlash(ip.volPath)))
					if errors.Is(err, os.ErrNotExist) {
						err = nil
					}
					if uerr := m.unmount(); err == nil {
						err = uerr
					}
				}
			}
		}
	case viaExFATFuse:
		var src *disk.Section
		if src, err = disk.OpenPartition(ip.devSpec, false); err == nil {
			err = withExFATFuse(context.Background(), src, func(dir string) error {
				err := os.Remove(filepath.Join(dir, filepath.FromSlash(ip.volPath)))
				if errors.Is(err, os.ErrNotExist) {
					err = nil
				}
				return err
			})
			src.Close()
		}
	case viaMtools:
		var src *disk.Section
		if src, err = disk.OpenPartition(ip.devSpec, false); err == nil {
			var img string
			img, err = mtoolsImage(src)
			src.Close()
			if err == nil {
				cmd := exec.Command("mdel", "-i", img, "::"+ip.volPath)
				cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
				if out, e := cmd.CombinedOutput(); e != nil && !bytes.Contains(out, []byte("not found")) {
					err = fmt.Errorf("%v: %s", e, bytes.TrimSpace(out))
				}
			}
		}
	}
	if err != nil && ip.warn != nil {
		ip.warn("could not delete the unfinished image file %s in %s (%v): it holds no image; delete it", ip.volPath, ip.devSpec, err)
	}
}

// abort undoes an unfinished in-place backup. Safe after commit.
func (ip *inPlace) abort() {
	if ip == nil || ip.done {
		return
	}
	ip.done = true
	ip.invalidate()
	ip.dev.Close()
	ip.remove()
}

// close releases the device after a successful commit.
func (ip *inPlace) close() {
	if ip != nil && ip.dev != nil {
		ip.dev.Close()
	}
}

// dropFileCache makes the image's new bytes visible through the driver:
// it drops cached pages of the file and of the partition's devices.
func (ip *inPlace) dropFileCache() {
	if ip.mountPath != "" {
		if f, err := os.Open(ip.mountPath); err == nil {
			dropCache(f)
			f.Close()
		}
	}
	for _, d := range ip.dev.Devices {
		if f, err := os.Open(d); err == nil {
			dropCache(f)
			f.Close()
		}
	}
}

func dropCache(f *os.File) { unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// writeZeros creates path with size zero bytes, written (not fallocated:
// an NTFS driver may only reserve clusters and leave the valid data length
// short, and then the raw bytes would read as zeros), and flushes the file
// and its directory to the device.
func writeZeros(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create the image file: %w", err)
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0 && err == nil; {
		k := min(left, int64(len(buf)))
		_, err = f.Write(buf[:k])
		left -= k
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("allocate the image file %s (%d bytes): %w", p, size, err)
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// driverDevice is what ntfs-3g is given: the source path, or the kernel's
// device for a partition of a disk.
func driverDevice(src *disk.Section) (string, error) {
	if src.Partition.Number == 0 {
		return src.Path, nil
	}
	for _, d := range src.Devices {
		if st, err := os.Stat(d); err == nil && st.Mode()&os.ModeDevice != 0 {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: %s has no kernel device for ntfs-3g to mount (attach the disk with losetup --partscan and name the partition's device)", ErrInPlaceUnsafe, src.Spec)
}

// mtoolsImage is the -i argument that makes mtools see the partition.
func mtoolsImage(src *disk.Section) (string, error) {
	if src.Partition.Number == 0 {
		return src.Path, nil
	}
	return fmt.Sprintf("%s@@%d", src.Path, src.Start()), nil
}

// fuseMount is a temporary ntfs-3g mount, kept in the foreground so that
// unmount can wait until the driver has written everything and exited.
type fuseMount struct {
	name string // the driver, when not ntfs-3g
	dir  string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	exit chan error
}

func mountNTFS(ctx context.Context, dev string) (*fuseMount, error) {
	if _, err := exec.LookPath("ntfs-3g"); err != nil {
		return nil, fmt.Errorf("%w: the image file is created through a temporary ntfs-3g mount, and ntfs-3g is not installed (apt-get install ntfs-3g)", ErrInPlaceUnsafe)
	}
	return startDriver(ctx, "", dev, func(dir string) *exec.Cmd {
		return exec.Command("ntfs-3g", "-o", "no_detach,noatime", dev, dir)
	})
}

// startDriver runs a FUSE driver in the foreground on a new temporary
// directory and waits until it has mounted dev there. name is the driver
// for messages ("" for ntfs-3g).
func startDriver(ctx context.Context, name, dev string, command func(dir string) *exec.Cmd) (*fuseMount, error) {
	dir, err := os.MkdirTemp("", "cbimg-inplace-")
	if err != nil {
		return nil, err
	}
	m := &fuseMount{name: name, dir: dir, out: &bytes.Buffer{}, exit: make(chan error, 1)}
	m.cmd = command(dir)
	m.cmd.Stdout, m.cmd.Stderr = limited{m.out}, limited{m.out}
	if err := m.cmd.Start(); err != nil {
		os.Remove(dir)
		return nil, err
	}
	go func() { m.exit <- m.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !isMountPoint(dir) {
		select {
		case err := <-m.exit:
			os.Remove(dir)
			return nil, fmt.Errorf("%w: %s could not mount %s to create the image file (%v): %s", ErrInPlaceUnsafe, m.driverName(), dev, err, bytes.TrimSpace(m.out.Bytes()))
		case <-ctx.Done():
			m.unmount()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.unmount()
			return nil, fmt.Errorf("%s did not mount %s within 30 s", m.driverName(), dev)
		}
	}
	return m, nil
}

// unmount unmounts and waits for the driver to exit.
func (m *fuseMount) unmount() error {
	var err error
	for _, c := range [][]string{{"fusermount", "-u"}, {"fusermount3", "-u"}, {"umount"}} {
		if err = exec.Command(c[0], append(c[1:], m.dir)...).Run(); err == nil {
			break
		}
	}
	if err != nil {
		m.cmd.Process.Kill()
		<-m.exit
		return fmt.Errorf("unmount the temporary %s mount %s: %w", m.driverName(), m.dir, err)
	}
	select {
	case <-m.exit:
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("%s did not exit after unmounting %s", m.driverName(), m.dir)
	}
	os.Remove(m.dir)
	return nil
}

// limited is a writer that keeps at most 64 KiB of a driver's chatter.
type limited struct{ b *bytes.Buffer }

func (l limited) Write(p []byte) (int, error) {
	if room := 64<<10 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}
