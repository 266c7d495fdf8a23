//go:build windows

package ui

import (
	"os"
	"unicode/utf16"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	kernel32                         = windows.NewLazySystemDLL("kernel32.dll")
	procWriteConsoleOutputCharacterW = kernel32.NewProc("WriteConsoleOutputCharacterW")
	procWriteConsoleOutputW          = kernel32.NewProc("WriteConsoleOutputW")
	procCreateConsoleScreenBuffer    = kernel32.NewProc("CreateConsoleScreenBuffer")
	procSetConsoleActiveScreenBuffer = kernel32.NewProc("SetConsoleActiveScreenBuffer")
	procSetConsoleScreenBufferSize   = kernel32.NewProc("SetConsoleScreenBufferSize")
	procGetConsoleCursorInfo         = kernel32.NewProc("GetConsoleCursorInfo")
	procSetConsoleCursorInfo         = kernel32.NewProc("SetConsoleCursorInfo")
)

// coord packs a COORD, which the console functions take by value.
func coord(x, y int) uintptr {
	c := windows.Coord{X: int16(x), Y: int16(y)}
	return uintptr(*(*uint32)(unsafe.Pointer(&c)))
}

// cellConsole returns a cellScreen, and the console's size, when standard
// output is a console that accepts the escape-sequence mode but prints the
// sequences as text (Wine's console), or refuses that mode. It returns nil
// when the console interprets them (Windows 10 and later, Windows
// Terminal): bubbletea then draws as on any terminal.
func cellConsole() (*cellScreen, int, int) {
	out := windows.Handle(os.Stdout.Fd())
	var mode uint32
	if windows.GetConsoleMode(out, &mode) != nil {
		return nil, 0, 0
	}
	be := &winConsole{main: out}
	if mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING == 0 {
		if windows.SetConsoleMode(out, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING) != nil {
			w, h := be.window(out)
			return newCellScreen(be), w, h
		}
		// bubbletea sets the mode itself when it draws with sequences.
		defer windows.SetConsoleMode(out, mode)
	}
	if interpretsVT(out) {
		return nil, 0, 0
	}
	w, h := be.window(out)
	return newCellScreen(be), w, h
}

// interpretsVT writes an attribute reset, which a console that interprets
// sequences does not show, and sees whether the cursor moved. If it did,
// the three characters are blanked and the cursor put back.
func interpretsVT(h windows.Handle) bool {
	var before, after windows.ConsoleScreenBufferInfo
	if windows.GetConsoleScreenBufferInfo(h, &before) != nil {
		return true // cannot tell: leave it to bubbletea
	}
	probe := utf16.Encode([]rune("\x1b[m"))
	var n uint32
	if windows.WriteConsole(h, &probe[0], uint32(len(probe)), &n, nil) != nil ||
		windows.GetConsoleScreenBufferInfo(h, &after) != nil {
		return true
	}
	if after.CursorPosition == before.CursorPosition {
		return true
	}
	p := before.CursorPosition
	writeChars(h, []rune("   "), int(p.X), int(p.Y))
	windows.SetConsoleCursorPosition(h, p)
	return false
}

func writeChars(h windows.Handle, r []rune, x, y int) {
	u := utf16.Encode(r)
	if len(u) == 0 {
		return
	}
	var n uint32
	procWriteConsoleOutputCharacterW.Call(uintptr(h), uintptr(unsafe.Pointer(&u[0])), uintptr(len(u)), coord(x, y), uintptr(unsafe.Pointer(&n)))
}

// winConsole draws with the console API. The menu's screen is a screen
// buffer of its own, the console's counterpart of a terminal's alternate
// screen: leaving it shows the console as it was.
type winConsole struct {
	main, alt windows.Handle
	left, top int // the visible window's corner in the buffer
	visible   int // cursor shown: 1, hidden: 0, unknown: -1
}

type consoleCursorInfo struct {
	Size    uint32
	Visible int32
}

// window is the size of the visible part of a screen buffer; 80x25 when
// the console does not say.
func (c *winConsole) window(h windows.Handle) (int, int) {
	var bi windows.ConsoleScreenBufferInfo
	if windows.GetConsoleScreenBufferInfo(h, &bi) != nil {
		return 80, 25
	}
	w, ht := int(bi.Window.Right-bi.Window.Left)+1, int(bi.Window.Bottom-bi.Window.Top)+1
	if w <= 1 || ht <= 1 {
		return 80, 25
	}
	c.left, c.top = int(bi.Window.Left), int(bi.Window.Top)
	return w, ht
}

func (c *winConsole) enterAlt() (int, int) {
	const consoleTextmodeBuffer = 1
	c.visible = -1
	h, _, _ := procCreateConsoleScreenBuffer.Call(windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, 0, consoleTextmodeBuffer, 0)
	if nh := windows.Handle(h); nh != 0 && nh != windows.InvalidHandle {
		if ok, _, _ := procSetConsoleActiveScreenBuffer.Call(h); ok != 0 {
			c.alt = nh
			// No scrollback on the menu's screen (refused when the
			// window would not fit; then the menu uses the window).
			w, ht := c.window(nh)
			procSetConsoleScreenBufferSize.Call(h, coord(w, ht))
		} else {
			windows.CloseHandle(nh)
		}
	}
	if c.alt == 0 {
		c.alt = c.main // draw over the console's own buffer
	}
	return c.window(c.alt)
}

func (c *winConsole) leaveAlt() {
	if c.alt != 0 && c.alt != c.main {
		procSetConsoleActiveScreenBuffer.Call(uintptr(c.main))
		windows.CloseHandle(c.alt)
	}
	c.alt = 0
	c.visible = -1
}

func (c *winConsole) target() windows.Handle {
	if c.alt != 0 {
		return c.alt
	}
	return c.main
}

func (c *winConsole) size() (int, int) { return c.window(c.target()) }

type charInfo struct {
	Char uint16
	Attr uint16
}

func (c *winConsole) writeRows(y int, rows [][]rune) {
	h := c.target()
	var bi windows.ConsoleScreenBufferInfo
	attr := uint16(0x07) // light grey on black
	if windows.GetConsoleScreenBufferInfo(h, &bi) == nil {
		attr = bi.Attributes
	}
	w := 0
	for _, r := range rows {
		w = max(w, len(r))
	}
	if w == 0 {
		return
	}
	buf := make([]charInfo, w*len(rows))
	for i, r := range rows {
		for x := range w {
			ch := ' '
			if x < len(r) && r[x] <= 0xffff {
				ch = r[x]
			}
			buf[i*w+x] = charInfo{uint16(ch), attr}
		}
	}
	rect := windows.SmallRect{Left: int16(c.left), Top: int16(c.top + y), Right: int16(c.left + w - 1), Bottom: int16(c.top + y + len(rows) - 1)}
	procWriteConsoleOutputW.Call(uintptr(h), uintptr(unsafe.Pointer(&buf[0])), coord(w, len(rows)), coord(0, 0), uintptr(unsafe.Pointer(&rect)))
}

func (c *winConsole) setCursor(x, y int, visible bool) {
	h := c.target()
	windows.SetConsoleCursorPosition(h, windows.Coord{X: int16(c.left + x), Y: int16(c.top + y)})
	v := 0
	if visible {
		v = 1
	}
	if v == c.visible {
		return
	}
	var ci consoleCursorInfo
	if ok, _, _ := procGetConsoleCursorInfo.Call(uintptr(h), uintptr(unsafe.Pointer(&ci))); ok == 0 || ci.Size == 0 {
		ci.Size = 25
	}
	ci.Visible = int32(v)
	procSetConsoleCursorInfo.Call(uintptr(h), uintptr(unsafe.Pointer(&ci)))
	c.visible = v
}

func (c *winConsole) writeText(s string) {
	u := utf16.Encode([]rune(s))
	if len(u) == 0 {
		return
	}
	var n uint32
	windows.WriteConsole(c.main, &u[0], uint32(len(u)), &n, nil)
}
