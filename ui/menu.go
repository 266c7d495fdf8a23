package ui

import (
	"fmt"
	"github.com/cbimg/cbimg/internal/usermsg"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	tea "github.com/charmbracelet/bubbletea"
)

type actKind int

const (
	actBackup actKind = iota
	actRestore
	actInPlace
	actVerify
	actMount
	actBrowse
	actUnmount
)

// letters jump to the next action of a kind.
var actLetters = map[string]actKind{"b": actBackup, "r": actRestore, "i": actInPlace, "v": actVerify, "m": actMount, "f": actBrowse}

// action is one menu entry that does something.
type action struct {
	kind actKind
	part *Part // source of a backup, target of a restore
	img  *Img
	mt   *mounted
}

// row is one menu line: information, or an action.
type row struct {
	text string
	act  *action
}

type menu struct {
	rows []row
	cur  int // index into rows; always an action row when there is one
	top  int
}

// build lists, disk by disk and partition by partition, what was found and
// the actions for it.
func (mn *menu) build(m *Model) {
	var keep *action
	if mn.cur < len(mn.rows) {
		keep = mn.rows[mn.cur].act
	}
	mn.rows = nil
	add := func(text string, a *action) { mn.rows = append(mn.rows, row{text, a}) }
	inv := m.inv
	for _, mt := range m.mounts {
		add("Mounted "+m.shortImage(mt.img)+" at "+mt.point, nil)
		add("", &action{kind: actUnmount, mt: mt})
	}
	for di := range inv.Disks {
		d := &inv.Disks[di]
		head := "Disk " + d.Path
		if d.Err != nil {
			add(head+": "+usermsg.Text(d.Err), nil)
			continue
		}
		desc := []string{human(d.Size)}
		switch {
		case d.Scheme == disk.MBR:
			desc = append(desc, "MBR")
		case d.Scheme == disk.GPT:
			desc = append(desc, "GPT")
		case len(d.Parts) == 1 && d.Parts[0].Number > 0:
			head = "Partition " + d.Path
		default:
			head = "Volume " + d.Path
		}
		if d.Model != "" {
			desc = append(desc, d.Model)
		}
		add(head+"  ("+strings.Join(desc, ", ")+")", nil)
		for pi := range d.Parts {
			p := &d.Parts[pi]
			add("  "+partLine(p), nil)
			if p.FSOK {
				add("", &action{kind: actBackup, part: p})
			}
			for ii := range inv.Images {
				if img := &inv.Images[ii]; img.Partition == p.Spec {
					mn.addImage(m, img)
				}
			}
		}
	}
	for _, dr := range inv.Dirs {
		head := "Images in " + dr.Path
		switch {
		case dr.Err != nil:
			head += ": " + usermsg.Text(dr.Err)
		case dr.Free >= 0:
			head += "  (" + human(dr.Free) + " free)"
		}
		add(head, nil)
		n := 0
		for ii := range inv.Images {
			if img := &inv.Images[ii]; img.Dir == dr.Path {
				mn.addImage(m, img)
				n++
			}
		}
		if n == 0 && dr.Err == nil {
			add("  no images yet", nil)
		}
	}
	if len(inv.Disks) == 0 && len(inv.Dirs) == 0 {
		add("Nothing found to scan.", nil)
	}
	for _, p := range inv.Problems {
		add("! "+p, nil)
	}
	if !slices.ContainsFunc(mn.rows, func(r row) bool { return r.act != nil }) {
		add("", nil)
		add("Nothing here to back up or restore. Press a to name a disk, partition or", nil)
		add("volume file, or name them when starting: cbimg ui [--images DIR] DISK|FILE ...", nil)
	}
	for i := range mn.rows {
		if a := mn.rows[i].act; a != nil {
			mn.rows[i].text = "    " + actionLabel(m, a)
		}
	}
	mn.cur, mn.top = 0, 0
	for i, r := range mn.rows {
		if keep != nil && r.act != nil && sameAction(r.act, keep) {
			mn.cur = i
			break
		}
	}
	if mn.rows == nil || mn.rows[mn.cur].act == nil {
		mn.move(1)
	}
}

func sameAction(a, b *action) bool {
	spec := func(p *Part) string {
		if p == nil {
			return ""
		}
		return p.Spec
	}
	loc := func(i *Img) string {
		if i == nil {
			return ""
		}
		return i.Location
	}
	if a.mt != b.mt {
		return false
	}
	return a.kind == b.kind && spec(a.part) == spec(b.part) && loc(a.img) == loc(b.img)
}

func (mn *menu) addImage(m *Model, img *Img) {
	add := func(text string, a *action) { mn.rows = append(mn.rows, row{text, a}) }
	name := m.shortImage(img)
	h := img.Header
	if h == nil {
		msg := "unreadable"
		if img.Err != nil {
			msg = usermsg.Text(img.Err)
		}
		add(fmt.Sprintf("  image %s  %s  DAMAGED: %s", name, human(img.Size), msg), nil)
		add("", &action{kind: actVerify, img: img})
		return
	}
	label := ""
	if h.Label != "" {
		label = fmt.Sprintf(" %q", h.Label)
	}
	add(fmt.Sprintf("  image %s  (%s)", name, human(img.Size)), nil)
	add(fmt.Sprintf("        %s%s, %s of data, made %s from %s", h.FSName(), label, human(h.LogicalLen),
		h.Created.Local().Format("2006-01-02 15:04"), h.SourceName), nil)
	if img.Damage != "" {
		// Truncated or a bad table: verify says more; nothing that
		// trusts the image is offered.
		add("        DAMAGED: "+img.Damage, nil)
		add("", &action{kind: actVerify, img: img})
		return
	}
	inPlace := map[string]bool{}
	for _, t := range img.InPlace {
		inPlace[t] = true
	}
	for _, t := range img.Targets {
		p := m.inv.part(t)
		if p == nil {
			continue
		}
		switch {
		case t == img.Partition && inPlace[t]:
			add("", &action{kind: actInPlace, part: p, img: img})
		case t == img.Partition:
			// Restoring the partition that holds the image would
			// overwrite the image while it is read.
		default:
			add("", &action{kind: actRestore, part: p, img: img})
		}
	}
	add("", &action{kind: actVerify, img: img})
	add("", &action{kind: actMount, img: img})
	if h.FSType != image.FSRaw {
		add("", &action{kind: actBrowse, img: img})
	}
}

// partLine describes a partition: number, size, file system, label, used
// space and where it is mounted.
func partLine(p *Part) string {
	var b strings.Builder
	if p.Number > 0 {
		fmt.Fprintf(&b, "#%d  ", p.Number)
	}
	b.WriteString(human(p.Size))
	if !p.FSOK {
		b.WriteString("  no NTFS/FAT file system")
		if p.Problem != "" {
			b.WriteString(" (" + p.Problem + ")")
		}
	} else {
		fmt.Fprintf(&b, "  %s", p.FS)
		if p.Label != "" {
			fmt.Fprintf(&b, "  %q", p.Label)
		}
		if p.Used >= 0 {
			fmt.Fprintf(&b, "  used %s", human(p.Used))
			if p.Size > 0 {
				fmt.Fprintf(&b, " (%d%%)", p.Used*100/p.Size)
			}
		}
	}
	if p.Mounted != "" {
		b.WriteString("  mounted at " + p.Mounted)
	}
	return b.String()
}

func actionLabel(m *Model, a *action) string {
	switch a.kind {
	case actBackup:
		return fmt.Sprintf("Back up %s to %s", baseName(a.part.Spec), filepath.Join(m.imageDir(), "..."))
	case actRestore:
		return fmt.Sprintf("Restore %s from %s", baseName(a.part.Spec), m.shortImage(a.img))
	case actInPlace:
		return fmt.Sprintf("Restore %s in place from %s (on it)", baseName(a.part.Spec), a.img.Path)
	case actVerify:
		return "Verify " + m.shortImage(a.img)
	case actMount:
		return "Mount " + m.shortImage(a.img)
	case actBrowse:
		return "Browse files in " + m.shortImage(a.img)
	case actUnmount:
		return "Unmount " + a.mt.point
	}
	return "?"
}

// move steps the cursor to the next action row in direction dir.
func (mn *menu) move(dir int) {
	for i := mn.cur + dir; i >= 0 && i < len(mn.rows); i += dir {
		if mn.rows[i].act != nil {
			mn.cur = i
			return
		}
	}
}

// jump moves to the next action of kind k, wrapping around.
func (mn *menu) jump(k actKind) bool {
	n := len(mn.rows)
	for d := 1; d <= n; d++ {
		i := (mn.cur + d) % n
		if a := mn.rows[i].act; a != nil && (a.kind == k || k == actRestore && a.kind == actInPlace) {
			mn.cur = i
			return true
		}
	}
	return false
}

func (mn *menu) scroll(rows int) {
	if mn.cur < mn.top {
		mn.top = mn.cur
		// Show the rows that describe what the action is for.
		for mn.top > 0 && mn.rows[mn.top-1].act == nil && mn.cur-mn.top < rows/2 {
			mn.top--
		}
	}
	if mn.cur >= mn.top+rows {
		mn.top = mn.cur - rows + 1
	}
	if mn.top > 0 && len(mn.rows)-mn.top < rows {
		mn.top = max(0, len(mn.rows)-rows)
	}
}

func (mn *menu) update(m *Model, msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "up", "k", "shift+tab":
			mn.move(-1)
		case "down", "j", "tab":
			mn.move(1)
		case "pgup":
			for range m.bodyRows() - 1 {
				mn.move(-1)
			}
		case "pgdown":
			for range m.bodyRows() - 1 {
				mn.move(1)
			}
		case "home":
			mn.cur = 0
			if len(mn.rows) > 0 && mn.rows[0].act == nil {
				mn.move(1)
			}
		case "end":
			mn.cur = len(mn.rows) - 1
			if mn.cur >= 0 && mn.rows[mn.cur].act == nil {
				mn.move(-1)
			}
		case "enter", " ", "right":
			return m.choose()
		case "s", "f5":
			return m, m.rescan()
		case "a":
			m.form = addForm(m)
			m.scr = scForm
		case "q", "esc":
			return m, tea.Quit
		default:
			// Letters typed quickly arrive together.
			if msg.Type == tea.KeyRunes {
				for _, r := range msg.Runes {
					if k, ok := actLetters[string(r)]; ok && !mn.jump(k) {
						m.notice = "No such action in this list."
					}
				}
			}
		}
	case tea.MouseMsg:
		switch {
		case msg.Button == tea.MouseButtonWheelUp && msg.Action == tea.MouseActionPress:
			mn.move(-1)
		case msg.Button == tea.MouseButtonWheelDown && msg.Action == tea.MouseActionPress:
			mn.move(1)
		case msg.Button == tea.MouseButtonLeft && msg.Action == tea.MouseActionPress:
			i := mn.top + msg.Y - bodyTop
			if msg.Y >= bodyTop && i >= 0 && i < len(mn.rows) && mn.rows[i].act != nil {
				if i == mn.cur {
					return m.choose()
				}
				mn.cur = i
			}
		}
	}
	return m, nil
}

func (mn *menu) view(m *Model) (string, []string, string) {
	rows := m.bodyRows()
	if len(mn.rows) > 0 && mn.cur < len(mn.rows) {
		mn.scroll(rows)
	}
	var body []string
	for i := mn.top; i < len(mn.rows) && i < mn.top+rows; i++ {
		r := mn.rows[i]
		if r.act != nil && i == mn.cur {
			body = append(body, ">"+r.text[1:])
		} else {
			body = append(body, r.text)
		}
	}
	title := "choose an action"
	if len(mn.rows) > rows {
		title += fmt.Sprintf("  (%d-%d of %d lines)", mn.top+1, min(mn.top+rows, len(mn.rows)), len(mn.rows))
	}
	return title, body, "Enter choose  b/r/v/m/f backup/restore/verify/mount/files  a add  s scan  q quit"
}

// choose starts what the action under the cursor needs.
func (m *Model) choose() (tea.Model, tea.Cmd) {
	if m.menu.cur >= len(m.menu.rows) {
		return m, nil
	}
	a := m.menu.rows[m.menu.cur].act
	if a == nil {
		return m, nil
	}
	switch a.kind {
	case actBackup:
		m.form = backupForm(m, a)
		m.scr = scForm
	case actRestore, actInPlace:
		m.plan = restorePlan(m, a)
		m.scr = scSummary
	case actVerify:
		return m, m.start(verifyJob(m, a.img))
	case actMount:
		m.form = mountForm(m, a)
		m.scr = scForm
	case actUnmount:
		if err := a.mt.unmount(); err != nil {
			m.notice = "Unmount failed: " + usermsg.Text(err)
		} else {
			m.notice = "Unmounted " + a.mt.point + "."
			m.dropMount(a.mt)
			m.menu.build(m)
		}
	case actBrowse:
		br, err := openBrowser(m, a.img)
		if err != nil {
			m.notice = "Cannot browse: " + usermsg.Text(err)
			return m, nil
		}
		m.br = br
		m.scr = scBrowse
	}
	return m, nil
}
