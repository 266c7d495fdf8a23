package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// WriterOptions tune a Writer.
type WriterOptions struct {
	Workers int // compression goroutines; 0 = GOMAXPROCS
}

// Writer writes an image to an io.Writer, which may be a pipe: offsets are
// counted, never sought. Write takes the logical stream; Close writes the
// chunk table and footer. After the first error every call returns it.
type Writer struct {
	out     *countWriter
	h       *Header
	enc     encoderPool
	digest  hash.Hash
	cur     []byte
	next    uint32
	logical int64
	frames  []frame
	bufPool sync.Pool

	queue    chan *job // in submission order, to the ordered writer
	work     chan *job // to compression workers
	wg       sync.WaitGroup
	done     chan struct{}
	loopDone chan struct{}
	mu       sync.Mutex
	err      error
	closed   bool
	hdrCRC   uint32
	bmapCRC  uint32
	// runs of clusters that could not be read, for the trailer
	unreadable []Run
}

type job struct {
	index  uint32
	data   []byte // logical bytes
	stored []byte // bytes to write (data itself when raw)
	blocks []byte // block checksums following a raw chunk's bytes
	f      frame
	ready  chan struct{}
	err    error
}

// NewWriter writes the header and bitmap and returns a Writer for the
// logical stream. h.ChunkCount and h.LogicalLen must already be set
// consistently (see Header.Finish).
func NewWriter(w io.Writer, h *Header, bitmap []byte, opts WriterOptions) (*Writer, error) {
	if int64(len(bitmap)) != h.BitmapLen {
		return nil, fmt.Errorf("image: bitmap is %d bytes, header says %d", len(bitmap), h.BitmapLen)
	}
	h.RequiredFlags |= RequireBlockCRC | RequireXXH3
	if h.SubFrameSize != 0 {
		h.RequiredFlags |= RequireSubFrames
	}
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("image: refusing to write an inconsistent header: %w", err)
	}
	hdr, err := h.Encode()
	if err != nil {
		return nil, err
	}
	wr := &Writer{out: &countWriter{w: w}, h: h, digest: newDigest()}
	wr.enc.level = zstd.EncoderLevelFromZstd(int(h.Level))
	wr.digest.Write(hdr)
	wr.digest.Write(bitmap)
	wr.hdrCRC = crc(hdr)
	wr.bmapCRC = crc(bitmap)
	var tail [4]byte
	putU32(tail[:], wr.bmapCRC)
	for _, p := range [][]byte{hdr, bitmap, tail[:]} {
		if _, err := wr.out.Write(p); err != nil {
			return nil, err
		}
	}
	n := opts.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	wr.queue = make(chan *job, 2*n)
	wr.work = make(chan *job, 2*n)
	wr.done = make(chan struct{})
	wr.loopDone = make(chan struct{})
	wr.bufPool.New = func() any { return make([]byte, 0, h.ChunkSize) }
	for i := 0; i < n; i++ {
		wr.wg.Add(1)
		go wr.worker()
	}
	go wr.writeLoop()
	return wr, nil
}

// Write appends logical bytes.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	if w.closed {
		return 0, errors.New("image: write after close")
	}
	n := len(p)
	if w.logical+int64(n) > w.h.LogicalLen {
		return 0, w.fail(fmt.Errorf("image: %d logical bytes written, header announced %d", w.logical+int64(n), w.h.LogicalLen))
	}
	cs := int(w.h.ChunkSize)
	for len(p) > 0 {
		if w.cur == nil {
			w.cur = w.bufPool.Get().([]byte)[:0]
		}
		k := min(cs-len(w.cur), len(p))
		w.cur = append(w.cur, p[:k]...)
		p = p[k:]
		w.logical += int64(k)
		if len(w.cur) == cs {
			if err := w.submit(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// ReadFrom lets io.Copy fill chunk buffers directly.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	cs := int(w.h.ChunkSize)
	for {
		if err := w.failed(); err != nil {
			return total, err
		}
		if w.cur == nil {
			w.cur = w.bufPool.Get().([]byte)[:0]
		}
		room := min(int64(cs-len(w.cur)), w.h.LogicalLen-w.logical)
		if room == 0 {
			// Anything more is too much; probe for it.
			var b [1]byte
			if n, _ := r.Read(b[:]); n > 0 {
				return total, w.fail(fmt.Errorf("image: more logical bytes than the header announced (%d)", w.h.LogicalLen))
			}
			return total, nil
		}
		n, err := r.Read(w.cur[len(w.cur) : len(w.cur)+int(room)])
		w.cur = w.cur[:len(w.cur)+n]
		w.logical += int64(n)
		total += int64(n)
		if len(w.cur) == cs {
			if err := w.submit(); err != nil {
				return total, err
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, w.fail(err)
		}
	}
}

func (w *Writer) submit() error {
	j := &job{index: w.next, data: w.cur, ready: make(chan struct{})}
	w.next++
	w.cur = nil
	select {
	case w.queue <- j:
	case <-w.done:
		return w.failed()
	}
	select {
	case w.work <- j:
	case <-w.done:
		// The job is queued for the writer, which waits for it: finish it.
		j.err = w.failed()
		close(j.ready)
		return j.err
	}
	return nil
}

func (w *Writer) worker() {
	defer w.wg.Done()
	for j := range w.work {
		j.err = w.encode(j)
		close(j.ready)
	}
}

// encode compresses one chunk, decodes it again and compares before the
// chunk is committed, and computes its checksums.
func (w *Writer) encode(j *job) error {
	j.f = frame{Index: j.index, LogicalLen: uint32(len(j.data)), Codec: CodecNone, sub: w.h.SubFrameSize, xxh: w.h.RequiredFlags&RequireXXH3 != 0}
	j.f.Sum = j.f.logicalSum(j.data)
	j.stored = j.data
	if w.h.Codec == CodecZstd && !w.enc.incompressible(j.data) {
		sub := int(w.h.SubFrameSize)
		if sub >= len(j.data) {
			sub = 0 // a short last chunk: one frame
		}
		out, err := w.enc.encode(j.data, sub)
		if err != nil {
			return err
		}
		// Keep compression only when it saves something worth a decode.
		if len(out) < len(j.data)-len(j.data)/64 {
			f := j.f
			f.Codec, f.StoredLen = CodecZstd, uint32(len(out))
			if sub != 0 {
				f.Flags = FrameSubFrames
			}
			back, err := decodeStored(out, &f, true)
			if err == nil && !bytes.Equal(back, j.data) {
				err = errors.New("decodes to different bytes")
			}
			if err != nil {
				return fmt.Errorf("image: chunk %d does not decode to what was encoded (%v)", j.index, err)
			}
			j.stored = out
			j.f = f
		}
	}
	j.blocks = j.blocks[:0]
	if j.f.Codec == CodecNone {
		// Block checksums let a reader check a few KiB without the rest;
		// the stored CRC follows from them, so the bytes are read once.
		j.f.Flags = FrameBlockCRC
		var all uint32
		for k := 0; k < len(j.data); k += BlockSize {
			b := j.data[k:min(k+BlockSize, len(j.data))]
			c := crc(b)
			j.blocks = binary.LittleEndian.AppendUint32(j.blocks, c)
			op := blockShift
			if len(b) != BlockSize {
				op = shiftOp(int64(len(b)))
			}
			all = crcCombine(all, c, op)
		}
		j.f.StoredCRC = crcCombine(all, crc(j.blocks), shiftOp(int64(len(j.blocks))))
	} else {
		j.f.StoredCRC = crc(j.stored)
	}
	j.f.StoredLen = uint32(len(j.stored) + len(j.blocks))
	return nil
}

func (w *Writer) writeLoop() {
	defer close(w.loopDone)
	for j := range w.queue {
		<-j.ready
		err := j.err
		if err == nil {
			j.f.Offset = w.out.n
			if _, err = w.out.Write(j.f.encodeHeader()); err == nil {
				_, err = w.out.Write(j.stored)
			}
			if err == nil && len(j.blocks) > 0 {
				_, err = w.out.Write(j.blocks)
			}
		}
		if err != nil {
			w.fail(err)
			// Drain so submitters never block.
			for j := range w.queue {
				<-j.ready
			}
			return
		}
		w.digest.Write(j.f.Sum[:])
		w.frames = append(w.frames, j.f)
		w.bufPool.Put(j.data[:0])
	}
}

func (w *Writer) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.done)
	}
	return w.err
}

func (w *Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close flushes the last chunk and writes the chunk table and footer. It
// fails if the logical stream is shorter than the header announced.
func (w *Writer) Close() error {
	if w.closed {
		return w.failed()
	}
	w.closed = true
	if w.failed() == nil && len(w.cur) > 0 {
		w.submit()
	}
	close(w.work)
	w.wg.Wait()
	close(w.queue)
	<-w.loopDone
	if err := w.failed(); err != nil {
		return err
	}
	if w.logical != w.h.LogicalLen {
		return w.fail(fmt.Errorf("image: %d logical bytes written, header announced %d", w.logical, w.h.LogicalLen))
	}
	if uint32(len(w.frames)) != w.h.ChunkCount {
		return w.fail(fmt.Errorf("image: %d chunks written, header announced %d", len(w.frames), w.h.ChunkCount))
	}
	tableOff := w.out.n
	t := writeBuf(make([]byte, 0, 12+len(w.frames)*tableEntryLen))
	t.bytes([]byte(TableMagic))
	t.u32(uint32(len(w.frames)))
	for i := range w.frames {
		w.frames[i].appendEntry(&t)
	}
	tcrc := crc(t)
	t.u32(tcrc)
	if _, err := w.out.Write(t); err != nil {
		return w.fail(err)
	}
	var trailer []byte
	if w.h.Flags&FlagRescue != 0 {
		trailer = encodeTrailer(w.unreadable)
		w.digest.Write(trailer)
		if _, err := w.out.Write(trailer); err != nil {
			return w.fail(err)
		}
	}
	f := Footer{TableOffset: tableOff, ImageLen: w.out.n + FooterLen, ChunkCount: uint32(len(w.frames)), TableCRC: tcrc, HeaderCRC: w.hdrCRC, BitmapCRC: w.bmapCRC, TrailerLen: uint32(len(trailer))}
	copy(f.Digest[:], w.digest.Sum(nil))
	if _, err := w.out.Write(f.encode()); err != nil {
		return w.fail(err)
	}
	return nil
}

// SetUnreadable records the clusters that could not be read (and were
// written as zeros). It needs FlagRescue in the header and takes effect at
// Close, in the trailer.
func (w *Writer) SetUnreadable(runs []Run) { w.unreadable = runs }

// Digest returns the image digest after a successful Close.
func (w *Writer) Digest() [32]byte {
	var d [32]byte
	copy(d[:], w.digest.Sum(nil))
	return d
}

// Written returns the bytes written so far.
func (w *Writer) Written() int64 { return w.out.n }

// countWriter counts bytes so offsets need no Seek.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

type encoderPool struct {
	level zstd.EncoderLevel
	pool  sync.Pool
	fast  sync.Pool // fastest-level encoders for sampling
}

// incompressible samples three 16 KiB pieces of a chunk with the fastest
// encoder: random or already-compressed data (most of a typical disk by
// bytes) is then stored raw without paying for a full compression attempt.
func (p *encoderPool) incompressible(src []byte) bool {
	const piece = 16 << 10
	if len(src) < 8*piece {
		return false
	}
	e, _ := p.fast.Get().(*zstd.Encoder)
	if e == nil {
		var err error
		e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			return false
		}
	}
	defer p.fast.Put(e)
	var buf [piece + 512]byte
	total := 0
	for _, off := range []int{0, len(src)/2 - piece/2, len(src) - piece} {
		total += len(e.EncodeAll(src[off:off+piece], buf[:0]))
	}
	return total > 3*piece*97/100
}

// encode compresses src: as independent frames of sub bytes and their
// index when sub > 0, else as one frame.
func (p *encoderPool) encode(src []byte, sub int) ([]byte, error) {
	e, _ := p.pool.Get().(*zstd.Encoder)
	if e == nil {
		var err error
		e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(p.level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			return nil, err
		}
	}
	var out []byte
	if sub > 0 {
		out = encodeSubFrames(e, src, sub, make([]byte, 0, len(src)/2))
	} else {
		out = e.EncodeAll(src, make([]byte, 0, len(src)/2))
	}
	p.pool.Put(e)
	return out, nil
}

// decoder is shared; DecodeAll is safe for concurrent use. Memory is capped
// so a hostile frame cannot make it allocate more than a chunk.
var decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxChunkSize), zstd.WithDecoderLowmem(false))

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
