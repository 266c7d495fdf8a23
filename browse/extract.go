package browse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cbimg/cbimg/volume"
)

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// Streams writes each named NTFS stream beside its file as
	// "NAME:STREAM" (sanitized where ":" is not allowed).
	Streams bool
	// Windows applies Windows file-name rules; the default is the host's.
	Windows bool
	// Event, when set, is called for everything worth telling: files
	// renamed, skipped or failed, and excluded files written as zeros.
	Event func(ExtractEvent)
}

// ExtractEvent is one noteworthy thing Extract did.
type ExtractEvent struct {
	Kind string // "renamed", "skipped", "excluded", "failed"
	Path string // volume path ("/" separated, leading "/")
	Dest string // path under the destination, "/" separated ("" when nothing was written)
	Msg  string
	Err  error // for "failed"
}

func (e ExtractEvent) String() string {
	switch e.Kind {
	case "renamed":
		return fmt.Sprintf("renamed %s -> %s: %s", e.Path, e.Dest, e.Msg)
	case "failed":
		return fmt.Sprintf("failed %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("%s %s: %s", e.Kind, e.Path, e.Msg)
}

// ExtractResult counts what Extract did.
type ExtractResult struct {
	Files    int   // regular files written (hard links included)
	Dirs     int   // directories created
	Streams  int   // named streams written
	Links    int   // files written as hard links to one extracted before
	Bytes    int64 // data bytes written
	Renamed  int   // names changed to be legal on the host
	Skipped  int   // reparse points (not followed) and streams left out
	Excluded int   // files excluded at backup, written as zeros
	Failed   int   // files or directories that could not be read or written
}

// ErrExtract is wrapped by Extract's error when some files failed; the
// rest were extracted.
var ErrExtract = errors.New("browse: some files could not be extracted")

// Extract copies the files and directories at paths (fs.FS paths;
// directories recursively) under dest, keeping their paths from the volume
// root, as tar -C does: "Data/a.txt" becomes dest/Data/a.txt, "." the whole
// volume. Timestamps are kept. All writes go through an os.Root at dest, so
// nothing is written outside it, whatever links dest holds; an existing
// symbolic link where a file goes is replaced, not followed. Names the host
// cannot hold are changed and reported. Reparse points are reported and
// skipped. A file that cannot be read is reported and removed, the others go
// on; the returned error then wraps ErrExtract and the first failure.
func (f *FS) Extract(ctx context.Context, paths []string, dest string, o *ExtractOptions) (*ExtractResult, error) {
	if o == nil {
		o = &ExtractOptions{}
	}
	win := o.Windows || runtime.GOOS == "windows"
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	x := &extractor{fs: f, ctx: ctx, root: root, o: o, win: win, res: &ExtractResult{},
		names: map[string]string{}, used: map[string]map[string]bool{}, linked: map[uint64]string{}}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return x.res, err
		}
		if !fs.ValidPath(p) {
			return x.res, &fs.PathError{Op: "extract", Path: p, Err: fs.ErrInvalid}
		}
		err := f.Walk(p, x.visit)
		if err != nil {
			return x.res, err
		}
	}
	// Directory times last: writing their contents changed them.
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		root.Chtimes(d.dest, d.atime, d.mtime)
	}
	if x.res.Failed > 0 {
		return x.res, fmt.Errorf("%w: %d failed; first: %w", ErrExtract, x.res.Failed, x.first)
	}
	return x.res, nil
}

type dirTime struct {
	dest         string
	atime, mtime time.Time
}

type extractor struct {
	fs    *FS
	ctx   context.Context
	root  *os.Root
	o     *ExtractOptions
	win   bool
	res   *ExtractResult
	first error

	names    map[string]string          // volume path -> host path (slash-separated, relative)
	used     map[string]map[string]bool // host dir -> names taken (folded on Windows)
	linked   map[uint64]string          // NTFS record -> host path of its first name
	dirTimes []dirTime
}

func (x *extractor) event(e ExtractEvent) {
	if x.o.Event != nil {
		x.o.Event(e)
	}
}

func (x *extractor) fail(name, dest string, err error) {
	x.res.Failed++
	if x.first == nil {
		x.first = err
	}
	x.event(ExtractEvent{Kind: "failed", Path: volPath(name), Dest: dest, Err: err})
}

// hostPath maps a volume path to a safe host path, creating the mapping
// of each component once so that renames are stable and collisions get a
// numbered suffix.
func (x *extractor) hostPath(name string) string {
	if name == "." {
		return "."
	}
	if h, ok := x.names[name]; ok {
		return h
	}
	parent := x.hostPath(path.Dir(name))
	base := path.Base(name)
	safe, changed := SafeName(base, x.win)
	taken := x.used[parent]
	if taken == nil {
		taken = map[string]bool{}
		x.used[parent] = taken
	}
	key := func(s string) string {
		if x.win {
			return strings.ToLower(s)
		}
		return s
	}
	if taken[key(safe)] {
		ext := path.Ext(safe)
		stem := strings.TrimSuffix(safe, ext)
		for i := 1; ; i++ {
			c := fmt.Sprintf("%s~%d%s", stem, i, ext)
			if !taken[key(c)] {
				safe, changed = c, true
				break
			}
		}
	}
	taken[key(safe)] = true
	h := safe
	if parent != "." {
		h = parent + "/" + safe
	}
	x.names[name] = h
	if changed {
		x.res.Renamed++
		x.event(ExtractEvent{Kind: "renamed", Path: volPath(name), Dest: h, Msg: "the name is not allowed on this system"})
	}
	return h
}

func (x *extractor) visit(name string, e *Entry, err error) error {
	if cerr := x.ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil {
		x.fail(name, "", err)
		return nil
	}
	dest := x.hostPath(name)
	native := filepath.FromSlash(dest)
	switch {
	case e.Reparse:
		x.res.Skipped++
		x.event(ExtractEvent{Kind: "skipped", Path: volPath(name), Msg: "reparse point (link or junction), not followed"})
		return fs.SkipDir
	case e.Mode().IsDir():
		if dest != "." {
			// Create the parents of a path given on the command line.
			if err := x.root.MkdirAll(native, 0o755); err != nil {
				x.fail(name, dest, err)
				return fs.SkipDir
			}
			x.res.Dirs++
		}
		if st, err := x.fs.Stat(name); err == nil {
			se, _ := st.Sys().(*Entry)
			if se == nil || !se.Mode().IsDir() {
				x.fail(name, dest, fmt.Errorf("%s: listed as a directory, the file system now says otherwise: %w", volPath(name), volume.ErrCorrupt))
				return fs.SkipDir
			}
			x.dirTimes = append(x.dirTimes, dirTime{native, atimeOr(se), se.Modified})
		}
		return x.streams(name, dest)
	}
	if d := path.Dir(dest); d != "." {
		if err := x.root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
			x.fail(name, dest, err)
			return nil
		}
	}
	// The listing's entry may carry the index's sizes; open for the record's.
	fl, err := x.fs.Open(name)
	if err != nil {
		x.fail(name, dest, err)
		return nil
	}
	defer fl.Close()
	// What the record says wins over the listing; a mismatch the checks
	// missed must still not be read as the wrong kind.
	ff, ok := fl.(*file)
	if !ok {
		x.fail(name, dest, fmt.Errorf("%s: listed as a file, but it opens as a directory: %w", volPath(name), volume.ErrCorrupt))
		return nil
	}
	se := ff.e
	if x.fs.ntfs != nil && se.Excluded == "" {
		if first, ok := x.linked[se.ID]; ok {
			x.replaceLink(native)
			if err := x.root.Link(filepath.FromSlash(first), native); err == nil {
				x.res.Files++
				x.res.Links++
				return x.streams(name, dest)
			}
		}
	}
	if err := x.writeFile(native, ff, se); err != nil {
		x.fail(name, dest, err)
		return nil
	}
	if x.fs.ntfs != nil {
		if _, ok := x.linked[se.ID]; !ok {
			x.linked[se.ID] = dest
		}
	}
	x.res.Files++
	if se.Excluded != "" {
		x.res.Excluded++
		x.event(ExtractEvent{Kind: "excluded", Path: volPath(name), Dest: dest, Msg: fmt.Sprintf("left out of the image (%s): written as %d zero bytes", se.Excluded, se.Size)})
	}
	return x.streams(name, dest)
}

// streams writes (or counts as skipped) the named streams of name.
func (x *extractor) streams(name, dest string) error {
	if x.fs.ntfs == nil {
		return nil
	}
	ss, err := x.fs.Streams(name)
	if err != nil {
		x.fail(name, dest, err)
		return nil
	}
	if !x.o.Streams {
		if len(ss) > 0 {
			x.res.Skipped += len(ss)
			x.event(ExtractEvent{Kind: "skipped", Path: volPath(name), Msg: fmt.Sprintf("%d named stream(s); use --streams", len(ss))})
		}
		return nil
	}
	for _, s := range ss {
		sname := name + ":" + s.Name
		sdest := x.hostPath(sname)
		if dest == "." {
			// Streams of the root directory go beside nothing; keep them
			// at the top of dest.
			sdest = x.hostPath(":" + s.Name)
		}
		fl, err := x.fs.OpenStream(name, s.Name)
		if err != nil {
			x.fail(sname, sdest, err)
			continue
		}
		ff, ok := fl.(*file)
		if ok {
			err = x.writeFile(filepath.FromSlash(sdest), ff, ff.e)
		} else {
			err = fmt.Errorf("stream opens as a directory: %w", volume.ErrCorrupt)
		}
		fl.Close()
		if err != nil {
			x.fail(sname, sdest, err)
			continue
		}
		x.res.Streams++
	}
	return nil
}

// replaceLink removes a symbolic link at native so that nothing is written
// through it.
func (x *extractor) replaceLink(native string) {
	if fi, err := x.root.Lstat(native); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		x.root.Remove(native)
	}
}

// writeFile copies fl to native under the root and sets its times. On a
// read or write error the partial file is removed.
func (x *extractor) writeFile(native string, fl *file, e *Entry) error {
	x.replaceLink(native)
	out, err := x.root.OpenFile(native, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	var n int64
	if e.Excluded != "" {
		// Zeros: leave a sparse file of the right size.
		err = out.Truncate(fl.size)
	} else {
		n, err = io.CopyBuffer(out, readerOnly{fl, x.ctx}, make([]byte, 1<<20))
		if err == nil && n != fl.size {
			err = fmt.Errorf("read %d of %d bytes: %w", n, fl.size, io.ErrUnexpectedEOF)
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		x.root.Remove(native)
		return err
	}
	x.res.Bytes += n
	return x.root.Chtimes(native, atimeOr(e), e.Modified)
}

func atimeOr(e *Entry) time.Time {
	if e.Accessed.IsZero() {
		return e.Modified
	}
	return e.Accessed
}

// readerOnly hides ReadAt/WriterTo so io.Copy reads in order, and stops
// on cancellation.
type readerOnly struct {
	f   *file
	ctx context.Context
}

func (r readerOnly) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.f.Read(p)
}
