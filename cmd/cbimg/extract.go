package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/browse"
	"github.com/spf13/cobra"
)

// extract: files out of an image into a directory, safely.

type extractOptions struct {
	Dest    string
	Streams bool
	Yes     bool
}

func newExtractCommand(g *globalOptions) *cobra.Command {
	o := &extractOptions{}
	cmd := &cobra.Command{
		Use:   "extract IMAGE PATH... [-C DEST]",
		Short: "Copy files and directories out of an image",
		Long: `extract copies the files and directories PATH... (directories recursively;
"/" for everything) from inside IMAGE into DEST (default: the current
directory), keeping their paths from the volume root as tar -C does:
"Data/a.txt" becomes DEST/Data/a.txt.

Files that already exist in DEST are overwritten only with --yes; on a
terminal extract asks first, without one it refuses (exit 4) and writes
nothing.

Modification and access times are kept. Nothing is written outside DEST:
links already in DEST are never followed out of it, and a link where a file
goes is replaced. Names this system cannot hold are changed (reported as
"renamed"). NTFS hard links stay hard links; reparse points (links,
junctions) are reported and skipped, never followed; named streams are
skipped unless --streams writes them as NAME:STREAM files. Files excluded at
backup are written as (sparse) zeros and reported. A file that cannot be
read is reported and skipped, the rest go on, and the exit code is not 0.`,
		Example: `  cbimg extract sdb1.cbi /Users/alice/Documents
  cbimg extract sdb1.cbi / -C /srv/recovered --streams
  cbimg extract --yes sdb1.cbi Data/report.docx -C out`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExtract(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), g, o, args[0], args[1:])
		},
	}
	cmd.Flags().StringVarP(&o.Dest, "directory", "C", ".", "destination directory (created if missing)")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "overwrite files that exist in DEST without asking")
	cmd.Flags().BoolVar(&o.Streams, "streams", false, "also write NTFS named streams, as NAME:STREAM files")
	return cmd
}

// extractJSON is the --json summary of extract.
type extractJSON struct {
	Dest     string   `json:"dest"`
	Files    int      `json:"files"`
	Dirs     int      `json:"dirs"`
	Streams  int      `json:"streams"`
	Links    int      `json:"hard_links"`
	Bytes    int64    `json:"bytes"`
	Renamed  int      `json:"renamed"`
	Skipped  int      `json:"skipped"`
	Excluded int      `json:"excluded"`
	Failed   int      `json:"failed"`
	Events   []string `json:"events"`
}

func runExtract(ctx context.Context, out, errw io.Writer, g *globalOptions, o *extractOptions, imagePath string, args []string) error {
	if o.Dest == "" {
		o.Dest = "."
	}
	var paths []string
	for _, a := range args {
		p, err := treePath(a)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	t, r, err := openTree(imagePath)
	if err != nil {
		return err
	}
	defer r.Close()
	for i, p := range paths {
		if _, err := t.Lstat(p); err != nil {
			return pathErr(args[i], err)
		}
	}
	if err := confirmExtract(t, paths, o); err != nil {
		return err
	}
	events := []string{}
	res, err := t.Extract(ctx, paths, o.Dest, &browse.ExtractOptions{Streams: o.Streams, Event: func(e browse.ExtractEvent) {
		events = append(events, e.String())
		if e.Kind == "failed" || !g.Quiet && !g.JSON {
			fmt.Fprintf(errw, "cbimg: %s\n", e)
		}
	}})
	if res == nil {
		return err
	}
	if g.JSON {
		if jerr := printJSON(out, extractJSON{o.Dest, res.Files, res.Dirs, res.Streams, res.Links, res.Bytes,
			res.Renamed, res.Skipped, res.Excluded, res.Failed, events}); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		say(g, out, "Extracted %s (%s) and %s to %s", plural(res.Files, "file", "files"), human(res.Bytes), plural(res.Dirs, "directory", "directories"), o.Dest)
		if res.Streams > 0 {
			say(g, out, ", %s", plural(res.Streams, "named stream", "named streams"))
		}
		say(g, out, "; %d excluded at backup (zeros), %d renamed, %d skipped, %d failed\n", res.Excluded, res.Renamed, res.Skipped, res.Failed)
	}
	return err
}

// confirmExtract asks before extract overwrites files that exist in DEST.
// The tree is walked first (metadata only) so that nothing is written
// when the answer is no.
func confirmExtract(t *browse.FS, paths []string, o *extractOptions) error {
	if o.Yes {
		return nil
	}
	if st, err := os.Stat(o.Dest); err != nil || !st.IsDir() {
		return nil // a new destination: nothing to lose
	}
	var n int
	var first string
	for _, p := range paths {
		t.Walk(p, func(name string, e *browse.Entry, err error) error {
			if err != nil || e == nil || e.Dir {
				return nil
			}
			host := filepath.Join(o.Dest, filepath.FromSlash(name))
			hosts := []string{host}
			if o.Streams {
				ss, _ := t.Streams(name)
				for _, s := range ss {
					hosts = append(hosts, host+":"+s.Name)
				}
			}
			for _, h := range hosts {
				if st, err := os.Lstat(h); err == nil && !st.IsDir() {
					if n == 0 {
						first = h
					}
					n++
				}
			}
			return nil
		})
	}
	if n == 0 {
		return nil
	}
	what := fmt.Sprintf("extract would overwrite %s in %s (first: %s)", plural(n, "existing file", "existing files"), o.Dest, first)
	return overwrite{Flag: "--yes"}.ask(what, strings.ToUpper(what[:1])+what[1:]+".", "")
}
