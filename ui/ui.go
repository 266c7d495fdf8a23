// Package ui is cbimg's menu for a technician at a rescue console
// ("cbimg ui"). It scans disks and image directories, offers the actions
// that make sense for what it found (back up a partition, restore one from
// an image, verify, mount or browse an image), asks only for what is
// missing, shows a summary naming what will be overwritten, runs the action
// with a live view, and ends on a result with the equivalent command line.
//
// The screens are built with bubbletea and use plain ASCII without colour,
// so they work on an 80x25 Linux console and in a Windows console. All the
// work is done by the same packages the command line uses (backupcore,
// restorecore, image, mount, browse); this package only draws screens.
package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/cbimg/cbimg/internal/noquery" // before Bubble Tea: no terminal queries
	tea "github.com/charmbracelet/bubbletea"
)

// Config says what the menu scans.
type Config struct {
	// Disks are disks, disk images, partitions (DISK@N) or volume files to
	// scan; when empty, every disk disk.ListDisks finds.
	Disks []string
	// ImageDirs hold images to offer and receive new backups.
	ImageDirs []string
	// Program names the command in "same from a script" lines; "" = "cbimg".
	Program string

	added []string // named in the menu: scanned besides Disks or the listed disks
}

// Run shows the menu until the technician quits. Mounts made from the menu
// are unmounted on the way out.
func Run(ctx context.Context, cfg Config) error {
	m := New(ctx, cfg)
	opts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithMouseCellMotion(), tea.WithContext(ctx)}
	con, w, h := cellConsole()
	if con != nil {
		opts = append(opts, tea.WithOutput(con))
	}
	p := tea.NewProgram(m, opts...)
	if con != nil {
		// bubbletea asks only a terminal for its size.
		go p.Send(tea.WindowSizeMsg{Width: w, Height: h})
	}
	_, err := p.Run()
	m.shutdown()
	if err == tea.ErrProgramKilled && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

type screen int

const (
	scScan screen = iota
	scMenu
	scForm
	scSummary
	scRun
	scResult
	scBrowse
)

// Model is the bubbletea model of the menu.
type Model struct {
	ctx context.Context
	cfg Config
	w   int
	h   int
	scr screen

	inv  *Inventory
	menu menu
	form *form
	plan *plan
	job  *job
	res  *result
	br   *browser

	mounts  []*mounted
	pending tea.Cmd // started by a form's submit
	notice  string  // one line shown above the footer until the next key
}

// New returns the model; Run drives it. Tests may drive it directly.
func New(ctx context.Context, cfg Config) *Model {
	if cfg.Program == "" {
		cfg.Program = "cbimg"
	}
	return &Model{ctx: ctx, cfg: cfg, w: 80, h: 25}
}

// Init starts the first scan.
func (m *Model) Init() tea.Cmd { return m.rescan() }

type scanDone struct{ inv *Inventory }

func (m *Model) rescan() tea.Cmd {
	m.scr = scScan
	ctx, cfg := m.ctx, m.cfg
	return func() tea.Msg { return scanDone{Scan(ctx, cfg)} }
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = max(msg.Width, 20), max(msg.Height, 10)
		return m, nil
	case scanDone:
		m.inv = msg.inv
		m.menu.build(m)
		m.scr = scMenu
		return m, nil
	case tickMsg:
		if m.scr == scRun && m.job != nil {
			return m, tick()
		}
		return m, nil
	case jobDone:
		m.job = nil
		m.res = msg.res
		m.scr = scResult
		if msg.res.mount != nil {
			m.mounts = append(m.mounts, msg.res.mount)
		}
		return m, nil
	case tea.KeyMsg:
		if msg.Type == tea.KeyCtrlC && m.scr != scRun {
			return m, tea.Quit
		}
		m.notice = ""
	}
	switch m.scr {
	case scScan:
		if k, ok := msg.(tea.KeyMsg); ok && (k.String() == "q" || k.Type == tea.KeyEsc) {
			return m, tea.Quit
		}
	case scMenu:
		return m.menu.update(m, msg)
	case scForm:
		return m.form.update(m, msg)
	case scSummary:
		return m.plan.update(m, msg)
	case scRun:
		return m.job.update(m, msg)
	case scResult:
		return m.res.update(m, msg)
	case scBrowse:
		return m.br.update(m, msg)
	}
	return m, nil
}

// View draws the current screen: a title line, the body, and a key line,
// exactly h lines of at most w characters.
func (m *Model) View() string {
	var title, keys string
	var body []string
	switch m.scr {
	case scScan:
		title, keys = "Scanning disks and image directories...", "q quit"
		body = []string{"", "  Reading partition tables and file systems; looking for images."}
	case scMenu:
		title, body, keys = m.menu.view(m)
	case scForm:
		title, body, keys = m.form.view(m)
	case scSummary:
		title, body, keys = m.plan.view(m)
	case scRun:
		title, body, keys = m.job.view(m)
	case scResult:
		title, body, keys = m.res.view(m)
	case scBrowse:
		title, body, keys = m.br.view(m)
	}
	lines := make([]string, 0, m.h)
	lines = append(lines, fit("cbimg | "+title, m.w))
	lines = append(lines, strings.Repeat("-", m.w))
	room := m.h - 4
	if len(body) > room {
		body = body[:room]
	}
	for _, l := range body {
		lines = append(lines, fit(l, m.w))
	}
	for len(lines) < m.h-2 {
		lines = append(lines, "")
	}
	lines = append(lines, fit(m.notice, m.w))
	lines = append(lines, fit(keys, m.w))
	return strings.Join(lines, "\n")
}

// bodyTop is the screen line of the first body line.
const bodyTop = 2

// bodyRows is how many body lines fit.
func (m *Model) bodyRows() int { return m.h - 4 }

// shutdown cancels a running job and unmounts what the menu mounted.
func (m *Model) shutdown() {
	if m.job != nil {
		m.job.cancel()
		<-m.job.finished
	}
	for _, mt := range m.mounts {
		mt.unmount()
	}
	m.mounts = nil
	if m.br != nil {
		m.br.close()
	}
}

// imageDir is where new images go by default.
func (m *Model) imageDir() string {
	if len(m.cfg.ImageDirs) > 0 {
		return m.cfg.ImageDirs[0]
	}
	if wd, err := os.Getwd(); err == nil {
		return wd
	}
	return "."
}

// shortImage is an image's name in menus: relative to its directory, or
// PARTITION:/path.
func (m *Model) shortImage(img *Img) string {
	if img.Dir != "" {
		if rel, err := filepath.Rel(img.Dir, img.Path); err == nil {
			return rel
		}
	}
	if img.Partition != "" {
		return baseName(img.Partition) + ":" + img.Path
	}
	return img.Path
}
