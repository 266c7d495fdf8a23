package restorecore

// Opening the image and checking the target: everything a restore
// checks before its first write.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/locate"
)

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
