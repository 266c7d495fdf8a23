// Package tmuxtest drives a terminal program in a detached 80×25 tmux window
// for tests: keys go in with send-keys, the screen comes out as text with
// capture-pane — what a person at a console would type and see.
package tmuxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Window is one tmux server with one 80×25 window named "ui".
type Window struct {
	t      testing.TB
	socket string
}

// Start runs command (program and arguments, run directly by tmux) in a
// new window; the server is killed at cleanup.
func Start(t testing.TB, command ...string) *Window {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is missing (apt-get install tmux)")
	}
	w := &Window{t: t, socket: fmt.Sprintf("cbimg-tmux-%d-%d", os.Getpid(), time.Now().UnixNano())}
	w.Tmux(append([]string{"-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "25", "-s", "ui"}, command...)...)
	t.Cleanup(func() {
		exec.Command("tmux", "-L", w.socket, "kill-server").Run()
		os.Remove(filepath.Join(os.TempDir(), fmt.Sprintf("tmux-%d", os.Getuid()), w.socket))
	})
	return w
}

// Tmux runs a tmux command against this window's server.
func (w *Window) Tmux(args ...string) string {
	w.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", w.socket}, args...)...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("tmux %s: %v %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Screen is the window's text.
func (w *Window) Screen() string { return w.Tmux("capture-pane", "-p", "-t", "ui") }

// WaitFor waits until every text is on the screen and returns the screen.
func (w *Window) WaitFor(timeout time.Duration, texts ...string) string {
	w.t.Helper()
	return w.wait(timeout, false, texts)
}

// WaitSteady is WaitFor that also waits for the screen to stay the same
// between two looks, so that no redraw is under way.
func (w *Window) WaitSteady(timeout time.Duration, texts ...string) string {
	w.t.Helper()
	return w.wait(timeout, true, texts)
}

func (w *Window) wait(timeout time.Duration, steady bool, texts []string) string {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for prev := ""; ; prev = w.Screen() {
		if steady {
			time.Sleep(30 * time.Millisecond)
		}
		s := w.Screen()
		missing := ""
		if steady && s != prev {
			missing = "the same screen twice"
		}
		for _, x := range texts {
			if !strings.Contains(s, x) {
				missing = x
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no %q on the screen after %v:\n%s", missing, timeout, s)
		}
		if !steady {
			time.Sleep(30 * time.Millisecond)
		}
	}
}

// Keys sends tmux key names (Enter, Escape, Down, C-u).
func (w *Window) Keys(keys ...string) {
	w.t.Helper()
	w.Tmux(append([]string{"send-keys", "-t", "ui"}, keys...)...)
}

// Type sends literal text.
func (w *Window) Type(s string) {
	w.t.Helper()
	w.Tmux("send-keys", "-t", "ui", "-l", s)
}

// CursorLine is the line marked with ">".
func CursorLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ">") {
			return l
		}
	}
	return ""
}

// PressUntil presses key until the cursor line contains text.
func (w *Window) PressUntil(key, text string) {
	w.t.Helper()
	for range 20 {
		s := w.Screen()
		if strings.Contains(CursorLine(s), text) {
			return
		}
		w.Keys(key)
		deadline := time.Now().Add(5 * time.Second)
		for w.Screen() == s && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	w.t.Fatalf("no %q under the cursor:\n%s", text, w.Screen())
}

// Quote quotes s for sh.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
