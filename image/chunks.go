package image

import (
	"context"
	"io"
	"runtime"
)

// Chunks hands out the logical stream of a seekable image one chunk at a
// time, in index order, straight from the decode buffers: the fast path of a
// restore, without the copies of a StreamReader. Every chunk is checked
// (frame header against the table, CRC32C, chunk sum) before Next returns it;
// reading and decoding run ahead on all cores.
type Chunks struct {
	r    *Reader
	out  chan *cjob
	free chan []byte // buffers of chunks already handed out, for reuse
	stop chan struct{}
	prev *cjob
	err  error
}

type cjob struct {
	buf   []byte // frame header and stored bytes
	data  []byte // logical bytes (in buf for uncompressed chunks)
	err   error
	ready chan struct{}
}

// Chunks starts reading the chunks from the first one. Close stops it.
func (r *Reader) Chunks(ctx context.Context) *Chunks {
	n := runtime.GOMAXPROCS(0)
	c := &Chunks{r: r, out: make(chan *cjob, n+1), free: make(chan []byte, n+3), stop: make(chan struct{})}
	go c.produce(ctx)
	return c
}

func (c *Chunks) produce(ctx context.Context) {
	defer close(c.out)
	for i := range c.r.frames {
		fr := &c.r.frames[i]
		j := &cjob{ready: make(chan struct{})}
		cancelled := ctx.Err()
		if cancelled != nil {
			j.err = cancelled
			close(j.ready)
		} else {
			var b []byte
			select {
			case b = <-c.free:
			default:
			}
			need := frameHeaderLen + int(fr.StoredLen)
			if cap(b) < need {
				b = make([]byte, need)
			}
			j.buf = b[:need]
			go func() {
				defer close(j.ready)
				if j.err = c.r.readAt(j.buf, fr.Offset, "chunk"); j.err == nil {
					j.data, j.err = decodeChunk(j.buf, fr, true)
				}
			}()
		}
		select {
		case c.out <- j:
		case <-c.stop:
			return
		}
		if cancelled != nil {
			return
		}
	}
}

// Next returns the logical bytes of the next chunk, valid until the next
// call, or io.EOF after the last one. The first error is returned for good.
func (c *Chunks) Next() ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	if p := c.prev; p != nil {
		c.prev = nil
		select {
		case c.free <- p.buf:
		default:
		}
	}
	j, ok := <-c.out
	if !ok {
		c.err = io.EOF
		return nil, c.err
	}
	<-j.ready
	if j.err != nil {
		c.err = j.err
		c.Close()
		return nil, c.err
	}
	c.prev = j
	return j.data, nil
}

// Close stops the reading ahead.
func (c *Chunks) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
}

// CheckDigest recomputes the image digest from the header, the bitmap, the
// chunk table's sums and the trailer, and compares it with the footer's. It
// reads only the header: chunk data is checked against those sums when read.
func (r *Reader) CheckDigest() error {
	sum, err := r.digest()
	if err != nil {
		return err
	}
	if sum != r.Footer.Digest {
		return r.digestError()
	}
	return nil
}
