// Package restorecore writes a partition back from a .cbi image: it checks
// the image and the target before the first write, invalidates the target's
// boot records, writes the system areas and stored clusters, zeros the
// clusters of excluded files, and writes the boot records last, so an
// interrupted restore never leaves a volume that mounts as if it were whole.
package restorecore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/sysdev"
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

// Restore runs a restore.
func Restore(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	report := func(p Progress) {
		if opts.Progress != nil {
			p.Start = start
			opts.Progress(p)
		}
	}
	var src source
	var imgFile string
	var jr *journal
	var inPart *locate.File       // the image's file when it is named PARTITION:PATH
	var held *disk.Section        // Windows: the target, locked to read the image inside it
	var foreignPart *disk.Section // the partition holding a foreign image named PARTITION:PATH
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
		src = newStreamSource(sr)
	} else if img, ok, err := openForeign(opts.Image); ok { // partclone, ntfsclone, ... (foreign.go)
		if err != nil {
			return nil, err
		}
		defer img.Close()
		if opts.Resume {
			return nil, fmt.Errorf("%w: resuming needs a .cbi image", ErrJournal)
		}
		if err := checkForeign(ctx, img, report); err != nil {
			return nil, err
		}
		if src, err = newImageSource(ctx, img); err != nil {
			return nil, err
		}
		imgFile = opts.Image
		if foreignPart, err = foreignHome(opts.Image); err != nil {
			return nil, err
		}
		if foreignPart != nil {
			defer foreignPart.Close()
		}
		for _, n := range img.Info().Notes {
			if opts.Warn != nil {
				opts.Warn(n)
			}
		}
	} else {
		r, f, t, err := openImage(opts.Image, opts.Target) // a path, or PARTITION:PATH (inplace.go)
		inPart, held = f, t
		if err != nil {
			return nil, err
		}
		if held != nil {
			defer held.Close()
		}
		defer r.Close()
		// Everything that can be checked cheaply is checked before the
		// target is touched: metadata in Open, every chunk's CRC here, the
		// image digest in newChunkSource.
		if err := r.CheckStored(ctx, func(d int64) { report(Progress{Phase: "check", Done: d, Total: r.ImageSize()}) }); err != nil {
			return nil, err
		}
		if src, err = newChunkSource(ctx, r); err != nil {
			return nil, err
		}
		imgFile = opts.Image
		if opts.Journal != "" && inPart == nil {
			jr = newJournal(opts.Journal, opts.Image, opts.Target, r.Footer.Digest)
		}
	}
	if opts.Resume {
		if jr == nil {
			return nil, fmt.Errorf("%w: no journal file given", ErrJournal)
		}
		if err := jr.load(); err != nil {
			return nil, err
		}
	}
	defer src.close()
	h, bitmap := src.meta()

	res0 := &Result{}
	tgt := held
	if tgt == nil {
		var err error
		if tgt, err = disk.OpenPartition(opts.Target, true); err != nil {
			return nil, fmt.Errorf("open target: %w", err)
		}
		defer tgt.Close()
	}
	for _, dev := range tgt.Devices {
		if mounts, err := sysdev.MountsOf(dev); err == nil && len(mounts) > 0 {
			return nil, fmt.Errorf("%w: %s at %s (%s): unmount it first", ErrTargetMounted, dev, mounts[0].Point, mounts[0].FSType)
		}
	}
	// FUSE drivers such as fusefat name themselves, not the device, in the
	// mount table.
	if m := locate.DriverMounts(tgt); len(m) > 0 {
		return nil, fmt.Errorf("%w: %s at %s (%s): unmount it first", ErrTargetMounted, opts.Target, m[0].Point, m[0].FSType)
	}
	if imgFile != "" {
		if a, err := os.Stat(imgFile); err == nil {
			if b, err := tgt.Stat(); err == nil && os.SameFile(a, b) {
				return nil, ErrSameFile
			}
		}
	}
	if err := checkForeignHome(foreignPart, tgt); err != nil {
		return nil, err
	}
	// The image inside the target itself: its clusters must stay untouched.
	ip, err := checkInPlace(inPart, tgt, h, bitmap)
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
	guards, err := bootGuards(h, src)
	if err != nil {
		return nil, err
	}
	w := &guardWriter{f: tgt, guards: guards}
	// A partition at another place on its disk: the boot records' "hidden
	// sectors" (the partition's start LBA) must follow it.
	if tgt.Partition.Number > 0 {
		if hs := uint64(tgt.Start()) / uint64(h.SectorSize); hs != h.HiddenSectors && hs <= 0xFFFFFFFF && h.FSType != 0 {
			w.hidden, w.setHidden = uint32(hs), true
			res0.HiddenSectors = hs
		}
	}
	// A new (empty) file reads as zeros wherever nothing is written:
	// zeroing excluded or free clusters there would only allocate blocks.
	fresh := tgt.Regular && tgt.Size() == 0
	// Invalidate the boot records before any data goes out.
	for _, g := range guards {
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
	res := res0
	res.Header = h
	var skip, synced int64 // with Resume: logical bytes already on the target
	if jr != nil {
		skip = jr.Done
		synced = skip
		if err := jr.save(); err != nil {
			if opts.Resume {
				return nil, &WriteError{Err: fmt.Errorf("resume journal: %w", err)}
			}
			// A read-only image medium: restore without a journal.
			if opts.Warn != nil {
				opts.Warn(fmt.Sprintf("cannot write the resume journal %s (%v): an interrupted restore will have to start over", jr.path, err))
			}
			jr = nil
		}
	}
	wb := newWriteback(tgt)
	put := func(off, n int64) error {
		for n > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			buf, err := src.next(n)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			k := int64(len(buf))
			// Bytes a previous run already wrote are only read (they are
			// still checked, and boot-record bytes among them are held).
			done := min(max(skip-res.Written, 0), k)
			w.hold(buf[:done], off)
			if err := w.writeAt(buf[done:k], off+done); err != nil {
				return err
			}
			if err := wb.wrote(off+done, k-done); err != nil {
				return err
			}
			off += k
			n -= k
			res.Written += k
			report(Progress{Phase: "write", Done: res.Written, Total: h.LogicalLen})
			if jr != nil && res.Written-synced >= journalEvery {
				if err := tgt.Sync(); err != nil {
					return err
				}
				jr.Done, synced = res.Written, res.Written
				if err := jr.save(); err != nil {
					return fmt.Errorf("resume journal: %w", err)
				}
			}
		}
		return nil
	}
	fail := func(err error) (*Result, error) { return nil, &WriteError{Done: res.Written, Err: err} }
	for _, e := range h.SysExtents {
		if err := put(e.Offset, e.Length); err != nil {
			return fail(err)
		}
	}
	cs := int64(h.ClusterSize)
	for c := uint64(0); ; {
		s, e, ok := image.NextRun(bitmap, h.ClusterCount, c)
		if !ok {
			break
		}
		if err := put(h.ClusterOrigin+int64(s)*cs, int64(e-s)*cs); err != nil {
			return fail(err)
		}
		c = e
	}
	// The source says EOF only when table, footer and digest are checked.
	if _, err := src.next(1); err != io.EOF {
		if err == nil {
			err = errors.New("image holds more data than its header announces")
		}
		return fail(err)
	}
	zero := func(off, n int64) error {
		if fresh {
			res.Zeroed += n
			return nil
		}
		z, err := ip.zero(w, off, n) // around an in-place image's own clusters
		res.Zeroed += z
		return err
	}
	for _, x := range h.Exclusions {
		for _, r := range x.Runs {
			if err := zero(h.ClusterOrigin+int64(r.Start)*cs, int64(r.Count)*cs); err != nil {
				return fail(err)
			}
		}
	}
	if opts.ZeroFree {
		for c := uint64(0); ; {
			s, e, ok := image.NextClear(bitmap, h.ClusterCount, c)
			if !ok {
				break
			}
			if err := zero(h.ClusterOrigin+int64(s)*cs, int64(e-s)*cs); err != nil {
				return fail(err)
			}
			c = e
		}
	}
	// Data first on stable storage, then the boot records.
	if err := tgt.Sync(); err != nil {
		return fail(err)
	}
	if err := w.flushGuards(); err != nil {
		return fail(err)
	}
	if err := tgt.Sync(); err != nil {
		return fail(err)
	}
	if jr != nil {
		jr.remove()
	}
	if err := ip.after(tgt); err != nil {
		return nil, fmt.Errorf("restore finished, but the image inside the target is not intact: %w", err)
	}
	res.Duration = time.Since(start)
	return res, tgt.Close()
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
}

type heldBytes struct {
	off  int64
	data []byte
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
