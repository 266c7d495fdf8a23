package image

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/zeebo/blake3"
	"hash"
	"io"
	"runtime"
)

// blake3Sum is the chunk checksum of images without RequireXXH3: BLAKE3-256
// of the logical bytes.
func blake3Sum(p []byte) [32]byte { return blake3.Sum256(p) }

func newDigest() hash.Hash { return blake3.New() }

// StreamReader reads an image front to back from a plain io.Reader (a pipe)
// and returns its logical stream: system extents in header order, then the
// stored clusters in ascending order. Every chunk is checked (CRC32C and
// chunk sum) before its bytes are returned; the table, footer and image digest
// are checked before Read returns io.EOF. Decoding runs on all cores.
type StreamReader struct {
	Header *Header
	Bitmap []byte

	in      *bufio.Reader
	off     int64 // image bytes consumed
	digest  hash.Hash
	hdrCRC  uint32
	bmapCRC uint32
	out     chan *sjob
	cur     []byte
	err     error
	frames  []frame
	stop    chan struct{}
}

type sjob struct {
	f     frame
	buf   []byte
	data  []byte
	err   error
	ready chan struct{}
}

// NewStreamReader reads and checks the header and bitmap.
func NewStreamReader(r io.Reader) (*StreamReader, error) {
	s := &StreamReader{in: bufio.NewReaderSize(r, 1<<20), digest: newDigest(), stop: make(chan struct{})}
	first := make([]byte, 16)
	if err := s.full(first, "header"); err != nil {
		return nil, err
	}
	hl, err := PeekHeaderLen(first)
	if err != nil {
		return nil, err
	}
	hb := make([]byte, hl)
	copy(hb, first)
	if err := s.full(hb[16:], "header"); err != nil {
		return nil, err
	}
	if s.Header, err = DecodeHeader(hb); err != nil {
		return nil, err
	}
	// A stream's length is unknown: the bitmap buffer grows only as its
	// bytes actually arrive, under a hard cap.
	if s.Header.BitmapLen > 1<<34 {
		return nil, &FormatError{Region: "header", Offset: 0, Msg: fmt.Sprintf("bitmap of %d bytes", s.Header.BitmapLen), Err: ErrFormat}
	}
	var bb bytes.Buffer
	n, err := io.CopyN(&bb, s.in, s.Header.BitmapLen+4)
	s.off += n
	if err != nil {
		return nil, &FormatError{Region: "bitmap", Offset: s.off, Msg: "stream ends early", Err: ErrTruncated}
	}
	bm := bb.Bytes()
	s.Bitmap = bm[: len(bm)-4 : len(bm)-4]
	s.hdrCRC = crc(hb)
	s.bmapCRC = crc(s.Bitmap)
	if s.bmapCRC != le32(bm[len(bm)-4:]) {
		return nil, &FormatError{Region: "bitmap", Offset: hl, Msg: fmt.Sprintf("CRC32C %08x, stored %08x", s.bmapCRC, le32(bm[len(bm)-4:])), Err: ErrChecksum}
	}
	s.digest.Write(hb)
	s.digest.Write(s.Bitmap)
	s.out = make(chan *sjob, 2*runtime.GOMAXPROCS(0))
	go s.produce()
	return s, nil
}

func (s *StreamReader) full(p []byte, region string) error {
	n, err := io.ReadFull(s.in, p)
	s.off += int64(n)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return &FormatError{Region: region, Offset: s.off, Msg: "stream ends early", Err: ErrTruncated}
		}
		return &FormatError{Region: region, Offset: s.off, Msg: err.Error(), Err: err}
	}
	return nil
}

// produce reads frames in order and hands each to a decoding goroutine;
// the channel keeps them in order and bounds how many are in flight.
func (s *StreamReader) produce() {
	defer close(s.out)
	h := s.Header
	for i := uint32(0); i < h.ChunkCount; i++ {
		j := &sjob{ready: make(chan struct{})}
		hdr := make([]byte, frameHeaderLen)
		off := s.off
		if j.err = s.full(hdr, "chunk"); j.err == nil {
			j.f, j.err = decodeFrameHeader(hdr, off)
			j.f.sub, j.f.xxh = h.SubFrameSize, h.RequiredFlags&RequireXXH3 != 0
		}
		if j.err == nil && (j.f.Index != i || j.f.StoredLen > maxChunkSize+maxChunkSize/8 || j.f.LogicalLen > h.ChunkSize) {
			j.err = &FormatError{Region: "chunk", Offset: off, Msg: fmt.Sprintf("frame %d announces index %d, %d/%d bytes", i, j.f.Index, j.f.StoredLen, j.f.LogicalLen), Err: ErrFormat}
		}
		if j.err == nil {
			j.buf = make([]byte, frameHeaderLen+int(j.f.StoredLen))
			copy(j.buf, hdr)
			j.err = s.full(j.buf[frameHeaderLen:], "chunk")
		}
		if j.err != nil {
			close(j.ready)
			select {
			case s.out <- j:
			case <-s.stop:
			}
			return
		}
		go func() {
			j.data, j.err = decodeChunk(j.buf, &j.f, true)
			j.buf = nil
			close(j.ready)
		}()
		select {
		case s.out <- j:
		case <-s.stop:
			return
		}
	}
}

// Read returns logical bytes.
func (s *StreamReader) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		j, ok := <-s.out
		if !ok {
			s.err = s.finish()
			if s.err == nil {
				s.err = io.EOF
			}
			return 0, s.err
		}
		<-j.ready
		if j.err != nil {
			s.err = j.err
			close(s.stop)
			return 0, s.err
		}
		s.digest.Write(j.f.Sum[:])
		s.frames = append(s.frames, j.f)
		s.cur = j.data
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// Offset returns the image bytes consumed so far.
func (s *StreamReader) Offset() int64 { return s.off }

// finish reads the table and footer and checks them against what was read.
func (s *StreamReader) finish() error {
	h := s.Header
	var total int64
	for _, f := range s.frames {
		total += int64(f.LogicalLen)
	}
	if total != h.LogicalLen || uint32(len(s.frames)) != h.ChunkCount {
		return &FormatError{Region: "chunk", Offset: s.off, Msg: fmt.Sprintf("%d logical bytes in %d chunks, header says %d in %d", total, len(s.frames), h.LogicalLen, h.ChunkCount), Err: ErrFormat}
	}
	tableOff := s.off
	tb := make([]byte, 12+len(s.frames)*tableEntryLen)
	if err := s.full(tb, "table"); err != nil {
		return err
	}
	if string(tb[:4]) != TableMagic || crc(tb[:len(tb)-4]) != le32(tb[len(tb)-4:]) {
		return &FormatError{Region: "table", Offset: tableOff, Msg: "chunk table magic or CRC32C wrong", Err: ErrChecksum}
	}
	rb := readBuf{b: tb[8 : len(tb)-4]}
	for i := range s.frames {
		var e frame
		e.readEntry(&rb)
		f := s.frames[i]
		if e.StoredLen != f.StoredLen || e.LogicalLen != f.LogicalLen || e.Codec != f.Codec || e.Flags != f.Flags || e.StoredCRC != f.StoredCRC || e.Sum != f.Sum {
			return &FormatError{Region: "table", Offset: tableOff + 8 + int64(i)*tableEntryLen, Msg: fmt.Sprintf("entry %d disagrees with chunk frame", i), Err: ErrFormat}
		}
	}
	var trailer []byte
	if h.Flags&FlagRescue != 0 {
		head := make([]byte, 8)
		trOff := s.off
		if err := s.full(head, "trailer"); err != nil {
			return err
		}
		n := le32(head[4:])
		if string(head[:4]) != TrailerMagic || n < 12 || n > 1<<30 {
			return &FormatError{Region: "trailer", Offset: trOff, Msg: "trailer magic or length wrong", Err: ErrFormat}
		}
		trailer = make([]byte, n)
		copy(trailer, head)
		if err := s.full(trailer[8:], "trailer"); err != nil {
			return err
		}
		runs, err := decodeTrailer(trailer, trOff, h.ClusterCount)
		if err != nil {
			return err
		}
		h.Unreadable = runs
		s.digest.Write(trailer)
	}
	fb := make([]byte, FooterLen)
	footOff := s.off
	if err := s.full(fb, "footer"); err != nil {
		return err
	}
	f, err := decodeFooter(fb, footOff)
	if err != nil {
		return err
	}
	var d [32]byte
	copy(d[:], s.digest.Sum(nil))
	switch {
	case f.TableOffset != tableOff || f.ImageLen != s.off || f.ChunkCount != h.ChunkCount || f.TrailerLen != uint32(len(trailer)):
		return &FormatError{Region: "footer", Offset: footOff, Msg: "footer disagrees with the image layout", Err: ErrFormat}
	case f.HeaderCRC != s.hdrCRC || f.BitmapCRC != s.bmapCRC || f.TableCRC != le32(tb[len(tb)-4:]):
		return &FormatError{Region: "footer", Offset: footOff, Msg: "footer's record of header, bitmap or table differs", Err: ErrChecksum}
	case f.Digest != d:
		return &FormatError{Region: "footer", Offset: footOff + 32, Msg: "image digest differs", Err: ErrChecksum}
	}
	return nil
}

// Close stops background work.
func (s *StreamReader) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	return nil
}
