//go:build linux

// Package winetest runs the Windows build of cbimg under Wine beside the
// Linux build, so that the Windows code paths (device names, sector-aligned
// I/O, volume locking) are exercised on a Linux machine and the two builds
// are shown to read and write the same images. It needs Debian's wine64 and
// gcc-mingw-w64-x86-64: Wine 8 lacks bcryptprimitives.dll, which Go
// programs need, so scripts/wine-setup.sh builds a stand-in into the Wine
// prefix (see testdata/wine).
package winetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Env is a Wine prefix with cbimg.exe, and the Linux cbimg beside it.
type Env struct {
	Root   string   // repository root
	Prefix string   // WINEPREFIX
	Exe    string   // cbimg.exe
	Linux  string   // the Linux cbimg
	Steps  []string // what Setup did, with times
	env    []string
}

// Result is one finished command.
type Result struct {
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

// Setup builds both binaries (with the documented scripts/build-windows.sh
// for the Windows one) and a fresh Wine prefix under dir, and starts a
// persistent wineserver that Close stops. It returns an error, naming the
// packages to install, when Wine or MinGW is missing; it installs nothing.
func Setup(root, dir string) (*Env, error) {
	var missing []string
	for _, tool := range []string{"wine", "wineserver", "wineboot", "x86_64-w64-mingw32-gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("winetest: missing %s: apt-get install wine wine64 gcc-mingw-w64-x86-64 (scripts/deps.sh installs them)", strings.Join(missing, ", "))
	}
	e := &Env{Root: root, Prefix: filepath.Join(dir, "prefix"), Exe: filepath.Join(dir, "cbimg.exe"), Linux: filepath.Join(dir, "cbimg")}
	t0 := time.Now()
	step := func(what string) {
		e.Steps = append(e.Steps, fmt.Sprintf("%s %.1fs", what, time.Since(t0).Seconds()))
		t0 = time.Now()
	}
	if out, err := run(root, nil, "bash", "scripts/build-windows.sh", e.Exe); err != nil {
		return nil, fmt.Errorf("winetest: scripts/build-windows.sh: %v\n%s", err, out)
	}
	step("build-windows.sh")
	if out, err := run(root, nil, "go", "build", "-o", e.Linux, "./cmd/cbimg"); err != nil {
		return nil, fmt.Errorf("winetest: go build: %v\n%s", err, out)
	}
	step("go build")
	if out, err := run(root, nil, "bash", "scripts/wine-setup.sh", "--no-install", e.Prefix); err != nil {
		return nil, fmt.Errorf("winetest: scripts/wine-setup.sh: %v\n%s", err, out)
	}
	step("wine-setup.sh")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "DISPLAY" && k != "WAYLAND_DISPLAY" && !strings.HasPrefix(k, "WINE") {
			e.env = append(e.env, kv)
		}
	}
	e.env = append(e.env, "WINEPREFIX="+e.Prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=;winemenubuilder.exe=d")
	// One server for all runs (wine-setup.sh waits for the one wineboot
	// used to end): each wine start then takes a fraction of a second
	// instead of seconds. It lingers 60 s after the last Wine process, so a
	// test killed before Close leaves nothing behind for long. Started with
	// no pipes: the server keeps its output open after wineserver returns.
	srv := exec.Command("wineserver", "-p60")
	srv.Dir, srv.Env = root, e.env
	if err := srv.Run(); err != nil {
		return nil, fmt.Errorf("winetest: wineserver -p60: %v", err)
	}
	// The first start also starts Wine's services, which later starts
	// reuse. They would hold on to pipes given to it until the server
	// ends, so it gets none.
	warm := exec.Command("wine", e.Exe, "--version")
	warm.Dir, warm.Env = root, e.env
	if err := warm.Run(); err != nil {
		return nil, fmt.Errorf("winetest: wine cbimg.exe --version: %v", err)
	}
	step("wineserver and first start")
	return e, nil
}

// Close stops the wineserver and every Wine process of the prefix.
func (e *Env) Close() {
	run(e.Root, e.env, "wineserver", "-k")
}

func run(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd.CombinedOutput()
}

// Wine runs cbimg.exe with args in dir (seen by Windows as Z:\dir).
func (e *Env) Wine(t testing.TB, dir string, stdin []byte, args ...string) Result {
	t.Helper()
	return e.exec(t, dir, stdin, "wine", append([]string{e.Exe}, args...)...)
}

// Native runs the Linux cbimg with args in dir.
func (e *Env) Native(t testing.TB, dir string, stdin []byte, args ...string) Result {
	t.Helper()
	return e.exec(t, dir, stdin, e.Linux, args...)
}

func (e *Env) exec(t testing.TB, dir string, stdin []byte, name string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	// Should a run start Wine's services again, they inherit its pipes:
	// stop waiting for those once the program itself has ended.
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("winetest: %s: %v", name, err)
	}
	return r
}

// MapDevice makes \\.\NAME (e.g. "E:" or "PhysicalDrive9") open file under
// Wine: raw access to a drive letter X: goes through dosdevices/x::, other
// device names through dosdevices/name.
func (e *Env) MapDevice(t testing.TB, name, file string) {
	t.Helper()
	link := strings.ToLower(name)
	if len(link) == 2 && link[1] == ':' {
		link += ":"
	}
	p := filepath.Join(e.Prefix, "dosdevices", link)
	os.Remove(p)
	if err := os.Symlink(file, p); err != nil {
		t.Fatalf("winetest: %v", err)
	}
	t.Cleanup(func() { os.Remove(p) })
}

// MapDrive makes drive letter X: (e.g. "M:") show directory dir to
// Windows programs, as a mounted file system; MapDevice gives the same
// letter its raw device.
func (e *Env) MapDrive(t testing.TB, drive, dir string) {
	t.Helper()
	if len(drive) != 2 || drive[1] != ':' {
		t.Fatalf("winetest: %q is not a drive letter", drive)
	}
	p := filepath.Join(e.Prefix, "dosdevices", strings.ToLower(drive))
	os.Remove(p)
	if err := os.Symlink(dir, p); err != nil {
		t.Fatalf("winetest: %v", err)
	}
	t.Cleanup(func() { os.Remove(p) })
}
