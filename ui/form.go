package ui

import (
	"fmt"
	"github.com/cbimg/cbimg/internal/units"
	"github.com/cbimg/cbimg/internal/usermsg"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
	tea "github.com/charmbracelet/bubbletea"
)

// field is one line of a form: free text, or a choice cycled with
// Left/Right.
type field struct {
	label   string
	text    string
	choices []string
	choice  int
	note    func() string // shown under the field
}

func (f *field) value() string {
	if f.choices != nil {
		return f.choices[f.choice]
	}
	return f.text
}

// form asks for what an action is missing, with defaults filled in.
type form struct {
	title  string
	head   []string
	fields []*field
	focus  int // len(fields) is the Continue button
	err    string
	submit func() error
	lineOf []int // screen body line of each field and the button, for the mouse
}

func (f *form) update(m *Model, msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		var cur *field
		if f.focus < len(f.fields) {
			cur = f.fields[f.focus]
		}
		switch msg.Type {
		case tea.KeyEsc:
			m.scr = scMenu
			return m, nil
		case tea.KeyUp, tea.KeyShiftTab:
			f.focus = max(0, f.focus-1)
		case tea.KeyDown, tea.KeyTab:
			f.focus = min(len(f.fields), f.focus+1)
		case tea.KeyEnter:
			if cur != nil {
				f.focus++
				return m, nil
			}
			return f.done(m)
		case tea.KeyLeft, tea.KeyRight, tea.KeySpace:
			if cur != nil && cur.choices != nil {
				d := 1
				if msg.Type == tea.KeyLeft {
					d = len(cur.choices) - 1
				}
				cur.choice = (cur.choice + d) % len(cur.choices)
			} else if cur != nil && msg.Type == tea.KeySpace {
				cur.text += " "
			} else if cur == nil && msg.Type == tea.KeySpace {
				return f.done(m)
			}
		case tea.KeyBackspace:
			if cur != nil && cur.choices == nil && cur.text != "" {
				r := []rune(cur.text)
				cur.text = string(r[:len(r)-1])
			}
		case tea.KeyCtrlU:
			if cur != nil && cur.choices == nil {
				cur.text = ""
			}
		case tea.KeyRunes:
			if cur != nil && cur.choices == nil {
				cur.text += string(msg.Runes)
			}
		}
	case tea.MouseMsg:
		if msg.Button == tea.MouseButtonLeft && msg.Action == tea.MouseActionPress {
			for i, l := range f.lineOf {
				if msg.Y-bodyTop == l {
					if i == len(f.fields) {
						return f.done(m)
					}
					if f.focus == i && f.fields[i].choices != nil {
						c := f.fields[i]
						c.choice = (c.choice + 1) % len(c.choices)
					}
					f.focus = i
				}
			}
		}
	}
	return m, nil
}

func (f *form) done(m *Model) (tea.Model, tea.Cmd) {
	if err := f.submit(); err != nil {
		f.err = usermsg.Text(err)
		return m, nil
	}
	f.err = ""
	if m.scr == scForm {
		// submit did not move on by itself: go to the summary.
		m.scr = scSummary
	}
	return m, m.pendingCmd()
}

func (f *form) view(m *Model) (string, []string, string) {
	body := append([]string{}, f.head...)
	body = append(body, "")
	f.lineOf = f.lineOf[:0]
	for i, fl := range f.fields {
		mark := "  "
		if i == f.focus {
			mark = "> "
		}
		f.lineOf = append(f.lineOf, len(body))
		val := fl.value()
		if fl.choices != nil {
			val = "< " + val + " >"
		} else {
			w := max(10, m.w-20)
			// The end of a text being typed stays in view; others keep
			// both ends.
			shown := fitMiddle(val, w)
			if i == f.focus {
				shown = fitMiddleLeft(val+"_", w)
			}
			val = "[" + pad(shown, w) + "]"
		}
		body = append(body, fmt.Sprintf("%s%-14s %s", mark, fl.label, val))
		if fl.note != nil {
			for _, l := range wrap(fl.note(), m.w-19) {
				body = append(body, strings.Repeat(" ", 17)+l)
			}
		}
	}
	body = append(body, "")
	f.lineOf = append(f.lineOf, len(body))
	btn := "  [ Continue ]"
	if f.focus == len(f.fields) {
		btn = "> [ Continue ]"
	}
	body = append(body, btn)
	if f.err != "" {
		body = append(body, "")
		for _, l := range wrap("! "+f.err, m.w-2) {
			body = append(body, "  "+l)
		}
	}
	keys := "Up/Down field  type to edit  Left/Right change choice  Enter next  Esc back"
	return f.title, body, keys
}

// fitMiddleLeft keeps the end of a text being typed visible.
func fitMiddleLeft(s string, w int) string {
	r := []rune(s)
	if len(r) <= w {
		return s
	}
	return "..." + string(r[len(r)-w+3:])
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// defaultImageName names a new image after the partition's label (or its
// name) and the time.
func defaultImageName(p *Part) string {
	base := p.Label
	if base == "" {
		base = baseName(p.Spec)
	}
	base = strings.Trim(unsafeName.ReplaceAllString(base, "_"), "_.")
	if base == "" {
		base = "partition"
	}
	return base + "-" + time.Now().Format("20060102-1504") + ".cbi"
}

// unusedName adds -2, -3, ... before the extension while name exists.
func unusedName(name string) string {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for i := 2; i < 1000; i++ {
		if _, err := os.Lstat(name); err != nil {
			return name
		}
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
	return name
}

var compressChoices = []string{"zstd:3 (default)", "zstd:1 (fastest)", "zstd:9 (smaller)", "zstd:19 (smallest, slow)", "none"}

func backupForm(m *Model, a *action) *form {
	p := a.part
	dir := m.imageDir()
	free := map[string][2]int64{}
	freeOf := func(d string) (int64, bool) {
		if v, ok := free[d]; ok {
			return v[0], v[1] != 0
		}
		n, fat := freeSpace(d)
		b := int64(0)
		if fat {
			b = 1
		}
		free[d] = [2]int64{n, b}
		return n, fat
	}
	_, dirFAT := freeOf(dir)
	imgF := &field{label: "Image file", text: unusedName(filepath.Join(dir, defaultImageName(p)))}
	imgF.note = func() string {
		if part, _, ok := locate.Split(imgF.text); ok {
			return "inside the file system of " + part + ", written raw; " +
				"when that is the source, the image leaves out its own clusters"
		}
		d := filepath.Dir(imgF.text)
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "! the directory " + d + " does not exist"
		}
		n, _ := freeOf(d)
		s := fmt.Sprintf("free there: %s; the backup holds at most %s before compression", human(n), human(p.Used))
		if n >= 0 && p.Used > n {
			s += "  ! MAY NOT FIT"
		}
		if _, err := os.Stat(imgF.text); err == nil {
			s += "  ! EXISTS: will be replaced"
		}
		return s
	}
	comp := &field{label: "Compression", choices: compressChoices}
	split := &field{label: "Split size"}
	split.note = func() string { return "empty: one file; e.g. 4000M (needed on FAT32), 650M for CDs" }
	if dirFAT {
		split.text = "4000M"
		split.note = func() string { return "the image directory is on FAT: files must stay below 4 GiB" }
	}
	defX := &field{label: "Default excl.", choices: []string{"on", "off"}}
	defX.note = func() string {
		if defX.choice == 0 {
			return "leaves out hiberfil.sys, pagefile.sys, swapfile.sys and cbimg images"
		}
		return "images everything, also hiberfil.sys, pagefile.sys, swapfile.sys"
	}
	extra := &field{label: "Also exclude"}
	extra.note = func() string { return "globs separated by commas, e.g. *.tmp, /Users/*/AppData/Local/Temp" }
	f := &form{
		title:  "Back up " + p.Spec,
		head:   []string{"  Source " + p.Spec, "         " + partLine(p)},
		fields: []*field{imgF, comp, split, defX, extra},
	}
	f.submit = func() error {
		pl := &plan{act: a, image: strings.TrimSpace(imgF.text), noDefault: defX.choice == 1}
		if pl.image == "" {
			return fmt.Errorf("name the image file")
		}
		if _, _, inPart := locate.Split(pl.image); inPart {
			// PARTITION:PATH: backupcore writes the image inside that
			// partition's file system, also into the source itself.
		} else if st, err := os.Stat(filepath.Dir(pl.image)); err != nil || !st.IsDir() {
			return fmt.Errorf("the directory %s does not exist", filepath.Dir(pl.image))
		}
		if st, err := os.Stat(pl.image); err == nil && st.IsDir() {
			return fmt.Errorf("%s is a directory; name a file in it", pl.image)
		}
		pl.compress = strings.Fields(comp.value())[0]
		pl.codec, pl.level = image.CodecZstd, image.DefaultLevel
		if pl.compress == "none" {
			pl.codec, pl.level = image.CodecNone, 0
		} else if n, err := strconv.Atoi(strings.TrimPrefix(pl.compress, "zstd:")); err == nil {
			pl.level = n
		}
		if s := strings.TrimSpace(split.text); s != "" {
			n, err := units.ParseSize(s)
			if err != nil {
				return err
			}
			if n < 1<<20 {
				return fmt.Errorf("split volumes must be at least 1 MiB")
			}
			pl.split, pl.splitText = n, s
		}
		for _, x := range strings.Split(extra.text, ",") {
			if x = strings.TrimSpace(x); x != "" {
				if err := backupcore.ValidatePattern(x); err != nil {
					return err
				}
				pl.excludes = append(pl.excludes, x)
			}
		}
		m.plan = pl
		return nil
	}
	return f
}

// defaultMountpoint is a new directory under the temporary directory, or
// on Windows the last free drive letter.
func defaultMountpoint(img *Img) string {
	if runtime.GOOS == "windows" {
		for c := 'Z'; c >= 'D'; c-- {
			if _, err := os.Stat(string(c) + `:\`); err != nil {
				return string(c) + ":"
			}
		}
		return "X:"
	}
	base := strings.TrimSuffix(filepath.Base(img.Path), filepath.Ext(img.Path))
	base = strings.Trim(unsafeName.ReplaceAllString(base, "_"), "_.")
	return filepath.Join(os.TempDir(), "cbimg-"+base)
}

func mountForm(m *Model, a *action) *form {
	mp := &field{label: "Mount point", text: defaultMountpoint(a.img)}
	mp.note = func() string {
		if runtime.GOOS == "windows" {
			return "a free drive letter such as X:, or a path that does not exist yet"
		}
		return "an empty directory; it is made if missing. The image appears there as volume.raw, read-only."
	}
	f := &form{
		title:  "Mount " + m.shortImage(a.img),
		head:   []string{"  Image " + a.img.Location},
		fields: []*field{mp},
	}
	f.submit = func() error {
		pt := strings.TrimSpace(mp.text)
		if pt == "" {
			return fmt.Errorf("name a mount point")
		}
		m.plan = &plan{act: a, mountpoint: pt}
		m.pending = m.start(mountJob(m, a.img, pt))
		return nil
	}
	return f
}

// addForm names one more disk, partition or volume file to scan: on
// Windows nothing is listed by itself, and a disk image may be anywhere.
func addForm(m *Model) *form {
	name := &field{label: "Disk or file"}
	name.note = func() string {
		if runtime.GOOS == "windows" {
			return `e.g. \\.\PhysicalDrive1 (diskpart's "list disk" numbers), a drive such as E:, DISK@2 for a disk's second partition, or a disk or volume image file`
		}
		return "e.g. /dev/sdb, /dev/sdb2, DISK@2 for a disk's second partition, or a disk or volume image file"
	}
	f := &form{
		title:  "Add a disk, partition or file",
		head:   []string{"  Name something to scan besides what the menu lists."},
		fields: []*field{name},
	}
	f.submit = func() error {
		spec := strings.TrimSpace(name.text)
		if spec == "" {
			return fmt.Errorf("name a disk, partition or file")
		}
		if d := scanDisk(spec); d.Err != nil {
			return d.Err
		}
		if !slices.Contains(m.cfg.added, spec) {
			m.cfg.added = append(m.cfg.added, spec)
		}
		m.pending = m.rescan()
		return nil
	}
	return f
}
