package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type restoreOptions struct {
	Yes      bool
	ZeroFree bool
	Resume   bool
	Journal  string
}

func newRestoreCommand(g *globalOptions) *cobra.Command {
	o := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore IMAGE TARGET",
		Short: "Write a partition back from an image",
		Long: `restore writes the partition held in IMAGE ("-" for standard input) to TARGET,
a block device or a file (created when missing). With a seekable IMAGE every
header, table and chunk checksum is checked before the first write. The target's
boot records are invalidated first and written last. On a terminal, restore asks
for confirmation unless --yes.

` + exitHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd, g, o, args[0], args[1])
		},
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&o.ZeroFree, "zero-free", false, "write zeros to free clusters (default: leave them as they are)")
	cmd.Flags().BoolVar(&o.Resume, "resume", false, "continue an interrupted restore from its journal")
	cmd.Flags().StringVar(&o.Journal, "journal", "", "progress journal for --resume (default: IMAGE.resume; \"none\" to keep none)")
	return cmd
}

func runRestore(cmd *cobra.Command, g *globalOptions, o *restoreOptions, imagePath, target string) error {
	p := newProgress(g)
	opts := restorecore.Options{
		Image: imagePath, Input: cmd.InOrStdin(), Target: target, ZeroFree: o.ZeroFree, Resume: o.Resume, Journal: o.Journal,
		Progress: func(pr restorecore.Progress) { p.update(pr.Phase, pr.Done, pr.Total) },
		Warn: func(s string) {
			if !g.Quiet {
				fmt.Fprintln(os.Stderr, "cbimg: warning:", s)
			}
		},
	}
	_, _, inPart := locate.Split(imagePath) // PARTITION:PATH has no directory for a journal
	if opts.Journal == "" && imagePath != "-" && !inPart {
		opts.Journal = imagePath + ".resume"
	} else if opts.Journal == "none" {
		opts.Journal = ""
	}
	interactive := !o.Yes && imagePath != "-" && term.IsTerminal(int(os.Stdin.Fd()))
	if interactive {
		opts.Confirm = func(pl restorecore.Plan) error {
			p.done()
			return confirm(os.Stdin, os.Stderr, pl)
		}
	}
	res, err := restorecore.Restore(cmd.Context(), opts)
	p.done()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if g.JSON {
		return printJSON(w, map[string]any{
			"image": imagePath, "target": target, "file_system": res.Header.FSName(),
			"bytes_written": res.Written, "bytes_zeroed": res.Zeroed, "seconds": res.Duration.Seconds(),
		})
	}
	say(g, w, "Restored %s to %s: %s written, %s zeroed in %.1fs\n", imagePath, target, human(res.Written), human(res.Zeroed), res.Duration.Seconds())
	return nil
}

// confirm asks for the target's name to be typed back.
func confirm(in io.Reader, out io.Writer, pl restorecore.Plan) error {
	h := pl.Header
	fmt.Fprintf(out, "This overwrites %s", pl.Target)
	if pl.TargetSize > 0 {
		fmt.Fprintf(out, " (%s)", human(pl.TargetSize))
	}
	fmt.Fprintf(out, " with the %s file system %q from %s (%s).\n", h.FSName(), h.Label, h.SourceName, h.Created.Format("2006-01-02 15:04"))
	fmt.Fprintf(out, "Type the target name (%s) to continue: ", pl.Target)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) != pl.Target {
		return fmt.Errorf("%w: restore cancelled, nothing written", errNotConfirmed)
	}
	return nil
}
