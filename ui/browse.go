package ui

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/cbimg/cbimg/browse"
	tea "github.com/charmbracelet/bubbletea"
)

// browser lists the files inside an image, directory by directory.
type browser struct {
	img   *Img
	fsys  *browse.FS
	close func()
	dir   string // fs.FS path, "." for the root
	ents  []fs.DirEntry
	cur   int
	top   int
	err   string
	ask   *field // destination of an extraction, while asked for
}

func openBrowser(m *Model, img *Img) (*browser, error) {
	if m.br != nil {
		m.br.close()
		m.br = nil
	}
	rd, closeFn, err := openImage(img)
	if err != nil {
		return nil, err
	}
	fsys, err := browse.New(rd, rd.Header())
	if err != nil {
		closeFn()
		return nil, err
	}
	b := &browser{img: img, fsys: fsys, close: closeFn, dir: "."}
	b.load()
	return b, nil
}

func (b *browser) load() {
	ents, err := b.fsys.ReadDir(b.dir)
	b.ents, b.cur, b.top, b.err = ents, 0, 0, ""
	if err != nil {
		b.err = err.Error()
	}
}

func (b *browser) entry(i int) *browse.Entry {
	if i < 0 || i >= len(b.ents) {
		return nil
	}
	info, err := b.ents[i].Info()
	if err != nil {
		return nil
	}
	e, _ := info.Sys().(*browse.Entry)
	return e
}

// rows: ".." first unless at the root, then the entries.
func (b *browser) rows() int {
	if b.dir == "." {
		return len(b.ents)
	}
	return len(b.ents) + 1
}

func (b *browser) index(row int) int {
	if b.dir == "." {
		return row
	}
	return row - 1
}

func (b *browser) up() {
	if b.dir == "." {
		return
	}
	from := path.Base(b.dir)
	b.dir = path.Dir(b.dir)
	b.load()
	for i, e := range b.ents {
		if e.Name() == from {
			b.cur = i
			if b.dir != "." {
				b.cur++
			}
		}
	}
}

func (b *browser) open(m *Model) (tea.Model, tea.Cmd) {
	i := b.index(b.cur)
	if i < 0 {
		b.up()
		return m, nil
	}
	if i < len(b.ents) && b.ents[i].IsDir() {
		b.dir = path.Join(b.dir, b.ents[i].Name())
		b.load()
	}
	return m, nil
}

func (b *browser) update(m *Model, msg tea.Msg) (tea.Model, tea.Cmd) {
	if b.ask != nil {
		return b.updateAsk(m, msg)
	}
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "up", "k":
			b.cur = max(0, b.cur-1)
		case "down", "j":
			b.cur = min(b.rows()-1, b.cur+1)
		case "pgup":
			b.cur = max(0, b.cur-(m.bodyRows()-3))
		case "pgdown":
			b.cur = max(0, min(b.rows()-1, b.cur+(m.bodyRows()-3)))
		case "home":
			b.cur = 0
		case "end":
			b.cur = max(0, b.rows()-1)
		case "enter", "right", "l":
			return b.open(m)
		case "backspace", "left", "h":
			b.up()
		case "x":
			i := b.index(b.cur)
			if i >= 0 && i < len(b.ents) && !b.ents[i].IsDir() {
				b.ask = &field{label: "Extract to", text: m.imageDir()}
			} else {
				m.notice = "Choose a file to extract."
			}
		case "esc", "q":
			b.close()
			m.br = nil
			m.scr = scMenu
		}
	case tea.MouseMsg:
		switch {
		case msg.Button == tea.MouseButtonWheelUp && msg.Action == tea.MouseActionPress:
			b.cur = max(0, b.cur-1)
		case msg.Button == tea.MouseButtonWheelDown && msg.Action == tea.MouseActionPress:
			b.cur = min(b.rows()-1, b.cur+1)
		case msg.Button == tea.MouseButtonLeft && msg.Action == tea.MouseActionPress:
			i := b.top + msg.Y - bodyTop - 2
			if i >= 0 && i < b.rows() {
				if i == b.cur {
					return b.open(m)
				}
				b.cur = i
			}
		}
	}
	return m, nil
}

func (b *browser) updateAsk(m *Model, msg tea.Msg) (tea.Model, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	switch k.Type {
	case tea.KeyEsc:
		b.ask = nil
	case tea.KeyBackspace:
		if r := []rune(b.ask.text); len(r) > 0 {
			b.ask.text = string(r[:len(r)-1])
		}
	case tea.KeyCtrlU:
		b.ask.text = ""
	case tea.KeyRunes, tea.KeySpace:
		b.ask.text += string(k.Runes)
	case tea.KeyEnter:
		dir := b.ask.text
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			m.notice = dir + " is not a directory."
			return m, nil
		}
		b.ask = nil
		i := b.index(b.cur)
		name := path.Join(b.dir, b.ents[i].Name())
		return m, m.start(extractJob(m, b, name, filepath.Join(dir, b.ents[i].Name())))
	}
	return m, nil
}

func (b *browser) view(m *Model) (string, []string, string) {
	title := fmt.Sprintf("files in %s: /%s", m.shortImage(b.img), map[bool]string{true: "", false: b.dir}[b.dir == "."])
	body := []string{fmt.Sprintf("  %-*s %10s  %-16s", max(10, m.w-34), "NAME", "SIZE", "MODIFIED"), ""}
	if b.err != "" {
		body[1] = "  ! " + b.err
	}
	rows := m.bodyRows() - 2
	if b.ask != nil {
		rows -= 3
	}
	if b.cur < b.top {
		b.top = b.cur
	}
	if b.cur >= b.top+rows {
		b.top = b.cur - rows + 1
	}
	nameW := max(10, m.w-34)
	for r := b.top; r < b.rows() && r < b.top+rows; r++ {
		mark := "  "
		if r == b.cur {
			mark = "> "
		}
		i := b.index(r)
		if i < 0 {
			body = append(body, mark+"../")
			continue
		}
		e := b.entry(i)
		name := b.ents[i].Name()
		size, when, note := "", "", ""
		if e != nil {
			size = human(e.Size)
			if !e.Modified.IsZero() {
				when = e.Modified.Local().Format("2006-01-02 15:04")
			}
			if e.Excluded != "" {
				note = " (left out: " + e.Excluded + ")"
			}
			if e.Reparse {
				note = " (link)"
			}
		}
		if b.ents[i].IsDir() {
			name += "/"
			size = "<dir>"
		}
		body = append(body, fmt.Sprintf("%s%-*s %10s  %-16s%s", mark, nameW, fit(name, nameW), size, when, note))
	}
	keys := "Enter open  Backspace up  x extract file  Esc menu"
	if b.ask != nil {
		body = append(body, "", "  Extract "+b.ents[b.index(b.cur)].Name()+" to directory:", "  > "+b.ask.text+"_")
		keys = "type a directory  Enter extract  Esc cancel"
	}
	return title, body, keys
}

func extractJob(m *Model, b *browser, name, dest string) jobSpec {
	return jobSpec{
		title: "Extracting " + path.Base(name),
		what:  []string{"from /" + name, "to   " + dest},
		run: func(ctx context.Context, j *job) *result {
			r := &result{title: "Extract", status: "FAILED", back: scBrowse}
			err := extract(ctx, j, b.fsys, name, dest)
			switch {
			case err == nil:
				r.status = "OK"
				r.lines = []string{"Wrote " + dest + "."}
			case ctx.Err() != nil:
				r.status = "CANCELLED"
				r.lines = []string{"Cancelled; the partial file was removed."}
			default:
				r.lines = []string{err.Error()}
			}
			return r
		},
	}
}

// extract copies one file out of the image; a failed copy is removed.
func extract(ctx context.Context, j *job, fsys *browse.FS, name, dest string) (err error) {
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("%s exists; not overwritten", dest)
	}
	in, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dest)
		}
	}()
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			done += int64(n)
			j.progress("copy", done, st.Size())
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
