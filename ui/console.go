package ui

import (
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// A Windows console that does not interpret escape sequences (consoles
// before Windows 10, and Wine's) stores bubbletea's cursor movements and
// erasures as text, so its idea of the cursor drifts and lines wrap and
// scroll: the screen garbles. For such a console, cellScreen plays the
// terminal: it applies the few sequences bubbletea sends to a copy of the
// screen and hands whole changed rows to a backend that writes them with
// the console API, which every Windows console has.

// cellBackend draws on a console without escape sequences.
type cellBackend interface {
	// enterAlt shows an empty screen of its own and returns its size.
	enterAlt() (w, h int)
	// leaveAlt shows the screen of before enterAlt again.
	leaveAlt()
	// size is the current size of the screen enterAlt showed.
	size() (w, h int)
	// writeRows replaces rows y, y+1, ... of that screen, in one go so
	// that no half-drawn screen is seen.
	writeRows(y int, rows [][]rune)
	// setCursor places and shows or hides the cursor.
	setCursor(x, y int, visible bool)
	// writeText writes plain text where the cursor is, outside that screen.
	writeText(s string)
}

// cellScreen is an io.Writer for tea.WithOutput.
type cellScreen struct {
	mu      sync.Mutex
	be      cellBackend
	alt     bool
	w, h    int
	cells   [][]rune
	dirty   []bool
	x, y    int
	visible bool
	moved   bool
	pending []byte // an escape sequence cut by the end of a write
}

func newCellScreen(be cellBackend) *cellScreen {
	return &cellScreen{be: be, visible: true}
}

// Write applies bubbletea's output to the screen.
func (s *cellScreen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := p
	if len(s.pending) > 0 {
		b = append(s.pending, p...)
		s.pending = nil
	}
	var plain strings.Builder // text outside the alternate screen
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == 0x1b:
			n := s.escape(b[i:])
			if n == 0 {
				s.pending = append([]byte(nil), b[i:]...)
				i = len(b)
				continue
			}
			i += n
		case !s.alt:
			if c == '\r' || c == '\n' || c >= 0x20 {
				plain.WriteByte(c)
			}
			i++
		case c == '\r':
			s.x, s.moved = 0, true
			i++
		case c == '\n':
			s.lineFeed()
			i++
		case c == '\b':
			s.x, s.moved = max(0, min(s.x, s.w-1)-1), true
			i++
		case c < 0x20 || c == 0x7f:
			i++
		default:
			if !utf8.FullRune(b[i:]) {
				s.pending = append([]byte(nil), b[i:]...)
				i = len(b)
				continue
			}
			r, n := utf8.DecodeRune(b[i:])
			s.put(r)
			i += n
		}
		if !s.alt && plain.Len() > 0 && i < len(b) && b[i] == 0x1b {
			s.be.writeText(plain.String())
			plain.Reset()
		}
	}
	if plain.Len() > 0 {
		s.be.writeText(plain.String())
	}
	s.flush()
	return len(p), nil
}

// escape applies the sequence at the start of b and returns its length, 0
// when b ends before the sequence does.
func (s *cellScreen) escape(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '[':
		for j := 2; j < len(b); j++ {
			if c := b[j]; c >= 0x40 && c <= 0x7e {
				s.csi(string(b[2:j]), c)
				return j + 1
			} else if c < 0x20 || j > 64 {
				return j // not a sequence we know: drop what was read
			}
		}
		return 0
	case ']': // a window title: ends with BEL or ESC \
		for j := 2; j < len(b); j++ {
			if b[j] == 0x07 {
				return j + 1
			}
			if b[j] == 0x1b && j+1 < len(b) && b[j+1] == '\\' {
				return j + 2
			}
			if j > 1024 {
				return j
			}
		}
		return 0
	}
	return 2
}

func (s *cellScreen) csi(params string, final byte) {
	private := strings.HasPrefix(params, "?")
	var n []int
	for _, f := range strings.Split(strings.TrimPrefix(params, "?"), ";") {
		v, _ := strconv.Atoi(f)
		n = append(n, v)
	}
	arg := func(i, def int) int {
		if i < len(n) && n[i] > 0 {
			return n[i]
		}
		return def
	}
	if private {
		if final != 'h' && final != 'l' {
			return
		}
		on := final == 'h'
		for _, v := range n {
			switch v {
			case 1049, 1047, 47:
				if on && !s.alt {
					s.alt = true
					s.resize(s.be.enterAlt())
					s.x, s.y, s.moved = 0, 0, true
				} else if !on && s.alt {
					s.alt = false
					s.be.leaveAlt()
				}
			case 25:
				s.visible, s.moved = on, true
			}
			// Mouse and paste modes need nothing: the console reports
			// the mouse as input records.
		}
		return
	}
	if !s.alt {
		return
	}
	switch final {
	case 'H', 'f':
		s.sync()
		s.y, s.x = arg(0, 1)-1, arg(1, 1)-1
	case 'A':
		s.y -= arg(0, 1)
	case 'B':
		s.y += arg(0, 1)
	case 'C':
		s.x += arg(0, 1)
	case 'D':
		s.x = min(s.x, s.w-1) - arg(0, 1)
	case 'G':
		s.x = arg(0, 1) - 1
	case 'K':
		switch arg(0, 0) {
		case 0:
			s.clear(s.y, s.x, s.w)
		case 1:
			s.clear(s.y, 0, s.x+1)
		case 2:
			s.clear(s.y, 0, s.w)
		}
	case 'J':
		from, to := 0, s.h
		switch arg(0, 0) {
		case 0:
			s.clear(s.y, s.x, s.w)
			from = s.y + 1
		case 1:
			s.clear(s.y, 0, s.x+1)
			to = s.y
		}
		for y := from; y < to; y++ {
			s.clear(y, 0, s.w)
		}
	default:
		return // colours, scroll regions: not used by the menu
	}
	s.x, s.y, s.moved = max(0, min(s.x, s.w)), max(0, min(s.y, s.h-1)), true
}

// sync follows a change of the console's size; bubbletea learns of it
// from the console's input and redraws from the top.
func (s *cellScreen) sync() {
	if w, h := s.be.size(); w > 0 && h > 0 && (w != s.w || h != s.h) {
		s.resize(w, h)
	}
}

func (s *cellScreen) resize(w, h int) {
	if w <= 0 || h <= 0 {
		w, h = 80, 25
	}
	s.w, s.h = w, h
	s.cells = make([][]rune, h)
	s.dirty = make([]bool, h)
	for y := range s.cells {
		s.cells[y] = []rune(strings.Repeat(" ", w))
		s.dirty[y] = true
	}
}

func (s *cellScreen) clear(y, from, to int) {
	if y < 0 || y >= s.h {
		return
	}
	for x := max(0, from); x < min(to, s.w); x++ {
		s.cells[y][x] = ' '
	}
	s.dirty[y] = true
}

// put writes one character; past the last column it is dropped, as
// bubbletea cuts lines to the width anyway.
func (s *cellScreen) put(r rune) {
	if s.x < s.w && s.y < s.h {
		s.cells[s.y][s.x] = r
		s.dirty[s.y] = true
	}
	s.x = min(s.x+1, s.w)
	s.moved = true
}

func (s *cellScreen) lineFeed() {
	s.moved = true
	if s.y < s.h-1 {
		s.y++
		return
	}
	copy(s.cells, s.cells[1:])
	s.cells[s.h-1] = []rune(strings.Repeat(" ", s.w))
	for y := range s.dirty {
		s.dirty[y] = true
	}
}

// flush writes the changed rows and places the cursor.
func (s *cellScreen) flush() {
	if !s.alt {
		return
	}
	from, to := -1, -1
	for y, d := range s.dirty {
		if d {
			if from < 0 {
				from = y
			}
			to = y
			s.dirty[y] = false
		}
	}
	if from >= 0 {
		s.be.writeRows(from, s.cells[from:to+1])
	}
	if s.moved {
		s.be.setCursor(min(s.x, s.w-1), s.y, s.visible)
		s.moved = false
	}
}

// rows is the screen as text, for tests.
func (s *cellScreen) rows() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.cells))
	for y, r := range s.cells {
		out[y] = strings.TrimRight(string(r), " ")
	}
	return out
}
