package main

import (
	"errors"
	"strings"
	"testing"
)

// The one overwrite decision: consent flag, terminal answer, or refusal
// naming the flag.
func TestOverwriteDecision(t *testing.T) {
	tty, notty := true, false
	for _, c := range []struct {
		name   string
		o      overwrite
		expect string
		ok     bool
		msg    string
	}{
		{"flag given", overwrite{Yes: true, Flag: "--yes", Terminal: &notty}, "", true, ""},
		{"no terminal", overwrite{Flag: "--overwrite", In: strings.NewReader("y\n"), Terminal: &notty}, "", false, "add --overwrite"},
		{"y typed", overwrite{Flag: "--yes", In: strings.NewReader("y\n"), Terminal: &tty}, "", true, ""},
		{"YES typed", overwrite{Flag: "--yes", In: strings.NewReader("YES\n"), Terminal: &tty}, "", true, ""},
		{"enter only", overwrite{Flag: "--yes", In: strings.NewReader("\n"), Terminal: &tty}, "", false, "not confirmed"},
		{"end of input", overwrite{Flag: "--yes", In: strings.NewReader(""), Terminal: &tty}, "", false, "not confirmed"},
		{"name typed", overwrite{Flag: "--yes", In: strings.NewReader("/dev/sdc1\n"), Terminal: &tty}, "/dev/sdc1", true, ""},
		{"y is not the name", overwrite{Flag: "--yes", In: strings.NewReader("y\n"), Terminal: &tty}, "/dev/sdc1", false, "not confirmed"},
	} {
		var out strings.Builder
		c.o.Out = &out
		err := c.o.ask("x exists", "Replace x?", c.expect)
		if (err == nil) != c.ok || err != nil && (!errors.Is(err, errNotConfirmed) || !strings.Contains(err.Error(), c.msg)) {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && exitCode(t.Context(), err) != exitRefused {
			t.Errorf("%s: exit %d, want %d", c.name, exitCode(t.Context(), err), exitRefused)
		}
		if *c.o.Terminal && !c.o.Yes && !strings.Contains(out.String(), "Replace x?") {
			t.Errorf("%s: question not asked: %q", c.name, out.String())
		}
	}
}

// Go package names and repeated operations are taken out of messages.
func TestUserMessage(t *testing.T) {
	for in, want := range map[string]string{
		"restorecore: target is smaller than the file system":        "target is smaller than the file system",
		"x.cbi: image: truncated":                                    "x.cbi: truncated",
		"scan: volume: ntfs: bad record":                             "scan: ntfs: bad record",
		"image header at byte 0: not a cbimg image":                  "image header at byte 0: not a cbimg image",
		"browse: some files could not be extracted: 2 failed; first": "some files could not be extracted: 2 failed; first",
	} {
		if got := userMessage(errors.New(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
