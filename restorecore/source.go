package restorecore

import (
	"bufio"
	"context"
	"io"

	"github.com/cbimg/cbimg/image"
)

// source is the image's logical stream as the restore consumes it: pieces
// that stay valid until the next call, so a seekable image's chunks go to
// the target without being copied.
type source interface {
	// next returns up to max bytes; io.EOF only after the image's table,
	// footer and digest were checked.
	next(max int64) ([]byte, error)
	// peek returns the first n bytes of what next will return.
	peek(n int) ([]byte, error)
	// meta returns the image header and its used-cluster bitmap.
	meta() (*image.Header, []byte)
	close()
}

// bufSource hands out a reader's bytes front to back in pieces of up to
// 4 MiB.
type bufSource struct {
	in  *bufio.Reader
	buf []byte
	err error // returned by the next call, after the bytes read before it
}

func newBufSource(r io.Reader) bufSource {
	return bufSource{in: bufio.NewReaderSize(r, 4<<20), buf: make([]byte, 4<<20)}
}

func (s *bufSource) next(max int64) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	k := min(max, int64(len(s.buf)))
	n, err := io.ReadFull(s.in, s.buf[:k])
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	s.err = err
	if n > 0 {
		return s.buf[:n], nil
	}
	return nil, err
}

func (s *bufSource) peek(n int) ([]byte, error) { return s.in.Peek(n) }

// streamSource reads an image from a pipe through a StreamReader.
type streamSource struct {
	bufSource
	sr *image.StreamReader
}

func newStreamSource(sr *image.StreamReader) *streamSource {
	return &streamSource{bufSource: newBufSource(sr), sr: sr}
}

func (s *streamSource) meta() (*image.Header, []byte) { return s.sr.Header, s.sr.Bitmap }
func (s *streamSource) close()                        { s.sr.Close() }

// chunkSource reads a seekable image chunk by chunk (image.Chunks).
type chunkSource struct {
	r   *image.Reader
	c   *image.Chunks
	cur []byte
	err error
}

// newChunkSource checks the image digest (the chunks are checked against
// the table's sums as they are read) and starts reading ahead.
func newChunkSource(ctx context.Context, r *image.Reader) (*chunkSource, error) {
	if err := r.CheckDigest(); err != nil {
		return nil, err
	}
	return &chunkSource{r: r, c: r.Chunks(ctx)}, nil
}

func (s *chunkSource) fill() error {
	for len(s.cur) == 0 && s.err == nil {
		s.cur, s.err = s.c.Next()
	}
	return s.err
}

func (s *chunkSource) next(max int64) ([]byte, error) {
	if err := s.fill(); err != nil {
		return nil, err
	}
	k := min(max, int64(len(s.cur)))
	p := s.cur[:k]
	s.cur = s.cur[k:]
	return p, nil
}

func (s *chunkSource) peek(n int) ([]byte, error) {
	if err := s.fill(); err != nil {
		return nil, err
	}
	if len(s.cur) < n {
		return nil, io.ErrUnexpectedEOF
	}
	return s.cur[:n], nil
}

func (s *chunkSource) meta() (*image.Header, []byte) { return s.r.Header, s.r.Bitmap }
func (s *chunkSource) close()                        { s.c.Close() }
