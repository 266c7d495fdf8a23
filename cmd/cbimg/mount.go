package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cbimg/cbimg/internal/sysdev"
	"github.com/cbimg/cbimg/mount"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, newMountCommand, newUmountCommand)
}

// notifyEnv tells a background mount server which descriptor (Linux) or
// handle (Windows) to report readiness on.
const notifyEnv = "CBIMG_MOUNT_NOTIFY"

type mountOptions struct {
	Foreground bool
	Files      bool
	AllowOther bool
	CacheSize  string
	DirectIO   bool
	Log        string
	Debug      bool
}

func (o *mountOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVarP(&o.Foreground, "foreground", "f", false, "stay attached; Ctrl-C or SIGTERM unmounts")
	f.BoolVar(&o.Files, "files", false, "serve the file tree inside the image (read-only) instead of volume.raw")
	f.BoolVar(&o.AllowOther, "allow-other", false, "let other users read the mount (non-root users need user_allow_other in /etc/fuse.conf)")
	f.StringVar(&o.CacheSize, "cache-size", "64M", "memory for decompressed chunks, `SIZE` such as 256M")
	f.BoolVar(&o.DirectIO, "direct-io", false, "bypass the page cache: several times faster single sequential reads (e.g. hashing volume.raw), but re-reads are not cached and volume.raw cannot be mmapped")
	f.StringVar(&o.Log, "log", "", "append read errors to `FILE` (default: standard error; discarded in the background)")
	f.BoolVar(&o.Debug, "debug", false, "log every FUSE request")
	f.MarkHidden("debug")
}

func newMountCommand(g *globalOptions) *cobra.Command {
	o := &mountOptions{}
	cmd := &cobra.Command{
		Use:   "mount IMAGE MOUNTPOINT",
		Short: "Mount an image read-only as MOUNTPOINT/volume.raw",
		Long: `mount serves the partition held in IMAGE as one read-only file,
MOUNTPOINT/volume.raw, whose bytes are exactly what a restore would write:
the stored clusters and system areas, and zeros for free and excluded clusters.
Loop-mount it, or point ntfs-3g, sleuthkit or fsck at it, without restoring.
With --files, MOUNTPOINT shows the files inside the image instead, read-only,
as "cbimg ls" lists them (reparse points as plain files, not followed;
excluded files as zeros).

MOUNTPOINT must be an empty directory (on Windows: a free drive letter such as
X: or a path that does not exist yet). By default mount returns once the file
system is ready and keeps serving in the background; unmount it with
"cbimg umount MOUNTPOINT" or "fusermount -u MOUNTPOINT". With --foreground it
stays attached and Ctrl-C or SIGTERM unmounts. A damaged chunk makes reads of
its range fail with EIO (logged with its offset); the rest stays readable.

` + exitHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMount(cmd.Context(), cmd.OutOrStdout(), g, o, args[0], args[1])
		},
	}
	o.addFlags(cmd)
	return cmd
}

func newUmountCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "umount MOUNTPOINT",
		Aliases: []string{"unmount"},
		Short:   "Unmount an image mounted with cbimg mount",
		Long: `umount unmounts the cbimg mount at MOUNTPOINT; its background server then
exits. It fails while a process has volume.raw open. fusermount -u works too.

` + exitHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := mount.Unmount(args[0]); err != nil {
				return mountError(err)
			}
			say(g, cmd.OutOrStdout(), "Unmounted %s\n", args[0])
			return nil
		},
	}
}

// runMount mounts in the foreground, or starts a background server and
// waits until it is ready.
func runMount(ctx context.Context, out io.Writer, g *globalOptions, o *mountOptions, imagePath, mountpoint string) error {
	cacheBytes, err := parseUserSize(o.CacheSize)
	if err != nil {
		return fmt.Errorf("--cache-size: %w", err)
	}
	notify := os.Getenv(notifyEnv)
	if !o.Foreground && notify == "" {
		return mountBackground(ctx, out, g, o, imagePath, mountpoint)
	}
	var n *notifier
	if notify != "" {
		os.Unsetenv(notifyEnv)
		if n, err = openNotifier(notify); err != nil {
			return err
		}
	}
	err = serveMount(ctx, g, o, imagePath, mountpoint, cacheBytes, n)
	if err != nil && n != nil {
		n.send(fmt.Sprintf("error %d\n%v", exitCode(ctx, err), err))
	}
	return err
}

// serveMount opens the image, mounts it, reports readiness and serves
// until unmounted or until ctx ends (Ctrl-C, SIGTERM).
func serveMount(ctx context.Context, g *globalOptions, o *mountOptions, imagePath, mountpoint string, cacheBytes int64, n *notifier) error {
	logw := io.Writer(os.Stderr)
	if o.Log != "" {
		f, err := os.OpenFile(o.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("--log: %w", err)
		}
		defer f.Close()
		logw = f
	}
	logger := log.New(logw, "", log.LstdFlags)
	// Check the mountpoint before the (possibly long) index build.
	if err := mount.Check(mountpoint); err != nil {
		return mountError(err)
	}
	r, err := openAny(g, imagePath, cacheBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", imagePath, err)
	}
	defer r.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, note := range r.Info().Notes {
		logger.Printf("cbimg: note: %s", note)
	}
	abs, _ := filepath.Abs(imagePath)
	m, err := mountImage(mountpoint, r, o.Files, &mount.Options{
		AllowOther: o.AllowOther, DirectIO: o.DirectIO, FsName: abs, ModTime: r.Info().Created, Logger: logger, Debug: o.Debug,
	})
	if err != nil {
		return mountError(err)
	}
	done := make(chan struct{})
	go func() { m.Wait(); close(done) }()
	if n != nil {
		n.send(fmt.Sprintf("ready %d %d", r.Size(), os.Getpid()))
	} else {
		say(g, os.Stderr, "Mounted %s at %s: %s (%s). Press Ctrl-C to unmount.\n",
			imagePath, mountpoint, mountedFile(mountpoint, o.Files), human(r.Size()))
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Ctrl-C or SIGTERM: unmount; when volume.raw is still open, detach
	// lazily so the mountpoint does not stay behind dead.
	if err := m.Unmount(); err != nil {
		logger.Printf("cbimg mount: %v; detaching lazily", err)
		if err := mount.UnmountLazy(mountpoint); err != nil {
			return mountError(err)
		}
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// mountBackground re-runs this binary with --foreground as a detached
// server and waits for it to report "ready" or an error.
func mountBackground(ctx context.Context, out io.Writer, g *globalOptions, o *mountOptions, imagePath, mountpoint string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("mount: cannot find this program to start the server: %w", err)
	}
	absImage, err := filepath.Abs(imagePath)
	if err != nil {
		return err
	}
	absMount := mountpoint
	if !isDriveLetter(mountpoint) {
		if absMount, err = filepath.Abs(mountpoint); err != nil {
			return err
		}
	}
	args := []string{"mount", "--foreground", "--quiet", "--cache-size", o.CacheSize}
	if o.Files {
		args = append(args, "--files")
	}
	if o.DirectIO {
		args = append(args, "--direct-io")
	}
	if o.AllowOther {
		args = append(args, "--allow-other")
	}
	if o.Debug {
		args = append(args, "--debug")
	}
	if o.Log != "" {
		l, err := filepath.Abs(o.Log)
		if err != nil {
			return err
		}
		args = append(args, "--log", l)
	}
	args = append(args, "--", absImage, absMount)
	cmd := exec.Command(exe, args...)
	cmd.Dir = "/"
	if isWindows {
		cmd.Dir = ""
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	cmd.Env = append(os.Environ(), notifyEnv+"="+passNotifier(cmd, pw))
	detach(cmd)
	// Standard streams stay away from ours: a pipe held open by a
	// long-lived server would block whoever reads our output.
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("mount: start server: %w", err)
	}
	pw.Close()
	type result struct {
		msg string
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(bufio.NewReader(pr))
		got <- result{string(b), err}
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		stopProcess(cmd.Process)
		cmd.Wait()
		return ctx.Err()
	}
	line, rest, _ := strings.Cut(res.msg, "\n")
	fields := strings.Fields(line)
	switch {
	case len(fields) == 3 && fields[0] == "ready":
		cmd.Process.Release()
		size, _ := strconv.ParseInt(fields[1], 10, 64)
		pid, _ := strconv.Atoi(fields[2])
		file := mountedFile(mountpoint, o.Files)
		if g.JSON {
			return printJSON(out, map[string]any{"image": imagePath, "mountpoint": mountpoint, "file": file, "size": size, "pid": pid})
		}
		say(g, out, "Mounted %s at %s: %s (%s). Unmount with: cbimg umount %s\n", imagePath, mountpoint, file, human(size), mountpoint)
		return nil
	case len(fields) == 2 && fields[0] == "error":
		cmd.Wait()
		code, _ := strconv.Atoi(fields[1])
		return &serverError{msg: rest, code: code}
	}
	werr := cmd.Wait()
	return fmt.Errorf("mount: the server stopped before it was ready (%v)", werr)
}

func isDriveLetter(s string) bool {
	return isWindows && len(s) == 2 && s[1] == ':'
}

// notifier reports a background server's state to the waiting parent.
type notifier struct{ f *os.File }

func (n *notifier) send(msg string) {
	if n.f == nil {
		return
	}
	n.f.WriteString(msg + "\n")
	n.f.Close()
	n.f = nil
}

// serverError is an error reported by a background server; it maps to the
// exit code the server chose.
type serverError struct {
	msg  string
	code int
}

func (e *serverError) Error() string { return strings.TrimSpace(e.msg) }

func (e *serverError) Is(target error) bool {
	switch e.code {
	case exitDamaged:
		return target == errDamaged
	case exitRefused:
		return target == sysdev.ErrMounted
	case exitFS:
		return target == volume.ErrCorrupt
	case exitCancelled:
		return target == context.Canceled
	}
	return false
}

func (e *serverError) As(target any) bool {
	if p, ok := target.(*usageError); ok && e.code == exitUsage {
		*p = usageError{errors.New(e.Error())}
		return true
	}
	return false
}

// refusedError marks a mountpoint that must not be mounted on (busy, not
// empty); it exits with the "refused for safety" code.
type refusedError struct{ error }

func (e refusedError) Unwrap() error        { return e.error }
func (e refusedError) Is(target error) bool { return target == sysdev.ErrMounted }

func mountError(err error) error {
	if errors.Is(err, mount.ErrBusy) || errors.Is(err, mount.ErrNotEmpty) {
		return refusedError{err}
	}
	return err
}
