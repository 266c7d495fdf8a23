//go:build linux

package ui

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	tea "github.com/charmbracelet/bubbletea"
)

// newScanned returns a model that has scanned cfg, at w x h.
func newScanned(t *testing.T, cfg Config, w, h int) *Model {
	t.Helper()
	m := New(context.Background(), cfg)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	msg := m.Init()()
	if _, ok := msg.(scanDone); !ok {
		t.Fatalf("Init gave %T", msg)
	}
	m.Update(msg)
	return m
}

// checkView checks the screen size promise and returns the screen.
func checkView(t *testing.T, m *Model) string {
	t.Helper()
	v := m.View()
	lines := strings.Split(v, "\n")
	if len(lines) != m.h {
		t.Errorf("%d lines on a %d-line screen", len(lines), m.h)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > m.w {
			t.Errorf("line of %d columns on a %d-column screen: %q", n, m.w, l)
		}
		for _, r := range l {
			if r > 0x7e || r < 0x20 {
				t.Errorf("non-ASCII or control character %q in %q", r, l)
				break
			}
		}
	}
	return v
}

func key(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// lineWith returns the screen line number holding text.
func lineWith(t *testing.T, screen, text string) int {
	t.Helper()
	for i, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, text) {
			return i
		}
	}
	t.Fatalf("no %q on the screen:\n%s", text, screen)
	return -1
}

// The menu lists the partition with its file system and used space, offers
// a backup, and the mouse chooses it; every screen fits, also a small one.
func TestMenuKeysMouseAndFit(t *testing.T) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	dir := t.TempDir()
	for _, size := range [][2]int{{80, 25}, {40, 12}} {
		m := newScanned(t, Config{Disks: []string{vol}, ImageDirs: []string{dir}}, size[0], size[1])
		s := checkView(t, m)
		for _, want := range []string{"fat16", "CBIMGTEST", "used", "Back up"} {
			if size[0] == 80 && !strings.Contains(s, want) {
				t.Errorf("menu lacks %q:\n%s", want, s)
			}
		}
		// A click selects, a second click on the same line chooses.
		y := lineWith(t, s, "Back up")
		click := tea.MouseMsg{X: 6, Y: y, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress}
		m.Update(click)
		m.Update(click)
		if m.scr != scForm {
			t.Fatalf("%dx%d: two clicks on the backup did not open its form:\n%s", size[0], size[1], m.View())
		}
		s = checkView(t, m)
		if size[0] == 80 && (!strings.Contains(s, "Image file") || !strings.HasPrefix(m.form.fields[0].text, dir)) {
			t.Errorf("backup form:\n%s", s)
		}
		// Left/Right change a choice; Tab reaches Continue.
		m.Update(key("down"))
		m.Update(tea.KeyMsg{Type: tea.KeyRight})
		if got := m.form.fields[1].value(); !strings.HasPrefix(got, "zstd:1") {
			t.Errorf("compression after Right: %q", got)
		}
		for range 5 {
			m.Update(key("tab"))
		}
		m.Update(key("enter"))
		if m.scr != scSummary {
			t.Fatalf("Continue did not lead to the summary: %v", m.form.err)
		}
		s = checkView(t, m)
		if size[0] == 80 && !strings.Contains(s, "--compress zstd:1") {
			t.Errorf("summary command line lacks the compression:\n%s", s)
		}
		m.Update(key("esc"))
		m.Update(key("esc"))
		if m.scr != scMenu {
			t.Fatalf("Esc twice did not return to the menu")
		}
		_, cmd := m.Update(key("q"))
		if cmd == nil {
			t.Fatal("q did not quit")
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Fatal("q did not quit")
		}
	}
}

// A bad split size or pattern is refused on the form, with the reason.
func TestFormValidation(t *testing.T) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"})
	m := newScanned(t, Config{Disks: []string{vol}, ImageDirs: []string{t.TempDir()}}, 80, 25)
	m.Update(key("b"))
	m.Update(key("enter"))
	if m.scr != scForm {
		t.Fatal("no form")
	}
	m.form.fields[2].text = "12Q"
	m.form.focus = len(m.form.fields)
	m.Update(key("enter"))
	if m.scr != scForm || !strings.Contains(strings.Join(strings.Fields(checkView(t, m)), " "), "size \"12Q\"") {
		t.Fatalf("a bad split size was not refused:\n%s", m.View())
	}
	m.form.fields[2].text = ""
	m.form.fields[0].text = filepath.Join(t.TempDir(), "missing", "x.cbi")
	m.Update(key("enter"))
	if m.scr != scForm || !strings.Contains(strings.Join(strings.Fields(checkView(t, m)), " "), "does not exist") {
		t.Fatalf("a missing directory was not refused:\n%s", m.View())
	}
}

func TestText(t *testing.T) {
	if got := posixQuote("a b'c"); got != `'a b'\''c'` {
		t.Errorf("shellQuote: %s", got)
	}
	if got := cmdQuote(`C:\a b\x.cbi`); got != `"C:\a b\x.cbi"` {
		t.Errorf("cmdQuote: %s", got)
	}
	if got := commandLine("cbimg", "restore", "--yes", "/d@2:/x y.cbi", "/dev/sda2"); got != "cbimg restore --yes '/d@2:/x y.cbi' /dev/sda2" {
		t.Errorf("commandLine: %s", got)
	}
	lines := wrapCommand("cbimg backup --compress zstd:9 /dev/sda2 /media/usb/images/windows-2026.cbi", 40)
	for i, l := range lines {
		if len(l) > 40 || (i < len(lines)-1) != strings.HasSuffix(l, " \\") {
			t.Errorf("wrapCommand line %q", l)
		}
	}
	if human(1536) != "1.5 KiB" || human(3<<30) != "3.0 GiB" {
		t.Errorf("human: %s %s", human(1536), human(3<<30))
	}
	if got := fitMiddle("/very/long/path/to/some/image.cbi", 20); len(got) != 20 || !strings.HasSuffix(got, "image.cbi") {
		t.Errorf("fitMiddle: %q", got)
	}
	if got := unusedName(filepath.Join(os.TempDir(), "no-such-cbimg-file.cbi")); !strings.HasSuffix(got, "no-such-cbimg-file.cbi") {
		t.Errorf("unusedName: %s", got)
	}
}

// An image whose header reads but whose end is cut off (an interrupted
// copy) is marked DAMAGED and offered for verify only, never for restore or
// mount; a whole image beside it keeps every offer.
func TestMenuMarksDamagedImage(t *testing.T) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	target := testvol.Copy(t, vol)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.cbi"), filepath.Join(dir, "bad.cbi")
	if _, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: good, Codec: image.CodecZstd}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, b[:len(b)*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	m := newScanned(t, Config{Disks: []string{target}, ImageDirs: []string{dir}}, 80, 25)
	offers := map[string][]actKind{}
	for _, r := range m.menu.rows {
		if r.act != nil && r.act.img != nil {
			offers[filepath.Base(r.act.img.Path)] = append(offers[filepath.Base(r.act.img.Path)], r.act.kind)
		}
	}
	if got := offers["bad.cbi"]; len(got) != 1 || got[0] != actVerify {
		t.Errorf("truncated image offered %v, want verify only", got)
	}
	for _, k := range []actKind{actRestore, actVerify, actMount} {
		if !slices.Contains(offers["good.cbi"], k) {
			t.Errorf("whole image lacks offer %v: %v", k, offers["good.cbi"])
		}
	}
	var text []string
	for _, r := range m.menu.rows {
		text = append(text, r.text)
	}
	if all := strings.Join(text, "\n"); !strings.Contains(all, "DAMAGED") {
		t.Errorf("no DAMAGED mark:\n%s", all)
	}
	checkView(t, m)
}
