//go:build linux

package ui

import (
	"context"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/internal/damage"
	"github.com/cbimg/cbimg/internal/testvol"
	tea "github.com/charmbracelet/bubbletea"
)

// The browser lists a damaged entry, marks it, names the damage on top,
// and refuses to enter it.
func TestBrowserDamagedEntry(t *testing.T) {
	testvol.Need(t, "mkntfs")
	c := testvol.Copy(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}))
	// Data/Nested's entry points to Data itself.
	var shape damage.Shape
	for _, s := range damage.NTFSShapes() {
		if s.Name == "ntfs directory entry to its own directory" {
			shape = s
		}
	}
	if err := shape.Apply(c); err != nil {
		t.Fatal(err)
	}
	f, size := testvol.OpenFile(t, c)
	fsys, err := browse.NewVolume(f, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := New(context.Background(), Config{})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	b := &browser{img: &Img{}, fsys: fsys, close: func() {}, dir: "Data"}
	b.load()
	m.br, m.scr = b, scBrowse
	screen := checkView(t, m)
	row := lineWith(t, screen, "Nested/")
	if !strings.Contains(strings.Split(screen, "\n")[row], "damaged") {
		t.Errorf("Nested not marked:\n%s", screen)
	}
	lineWith(t, screen, "1 damaged entries")
	for _, name := range []string{"4095.bin", "4097.bin", "1MiB.bin", "10MiB.bin"} {
		lineWith(t, screen, name)
	}
	// Enter on it stays in Data and says why.
	for i, d := range b.ents {
		if d.Name() == "Nested" {
			b.cur = i + 1 // row 0 is ".."
		}
	}
	m.Update(key("enter"))
	if b.dir != "Data" || !strings.Contains(m.notice, "its own directory") {
		t.Errorf("entered %q, notice %q", b.dir, m.notice)
	}
}
