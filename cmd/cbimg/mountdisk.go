package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/mount"
	"github.com/cbimg/cbimg/vdisk"
)

// isVirtualDisk reports whether path is a virtual disk file (VHD, VHDX,
// qcow2, VMDK, E01): mount shows it as disk.raw and partN.raw.
func isVirtualDisk(path string) bool {
	k, err := vdisk.Detect(path)
	return err == nil && k != vdisk.Raw
}

// serveDiskMount mounts a virtual disk as disk.raw plus one partN.raw per
// partition and serves until unmounted or ctx ends.
func serveDiskMount(ctx context.Context, g *globalOptions, o *mountOptions, path, mountpoint string, n *notifier) error {
	if o.Files {
		return usageError{fmt.Errorf("--files needs one partition: name it %s@N", path)}
	}
	logw := io.Writer(os.Stderr)
	if o.Log != "" {
		f, err := os.OpenFile(o.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("--log: %w", err)
		}
		defer f.Close()
		logw = f
	}
	if err := mount.Check(mountpoint); err != nil {
		return mountError(err)
	}
	d, err := disk.OpenDisk(path)
	if err != nil {
		return err
	}
	defer d.Close()
	files := []mount.Named{{Name: mount.DiskFileName, Src: io.NewSectionReader(d, 0, d.Size)}}
	for _, p := range d.Table.Partitions {
		if !p.IsExtended() && p.End() <= d.Size {
			files = append(files, mount.Named{Name: mount.PartFileName(p.Number), Src: d.Section(p)})
		}
	}
	abs, _ := filepath.Abs(path)
	st, _ := os.Stat(path)
	opts := &mount.Options{AllowOther: o.AllowOther, DirectIO: o.DirectIO, FsName: abs,
		Logger: log.New(logw, "", log.LstdFlags), Debug: o.Debug}
	if st != nil {
		opts.ModTime = st.ModTime()
	}
	m, err := mount.MountDisk(mountpoint, files, opts)
	if err != nil {
		return mountError(err)
	}
	done := make(chan struct{})
	go func() { m.Wait(); close(done) }()
	if n != nil {
		n.send(fmt.Sprintf("ready %d %d", d.Size, os.Getpid()))
	} else {
		say(g, os.Stderr, "Mounted %s (%s) at %s: %s and %d partition file(s). Press Ctrl-C to unmount.\n",
			path, d.VirtualFormat(), mountpoint, mount.DiskFileName, len(files)-1)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	if err := m.Unmount(); err != nil {
		if err := mount.UnmountLazy(mountpoint); err != nil {
			return mountError(err)
		}
	}
	return nil
}
