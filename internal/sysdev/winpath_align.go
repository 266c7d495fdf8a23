package sysdev

// Windows volume and disk handles accept only reads and writes of whole
// sectors at sector-aligned offsets; the file-system readers and the restore
// writer use any offset and length. SectorIO turns the one into the other.

import (
	"errors"
	"fmt"
	"io"
)

// RawIO is a device handle (or file) read and written at absolute offsets.
type RawIO interface {
	io.ReaderAt
	io.WriterAt
}

// ErrPastEnd means a write would go beyond the end of a device or partition.
var ErrPastEnd = errors.New("sysdev: write past the end of the device")

// SectorIO reads and writes the window [Base, Base+Size) of Dev at any
// offset and length, issuing only whole-sector requests at Sector-aligned
// device offsets (cut at the window's end, which the device's real sectors
// divide). Unaligned writes read the partial sectors first and write them
// back merged. Sector 1 passes calls through.
type SectorIO struct {
	Dev    RawIO
	Base   int64
	Size   int64
	Sector int64
}

// bounceMax bounds the buffer used for one unaligned request; longer
// requests are split.
const bounceMax = 1 << 20

// ReadAt reads len(p) bytes at off within the window; like os.File it
// returns io.EOF with fewer bytes at the end.
func (s *SectorIO) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("sysdev: negative offset %d", off)
	}
	if off >= s.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if rest := s.Size - off; int64(want) > rest {
		p = p[:rest]
	}
	done := 0
	for done < len(p) {
		k, err := s.readPiece(p[done:], off+int64(done))
		done += k
		if err != nil {
			return done, err
		}
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// readPiece reads a prefix of p at off (within the window), at most one
// bounce buffer's worth when unaligned, and says how much it read.
func (s *SectorIO) readPiece(p []byte, off int64) (int, error) {
	abs := s.Base + off
	if s.Sector <= 1 || (abs%s.Sector == 0 && int64(len(p))%s.Sector == 0) {
		return readFullAt(s.Dev, p, abs)
	}
	if abs%s.Sector == 0 && int64(len(p)) > s.Sector {
		// Aligned start: read the whole sectors directly, the tail next time.
		n := int64(len(p)) / s.Sector * s.Sector
		return readFullAt(s.Dev, p[:n], abs)
	}
	start, end := s.span(abs, min(int64(len(p)), bounceMax))
	buf := make([]byte, end-start)
	if _, err := readFullAt(s.Dev, buf, start); err != nil {
		return 0, err
	}
	n := copy(p, buf[abs-start:])
	return n, nil
}

// span returns the sector-aligned range that covers [abs, abs+n), cut at the
// window's end (a window smaller than a whole sector ends where it ends).
func (s *SectorIO) span(abs, n int64) (start, end int64) {
	start = abs - abs%s.Sector
	end = abs + n
	if r := end % s.Sector; r != 0 {
		end += s.Sector - r
	}
	return start, min(end, s.Base+s.Size)
}

// WriteAt writes p at off within the window; writes past the window's end
// fail with ErrPastEnd and write nothing.
func (s *SectorIO) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("sysdev: negative offset %d", off)
	}
	if off > s.Size || int64(len(p)) > s.Size-off {
		return 0, fmt.Errorf("%w: %d bytes at %d, size %d", ErrPastEnd, len(p), off, s.Size)
	}
	done := 0
	for done < len(p) {
		k, err := s.writePiece(p[done:], off+int64(done))
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (s *SectorIO) writePiece(p []byte, off int64) (int, error) {
	abs := s.Base + off
	if s.Sector <= 1 || (abs%s.Sector == 0 && int64(len(p))%s.Sector == 0) {
		return s.Dev.WriteAt(p, abs)
	}
	if abs%s.Sector == 0 && int64(len(p)) > s.Sector {
		n := int64(len(p)) / s.Sector * s.Sector
		return s.Dev.WriteAt(p[:n], abs)
	}
	// Read-modify-write of the sectors the piece touches.
	start, end := s.span(abs, min(int64(len(p)), bounceMax))
	buf := make([]byte, end-start)
	if _, err := readFullAt(s.Dev, buf, start); err != nil {
		return 0, fmt.Errorf("read sectors at %d before a partial write: %w", start, err)
	}
	n := copy(buf[abs-start:], p)
	if _, err := s.Dev.WriteAt(buf, start); err != nil {
		return 0, err
	}
	return n, nil
}

func readFullAt(r io.ReaderAt, p []byte, off int64) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("read %d bytes at %d: got %d: %w", len(p), off, n, err)
}
