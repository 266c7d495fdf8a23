package main

import (
	"errors"
	"fmt"
	"github.com/cbimg/cbimg/internal/usermsg"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Messages for people: the one place that turns an error into the line
// printed after "cbimg: ". The packages below cmd/cbimg prefix their
// sentinel errors with their own name (Go's convention); a user is told
// what is wrong, not where in the code.

// userMessage is the text printed for err.
func userMessage(err error) string { return usermsg.Text(err) }

// imageErr names the image an error is about, unless the message already
// starts with its name.
func imageErr(name string, err error) error {
	if err == nil || strings.HasPrefix(userMessage(err), name+":") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// notInImage is a path the user typed that the image does not hold.
type notInImage struct {
	arg string
	err error
}

func (e *notInImage) Error() string { return e.arg + ": no such file or directory in the image" }
func (e *notInImage) Unwrap() error { return e.err }

// pathErr words a lookup error inside an image with the path as typed.
func pathErr(arg string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &notInImage{arg, err}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", arg, pe.Err)
	}
	return err
}

// plural is "1 file", "2 files".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// seconds shows a duration as people read it: "350 ms", "4.2 s", "3m12s".
func seconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// argCount rewords cobra's argument-count errors.
var argCount = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^accepts (\d+) arg\(s\), received (\d+)$`), "takes $1 arguments, got $2"},
	{regexp.MustCompile(`^requires at least (\d+) arg\(s\), only received (\d+)$`), "takes at least $1 arguments, got $2"},
	{regexp.MustCompile(`^accepts between (\d+) and (\d+) arg\(s\), received (\d+)$`), "takes $1 to $2 arguments, got $3"},
	{regexp.MustCompile(`^unknown command "([^"]*)" for "[^"]*"`), `unknown command "$1"`},
}

var oneArgs = strings.NewReplacer("takes 1 arguments", "takes 1 argument", "at least 1 arguments", "at least 1 argument", "got 1 arguments", "got 1 argument")

// usageArgs wraps every command's argument check so that a wrong count is
// a usage error (exit 2) in plain words.
func usageArgs(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				s := err.Error()
				for _, a := range argCount {
					s = a.re.ReplaceAllString(s, a.repl)
				}
				return usageError{fmt.Errorf("%s: %s", c.Name(), oneArgs.Replace(s))}
			}
			return nil
		}
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%s: %w", c.Name(), err)}
	})
}

// exitCodesNote ends every command's long help: the table itself is in
// "cbimg --help" only.
const exitCodesNote = `The exit codes are listed in "cbimg --help".`

func noteExitCodes(root *cobra.Command) {
	for _, c := range root.Commands() {
		// A command written with the table in its help gets the note.
		c.Long = strings.Replace(c.Long, exitHelp, "", 1)
		if c.Long != "" && !strings.Contains(c.Long, exitCodesNote) {
			c.Long = strings.TrimRight(c.Long, "\n") + "\n\n" + exitCodesNote
		}
		noteExitCodes(c)
	}
}

// printError prints err for people, and for a usage error the command's
// usage line and where to read more.
func printError(w io.Writer, root, cmd *cobra.Command, err error, code int) {
	msg := userMessage(err)
	if strings.HasPrefix(msg, "unknown command ") {
		for _, a := range argCount {
			msg = a.re.ReplaceAllString(msg, a.repl)
		}
	}
	fmt.Fprintln(w, "cbimg:", strings.TrimRight(msg, "\n"))
	if code != exitUsage {
		return
	}
	if cmd == nil || cmd == root {
		fmt.Fprintln(w, "Usage: cbimg COMMAND [ARGUMENTS] [flags]")
		fmt.Fprintln(w, `See "cbimg --help" for the commands.`)
		return
	}
	fmt.Fprintln(w, "Usage:", cmd.UseLine())
	fmt.Fprintf(w, "See \"%s --help\".\n", cmd.CommandPath())
}
