package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/mount"
	"github.com/cbimg/cbimg/vdisk"
	"github.com/spf13/cobra"
)

// isVirtualDisk reports whether path is a virtual disk file (VHD, VHDX,
// qcow2, VMDK, E01): mount shows it as disk.raw and partN.raw.
func isVirtualDisk(path string) bool {
	k, err := vdisk.Detect(path)
	return err == nil && k != vdisk.Raw
}

// isVirtualPartition reports whether spec is DISK@N of a virtual disk.
func isVirtualPartition(spec string) bool {
	d, _, ok := disk.ParseTarget(spec)
	return ok && isVirtualDisk(d)
}

// serveDiskMount mounts a virtual disk as disk.raw plus one partN.raw per
// partition, or a partition of one (DISK@N) as volume.raw or, with
// --files, its file tree; it serves until unmounted or ctx ends.
func serveDiskMount(ctx context.Context, g *globalOptions, o *mountOptions, path, mountpoint string, n *notifier) error {
	whole := !isVirtualPartition(path)
	if o.Files && whole {
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
	abs, _ := filepath.Abs(path)
	opts := &mount.Options{AllowOther: o.AllowOther, DirectIO: o.DirectIO, FsName: abs,
		Logger: log.New(logw, "", log.LstdFlags), Debug: o.Debug}
	var m *mount.Mounted
	var size int64
	var what string
	if whole {
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
		if st, err := os.Stat(path); err == nil {
			opts.ModTime = st.ModTime()
		}
		if m, err = mount.MountDisk(mountpoint, files, opts); err != nil {
			return mountError(err)
		}
		size = d.Size
		what = fmt.Sprintf("%s and %d partition file(s)", mount.DiskFileName, len(files)-1)
	} else {
		s, err := disk.OpenPartition(path, false)
		if err != nil {
			return err
		}
		defer s.Close()
		if st, err := s.Stat(); err == nil {
			opts.ModTime = st.ModTime()
		}
		size = s.Size()
		if o.Files {
			t, err := browse.NewVolume(s, s.Size(), nil)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			m, err = mount.MountFiles(mountpoint, t, opts)
			if err != nil {
				return mountError(err)
			}
			what = "its files"
		} else {
			if m, err = mount.Mount(mountpoint, s, opts); err != nil {
				return mountError(err)
			}
			what = mount.FileName
		}
	}
	done := make(chan struct{})
	go func() { m.Wait(); close(done) }()
	if n != nil {
		n.send(fmt.Sprintf("ready %d %d", size, os.Getpid()))
	} else {
		say(g, os.Stderr, "Mounted %s at %s: %s. Press Ctrl-C to unmount.\n", path, mountpoint, what)
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

// verifyDiskJSON is verify's --json output for a virtual disk.
type verifyDiskJSON struct {
	Disk      string `json:"disk"`
	Format    string `json:"format"`
	OK        bool   `json:"ok"`
	Size      int64  `json:"size"`
	MD5       string `json:"md5"`
	StoredMD5 string `json:"stored_md5"` // an E01's recorded MD5; "" for other formats
	Problem   string `json:"problem,omitempty"`
}

// runVerifyDisk reads a whole virtual disk, checking every table and
// compressed cluster, and an E01's stored MD5.
func runVerifyDisk(cmd *cobra.Command, g *globalOptions, path string) error {
	w := cmd.OutOrStdout()
	res, err := vdisk.Verify(cmd.Context(), path)
	j := verifyDiskJSON{Disk: path}
	if res != nil {
		j.Format, j.Size, j.MD5, j.StoredMD5 = res.Format, res.Size, res.MD5, res.StoredMD5
	}
	if err != nil && cmd.Context().Err() == nil {
		j.Problem = err.Error()
	}
	j.OK = err == nil
	if g.JSON {
		printJSON(w, j)
	} else if !g.Quiet {
		fmt.Fprintf(w, "%s: %s, %s\n", path, j.Format, human(j.Size))
		if j.MD5 != "" {
			fmt.Fprintf(w, "MD5 of the disk: %s\n", j.MD5)
		}
		if j.StoredMD5 != "" {
			fmt.Fprintf(w, "MD5 stored:      %s\n", j.StoredMD5)
		}
		if j.OK {
			fmt.Fprintln(w, "OK")
		}
	}
	return err
}
