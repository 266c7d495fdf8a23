package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/spf13/cobra"
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
a block device or a file. With a seekable IMAGE every header, table and chunk
checksum is checked before the first write. The target's boot records are
invalidated first and written last.

A new or empty file is written without a question (a file smaller than the
partition grows to its size; a note on standard error says so when it held
data). Anything else (a device, a partition, a file holding data, the
partition the image lies on) is overwritten only after its name is typed
back on a terminal, or with --yes; without a terminal and without --yes
restore refuses (exit 4) and writes nothing.

TARGET "-" writes the partition as one raw stream to standard output (the
bytes "cbimg mount" shows as volume.raw; free clusters as zeros), after every
chunk's checksum is checked; IMAGE must then be a file.`,
		Example: `  cbimg restore sdb1.cbi /dev/sdc1
  cbimg restore --yes sdb1.cbi /dev/sda@2          # from a script
  cbimg restore sdb1.cbi part.img                   # a new file
  cbimg restore sdb1.cbi - | sha256sum              # the partition as a raw stream
  ssh host cat sdb1.cbi | cbimg restore --yes - /dev/sdc1`,
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
	if target == "-" {
		if o.Resume || o.ZeroFree {
			return usageError{errors.New("restore to standard output: --resume and --zero-free need a target that can be written in place (the stream already holds zeros for free clusters)")}
		}
		return restoreToStdout(cmd, g, imagePath)
	}
	p := newProgress(g)
	warn := func(s string) {
		if !g.Quiet {
			fmt.Fprintln(os.Stderr, "cbimg: warning:", s)
		}
	}
	opts := restorecore.Options{
		Image: imagePath, Input: cmd.InOrStdin(), Target: target, ZeroFree: o.ZeroFree, Resume: o.Resume, Journal: o.Journal,
		Progress: func(pr restorecore.Progress) { p.update(pr.Phase, pr.Done, pr.Total) },
		Warn:     warn,
	}
	_, _, inPart := locate.Split(imagePath) // PARTITION:PATH has no directory for a journal
	if opts.Journal == "" && imagePath != "-" && !inPart {
		opts.Journal = imagePath + ".resume"
	} else if opts.Journal == "none" {
		opts.Journal = ""
	}
	ow := overwrite{Yes: o.Yes, Flag: "--yes"}
	if imagePath == "-" {
		// Standard input carries the image: there is no one to ask.
		no := false
		ow.Terminal = &no
	}
	opts.Confirm = func(pl restorecore.Plan) error {
		p.done()
		if err := confirmRestore(ow, pl); err != nil {
			return err
		}
		if pl.Regular && pl.TargetSize > 0 && pl.TargetSize < pl.Header.PartLength {
			warn(fmt.Sprintf("%s holds %s; it grows to %s, the partition's size", pl.Target, human(pl.TargetSize), human(pl.Header.PartLength)))
		}
		return nil
	}
	res, err := restorecore.Restore(cmd.Context(), opts)
	p.done()
	if err != nil {
		if isImageProblem(err) && imagePath != "-" {
			return imageErr(imagePath, err)
		}
		if errors.Is(err, restorecore.ErrSameFile) {
			return fmt.Errorf("%s: %w", target, err)
		}
		return err
	}
	w := cmd.OutOrStdout()
	if g.JSON {
		return printJSON(w, map[string]any{
			"image": imagePath, "target": target, "file_system": res.Header.FSName(),
			"bytes_written": res.Written, "bytes_zeroed": res.Zeroed, "seconds": res.Duration.Seconds(),
		})
	}
	say(g, w, "Restored %s to %s: %s written, %s zeroed in %s\n", imagePath, target, human(res.Written), human(res.Zeroed), seconds(res.Duration))
	return nil
}

// confirmRestore asks before a restore overwrites anything: a new or empty
// file is written without a question, anything else (a device, a file
// holding data, the partition in place) needs the target's name typed back
// on a terminal, or --yes.
func confirmRestore(ow overwrite, pl restorecore.Plan) error {
	if pl.Regular && pl.TargetSize == 0 {
		return nil
	}
	h := pl.Header
	what := fmt.Sprintf("restore would overwrite %s", pl.Target)
	if pl.TargetSize > 0 {
		what += fmt.Sprintf(" (%s)", human(pl.TargetSize))
	}
	q := fmt.Sprintf("This overwrites %s", pl.Target)
	if pl.TargetSize > 0 {
		q += fmt.Sprintf(" (%s)", human(pl.TargetSize))
	}
	q += fmt.Sprintf(" with the %s file system %q from %s (%s).", h.FSName(), h.Label, h.SourceName, h.Created.Format("2006-01-02 15:04"))
	return ow.ask(what, q, pl.Target)
}

// restoreToStdout writes the partition held in a seekable image to standard
// output as one raw stream (what volume.raw of a mount holds), after every
// chunk's checksum has been checked.
func restoreToStdout(cmd *cobra.Command, g *globalOptions, imagePath string) error {
	if imagePath == "-" {
		return usageError{errors.New("restore - -: a raw stream to standard output needs an image file, not a stream on standard input")}
	}
	if g.JSON {
		return usageError{errors.New("--json needs stdout, which carries the partition; restore to a file")}
	}
	out := cmd.OutOrStdout()
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		return usageError{errors.New("refusing to write a partition to a terminal; redirect standard output")}
	}
	r, err := locate.OpenImage(imagePath)
	if err != nil {
		return imageErr(imagePath, err)
	}
	defer r.Close()
	p := newProgress(g)
	defer p.done()
	ctx := cmd.Context()
	if err := r.CheckStored(ctx, func(d int64) { p.update("check", d, r.ImageSize()) }); err != nil {
		return imageErr(imagePath, err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < r.Size(); {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), r.Size()-off))
		if _, err := r.ReadAt(buf[:n], off); err != nil {
			return imageErr(imagePath, err)
		}
		if _, err := out.Write(buf[:n]); err != nil {
			return fmt.Errorf("standard output: %w", err)
		}
		off += int64(n)
		p.update("write", off, r.Size())
	}
	return nil
}
