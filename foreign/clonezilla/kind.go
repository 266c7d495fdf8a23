package clonezilla

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/units"
	"github.com/cbimg/cbimg/seekz"
)

// Defaults apply when anyimage.Options leave them unset; the command line
// sets them from --cache-dir and its progress bar.
var Defaults struct {
	Context  context.Context // cancels an indexing pass
	CacheDir string
	Progress func(phase string, done, total int64)
}

// ErrIsDir says a directory was named where a partition is needed.
var ErrIsDir = errors.New("clonezilla: a Clonezilla image directory holds several partitions")

func init() {
	anyimage.Register(anyimage.Kind{Name: "compressed", OpenName: openName, Probe: probe, Open: openStream})
}

// probe claims gzip, zstd, xz, bzip2 and lz4 streams.
func probe(head []byte) bool { return seekz.Detect(head) != seekz.None }

// openStream opens a compressed stream found by content: by its name when
// that is a file (so its pieces and Clonezilla name count), else from src
// (an image inside a partition).
func openStream(src io.ReaderAt, size int64, name string, closer io.Closer, opts *anyimage.Options) (anyimage.Image, error) {
	if isFile(src, size, name) {
		if img, ok, err := openName(name, opts); ok {
			if closer != nil {
				closer.Close()
			}
			return img, err
		}
	}
	if opts == nil {
		opts = &anyimage.Options{}
	}
	rd, err := seekz.OpenReaderAt(defaultContext(), src, size, name, streamOptions(opts))
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, mapErr(err)
	}
	return wrapStream(rd, &Partition{Pieces: []string{name}, Bytes: size}, nil, name, opts, closer)
}

// openName claims DIR@PART, a Clonezilla directory, a Clonezilla partition
// image file (a piece or whole), any gzip/zstd/xz/bzip2/lz4 stream, and the
// first piece of any split image.
func openName(name string, opts *anyimage.Options) (anyimage.Image, bool, error) {
	if dir, part, ok := ParseName(name); ok {
		d, err := OpenDir(dir)
		if err != nil {
			return nil, true, mapErr(err)
		}
		p, err := d.Partition(part)
		if err != nil {
			return nil, true, mapErr(err)
		}
		img, err := openPartition(p, d, name, opts)
		return img, true, err
	}
	if IsDir(name) {
		d, err := OpenDir(name)
		if err != nil {
			return nil, true, mapErr(err)
		}
		var names []string
		for _, p := range d.Partitions {
			names = append(names, name+"@"+p.Name)
		}
		return nil, true, fmt.Errorf("%w: name one of %s", ErrIsDir, strings.Join(names, ", "))
	}
	st, err := os.Stat(name)
	if err != nil || !st.Mode().IsRegular() {
		return nil, false, nil
	}
	p, ours, err := PartitionOfFile(name)
	if ours {
		if err != nil {
			return nil, true, mapErr(err)
		}
		img, err := openPartition(p, nil, name, opts)
		return img, true, err
	}
	head := make([]byte, 16)
	f, err := os.Open(name)
	if err != nil {
		return nil, false, nil
	}
	n, _ := f.Read(head)
	f.Close()
	codec := seekz.Detect(head[:n])
	pieces, err := seekz.Pieces(name)
	if codec == seekz.None && (err != nil || len(pieces) < 2) {
		return nil, false, nil // one plain file: the kinds that read content
	}
	if err != nil {
		return nil, true, mapErr(err)
	}
	p = &Partition{Pieces: pieces}
	for _, f := range pieces {
		if st, err := os.Stat(f); err == nil {
			p.Bytes += st.Size()
		}
	}
	img, err := openPartition(p, nil, name, opts)
	return img, true, err
}

// Open opens a partition image named DIR@PART, a piece or a compressed
// stream as anyimage.Open does.
func Open(name string, opts *anyimage.Options) (anyimage.Image, error) {
	if opts == nil {
		opts = &anyimage.Options{}
	}
	img, ok, err := openName(name, opts)
	if !ok {
		return nil, fmt.Errorf("%w: %s is neither a Clonezilla image nor a compressed or split one", image.ErrFormat, name)
	}
	return img, err
}

// openPartition decompresses p (indexing it on first use) and opens the
// partclone or ntfsclone image inside.
func openPartition(p *Partition, d *Dir, name string, opts *anyimage.Options) (anyimage.Image, error) {
	if opts == nil {
		opts = &anyimage.Options{}
	}
	if p.Tool == "dd" {
		return nil, fmt.Errorf("%w: %s is a dd image of the whole partition; decompress it (%s) and back it up with cbimg", image.ErrFormat, p.Pieces[0], p.Suffix)
	}
	rd, err := p.Open(defaultContext(), streamOptions(opts))
	if err != nil {
		return nil, mapErr(err)
	}
	return wrapStream(rd, p, d, name, opts, nil)
}

func streamOptions(opts *anyimage.Options) seekz.Options {
	sopt := seekz.Options{CacheDir: opts.CacheDir}
	if sopt.CacheDir == "" {
		sopt.CacheDir = Defaults.CacheDir
	}
	progress := opts.Progress
	if progress == nil {
		progress = Defaults.Progress
	}
	if progress != nil {
		sopt.Progress = func(done, total int64) { progress("indexing", done, total) }
	}
	return sopt
}

// wrapStream opens the image inside a decompressed stream and adds what the
// stream says to its Info.
func wrapStream(rd *seekz.Reader, p *Partition, d *Dir, name string, opts *anyimage.Options, outer io.Closer) (anyimage.Image, error) {
	var closer io.Closer = rd
	if outer != nil {
		closer = closers{rd, outer}
	}
	img, err := anyimage.OpenReaderAt(mapped{rd}, rd.Size(), name, closer, opts)
	if err != nil {
		return nil, mapErr(err)
	}
	inf := img.Info()
	si := rd.Info()
	inf.Compression = string(si.Codec)
	inf.Pieces = append([]string(nil), si.Pieces...)
	inf.ImageBytes = si.CompressedSize
	if d != nil {
		inf.Origin = fmt.Sprintf("Clonezilla image %s, partition %s (%s, %s); %s", filepath.Base(d.Path), p.Name, p.FS, p.Tool, inf.Origin)
		if p.Entry != nil {
			inf.Notes = append(inf.Notes, fmt.Sprintf("partition table (%s-pt.sf): %s starts at sector %d, %d sectors, type %s", p.Disk, p.Name, p.Entry.Start, p.Entry.Size, p.Entry.Type))
		}
	} else if p.Name != "" {
		inf.Origin = fmt.Sprintf("Clonezilla partition image %s (%s, %s); %s", p.Name, p.FS, p.Tool, inf.Origin)
	}
	inf.Notes = append(inf.Notes, AccessNote(si))
	streamBytes := si.CompressedSize
	if si.Codec == seekz.None {
		streamBytes = 0
	}
	inf.VerifyBytes += streamBytes
	return &czImage{Image: img, rd: rd, streamBytes: streamBytes}, nil
}

// AccessNote says how random reads are served and what that costs on disk.
func AccessNote(si seekz.Info) string {
	var s string
	switch si.Strategy {
	case seekz.Direct:
		return "random access: direct (not compressed)"
	case seekz.Checkpoints:
		s = fmt.Sprintf("random access: %d %s checkpoints; index %s in %s", si.Checkpoints, si.Codec, units.Human(si.IndexBytes), si.IndexPath)
	case seekz.CacheFile:
		s = fmt.Sprintf("random access: %s cannot be entered mid-stream, so a cache file of the decompressed image is kept: %s on disk (%s logical) in %s",
			si.Codec, units.Human(si.CacheBytes), units.Human(si.Size), strings.TrimSuffix(si.IndexPath, ".idx")+".data")
	}
	switch {
	case si.Reused:
		s += " (made earlier)"
	case si.Rebuilt != "":
		s += " (rebuilt: " + si.Rebuilt + ")"
	default:
		s += " (made now)"
	}
	return s
}

// czImage adds the compressed stream's own checks to Verify.
type czImage struct {
	anyimage.Image
	rd          *seekz.Reader
	streamBytes int64
}

func (c *czImage) Verify(ctx context.Context, progress func(done int64)) (*anyimage.Report, error) {
	var serr error
	if c.streamBytes > 0 {
		var sp func(done, total int64)
		if progress != nil {
			sp = func(done, _ int64) { progress(done) }
		}
		serr = c.rd.Verify(ctx, sp)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	var ip func(int64)
	if progress != nil {
		ip = func(d int64) { progress(c.streamBytes + d) }
	}
	rep, err := c.Image.Verify(ctx, ip)
	if err != nil {
		return rep, err
	}
	if serr != nil {
		rep.Problems = append([]error{mapErr(serr)}, rep.Problems...)
	}
	return rep, nil
}

// mapped maps stream errors to the image errors the commands know.
type mapped struct{ r *seekz.Reader }

// SourceChecked tells the partclone reader that the stream checks what it
// hands out (see seekz.Reader.Checked).
func (m mapped) SourceChecked() bool { return m.r.Checked() }

func (m mapped) ReadAt(p []byte, off int64) (int, error) {
	n, err := m.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = mapErr(err)
	}
	return n, err
}

// mapErr wraps seekz and clonezilla errors in the image error they amount to.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var base error
	switch {
	case errors.Is(err, image.ErrFormat), errors.Is(err, image.ErrChecksum), errors.Is(err, image.ErrTruncated), errors.Is(err, image.ErrVersion):
		return err
	case errors.Is(err, seekz.ErrTruncated):
		base = image.ErrTruncated
	case errors.Is(err, seekz.ErrChecksum):
		base = image.ErrChecksum
	case errors.Is(err, seekz.ErrCorrupt), errors.Is(err, seekz.ErrPieces), errors.Is(err, seekz.ErrIndex), errors.Is(err, seekz.ErrCodec),
		errors.Is(err, ErrCodec), errors.Is(err, ErrMismatch), errors.Is(err, ErrNoPart), errors.Is(err, ErrNotDir), errors.Is(err, ErrNoMembers):
		base = image.ErrFormat
	default:
		return err
	}
	return &streamError{err: err, kind: base}
}

// streamError reads as the stream error and matches the image error too,
// so the command line maps it to its exit code.
type streamError struct{ err, kind error }

func (e *streamError) Error() string   { return e.err.Error() }
func (e *streamError) Unwrap() []error { return []error{e.err, e.kind} }

type closers []io.Closer

func (c closers) Close() error {
	var first error
	for _, x := range c {
		if err := x.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// isFile reports whether src is the file called name itself (not a stream
// decompressed from it, which must not be opened by name again).
func isFile(src io.ReaderAt, size int64, name string) bool {
	st, err := os.Stat(name)
	if err != nil || !st.Mode().IsRegular() || st.Size() != size {
		return false
	}
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	a, b := make([]byte, 64), make([]byte, 64)
	n, _ := f.ReadAt(a, 0)
	m, _ := src.ReadAt(b, 0)
	return n == m && string(a[:n]) == string(b[:m])
}

func defaultContext() context.Context {
	if Defaults.Context != nil {
		return Defaults.Context
	}
	return context.Background()
}
