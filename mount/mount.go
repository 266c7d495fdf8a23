// Package mount serves the partition held in a cbimg image as one read-only
// file, volume.raw, in a FUSE file system: hanwen/go-fuse on Linux, WinFsp
// through winfsp/cgofuse on Windows. Both share one reader (file), so
// volume.raw holds exactly the bytes a restore writes to a new file: stored
// clusters and system areas from the image, zeros for free and excluded
// clusters.
//
// Reads go through image.Reader and its in-memory index, built at open
// time; what the index costs in memory is explained beside it
// (image/index.go).
//
// A read of a raw chunk (uncompressed images, and the incompressible chunks
// of compressed ones) fetches and checks only the 4 KiB blocks it covers,
// straight into the reply: random reads cost about what FUSE itself costs.
// A compressed chunk is decoded whole, once, into the LRU.
//
// A damaged chunk fails only the reads that touch it: they get EIO, the
// image offset is logged once, and the mount stays up.
package mount

import (
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"github.com/cbimg/cbimg/image"
)

// FileName is the one file in the mounted directory.
const FileName = "volume.raw"

// Source is what a mount serves: the logical partition of an image.
// *image.Reader is one; ReadAt must be safe for concurrent use.
type Source interface {
	io.ReaderAt
	Size() int64
}

// Options tune a mount.
type Options struct {
	AllowOther  bool        // let other users see the mount (needs user_allow_other for non-root)
	FsName      string      // shown as the mount's source in /proc/mounts; usually the image path
	ModTime     time.Time   // mtime of volume.raw; usually the image's creation time
	ReadAheadKB int         // kernel readahead for the mount; 0 = 4096, <0 = leave the kernel default
	Logger      *log.Logger // read errors; nil = log.Default()
	Debug       bool        // log every FUSE request
	// DirectIO (Linux) bypasses the kernel's page cache for volume.raw: sequential
	// reads run several times faster (the kernel's copy of each reply into
	// the page cache is the bottleneck), but re-reads are served again by
	// cbimg and shared mmap of volume.raw is not possible.
	DirectIO bool
}

// Errors from Mount and Unmount; test with errors.Is.
var (
	ErrNoFUSE      = errors.New("mount: FUSE is not available")
	ErrBusy        = errors.New("mount: mountpoint is busy")
	ErrNotEmpty    = errors.New("mount: mountpoint is not an empty directory")
	ErrNotMounted  = errors.New("mount: not a cbimg mount")
	ErrUnsupported = errors.New("mount: not supported on this platform")
)

// Mounted is a live mount. Wait blocks until it is unmounted (by Unmount,
// `cbimg umount` or fusermount -u).
type Mounted struct {
	Mountpoint string
	impl       server
}

type server interface {
	wait()
	unmount() error
}

// Wait blocks until the file system is unmounted.
func (m *Mounted) Wait() { m.impl.wait() }

// Unmount unmounts the file system; it fails while volume.raw is open.
func (m *Mounted) Unmount() error { return m.impl.unmount() }

// file is the platform-independent part of volume.raw: clamped reads with
// errors logged once per damaged place.
type file struct {
	src      Source
	size     int64
	mtime    time.Time
	logger   *log.Logger
	directIO bool

	mu     sync.Mutex
	logged map[string]bool
}

func newFile(src Source, o *Options) *file {
	f := &file{src: src, size: src.Size(), mtime: o.ModTime, logger: o.Logger, directIO: o.DirectIO, logged: map[string]bool{}}
	if f.logger == nil {
		f.logger = log.Default()
	}
	if f.mtime.IsZero() {
		f.mtime = time.Now()
	}
	return f
}

// read fills dest from partition offset off, clamped to the file size, and
// returns the byte count. Any error is for the whole request: a short reply
// would make the kernel think the file ends there.
func (f *file) read(dest []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= f.size {
		return 0, nil
	}
	dest = dest[:min(int64(len(dest)), f.size-off)]
	n, err := f.src.ReadAt(dest, off)
	if n == len(dest) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	f.logError(off, len(dest), err)
	return 0, err
}

// maxLogged bounds the set of damaged places already reported.
const maxLogged = 4096

func (f *file) logError(off int64, n int, err error) {
	key := err.Error()
	var fe *image.FormatError
	if errors.As(err, &fe) {
		key = fmt.Sprintf("%s@%d", fe.Region, fe.Offset)
	}
	f.mu.Lock()
	seen := f.logged[key]
	if !seen && len(f.logged) < maxLogged {
		f.logged[key] = true
	}
	f.mu.Unlock()
	if !seen {
		f.logger.Printf("cbimg mount: EIO for %s bytes %d-%d: %v", FileName, off, off+int64(n)-1, err)
	}
}
