package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/mount"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

// ls, cat and extract: single files out of an image without restoring.

func init() {
	extraCommands = append(extraCommands, newLsCommand, newCatCommand, newExtractCommand)
}

// openTree opens an image and the file tree inside it.
func openTree(imagePath string) (*browse.FS, anyimage.Image, error) {
	r, err := anyimage.Open(imagePath, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", imagePath, err)
	}
	t, err := browse.New(r, r.Header())
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("%s: %w", imagePath, err)
	}
	return t, r, nil
}

// treePath turns a command-line path ("/", "Data/a.txt", "\Data\a.txt")
// into an fs.FS path.
func treePath(p string) (string, error) {
	p = strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if p == "" {
		return ".", nil
	}
	if !fs.ValidPath(p) {
		return "", usageError{fmt.Errorf("bad path %q: no \".\" or \"..\" components", p)}
	}
	return p, nil
}

// lsJSON is one entry of `ls --json`; README.md lists the keys:
//
//	path      volume path, "/" separated, with a leading "/"
//	type      "file", "dir" or "reparse" (NTFS reparse point: symbolic link, junction, ...; never followed)
//	size      bytes of the main data stream (0 for directories)
//	mtime     last modification, RFC 3339
//	ctime     creation time (not the Unix change time), RFC 3339; absent when the file system has none
//	atime     last access, RFC 3339 (FAT: date only); absent when unknown
//	streams   NTFS named data streams: [{name, size, excluded}]; absent when none
//	excluded  true when the data was left out at backup: the file reads as zeros
//	excluded_reason  the rule that excluded it ("pagefile.sys", "cbimg image", a --exclude glob); absent otherwise
//	reparse   true for NTFS reparse points; absent otherwise
//	attributes  NTFS file attributes or the FAT attribute byte, as a number
type lsJSON struct {
	Path           string       `json:"path"`
	Type           string       `json:"type"`
	Size           int64        `json:"size"`
	MTime          string       `json:"mtime"`
	CTime          string       `json:"ctime,omitempty"`
	ATime          string       `json:"atime,omitempty"`
	Streams        []streamJSON `json:"streams,omitempty"`
	Excluded       bool         `json:"excluded"`
	ExcludedReason string       `json:"excluded_reason,omitempty"`
	Reparse        bool         `json:"reparse,omitempty"`
	Attributes     uint32       `json:"attributes"`
}

type streamJSON struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Excluded bool   `json:"excluded"`
}

type lsOptions struct {
	Recursive bool
	Long      bool
}

func newLsCommand(g *globalOptions) *cobra.Command {
	o := &lsOptions{}
	cmd := &cobra.Command{
		Use:   "ls IMAGE [PATH]",
		Short: "List files inside an image",
		Long: `ls lists the directory PATH (default: the root) of the file system inside
IMAGE, sorted by name, one volume path per line. PATH uses "/" and matches
names as the file system does: case-insensitively, and by 8.3 name on FAT.

  -r       list everything below PATH
  --long   add type, size, modification time and attributes, and list NTFS
           named streams as PATH:STREAM lines
  --json   print one JSON array of objects (path, type, size, mtime, ctime,
           atime, streams, excluded, excluded_reason, reparse, attributes)

Marks after a tab: [excluded] — the file was left out at backup and reads as
zeros; [reparse] — an NTFS reparse point (link, junction), shown, not followed.
In --long output the type column is "d" directory, "-" file, "r" reparse
point, "s" named stream; attributes are R read-only, H hidden, S system,
A archive, C compressed, P sparse, E encrypted. Times are UTC.

` + exitHelp,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/"
			if len(args) == 2 {
				p = args[1]
			}
			return runLs(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), g, o, args[0], p)
		},
	}
	cmd.Flags().BoolVarP(&o.Recursive, "recursive", "r", false, "list everything below PATH")
	cmd.Flags().BoolVarP(&o.Long, "long", "l", false, "sizes, times, attributes and named streams")
	return cmd
}

func runLs(ctx context.Context, out, errw io.Writer, g *globalOptions, o *lsOptions, imagePath, arg string) error {
	name, err := treePath(arg)
	if err != nil {
		return err
	}
	t, r, err := openTree(imagePath)
	if err != nil {
		return err
	}
	defer r.Close()
	if name, err = t.Canonical(name); err != nil {
		return err
	}
	st, err := t.Lstat(name)
	if err != nil {
		return err
	}
	var failed int
	var first error
	var list []lsJSON
	emit := func(p string, e *browse.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !g.JSON && !o.Long {
			fmt.Fprintln(out, "/"+strings.TrimPrefix(p, "/")+marks(e))
			return nil
		}
		j, err := describe(t, p, o.Long || g.JSON)
		if err != nil {
			failed++
			first = cmpErr(first, err)
			fmt.Fprintf(errw, "cbimg: ls: %v\n", err)
			return nil
		}
		if g.JSON {
			list = append(list, j)
		} else {
			printLong(out, j, t.Type())
		}
		return nil
	}
	root := st.Sys().(*browse.Entry)
	switch {
	case !st.IsDir():
		err = emit(name, root)
	case o.Recursive:
		err = t.Walk(name, func(p string, e *browse.Entry, werr error) error {
			if werr != nil {
				failed++
				first = cmpErr(first, werr)
				fmt.Fprintf(errw, "cbimg: ls: %v\n", werr)
				return nil
			}
			if p == name {
				return nil
			}
			return emit(p, e)
		})
	default:
		var ents []fs.DirEntry
		ents, err = t.ReadDir(name)
		for _, d := range ents {
			if err = emit(pathJoin(name, d.Name()), dirEntryOf(d)); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if g.JSON {
		if list == nil {
			list = []lsJSON{}
		}
		if err := printJSON(out, list); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("ls: %d entries could not be read; first: %w", failed, first)
	}
	return nil
}

func cmpErr(first, err error) error {
	if first == nil {
		return err
	}
	return first
}

func pathJoin(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// dirEntryOf returns the listing's entry behind a browse directory entry.
func dirEntryOf(d fs.DirEntry) *browse.Entry {
	if x, ok := d.(interface{ Entry() *browse.Entry }); ok {
		return x.Entry()
	}
	return &browse.Entry{Name: d.Name(), Dir: d.IsDir()}
}

// marks are the tab-separated notes after a path in plain ls output.
func marks(e *browse.Entry) string {
	s := ""
	if e.Excluded != "" {
		s += "\t[excluded]"
	}
	if e.Reparse {
		s += "\t[reparse]"
	}
	return s
}

// describe stats p (authoritative sizes and times) for --long and --json.
func describe(t *browse.FS, p string, streams bool) (lsJSON, error) {
	st, err := t.Lstat(p)
	if err != nil {
		return lsJSON{}, err
	}
	e := st.Sys().(*browse.Entry)
	j := lsJSON{Path: "/" + strings.TrimPrefix(p, "."), Type: "file", Size: e.Size, MTime: stamp(e.Modified),
		CTime: stamp(e.Created), ATime: stamp(e.Accessed), Excluded: e.Excluded != "", ExcludedReason: e.Excluded,
		Reparse: e.Reparse, Attributes: e.Attr}
	switch {
	case e.Reparse:
		j.Type = "reparse"
	case e.Dir:
		j.Type = "dir"
	}
	if streams {
		ss, err := t.Streams(p)
		if err != nil {
			return lsJSON{}, err
		}
		for _, s := range ss {
			j.Streams = append(j.Streams, streamJSON{s.Name, s.Size, s.Excluded != ""})
		}
	}
	return j, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// printLong prints one --long line, and one per named stream.
func printLong(w io.Writer, j lsJSON, typ volume.Type) {
	kind, size := "-", fmt.Sprint(j.Size)
	switch j.Type {
	case "dir":
		kind, size = "d", "-"
	case "reparse":
		kind = "r"
	}
	mt := "-"
	if j.MTime != "" {
		t, _ := time.Parse(time.RFC3339Nano, j.MTime)
		mt = t.Format("2006-01-02 15:04:05")
	}
	note := ""
	if j.Excluded {
		note += fmt.Sprintf("  [excluded at backup (%s): reads as zeros]", j.ExcludedReason)
	}
	if j.Reparse {
		note += "  [reparse point: not followed]"
	}
	fmt.Fprintf(w, "%s %s %12s  %s  %s%s\n", kind, attrString(j.Attributes, typ), size, mt, j.Path, note)
	for _, s := range j.Streams {
		n := ""
		if s.Excluded {
			n = "  [excluded at backup: reads as zeros]"
		}
		fmt.Fprintf(w, "s %s %12d  %19s  %s:%s%s\n", strings.Repeat(" ", 7), s.Size, "", j.Path, s.Name, n)
	}
}

// attrString renders attributes as seven letters or dashes: RHSACPE.
func attrString(a uint32, typ volume.Type) string {
	bits := []uint32{volume.NTFSAttrReadOnly, volume.NTFSAttrHidden, volume.NTFSAttrSystem, volume.NTFSAttrArchive,
		volume.NTFSAttrCompressed, volume.NTFSAttrSparse, volume.NTFSAttrEncrypted}
	if typ != volume.NTFS {
		// FAT: read-only 1, hidden 2, system 4, archive 0x20; nothing else.
		bits = []uint32{0x01, 0x02, 0x04, 0x20, 0, 0, 0}
	}
	b := []byte("-------")
	for i, bit := range bits {
		if bit != 0 && a&bit != 0 {
			b[i] = "RHSACPE"[i]
		}
	}
	return string(b)
}

func newCatCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cat IMAGE PATH[:STREAM]",
		Short: "Write one file from inside an image to standard output",
		Long: `cat writes the contents of the file PATH inside IMAGE to standard output;
PATH:STREAM reads an NTFS named data stream. Compressed and sparse NTFS
files come out as Windows reads them. A file excluded at backup reads as
zeros (a note on standard error says so).

` + exitHelp,
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
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", arg)
	}
	e := st.Sys().(*browse.Entry)
	if e.Excluded != "" && !g.Quiet {
		fmt.Fprintf(errw, "cbimg: note: %s was excluded at backup (%s); its %d bytes read as zeros\n", arg, e.Excluded, e.Size)
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

type extractOptions struct {
	Dest    string
	Streams bool
}

func newExtractCommand(g *globalOptions) *cobra.Command {
	o := &extractOptions{}
	cmd := &cobra.Command{
		Use:   "extract IMAGE PATH... -C DEST",
		Short: "Copy files and directories out of an image",
		Long: `extract copies the files and directories PATH... (directories recursively;
"/" for everything) from inside IMAGE into DEST, keeping their paths from
the volume root as tar -C does: "Data/a.txt" becomes DEST/Data/a.txt.

Modification and access times are kept. Nothing is written outside DEST:
links already in DEST are never followed out of it, and a link where a file
goes is replaced. Names this system cannot hold are changed (reported as
"renamed"). NTFS hard links stay hard links; reparse points (links,
junctions) are reported and skipped, never followed; named streams are
skipped unless --streams writes them as NAME:STREAM files. Files excluded at
backup are written as (sparse) zeros and reported. A file that cannot be
read is reported and skipped, the rest go on, and the exit code is not 0.

` + exitHelp,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExtract(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), g, o, args[0], args[1:])
		},
	}
	cmd.Flags().StringVarP(&o.Dest, "directory", "C", "", "destination directory (created if missing; required)")
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
		return usageError{errors.New("extract needs -C DEST")}
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
	for _, p := range paths {
		if _, err := t.Lstat(p); err != nil {
			return err
		}
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
		say(g, out, "Extracted %d files (%s) and %d directories to %s", res.Files, human(res.Bytes), res.Dirs, o.Dest)
		if res.Streams > 0 {
			say(g, out, ", %d named streams", res.Streams)
		}
		say(g, out, "; %d excluded at backup (zeros), %d renamed, %d skipped, %d failed\n", res.Excluded, res.Renamed, res.Skipped, res.Failed)
	}
	return err
}

// mountImage serves volume.raw, or with files the tree inside the image.
func mountImage(mountpoint string, r anyimage.Image, files bool, o *mount.Options) (*mount.Mounted, error) {
	if !files {
		return mount.Mount(mountpoint, r, o)
	}
	t, err := browse.New(r, r.Header())
	if err != nil {
		return nil, err
	}
	return mount.MountFiles(mountpoint, t, o)
}

// mountedFile is what a mount shows: volume.raw, or the tree's root.
func mountedFile(mountpoint string, files bool) string {
	if files {
		return mountpoint
	}
	return filepath.Join(mountpoint, mount.FileName)
}
