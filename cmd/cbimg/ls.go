package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

// ls: list an image's files without restoring.

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
//	damaged   why the entry cannot be trusted (type is then "damaged"); absent otherwise
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
	Damaged        string       `json:"damaged,omitempty"`
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
zeros; [reparse] — an NTFS reparse point (link, junction), shown, not followed;
[damaged] — the entry disagrees with the file system (a loop, a missing or
mismatched record): listed, named on standard error, never entered or read,
and the exit code is 5.
Directories end in "/" (not in --json, whose "type" says so).
In --long output the type column is "d" directory, "-" file, "r" reparse
point, "s" named stream; attributes are R read-only, H hidden, S system,
A archive, C compressed, P sparse, E encrypted. Times are UTC.`,
		Example: `  cbimg ls sdb1.cbi
  cbimg ls -r --long sdb1.cbi /Users/alice
  cbimg ls --json sdb1.cbi /Windows/System32 | jq '.[].path'`,
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
		return pathErr(arg, err)
	}
	st, err := t.Lstat(name)
	if err != nil {
		return pathErr(arg, err)
	}
	var failed int
	var first error
	var list []lsJSON
	emit := func(p string, e *browse.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Damage != nil {
			// Listed, marked, warned about, and counted in the exit code.
			derr := &fs.PathError{Op: "ls", Path: "/" + strings.TrimPrefix(p, "/"), Err: e.Damage}
			failed++
			first = cmpErr(first, derr)
			fmt.Fprintf(errw, "cbimg: ls: damaged entry: %v\n", derr)
			switch {
			case g.JSON:
				list = append(list, lsJSON{Path: "/" + strings.TrimPrefix(p, "/"), Type: "damaged", Damaged: e.Damage.Error()})
			case o.Long:
				fmt.Fprintf(out, "! ------- %12s  %19s  /%s  [damaged: %v]\n", "?", "-", strings.TrimPrefix(p, "/"), e.Damage)
			default:
				fmt.Fprintln(out, "/"+strings.TrimPrefix(p, "/")+"\t[damaged]")
			}
			return nil
		}
		if !g.JSON && !o.Long {
			fmt.Fprintln(out, "/"+strings.TrimPrefix(p, "/")+dirSlash(e.Dir && !e.Reparse)+marks(e))
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
			if werr != nil && e != nil && e.Damage != nil {
				return emit(p, e)
			}
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
		return fmt.Errorf("ls: %s could not be read; first: %w", plural(failed, "entry", "entries"), first)
	}
	return nil
}

// dirEntryOf returns the listing's entry behind a browse directory entry.
func dirEntryOf(d fs.DirEntry) *browse.Entry {
	if x, ok := d.(interface{ Entry() *browse.Entry }); ok {
		return x.Entry()
	}
	return &browse.Entry{Name: d.Name(), Dir: d.IsDir()}
}

// dirSlash is the "/" that ends a directory's path in plain listings.
func dirSlash(dir bool) string {
	if dir {
		return "/"
	}
	return ""
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
		note += fmt.Sprintf("  [excluded at backup (%s): reads as zeros]", exclusionRule(j.ExcludedReason))
	}
	if j.Reparse {
		note += "  [reparse point: not followed]"
	}
	fmt.Fprintf(w, "%s %s %12s  %s  %s%s%s\n", kind, attrString(j.Attributes, typ), size, mt, j.Path, dirSlash(kind == "d" && j.Path != "/"), note)
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
