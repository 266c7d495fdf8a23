package ui

import (
	"fmt"
	"strings"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
	tea "github.com/charmbracelet/bubbletea"
)

// plan is a chosen action with everything it needs: the summary screen
// shows it, and a restore waits there for its typed confirmation.
type plan struct {
	act *action

	// backup
	image     string
	compress  string // as --compress takes it
	codec     image.Codec
	level     int
	split     int64
	splitText string
	excludes  []string
	noDefault bool

	// mount
	mountpoint string

	// restore
	confirm string // what was typed
	err     string
}

// confirmWord is what a restore's confirmation must be: the target's name.
func (p *plan) confirmWord() string { return baseName(p.act.part.Spec) }

func restorePlan(m *Model, a *action) *plan {
	p := &plan{act: a}
	return p
}

// backupArgs is the command line of a backup plan.
func (m *Model) backupArgs(p *plan) []string {
	args := []string{m.cfg.Program, "backup"}
	if p.compress != "zstd:3" {
		args = append(args, "--compress", p.compress)
	}
	if p.splitText != "" {
		args = append(args, "--split", p.splitText)
	}
	if p.noDefault {
		args = append(args, "--no-default-excludes")
	}
	for _, x := range p.excludes {
		args = append(args, "--exclude", x)
	}
	return append(args, p.act.part.Spec, p.image)
}

// restoreArgs is the command line of a restore.
func (m *Model) restoreArgs(p *plan) []string {
	return []string{m.cfg.Program, "restore", "--yes", p.act.img.Location, p.act.part.Spec}
}

func imageLines(m *Model, img *Img) []string {
	h := img.Header
	out := []string{fmt.Sprintf("  Image     %s  (%s)", img.Location, human(img.Size))}
	if h == nil {
		return out
	}
	label := ""
	if h.Label != "" {
		label = fmt.Sprintf(" %q", h.Label)
	}
	out = append(out, fmt.Sprintf("            %s%s of %s, made %s", h.FSName(), label, h.SourceName, h.Created.Local().Format("2006-01-02 15:04")))
	s := fmt.Sprintf("            file system %s, %s of data", human(h.FSSize), human(h.LogicalLen))
	if n := len(h.Exclusions); n > 0 {
		s += fmt.Sprintf(", files left out: %d", n)
	}
	return append(out, s)
}

func (p *plan) view(m *Model) (string, []string, string) {
	var body []string
	add := func(s ...string) { body = append(body, s...) }
	a := p.act
	var args []string
	keys := "Enter start  Esc back"
	title := "summary: nothing has been done yet"
	switch a.kind {
	case actBackup:
		add("  Back up   "+a.part.Spec, "            "+partLine(a.part))
		state := "new file"
		if len(leftBehind(p.image)) > 0 {
			state = "EXISTS: it will be replaced"
		}
		// On a line of its own: a long path must not hide that a file is replaced.
		add("  into      "+p.image, "            ("+state+")")
		opts := []string{"zstd level " + fmt.Sprint(p.level)}
		if p.codec == image.CodecNone {
			opts[0] = "no compression"
		}
		if p.split > 0 {
			opts = append(opts, "split into "+human(p.split)+" volumes")
		} else {
			opts = append(opts, "one file")
		}
		if p.noDefault {
			opts = append(opts, "no default exclusions")
		} else {
			opts = append(opts, "default exclusions")
		}
		if len(p.excludes) > 0 {
			opts = append(opts, "also excluding "+strings.Join(p.excludes, ", "))
		}
		for i, l := range wrap(strings.Join(opts, ", "), m.w-14) {
			if i == 0 {
				add("  options   " + l)
			} else {
				add("            " + l)
			}
		}
		if part, _, ok := locate.Split(p.image); ok {
			add("", "  The image file is made inside "+part+" first; then the source is read raw",
				"  and the image written into that file's clusters, leaving them out of it.")
		} else {
			add("", "  The source is only read; only the image file is written.")
		}
		if a.part.MountedRW {
			add("  ! "+a.part.Spec+" is mounted read-write at "+a.part.Mounted+": the backup will refuse;", "    unmount it first.")
		}
		args = m.backupArgs(p)
		add("", "  The image is verified after the backup.")
	case actRestore, actInPlace:
		title = "RESTORE: everything on the target is overwritten"
		add(imageLines(m, a.img)...)
		add(fmt.Sprintf("  Target    %s  (%s)", a.part.Spec, human(a.part.Size)))
		now := "now holds: " + partLine(a.part)
		add("            "+now, "            ALL OF IT WILL BE OVERWRITTEN")
		if a.part.Mounted != "" {
			add("  ! the target is mounted at " + a.part.Mounted + ": the restore will refuse; unmount it first.")
		}
		if a.kind == actInPlace {
			add("", "  The image lies on the target. The restore keeps its clusters, and refuses",
				"  to start unless the image was made in place there.")
		} else {
			add("", "  Every chunk checksum is checked before the first write.")
		}
		args = m.restoreArgs(p)
	}
	if args != nil {
		add("", "  Same from a script:")
		for _, l := range wrapCommand(commandLine(args...), m.w-6) {
			add("    " + l)
		}
	}
	if a.kind == actRestore || a.kind == actInPlace {
		add("", fmt.Sprintf("  To start, type the target's name, %s, and press Enter:", p.confirmWord()))
		add("  > " + p.confirm + "_")
		keys = "type the name  Enter start  Esc back (nothing is written)"
	}
	if p.err != "" {
		add("  ! " + p.err)
	}
	return title, body, keys
}

func (p *plan) update(m *Model, msg tea.Msg) (tea.Model, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	restore := p.act.kind == actRestore || p.act.kind == actInPlace
	switch k.Type {
	case tea.KeyEsc:
		if p.act.kind == actBackup {
			m.scr = scForm
		} else {
			m.scr = scMenu
		}
	case tea.KeyEnter:
		if restore {
			if strings.TrimSpace(p.confirm) != p.confirmWord() {
				p.err = fmt.Sprintf("type %s exactly to confirm; nothing has been written", p.confirmWord())
				return m, nil
			}
			return m, m.start(restoreJob(m, p))
		}
		return m, m.start(backupJob(m, p))
	case tea.KeyBackspace:
		if restore && p.confirm != "" {
			r := []rune(p.confirm)
			p.confirm = string(r[:len(r)-1])
		}
	case tea.KeyCtrlU:
		p.confirm = ""
	case tea.KeyRunes:
		if restore {
			p.confirm += string(k.Runes)
			p.err = ""
		}
	}
	return m, nil
}
