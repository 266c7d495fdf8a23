package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

// cat: one file (or stream) of an image to standard output.

func newCatCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cat IMAGE PATH[:STREAM]",
		Short: "Write one file from inside an image to standard output",
		Long: `cat writes the contents of the file PATH inside IMAGE to standard output;
PATH:STREAM reads an NTFS named data stream. Compressed and sparse NTFS
files come out as Windows reads them. A file excluded at backup reads as
zeros (a note on standard error says so).`,
		Example: `  cbimg cat sdb1.cbi /Windows/System32/drivers/etc/hosts
  cbimg cat sdb1.cbi '/Users/alice/Downloads/setup.exe:Zone.Identifier'
  cbimg cat sdb1.cbi /Data/db.sqlite > db.sqlite`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCat(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), g, args[0], args[1])
		},
	}
}

func runCat(ctx context.Context, out, errw io.Writer, g *globalOptions, imagePath, arg string) error {
	t, r, err := openTree(imagePath)
	if err != nil {
		return err
	}
	defer r.Close()
	name, err := treePath(arg)
	if err != nil {
		return err
	}
	f, err := t.Open(name)
	if errors.Is(err, fs.ErrNotExist) && t.Type() == volume.NTFS {
		// PATH:STREAM, split at the last ":" of the last component.
		if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
			f, err = t.OpenStream(name[:i], name[i+1:])
		}
	}
	if err != nil {
		return pathErr(arg, err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.IsDir() {
		return fmt.Errorf("%s: is a directory (list it with cbimg ls, copy it with cbimg extract)", arg)
	}
	e := st.Sys().(*browse.Entry)
	if e.Excluded != "" && !g.Quiet {
		fmt.Fprintf(errw, "cbimg: note: %s was excluded at backup (%s); its %d bytes read as zeros\n", arg, exclusionRule(e.Excluded), e.Size)
	}
	if e.Reparse && !g.Quiet {
		fmt.Fprintf(errw, "cbimg: note: %s is a reparse point; not followed, printing its own data (%d bytes)\n", arg, e.Size)
	}
	_, err = io.CopyBuffer(out, ctxReader{ctx, f}, make([]byte, 1<<20))
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
