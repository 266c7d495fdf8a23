// Package noquery keeps the terminal libraries from asking the terminal
// anything. Bubble Tea's package init asks Lip Gloss whether the background
// is dark, which sends OSC 11 and a cursor-position request (DSR) to a
// terminal on standard output and waits up to 5 s for the answer: a serial
// or WinPE console that does not answer shows the requests as garbage and
// stalls every command. The menu draws without colours, so the answer is
// never needed; fixing it here, before Bubble Tea's init, stops the query.
//
// Go initializes ready packages in import-path order, and this package's
// path sorts before github.com/charmbracelet/..., so importing it anywhere
// in the program is enough.
package noquery

import "github.com/charmbracelet/lipgloss"

func init() { lipgloss.SetHasDarkBackground(true) }
