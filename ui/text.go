package ui

import (
	"fmt"
	"github.com/cbimg/cbimg/internal/units"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

// Screens use ASCII only: a Linux console's font and a Windows console's
// code page both have it, and nothing relies on colour.

// clock formats a duration as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// fit cuts s to at most w characters, marking a cut with "...".
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	r := []rune(s)
	if w <= 3 {
		return string(r[:w])
	}
	return string(r[:w-3]) + "..."
}

// fitMiddle cuts the middle out of a long path, keeping both ends.
func fitMiddle(s string, w int) string {
	r := []rune(s)
	if len(r) <= w {
		return s
	}
	if w <= 5 {
		return fit(s, w)
	}
	head := (w - 3) / 3
	tail := w - 3 - head
	return string(r[:head]) + "..." + string(r[len(r)-tail:])
}

// pad fills s with spaces to w characters.
func pad(s string, w int) string {
	n := utf8.RuneCountInString(s)
	if n >= w {
		return s
	}
	return s + strings.Repeat(" ", w-n)
}

// shellQuote quotes an argument for the system's shell when needed: a
// POSIX shell, or cmd.exe on Windows.
func shellQuote(s string) string {
	if runtime.GOOS == "windows" {
		return cmdQuote(s)
	}
	return posixQuote(s)
}

func cmdQuote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t&|<>^()%!\"") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func posixQuote(s string) string {
	if s == "" {
		return "''"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:@=+,%\\", c)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// commandLine joins program and arguments into one shell line.
func commandLine(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// bar draws a progress bar of w characters.
func bar(done, total int64, w int) string {
	if w < 3 {
		return ""
	}
	in := w - 2
	n := 0
	if total > 0 {
		n = int(float64(in) * float64(min(done, total)) / float64(total))
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", in-n) + "]"
}

// wrap breaks s into lines of at most w characters at spaces.
func wrap(s string, w int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			switch {
			case line == "":
				line = word
			case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= w:
				line += " " + word
			default:
				out = append(out, line)
				line = word
			}
			for utf8.RuneCountInString(line) > w {
				r := []rune(line)
				out = append(out, string(r[:w]))
				line = string(r[w:])
			}
		}
		out = append(out, line)
	}
	return out
}

// wrapCommand breaks a shell line at spaces into lines of at most w
// characters, each but the last ending in a backslash, so that it pastes as one
// command.
func wrapCommand(s string, w int) []string {
	cont := ` \`
	if runtime.GOOS == "windows" {
		cont = " ^" // cmd.exe
	}
	lines := wrap(s, w-2)
	for i := range len(lines) - 1 {
		lines[i] += cont
	}
	return lines
}

func human(n int64) string { return units.Human(n) }
