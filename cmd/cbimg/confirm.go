package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// overwrite is the one place that decides whether something that already
// exists may be overwritten. Every command that overwrites calls ask:
//
//   - with the command's consent flag (--yes, --overwrite) set: yes;
//   - with standard input a terminal: the question is asked there and the
//     answer must be typed (the expected word, or "y"/"yes" when none);
//   - otherwise (a script, cron, </dev/null): refused with exit 4 and a
//     message that names the flag to add.
type overwrite struct {
	Yes  bool   // the consent flag was given
	Flag string // its name, e.g. "--yes"

	In       io.Reader // where the answer is read; os.Stdin when nil
	Out      io.Writer // where the question goes; os.Stderr when nil
	Terminal *bool     // whether In is a terminal; asked of os.Stdin when nil
}

// ask returns nil when what may be overwritten. question describes what would
// be lost; expect is the word to type back ("" accepts y or yes).
func (o overwrite) ask(what, question, expect string) error {
	if o.Yes {
		return nil
	}
	in, out := o.In, o.Out
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stderr
	}
	tty := false
	if o.Terminal != nil {
		tty = *o.Terminal
	} else if f, ok := in.(*os.File); ok {
		tty = isTerminal(f)
	}
	if !tty {
		return notConfirmed(fmt.Sprintf("%s; nothing written (no terminal to ask on: add %s to overwrite)", what, o.Flag))
	}
	fmt.Fprintln(out, question)
	if expect == "" {
		fmt.Fprint(out, "Overwrite? [y/N] ")
	} else {
		fmt.Fprintf(out, "Type %s to continue: ", expect)
	}
	line, _ := bufio.NewReader(in).ReadString('\n')
	got := strings.TrimSpace(line)
	if expect == "" && (strings.EqualFold(got, "y") || strings.EqualFold(got, "yes")) || expect != "" && got == expect {
		return nil
	}
	return notConfirmed(fmt.Sprintf("%s; not confirmed, nothing written", what))
}

// notConfirmed is a refusal to overwrite; it exits with the "refused for
// safety" code.
type notConfirmed string

func (e notConfirmed) Error() string        { return string(e) }
func (e notConfirmed) Is(target error) bool { return target == errNotConfirmed }
