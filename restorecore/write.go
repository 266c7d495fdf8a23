package restorecore

// Carrying out a restore plan: boot records invalidated first, the
// image's stream and the zeros, the boot records last.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/cbimg/cbimg/image"
)

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
