//go:build linux

package mount_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/mount"
)

var cbimgBin struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cbimgBin.dir != "" {
		os.RemoveAll(cbimgBin.dir)
	}
	os.Exit(code)
}

// cbimg builds the command once per test process.
func cbimg(t *testing.T) string {
	t.Helper()
	cbimgBin.once.Do(func() {
		cbimgBin.dir, cbimgBin.err = os.MkdirTemp("", "cbimg-mount-test")
		if cbimgBin.err != nil {
			return
		}
		cbimgBin.path = filepath.Join(cbimgBin.dir, "cbimg")
		cmd := exec.Command("go", "build", "-o", cbimgBin.path, "./cmd/cbimg")
		cmd.Dir = testvol.Root(t)
		cbimgBin.out, cbimgBin.err = cmd.CombinedOutput()
	})
	if cbimgBin.err != nil {
		t.Fatalf("go build ./cmd/cbimg: %v\n%s", cbimgBin.err, cbimgBin.out)
	}
	return cbimgBin.path
}

// run runs cbimg and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cbimg(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A server that kept our pipes would make Run wait for it.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cbimg %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

func alive(pid int) bool {
	// Signal 0 probes; a zombie still counts, so look at its state too.
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// TestCommandBackground: cbimg mount returns once volume.raw is readable,
// the server runs on, and cbimg umount (or fusermount -u) stops it.
func TestCommandBackground(t *testing.T) {
	testvol.Need(t, "fusermount3", "go")
	src := testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"})
	img := makeImage(t, src, imageOpts{codec: image.CodecZstd, split: 4 << 20})
	want := testvol.FileSHA256(t, restored(t, img))
	for _, how := range []string{"cbimg umount", "fusermount -u"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			stdout, stderr, code := run(t, "mount", "--json", "--cache-size", "8M", img, dir)
			if code != 0 {
				t.Fatalf("cbimg mount: exit %d\n%s", code, stderr)
			}
			var res struct {
				File string
				Size int64
				PID  int
			}
			if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.PID == 0 {
				t.Fatalf("JSON output %q: %v", stdout, err)
			}
			t.Cleanup(func() {
				if mounted(t, dir) {
					mount.UnmountLazy(dir)
				}
				syscall.Kill(res.PID, syscall.SIGKILL)
			})
			// Readable at once, no waiting.
			if got := testvol.FileSHA256(t, filepath.Join(dir, mount.FileName)); got != want {
				t.Fatalf("sha256 of volume.raw %s, restored %s", got, want)
			}
			if res.File != filepath.Join(dir, mount.FileName) || res.Size == 0 {
				t.Errorf("JSON: %+v", res)
			}
			if how == "cbimg umount" {
				if _, stderr, code := run(t, "umount", dir); code != 0 {
					t.Fatalf("cbimg umount: exit %d\n%s", code, stderr)
				}
			} else {
				testvol.Run(t, "fusermount3", "-u", dir)
			}
			if mounted(t, dir) {
				t.Fatal("still mounted after unmount")
			}
			if !waitFor(5*time.Second, func() bool { return !alive(res.PID) }) {
				t.Fatalf("server %d still running after unmount", res.PID)
			}
		})
	}
}

// TestCommandForeground: --foreground serves until SIGTERM or Ctrl-C, then
// unmounts and exits 0.
func TestCommandForeground(t *testing.T) {
	testvol.Need(t, "fusermount3", "go")
	src := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	img := makeImage(t, src, imageOpts{codec: image.CodecNone})
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(cbimg(t), "mount", "--foreground", img, dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				if mounted(t, dir) {
					mount.UnmountLazy(dir)
				}
			})
			if !waitFor(10*time.Second, func() bool { return mounted(t, dir) }) {
				t.Fatalf("not mounted after 10 s: %s", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(dir, mount.FileName)); err != nil {
				t.Fatal(err)
			}
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after %v: %v\n%s", sig, err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %v", sig)
			}
			if mounted(t, dir) {
				t.Fatalf("still mounted after %v", sig)
			}
			if !strings.Contains(stderr.String(), "Mounted") {
				t.Errorf("stderr: %q", stderr.String())
			}
		})
	}
	// A killed server leaves a dead mount behind; mount says so.
	t.Run("SIGKILL", func(t *testing.T) {
		dir := t.TempDir()
		cmd := exec.Command(cbimg(t), "mount", "--foreground", img, dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mount.UnmountLazy(dir) })
		if !waitFor(10*time.Second, func() bool { return mounted(t, dir) }) {
			t.Fatal("not mounted after 10 s")
		}
		cmd.Process.Kill()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			// Killed while the kernel waited for one of its answers: only
			// aborting the connection lets it exit.
			if err := mount.AbortConnection(dir); err != nil {
				t.Fatalf("killed server still exiting after 10 s; abort: %v", err)
			}
			<-done
		}
		_, stderr, code := run(t, "mount", img, dir)
		if code != 4 || !strings.Contains(stderr, "server is gone") {
			t.Errorf("mount on a dead mount: exit %d, %q", code, stderr)
		}
		if _, stderr, code := run(t, "umount", dir); code != 0 {
			t.Errorf("umount of a dead mount: exit %d, %q", code, stderr)
		}
	})
}

// TestCommandErrors: clear messages and exit codes, in the background mode
// too (the server's error reaches the waiting command).
func TestCommandErrors(t *testing.T) {
	testvol.Need(t, "fusermount3", "go")
	src := testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"})
	img := makeImage(t, src, imageOpts{codec: image.CodecZstd})
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	data[20] ^= 0xff // inside the header
	corrupt := filepath.Join(t.TempDir(), "corrupt.cbi")
	os.WriteFile(corrupt, data, 0o644)
	notEmpty := t.TempDir()
	os.WriteFile(filepath.Join(notEmpty, "keep"), nil, 0o644)

	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"corrupt header", []string{"mount", corrupt, t.TempDir()}, 3, "header"},
		{"corrupt header foreground", []string{"mount", "--foreground", corrupt, t.TempDir()}, 3, "header"},
		{"missing image", []string{"mount", filepath.Join(notEmpty, "nope.cbi"), t.TempDir()}, 1, "no such file"},
		{"not empty", []string{"mount", img, notEmpty}, 4, "not an empty directory"},
		{"not empty foreground", []string{"mount", "-f", img, notEmpty}, 4, "not an empty directory"},
		{"missing mountpoint", []string{"mount", img, filepath.Join(notEmpty, "nope")}, 1, "no such file"},
		{"bad cache size", []string{"mount", "--cache-size", "lots", img, t.TempDir()}, 2, "cache"},
		{"umount not mounted", []string{"umount", t.TempDir()}, 1, "nothing is mounted"},
		{"umount other fs", []string{"umount", "/proc"}, 1, "not a cbimg mount"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := run(t, c.args...)
			if code != c.code || !strings.Contains(strings.ToLower(stderr), c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.msg)
			}
		})
	}
}
