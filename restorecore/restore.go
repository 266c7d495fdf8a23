// Package restorecore writes a partition back from a .cbi image: it checks
// the image and the target before the first write, invalidates the target's
// boot records, writes the system areas and stored clusters, zeros the
// clusters of excluded files, and writes the boot records last, so an
// interrupted restore never leaves a volume that mounts as if it were whole.
package restorecore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cbimg/cbimg/image"
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

// Restore runs a restore: open the image and check the target (open.go),
// plan the writes (plan.go), carry them out (write.go).
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
