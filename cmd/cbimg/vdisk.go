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
	"github.com/spf13/cobra"
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
