//go:build linux

package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
	tea "github.com/charmbracelet/bubbletea"
)

// fakeConsole is a console screen in memory.
type fakeConsole struct {
	mu      sync.Mutex
	w, h    int
	rows    []string
	alt     bool
	enters  int
	leaves  int
	x, y    int
	visible bool
	text    strings.Builder
	writes  int
}

func (f *fakeConsole) enterAlt() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alt, f.enters = true, f.enters+1
	f.rows = make([]string, f.h)
	return f.w, f.h
}

func (f *fakeConsole) leaveAlt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alt, f.leaves = false, f.leaves+1
}

func (f *fakeConsole) size() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w, f.h
}

func (f *fakeConsole) writeRows(y int, rows [][]rune) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, row := range rows {
		if len(row) != f.w {
			panic("row of the wrong width")
		}
		f.rows[y+i] = strings.TrimRight(string(row), " ")
	}
	f.writes++
}

func (f *fakeConsole) setCursor(x, y int, visible bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.x, f.y, f.visible = x, y, visible
}

func (f *fakeConsole) writeText(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.text.WriteString(s)
}

func (f *fakeConsole) screen() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.rows, "\n")
}

// trimmed is a View as the console shows it.
func trimmed(view string) string {
	lines := strings.Split(view, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// waitScreen waits until the console shows want. Digits are compared as
// digits only: the form shows free space and a minute-stamped image name,
// which move while other tests run.
func waitScreen(t *testing.T, f *fakeConsole, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for noDigits(f.screen()) != noDigits(want) {
		if time.Now().After(deadline) {
			t.Fatalf("console shows:\n%s\n\nwant:\n%s", f.screen(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// What bubbletea sends for the menu, applied by cellScreen, leaves on the
// console exactly the screens the model draws: through redraws of changed
// lines only, shorter lines over longer ones, and a change of size.
func TestCellScreenShowsTheViews(t *testing.T) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	cfg := Config{Disks: []string{vol}, ImageDirs: []string{t.TempDir()}}
	// The expected screens, from a model driven directly.
	ref := newScanned(t, cfg, 80, 25)
	menuView := trimmed(ref.View())
	ref.Update(key("enter"))
	formView := trimmed(ref.View())

	f := &fakeConsole{w: 80, h: 25}
	m := New(context.Background(), cfg)
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithOutput(newCellScreen(f)), tea.WithInput(nil), tea.WithoutSignalHandler())
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()
	p.Send(tea.WindowSizeMsg{Width: 80, Height: 25})
	waitScreen(t, f, menuView)
	p.Send(key("enter"))
	waitScreen(t, f, formView)
	p.Send(key("esc"))
	waitScreen(t, f, menuView)
	f.mu.Lock()
	f.w, f.h, f.rows = 40, 12, make([]string, 12)
	f.mu.Unlock()
	p.Send(tea.WindowSizeMsg{Width: 40, Height: 12})
	small := newScanned(t, cfg, 40, 12)
	waitScreen(t, f, trimmed(small.View()))
	p.Quit()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.enters != 1 || f.leaves != 1 || !f.visible {
		t.Errorf("screen entered %d, left %d times; cursor shown at the end: %v", f.enters, f.leaves, f.visible)
	}
}

// The sequences themselves, also cut between writes.
func TestCellScreenSequences(t *testing.T) {
	f := &fakeConsole{w: 10, h: 4}
	s := newCellScreen(f)
	write := func(parts ...string) {
		for _, p := range parts {
			s.Write([]byte(p))
		}
	}
	write("before\r\n", "\x1b[?1049h\x1b[2J\x1b[H\x1b[?25l", "\x1b]0;title\x07")
	if f.text.String() != "before\r\n" || f.enters != 1 {
		t.Fatalf("text before the screen %q, entered %d", f.text.String(), f.enters)
	}
	write("abcdefghijKLM\r\n", "xy\x1b", "[Kz\r\n\n12345\x1b[3", "D\x1b[K")
	want := "abcdefghij\nxyz\n\n12"
	if got := f.screen(); got != want {
		t.Fatalf("screen:\n%s\nwant:\n%s", got, want)
	}
	if f.x != 2 || f.y != 3 || f.visible {
		t.Errorf("cursor at %d,%d visible %v", f.x, f.y, f.visible)
	}
	write("\x1b[2;2H\x1b[1K", "\x1b[1;9H\x1b[2K\x1b[4;2H\x1b[1J", "\x1b[3;1HQ\x1b[?25h")
	want = "\n\nQ\n"
	if got := f.screen(); got != want {
		t.Fatalf("screen after erasures:\n%q\nwant:\n%q", got, want)
	}
	if f.x != 1 || f.y != 2 || !f.visible {
		t.Errorf("cursor at %d,%d visible %v", f.x, f.y, f.visible)
	}
	write("\x1b[?1049l", "after")
	if f.leaves != 1 || !strings.HasSuffix(f.text.String(), "after") {
		t.Errorf("left %d times, text %q", f.leaves, f.text.String())
	}
}

// "a" names one more volume file; it is scanned besides the others, and a
// name that does not open is refused on the form.
func TestAddDisk(t *testing.T) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	other := filepath.Join(t.TempDir(), "other.img")
	data, err := os.ReadFile(testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m := newScanned(t, Config{Disks: []string{vol}, ImageDirs: []string{t.TempDir()}}, 80, 25)
	m.Update(key("a"))
	if m.scr != scForm || !strings.Contains(checkView(t, m), "Disk or file") {
		t.Fatalf("a did not open the form:\n%s", m.View())
	}
	m.Update(key(other + ".missing"))
	m.Update(key("enter"))
	m.Update(key("enter"))
	if m.scr != scForm || !strings.Contains(checkView(t, m), "! ") {
		t.Fatalf("a missing file was not refused:\n%s", m.View())
	}
	m.Update(tea.KeyMsg{Type: tea.KeyUp})
	for range len(".missing") {
		m.Update(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	m.Update(key("enter"))
	_, cmd := m.Update(key("enter"))
	if m.scr != scScan || cmd == nil {
		t.Fatalf("adding did not scan again: screen %d\n%s", m.scr, m.View())
	}
	m.Update(cmd())
	s := checkView(t, m)
	for _, want := range []string{"Volume " + vol, "Volume " + other, "fat12", "fat16", "Back up other.img"} {
		if !strings.Contains(s, want) {
			t.Errorf("menu lacks %q:\n%s", want, s)
		}
	}
}

func noDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, s)
}
