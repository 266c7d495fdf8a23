// Package restorecore writes a partition back from a .cbi image: it checks
// the image and the target before the first write, invalidates the target's
// boot records, writes the system areas and stored clusters, zeros the
// clusters of excluded files, and writes the boot records last, so an
// interrupted restore never leaves a volume that mounts as if it were whole.
package restorecore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
)

// Options describe one restore.
type Options struct {
	Image  string    // image path (first volume); "-" reads Input
	Input  io.Reader // a stream, when Image is "-"
	Target string    // block device or file; a missing file is created

	ZeroFree bool // write zeros to free clusters too (default: leave them)

	// Confirm, when set, is called after every check and before the first
	// write; an error cancels the restore with nothing written.
	Confirm func(Plan) error

	Progress func(Progress)

	// Journal, when set, is a file where the restore records its progress
	// (seekable images only); Resume continues from it.
	Journal string
	Resume  bool

	Warn func(string)
}

// journalEvery is how many bytes are written between syncs and journal
// updates.
var journalEvery int64 = 256 << 20

// Plan says what a restore is about to do.
type Plan struct {
	Header     *image.Header
	Target     string
	TargetSize int64 // 0 for a new file
	Regular    bool
}

// Progress reports how far a restore is.
type Progress struct {
	Phase string // "check", "write"
	Done  int64
	Total int64
	Start time.Time
}

// Result describes a finished restore.
type Result struct {
	Header  *image.Header
	Written int64 // bytes of data written (without zeros)
	Zeroed  int64
	// HiddenSectors is the boot records' new "hidden sectors" value when the
	// target partition starts elsewhere than the source did (0: unchanged).
	HiddenSectors uint64
	Duration      time.Duration
}

// Errors.
var (
	ErrTargetMounted  = errors.New("restorecore: target is mounted")
	ErrTargetTooSmall = errors.New("restorecore: target is smaller than the file system")
	ErrSameFile       = errors.New("restorecore: the target is the image itself")
)

// WriteError says how far a restore got when it failed.
type WriteError struct {
	Done int64 // bytes of the logical stream written before the failure
	Err  error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("restore stopped after %d bytes of image data were written; the target's boot records stay invalidated (it will not mount): %v", e.Done, e.Err)
}
func (e *WriteError) Unwrap() error { return e.Err }

// Restore runs a restore: open the image, check the target, plan the
// writes, stream them.
func Restore(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	report := func(p Progress) {
		if opts.Progress != nil {
			p.Start = start
			opts.Progress(p)
		}
	}
	in, err := openRestore(ctx, opts, report)
	if err != nil {
		return nil, err
	}
	defer in.close()
	t, err := checkRestore(opts, in)
	if err != nil {
		return nil, err
	}
	plan, err := planRestore(opts, in, t)
	if err != nil {
		return nil, err
	}
	res, err := streamRestore(ctx, opts, plan, in, report)
	if err != nil {
		return nil, err
	}
	if err := t.ip.after(t.f); err != nil {
		return nil, fmt.Errorf("restore finished, but the image inside the target is not intact: %w", err)
	}
	res.Duration = time.Since(start)
	return res, t.f.Close()
}

// restoreInput is the opened image, checked as far as it can be before the
// target is touched.
type restoreInput struct {
	src     source
	h       *image.Header
	bitmap  []byte
	imgFile string        // the image's path, for the same-file check ("" for a stream)
	jr      *journal      // nil without a journal
	inPart  *locate.File  // the image's file when it is named PARTITION:PATH
	held    *disk.Section // Windows: the target, locked to read the image inside it
	home    *disk.Section // the partition holding a foreign image named PARTITION:PATH
	closers []func()      // closed in reverse order
}

func (in *restoreInput) onClose(f func()) { in.closers = append(in.closers, f) }

func (in *restoreInput) close() {
	for i := len(in.closers) - 1; i >= 0; i-- {
		in.closers[i]()
	}
	in.closers = nil
}

// openRestore opens the image (a stream, a path, PARTITION:PATH or a
// foreign image), checks all of it, and loads the journal.
func openRestore(ctx context.Context, opts Options, report func(Progress)) (_ *restoreInput, err error) {
	in := &restoreInput{}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	if opts.Image == "-" || opts.Image == "" {
		if opts.Resume {
			return nil, fmt.Errorf("%w: resuming needs an image file, not a stream", ErrJournal)
		}
		if opts.Input == nil {
			return nil, errors.New("restorecore: no image path and no input stream")
		}
		sr, err := image.NewStreamReader(opts.Input)
		if err != nil {
			return nil, err
		}
		in.src = newStreamSource(sr)
	} else if img, ok, err := openForeign(opts.Image); ok { // partclone, ntfsclone, ... (foreign.go)
		if err != nil {
			return nil, err
		}
		in.onClose(func() { img.Close() })
		if err := in.openForeign(ctx, opts, img, report); err != nil {
			return nil, err
		}
	} else if err := in.openCBI(ctx, opts, report); err != nil {
		return nil, err
	}
	in.onClose(in.src.close)
	if opts.Resume {
		if in.jr == nil {
			return nil, fmt.Errorf("%w: no journal file given", ErrJournal)
		}
		if err := in.jr.load(); err != nil {
			return nil, err
		}
	}
	in.h, in.bitmap = in.src.meta()
	if in.jr != nil && in.jr.Done > in.h.LogicalLen {
		return nil, fmt.Errorf("%w: %s claims %d bytes, the image holds %d", ErrJournal, in.jr.path, in.jr.Done, in.h.LogicalLen)
	}
	return in, nil
}

// openForeign reads a foreign image through anyimage: checked whole first,
// never resumed, and never restored over the partition holding it.
func (in *restoreInput) openForeign(ctx context.Context, opts Options, img anyimage.Image, report func(Progress)) error {
	if opts.Resume {
		return fmt.Errorf("%w: resuming needs a .cbi image", ErrJournal)
	}
	if err := checkForeign(ctx, img, report); err != nil {
		return err
	}
	src, err := newImageSource(ctx, img)
	if err != nil {
		return err
	}
	in.src, in.imgFile = src, opts.Image
	if in.home, err = foreignHome(opts.Image); err != nil {
		src.close()
		in.src = nil
		return err
	}
	if in.home != nil {
		in.onClose(func() { in.home.Close() })
	}
	for _, n := range img.Info().Notes {
		if opts.Warn != nil {
			opts.Warn(n)
		}
	}
	return nil
}

// openCBI opens a .cbi image by path or PARTITION:PATH and checks every
// chunk; the image digest is checked in newChunkSource.
func (in *restoreInput) openCBI(ctx context.Context, opts Options, report func(Progress)) error {
	r, f, t, err := openImage(opts.Image, opts.Target) // a path, or PARTITION:PATH (inplace.go)
	in.inPart, in.held = f, t
	if err != nil {
		return err
	}
	if in.held != nil {
		in.onClose(func() { in.held.Close() })
	}
	in.onClose(func() { r.Close() })
	// Everything that can be checked cheaply is checked before the target
	// is touched: metadata in Open, every chunk's CRC here, the image
	// digest in newChunkSource.
	if err := r.CheckStored(ctx, func(d int64) { report(Progress{Phase: "check", Done: d, Total: r.ImageSize()}) }); err != nil {
		return err
	}
	if in.src, err = newChunkSource(ctx, r); err != nil {
		return err
	}
	in.imgFile = opts.Image
	if opts.Journal != "" && in.inPart == nil {
		in.jr = newJournal(opts.Journal, opts.Image, opts.Target, r.Footer.Digest)
	}
	return nil
}

// restoreTarget is the target, checked and locked, with the extents of an
// image inside it that the restore must leave alone (nil ip otherwise).
type restoreTarget struct {
	f  *disk.Section
	ip *inPlace
}

// checkRestore opens the target (or takes the one the image is read
// through) and runs every check that must pass before the first write; the
// last is opts.Confirm. The target is closed with in.
func checkRestore(opts Options, in *restoreInput) (*restoreTarget, error) {
	h := in.h
	tgt := in.held
	if tgt == nil {
		var err error
		if tgt, err = disk.OpenPartition(opts.Target, true); err != nil {
			return nil, fmt.Errorf("open target: %w", err)
		}
		in.onClose(func() { tgt.Close() })
	}
	if err := devguard.MayWrite(tgt); err != nil {
		return nil, fmt.Errorf("%w: %w: unmount it first", ErrTargetMounted, err)
	}
	if in.imgFile != "" {
		if a, err := os.Stat(in.imgFile); err == nil {
			if b, err := tgt.Stat(); err == nil && os.SameFile(a, b) {
				return nil, ErrSameFile
			}
		}
	}
	if err := checkForeignHome(in.home, tgt); err != nil {
		return nil, err
	}
	// The image inside the target itself: its clusters must stay untouched.
	ip, err := checkInPlace(in.inPart, tgt, h, in.bitmap)
	if err != nil {
		return nil, err
	}
	if !tgt.Regular && tgt.Size() < h.FSSize {
		return nil, fmt.Errorf("%w: %s has %d bytes, the image needs %d", ErrTargetTooSmall, opts.Target, tgt.Size(), h.FSSize)
	}
	// Windows: lock and dismount the volumes written to; fails
	// (sysdev.ErrMounted) while they are in use, before anything is written.
	if err := tgt.Lock(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTargetMounted, err)
	}
	if opts.Confirm != nil {
		if err := opts.Confirm(Plan{Header: h, Target: opts.Target, TargetSize: tgt.Size(), Regular: tgt.Regular}); err != nil {
			return nil, err
		}
	}
	return &restoreTarget{f: tgt, ip: ip}, nil
}

// restorePlan is what a restore writes, decided before the first write.
type restorePlan struct {
	h        *image.Header
	bitmap   []byte
	tgt      *disk.Section
	w        *guardWriter // holds the boot records back, with their new hidden sectors
	hidden   uint64       // Result.HiddenSectors
	fresh    bool         // a new file: zeros need not be written
	skip     int64        // with Resume: logical bytes already on the target
	protect  []image.Extent
	zeroFree bool
}

// planRestore decides the boot records to hold back and how they change,
// where the restore resumes, and (through writes and zeros) what goes
// where. An image inside the target becomes protect: extents never written.
func planRestore(opts Options, in *restoreInput, t *restoreTarget) (*restorePlan, error) {
	h, tgt := in.h, t.f
	guards, err := bootGuards(h, in.src)
	if err != nil {
		return nil, err
	}
	p := &restorePlan{h: h, bitmap: in.bitmap, tgt: tgt, zeroFree: opts.ZeroFree}
	p.w = &guardWriter{f: tgt, guards: guards, sectorSize: int64(h.SectorSize)}
	// A partition at another place on its disk: the boot records' "hidden
	// sectors" (the partition's start LBA) must follow it.
	if tgt.Partition.Number > 0 {
		hs := uint64(tgt.Start()) / uint64(h.SectorSize)
		if volume.Type(h.FSType) == volume.ExFAT && len(guards) == 2 && hs != h.HiddenSectors && h.HiddenSectors != 0 {
			// exFAT: a 64-bit offset under the boot checksum (exfat.go).
			p.w.exfatOffset, p.w.setExfatOffset = hs, true
			p.hidden = hs
		} else if hs != h.HiddenSectors && hs <= 0xFFFFFFFF && h.FSType != 0 && volume.Type(h.FSType) != volume.ExFAT {
			p.w.hidden, p.w.setHidden = uint32(hs), true
			p.hidden = hs
		}
	}
	// A new (empty) file reads as zeros wherever nothing is written:
	// zeroing excluded or free clusters there would only allocate blocks.
	p.fresh = tgt.Regular && tgt.Size() == 0
	if in.jr != nil {
		p.skip = in.jr.Done
	}
	if t.ip != nil {
		p.protect = t.ip.protect
	}
	return p, nil
}

// writes calls fn for each extent the image's logical stream fills, in
// stream order: the system extents, then the stored clusters.
func (p *restorePlan) writes(fn func(off, n int64) error) error {
	h := p.h
	for _, e := range h.SysExtents {
		if err := fn(e.Offset, e.Length); err != nil {
			return err
		}
	}
	return p.runs(image.NextRun, fn)
}

// runs calls fn for each run of clusters next finds in the bitmap
// (image.NextRun, image.NextClear), as a partition extent.
func (p *restorePlan) runs(next func([]byte, uint64, uint64) (uint64, uint64, bool), fn func(off, n int64) error) error {
	h := p.h
	cs := int64(h.ClusterSize)
	for c := uint64(0); ; {
		s, e, ok := next(p.bitmap, h.ClusterCount, c)
		if !ok {
			return nil
		}
		if err := fn(h.ClusterOrigin+int64(s)*cs, int64(e-s)*cs); err != nil {
			return err
		}
		c = e
	}
}

// zeros calls fn for each extent to zero: the excluded files' clusters,
// and the free ones with ZeroFree, less the protected extents. On a fresh
// file the extents are whole (nothing is written there anyway).
func (p *restorePlan) zeros(fn func(off, n int64) error) error {
	h := p.h
	cs := int64(h.ClusterSize)
	each := func(off, n int64) error {
		if p.fresh {
			return fn(off, n)
		}
		return around(p.protect, off, n, fn)
	}
	for _, x := range h.Exclusions {
		for _, r := range x.Runs {
			if err := each(h.ClusterOrigin+int64(r.Start)*cs, int64(r.Count)*cs); err != nil {
				return err
			}
		}
	}
	if !p.zeroFree {
		return nil
	}
	return p.runs(image.NextClear, each)
}

// around calls fn for the parts of [off, off+n) outside the sorted
// extents skip.
func around(skip []image.Extent, off, n int64, fn func(off, n int64) error) error {
	end := off + n
	for _, p := range skip {
		if p.Offset+p.Length <= off || p.Offset >= end {
			continue
		}
		if p.Offset > off {
			if err := fn(off, p.Offset-off); err != nil {
				return err
			}
		}
		off = max(off, p.Offset+p.Length)
	}
	if off < end {
		return fn(off, end-off)
	}
	return nil
}

// streamRestore carries out a plan: it invalidates the boot records, sizes
// a file target, writes the image's stream and the zeros, and writes the
// boot records last.
func streamRestore(ctx context.Context, opts Options, p *restorePlan, in *restoreInput, report func(Progress)) (*Result, error) {
	h, tgt := p.h, p.tgt
	// Invalidate the boot records before any data goes out.
	for _, g := range p.w.guards {
		if _, err := tgt.WriteAt(make([]byte, g.Length), g.Offset); err != nil {
			return nil, &WriteError{Err: fmt.Errorf("invalidate boot record at %d: %w", g.Offset, err)}
		}
	}
	if err := tgt.Sync(); err != nil && !tgt.Regular {
		return nil, &WriteError{Err: err}
	}
	if tgt.Regular && tgt.Size() < h.PartLength {
		if err := tgt.Truncate(h.PartLength); err != nil {
			return nil, &WriteError{Err: err}
		}
	}
	s := &restoreStream{ctx: ctx, opts: opts, p: p, src: in.src, jr: in.jr, report: report,
		res: &Result{Header: h, HiddenSectors: p.hidden}, skip: p.skip, synced: p.skip, wb: newWriteback(tgt)}
	if s.jr != nil {
		if err := s.jr.save(); err != nil {
			if opts.Resume {
				return nil, &WriteError{Err: fmt.Errorf("resume journal: %w", err)}
			}
			// A read-only image medium: restore without a journal.
			if opts.Warn != nil {
				opts.Warn(fmt.Sprintf("cannot write the resume journal %s (%v): an interrupted restore will have to start over", s.jr.path, err))
			}
			s.jr = nil
		}
	}
	res := s.res
	fail := func(err error) (*Result, error) { return nil, &WriteError{Done: res.Written, Err: err} }
	if err := p.writes(s.put); err != nil {
		return fail(err)
	}
	// The source says EOF only when table, footer and digest are checked.
	if _, err := in.src.next(1); err != io.EOF {
		if err == nil {
			err = errors.New("image holds more data than its header announces")
		}
		return fail(err)
	}
	err := p.zeros(func(off, n int64) error {
		res.Zeroed += n
		if p.fresh {
			return nil
		}
		return p.w.zero(off, n)
	})
	if err != nil {
		return fail(err)
	}
	// Data first on stable storage, then the boot records.
	if err := tgt.Sync(); err != nil {
		return fail(err)
	}
	if err := p.w.flushGuards(); err != nil {
		return fail(err)
	}
	if err := tgt.Sync(); err != nil {
		return fail(err)
	}
	if s.jr != nil {
		s.jr.remove()
	}
	return res, nil
}

// restoreStream is a restore's progress through the image's stream.
type restoreStream struct {
	ctx          context.Context
	opts         Options
	p            *restorePlan
	src          source
	jr           *journal
	wb           *writeback
	report       func(Progress)
	res          *Result
	skip, synced int64 // logical bytes already on the target, and synced with the journal
}

// put writes the next n bytes of the stream at partition offset off.
func (s *restoreStream) put(off, n int64) error {
	for n > 0 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		buf, err := s.src.next(n)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		k := int64(len(buf))
		done, err := s.resumed(buf, off)
		if err != nil {
			return err
		}
		s.p.w.hold(buf[:done], off)
		if err := s.p.w.writeAt(buf[done:k], off+done); err != nil {
			return err
		}
		if err := s.wb.wrote(off+done, k-done); err != nil {
			return err
		}
		off += k
		n -= k
		s.res.Written += k
		s.report(Progress{Phase: "write", Done: s.res.Written, Total: s.p.h.LogicalLen})
		if s.jr != nil && s.res.Written-s.synced >= journalEvery {
			if err := s.record(s.res.Written); err != nil {
				return err
			}
		}
	}
	return nil
}

// resumed returns how many leading bytes of buf (at off) a previous run
// already wrote. They are only read (they are still checked, and
// boot-record bytes among them are held), and compared with the target:
// the journal is trusted only as far as the target agrees with the image.
func (s *restoreStream) resumed(buf []byte, off int64) (int64, error) {
	done := min(max(s.skip-s.res.Written, 0), int64(len(buf)))
	if done == 0 {
		return 0, nil
	}
	same, err := s.p.w.same(buf[:done], off)
	if err != nil {
		return 0, err
	}
	if same < done {
		if s.opts.Warn != nil {
			s.opts.Warn(fmt.Sprintf("the resume journal says %d bytes are on the target, but it differs from the image after %d: continuing from there", s.skip, s.res.Written+same))
		}
		done, s.skip = same, s.res.Written+same
		// Record the point that was proven before writing on.
		if err := s.record(s.skip); err != nil {
			return 0, err
		}
	}
	return done, nil
}

// record syncs the target and journals done bytes as on it.
func (s *restoreStream) record(done int64) error {
	if err := s.p.tgt.Sync(); err != nil {
		return err
	}
	s.jr.Done, s.synced = done, done
	if err := s.jr.save(); err != nil {
		return fmt.Errorf("resume journal: %w", err)
	}
	return nil
}

// bootGuards returns the boot-record sectors to hold back: sector 0, and
// the backup boot sector (NTFS: last sector of the volume; FAT32: the
// sector the BPB names). For FAT32 it peeks at the boot sector, which is the
// start of the first system extent.
func bootGuards(h *image.Header, in source) ([]image.Extent, error) {
	ss := int64(h.SectorSize)
	g := []image.Extent{{Offset: 0, Length: ss}}
	switch volume.Type(h.FSType) {
	case volume.NTFS:
		if h.FSSize >= 2*ss {
			g = append(g, image.Extent{Offset: h.FSSize - ss, Length: ss})
		}
	case volume.ExFAT:
		// Both boot regions whole: the checksum sector must never pair
		// with a boot sector it does not sum.
		if r := exfatBootRegion(ss); h.FSSize >= 2*r {
			g = []image.Extent{{Offset: 0, Length: r}, {Offset: r, Length: r}}
		}
	case volume.FAT32:
		if len(h.SysExtents) > 0 && h.SysExtents[0].Offset == 0 && h.SysExtents[0].Length >= 512 {
			b, err := in.peek(512)
			if err != nil {
				return nil, err
			}
			if bk := int64(binary.LittleEndian.Uint16(b[50:52])); bk > 0 && bk != 0xffff && bk*ss < h.SysExtents[0].Length {
				g = append(g, image.Extent{Offset: bk * ss, Length: ss})
			}
		}
	}
	return g, nil
}

// guardWriter writes to the target but holds back the bytes of the guard
// ranges until flushGuards.
type guardWriter struct {
	f         io.WriterAt
	guards    []image.Extent
	held      []heldBytes
	hidden    uint32 // new "hidden sectors" value, when setHidden
	setHidden bool
	scratch   []byte // target bytes read back on resume

	exfatOffset    uint64 // new exFAT partition offset, when setExfatOffset
	setExfatOffset bool
	sectorSize     int64
}

type heldBytes struct {
	off  int64
	data []byte
}

// same reads the target at off and returns how many leading bytes of p it
// already holds; guard ranges (held back, zero on the target) count as
// equal. A short read of a regular file counts as a difference.
func (w *guardWriter) same(p []byte, off int64) (int64, error) {
	r, ok := w.f.(io.ReaderAt)
	if !ok {
		return 0, nil
	}
	if cap(w.scratch) < len(p) {
		w.scratch = make([]byte, len(p))
	}
	got := w.scratch[:len(p)]
	n, err := r.ReadAt(got, off)
	if err != nil && err != io.EOF {
		return 0, fmt.Errorf("read back the target at %d: %w", off, err)
	}
	if n == len(p) && bytes.Equal(got, p) {
		return int64(n), nil
	}
	for i := 0; i < len(p); i++ {
		if i >= n || got[i] != p[i] && !w.guarded(off+int64(i)) {
			// From the start of the sector that differs.
			return max(0, int64(i)-(off+int64(i))%512), nil
		}
	}
	return int64(len(p)), nil
}

func (w *guardWriter) guarded(off int64) bool {
	for _, g := range w.guards {
		if off >= g.Offset && off < g.Offset+g.Length {
			return true
		}
	}
	return false
}

// hold keeps the guard-range bytes of p (at partition offset off).
func (w *guardWriter) hold(p []byte, off int64) {
	end := off + int64(len(p))
	for _, g := range w.guards {
		s, e := max(off, g.Offset), min(end, g.Offset+g.Length)
		if s < e {
			w.held = append(w.held, heldBytes{s, append([]byte(nil), p[s-off:e-off]...)})
		}
	}
}

func (w *guardWriter) writeAt(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	w.hold(p, off)
	// Write around the guards.
	segs := []image.Extent{{Offset: off, Length: int64(len(p))}}
	for _, g := range w.guards {
		var next []image.Extent
		for _, s := range segs {
			ge := g.Offset + g.Length
			if ge <= s.Offset || g.Offset >= s.Offset+s.Length {
				next = append(next, s)
				continue
			}
			if g.Offset > s.Offset {
				next = append(next, image.Extent{Offset: s.Offset, Length: g.Offset - s.Offset})
			}
			if se := s.Offset + s.Length; ge < se {
				next = append(next, image.Extent{Offset: ge, Length: se - ge})
			}
		}
		segs = next
	}
	for _, s := range segs {
		if _, err := w.f.WriteAt(p[s.Offset-off:s.Offset-off+s.Length], s.Offset); err != nil {
			return err
		}
	}
	return nil
}

var zeros = make([]byte, 1<<20)

func (w *guardWriter) zero(off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if err := w.writeAt(zeros[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

// flushGuards writes the held boot-record bytes, backup copies first and
// sector 0 last.
func (w *guardWriter) flushGuards() error {
	if w.setExfatOffset {
		if err := w.exfatSetOffset(w.sectorSize, w.exfatOffset); err != nil {
			return err
		}
	}
	sort.SliceStable(w.held, func(i, j int) bool { return w.held[i].off > w.held[j].off })
	if w.setHidden {
		// NTFS and FAT both keep it at byte 0x1C of the boot sector.
		for _, g := range w.guards {
			for _, hb := range w.held {
				if o := g.Offset + 0x1C - hb.off; hb.off <= g.Offset && o+4 <= int64(len(hb.data)) {
					binary.LittleEndian.PutUint32(hb.data[o:], w.hidden)
				}
			}
		}
	}
	for _, h := range w.held {
		if _, err := w.f.WriteAt(h.data, h.off); err != nil {
			return err
		}
	}
	return nil
}
