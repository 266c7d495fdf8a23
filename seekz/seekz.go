// Package seekz gives random access (an io.ReaderAt) into a stream-compressed
// file that may be split into pieces (NAME.aa, NAME.ab, … concatenated in
// name order): gzip (also pigz and multi-member), zstd (one frame or many),
// xz (one block or many), bzip2 (also multi-stream) and the lz4 frame format,
// or no compression.
//
// The first Open reads the stream once and keeps a seek index in a cache
// directory: checkpoints with their 32 KiB history for gzip (decoded by our
// own DEFLATE decoder, which can start at any block boundary), frame starts
// for zstd, blocks for xz, bzip2 and independent lz4 blocks. Where no
// checkpoint can exist (one large zstd frame or xz block, dependent lz4
// blocks) the same pass fills a local cache file of the decompressed data,
// sparse where it is zeros. The index is keyed by the pieces' names, sizes,
// modification times and hashes of the first and last MiB; a changed image
// is detected and its index rebuilt, never trusted. Info says which strategy
// applies and what it costs on disk.
package seekz

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Errors; wrapped with detail and matched with errors.Is.
var (
	ErrCorrupt   = errors.New("seekz: compressed stream is corrupt")
	ErrChecksum  = errors.New("seekz: compressed stream checksum mismatch")
	ErrTruncated = errors.New("seekz: compressed stream is truncated")
	ErrPieces    = errors.New("seekz: pieces missing or out of order")
	ErrIndex     = errors.New("seekz: seek index is damaged")
	ErrCodec     = errors.New("seekz: compression not supported")
)

// OffsetError carries the compressed-stream byte offset of a fault.
type OffsetError struct {
	Offset int64
	Err    error
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("%v (at compressed offset %d)", e.Err, e.Offset)
}
func (e *OffsetError) Unwrap() error { return e.Err }

// Codec names a compression.
type Codec string

// Codecs.
const (
	None  Codec = "none"
	Gzip  Codec = "gzip"
	Zstd  Codec = "zstd"
	Xz    Codec = "xz"
	Bzip2 Codec = "bzip2"
	Lz4   Codec = "lz4"
)

// Strategy is how random reads are served.
type Strategy string

// Strategies.
const (
	Direct      Strategy = "direct"      // uncompressed: reads go to the pieces
	Checkpoints Strategy = "checkpoints" // decode from the nearest checkpoint
	CacheFile   Strategy = "cache-file"  // a local decompressed copy
)

// Options for Open.
type Options struct {
	// CacheDir holds indexes and cache files; "" means DefaultCacheDir().
	CacheDir string
	// Codec forces a codec; "" detects it from the first bytes.
	Codec Codec
	// Progress, if set, is called during the indexing pass with the
	// compressed bytes read and their total.
	Progress func(done, total int64)
	// Spacing is the decompressed distance between gzip and lz4
	// checkpoints; 0 means 256 KiB for gzip (1 MiB for lz4), or more for
	// streams over 64 GiB (128 GiB for lz4) so that the checkpoint table
	// stays under 16 MiB of memory per unit of compression ratio.
	Spacing int64
	// SegmentLimit is the largest stretch served by decoding from a
	// checkpoint (an xz block, an estimate for a zstd frame); larger ones
	// make the cache-file strategy. 0 means 64 MiB.
	SegmentLimit int64
}

// Info describes an opened stream.
type Info struct {
	Codec          Codec
	Strategy       Strategy
	Pieces         []string
	CompressedSize int64
	Size           int64 // decompressed
	Checkpoints    int
	IndexPath      string // "" for Direct
	IndexBytes     int64  // disk space of the index
	CacheBytes     int64  // disk space allocated to the cache file
	Reused         bool   // the index was made by an earlier open
	Rebuilt        string // why an existing index was rebuilt, or ""
}

// DefaultCacheDir is os.UserCacheDir()/cbimg (or the temp dir if there is
// no user cache dir).
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "cbimg")
}

// Reader is an io.ReaderAt over the decompressed stream. It is safe for
// concurrent use.
type Reader struct {
	src  *pieceSet
	info Info
	cps  []checkpoint
	idx  *os.File // index file (gzip windows)
	data *os.File // cache file
	dec  segmentOpener

	wdecOnce sync.Once // decoder of the gzip histories, shared
	wdec     *zstd.Decoder
	wdecErr  error

	mu       sync.Mutex
	idle     []*cursor
	segs     []*decodedSeg // most recently used last
	segBytes int64
	segCap   int64 // bytes of decoded segments kept
}

// decodedSeg is a segment decoded from its start, as far as reads needed.
type decodedSeg struct {
	mu   sync.Mutex
	seg  int
	size int64     // the segment's length (fixed: read without mu)
	data []byte    // decoded so far; cap is size
	ok   int64     // bytes of data checked against sub-sums
	subs []uint32  // the segment's sub-sums (gzip), loaded with it
	rd   io.Reader // its decoder while not complete
	cl   io.Closer
	err  error
}

// release drops the decoder; called with mu held.
func (d *decodedSeg) release() {
	if d.cl != nil {
		d.cl.Close()
	}
	d.rd, d.cl = nil, nil
}

const (
	segWhole    = 8 << 20  // segments up to this size are decoded (as far as read) and kept
	segCacheCap = 32 << 20 // bytes of decoded segments kept
	maxLiveDec  = 8        // kept segments that also keep their decoder
	gzipSpacing = 256 << 10
)

// cursor is a decoder positioned inside one segment, kept for the next
// read that continues from it.
type cursor struct {
	seg int
	pos int64
	r   io.Reader
	c   io.Closer
	sum hash.Hash32 // of the segment's bytes so far, checked at its end
}

const maxIdle = 4

// segmentOpener starts a decoder at a checkpoint.
type segmentOpener interface {
	open(r *Reader, i int) (io.Reader, io.Closer, error)
}

// Open opens the pieces (in order) of one compressed stream.
func Open(ctx context.Context, pieces []string, opt Options) (*Reader, error) {
	src, err := openPieces(pieces)
	if err != nil {
		return nil, err
	}
	r, err := open(ctx, src, opt)
	if err != nil {
		src.Close()
		return nil, err
	}
	return r, nil
}

// OpenReaderAt opens one compressed stream of size bytes read from src;
// name identifies it in the cache directory (a path, or PARTITION:PATH). Its
// index is recognized by name, size and the first and last MiB.
func OpenReaderAt(ctx context.Context, src io.ReaderAt, size int64, name string, opt Options) (*Reader, error) {
	ps := &pieceSet{names: []string{name}, files: []io.ReaderAt{src}, start: []int64{0, size}}
	return open(ctx, ps, opt)
}

func open(ctx context.Context, src *pieceSet, opt Options) (*Reader, error) {
	if opt.SegmentLimit <= 0 {
		opt.SegmentLimit = 64 << 20
	}
	if opt.CacheDir == "" {
		opt.CacheDir = DefaultCacheDir()
	}
	codec := opt.Codec
	if codec == "" {
		var head [16]byte
		n, err := src.ReadAt(head[:], 0)
		if err != nil && err != io.EOF {
			return nil, err
		}
		codec = Detect(head[:n])
	}
	if opt.Spacing <= 0 {
		opt.Spacing = max(1<<20, src.Size()/(128<<10))
		if codec == Gzip {
			opt.Spacing = max(gzipSpacing, src.Size()/(256<<10))
		}
	}
	r := &Reader{src: src, segCap: segCacheCap}
	r.info = Info{Codec: codec, Pieces: src.names, CompressedSize: src.Size()}
	if codec == None {
		r.info.Strategy, r.info.Size = Direct, src.Size()
		return r, nil
	}
	if err := r.loadOrBuild(ctx, opt); err != nil {
		return nil, err
	}
	return r, nil
}

// Detect names the codec of a stream from its first bytes.
func Detect(b []byte) Codec {
	has := func(m ...byte) bool { return len(b) >= len(m) && string(b[:len(m)]) == string(m) }
	switch {
	case has(0x1f, 0x8b):
		return Gzip
	case has(0x28, 0xb5, 0x2f, 0xfd), len(b) >= 4 && b[0]&0xf0 == 0x50 && has(b[0], 0x2a, 0x4d, 0x18):
		return Zstd
	case has(0xfd, '7', 'z', 'X', 'Z', 0):
		return Xz
	case has('B', 'Z', 'h') && len(b) >= 10 && b[3] >= '1' && b[3] <= '9' && (string(b[4:10]) == "\x31\x41\x59\x26\x53\x59" || string(b[4:10]) == "\x17\x72\x45\x38\x50\x90"):
		return Bzip2
	case has(0x04, 0x22, 0x4d, 0x18):
		return Lz4
	}
	return None
}

// Checked reports whether every byte ReadAt hands out is first checked
// against the sums the indexing pass recorded (which itself checked the
// codec's own checksums over the whole stream): true for gzip checkpoints,
// whose reads check each 32 KiB they decode.
func (r *Reader) Checked() bool {
	return r.info.Codec == Gzip && r.info.Strategy == Checkpoints
}

// Info describes the stream and how it is served.
func (r *Reader) Info() Info { return r.info }

// Size is the decompressed size.
func (r *Reader) Size() int64 { return r.info.Size }

// Close releases files and decoders.
func (r *Reader) Close() error {
	r.mu.Lock()
	for _, d := range r.segs {
		if d.mu.TryLock() { // never wait on d.mu while holding r.mu
			d.release()
			d.mu.Unlock()
		}
	}
	r.segs = nil
	for _, c := range r.idle {
		if c.c != nil {
			c.c.Close()
		}
	}
	r.idle = nil
	r.mu.Unlock()
	if r.idx != nil {
		r.idx.Close()
	}
	if r.wdec != nil {
		r.wdec.Close()
	}
	if r.data != nil {
		r.data.Close()
	}
	return r.src.Close()
}

// ReadAt reads decompressed bytes.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("seekz: negative offset")
	}
	switch r.info.Strategy {
	case Direct:
		return r.src.ReadAt(p, off)
	case CacheFile:
		if off >= r.info.Size {
			return 0, io.EOF
		}
		want := min(int64(len(p)), r.info.Size-off)
		n, err := r.data.ReadAt(p[:want], off)
		if n < int(want) {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("%w: cache file %s is short", ErrIndex, r.data.Name())
			}
			return n, err
		}
		if want < int64(len(p)) {
			return n, io.EOF
		}
		return n, nil
	}
	n := 0
	for n < len(p) {
		o := off + int64(n)
		if o >= r.info.Size {
			return n, io.EOF
		}
		seg := sort.Search(len(r.cps), func(i int) bool { return r.cps[i].Out > o }) - 1
		end := r.info.Size
		if seg+1 < len(r.cps) {
			end = r.cps[seg+1].Out
		}
		if end-r.cps[seg].Out <= segWhole {
			want := min(int64(len(p)-n), end-o)
			d, err := r.segUpTo(seg, end, o, o+want)
			if err != nil {
				return n, err
			}
			n += copy(p[n:n+int(want)], d[o-r.cps[seg].Out:])
			continue
		}
		c, err := r.cursorFor(seg, o)
		if err != nil {
			return n, err
		}
		if o > c.pos {
			k, err := io.CopyN(c.sum, c.r, o-c.pos)
			c.pos += k
			if err != nil {
				r.drop(c)
				return n, r.segErr(seg, c.pos, err)
			}
		}
		want := min(int64(len(p)-n), end-o)
		m, err := io.ReadFull(c.r, p[n:n+int(want)])
		c.sum.Write(p[n : n+m])
		c.pos += int64(m)
		n += m
		if err != nil {
			r.drop(c)
			return n, r.segErr(seg, c.pos, err)
		}
		if c.pos == end {
			// A long segment is checked when read to its end: earlier
			// parts of it were handed out unchecked (RELIABILITY.md).
			r.drop(c)
			if c.sum.Sum32() != uint32(r.cps[seg].Sum) {
				return n, r.segErr(seg, c.pos, fmt.Errorf("%w: decompressed bytes differ from when the image was indexed", ErrChecksum))
			}
		} else {
			r.park(c)
		}
	}
	return n, nil
}

// segUpTo returns segment seg (ending at end) decoded at least up to upTo
// for a read starting at from: decoded segments are kept, and checked
// against their sum once decoded to the end. A segment that fails is
// dropped, so a later read tries again (and fails again if the stream is
// damaged).
func (r *Reader) segUpTo(seg int, end, from, upTo int64) ([]byte, error) {
	r.mu.Lock()
	var d *decodedSeg
	for i, x := range r.segs {
		if x.seg == seg {
			d = x
			r.segs = append(append(r.segs[:i:i], r.segs[i+1:]...), x)
			break
		}
	}
	if d == nil {
		d = &decodedSeg{seg: seg, size: end - r.cps[seg].Out, data: make([]byte, 0, end-r.cps[seg].Out)}
		r.segs = append(r.segs, d)
		r.segBytes += d.size
		for r.segBytes > r.segCap && len(r.segs) > 1 {
			old := r.segs[0]
			r.segBytes -= old.size
			r.segs = r.segs[1:]
			if old.mu.TryLock() { // else a reader is decoding it; it is dropped after
				old.release()
				old.mu.Unlock()
			}
		}
	}
	r.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	need := upTo - r.cps[seg].Out
	if int64(len(d.data)) >= need {
		return d.data, nil
	}
	// A read that starts where decoding stopped (a sequential reader) gets
	// the rest of the segment decoded and checked at once: read-ahead. Any
	// other read of a gzip segment decodes only to the end of the 32 KiB
	// sub-block it needs (a random 4 KiB read costs on average half a
	// segment), checked against its sub-sums; the segment's own sum is
	// checked when a later read completes it. Other codecs decode whole
	// segments.
	target := need
	if from-r.cps[seg].Out <= int64(len(d.data)) {
		target = d.size
	}
	if d.subs == nil && r.info.Codec == Gzip {
		subs, err := r.readSubs(seg, d.size)
		if err != nil {
			d.err = err
			r.forget(d)
			return nil, err
		}
		d.subs = subs
	}
	if d.rd == nil { // new, or evicted while another read used it
		rd, cl, err := r.dec.open(r, seg)
		if err != nil {
			return nil, err
		}
		if _, err := io.CopyN(io.Discard, rd, int64(len(d.data))); err != nil {
			if cl != nil {
				cl.Close()
			}
			return nil, r.segErr(seg, r.cps[seg].Out, err)
		}
		d.rd, d.cl = rd, cl
	}
	if d.subs != nil { // stop at a sub-block's end, so all that is handed out is checked
		target = min(d.size, (target+subSum-1)/subSum*subSum)
	} else {
		target = d.size
	}
	k, err := io.ReadFull(d.rd, d.data[len(d.data):target])
	d.data = d.data[:len(d.data)+k]
	if err == nil && d.subs != nil {
		for ; d.ok < int64(len(d.data)); d.ok += subSum {
			e := min(d.ok+subSum, int64(len(d.data)))
			if crc32.Checksum(d.data[d.ok:e], castagnoli) != d.subs[d.ok/subSum] {
				err = fmt.Errorf("%w: decompressed bytes differ from when the image was indexed", ErrChecksum)
				d.data = d.data[:d.ok]
				break
			}
		}
	}
	if err == nil && int64(len(d.data)) < d.size {
		r.liveDec(d)
		return d.data, nil
	}
	if err == nil && crc32.Checksum(d.data, castagnoli) != uint32(r.cps[seg].Sum) {
		err = fmt.Errorf("%w: decompressed bytes differ from when the image was indexed", ErrChecksum)
	}
	d.release()
	if err != nil {
		d.err = r.segErr(seg, r.cps[seg].Out+int64(len(d.data)), err)
		r.forget(d)
		return nil, d.err
	}
	return d.data, nil
}

// readSubs reads the sub-sums of gzip segment seg, size bytes long.
func (r *Reader) readSubs(seg int, size int64) ([]uint32, error) {
	b := make([]byte, 4*subCount(size))
	if _, err := r.idx.ReadAt(b, r.cps[seg].B); err != nil {
		return nil, fmt.Errorf("%w: sub-sums of checkpoint %d: %v", ErrIndex, seg, err)
	}
	subs := make([]uint32, len(b)/4)
	for i := range subs {
		subs[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return subs, nil
}

// liveDec notes that d keeps its decoder (called with d.mu held); beyond
// maxLiveDec, the least recently used other segments drop theirs (their
// decoded bytes stay; a read past them decodes again from the checkpoint).
func (r *Reader) liveDec(d *decodedSeg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := 0
	for i := len(r.segs) - 1; i >= 0; i-- {
		x := r.segs[i]
		if x == d {
			live++
			continue
		}
		if !x.mu.TryLock() { // in use by another read: counts as live
			live++
			continue
		}
		if x.rd != nil {
			if live >= maxLiveDec-1 {
				x.release()
			} else {
				live++
			}
		}
		x.mu.Unlock()
	}
}

// forget drops d from the kept segments; called with d.mu held. Whoever
// holds r.mu only ever tries d.mu (TryLock), so this order cannot deadlock.
func (r *Reader) forget(d *decodedSeg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.segs {
		if x == d {
			r.segs = append(r.segs[:i:i], r.segs[i+1:]...)
			r.segBytes -= d.size
			return
		}
	}
}

func (r *Reader) segErr(seg int, pos int64, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = ErrTruncated
	}
	return fmt.Errorf("decompressed offset %d (segment from compressed offset %d): %w", pos, r.cps[seg].In/r.dec2byte(), err)
}

// dec2byte converts a checkpoint's In to bytes (gzip's are bit offsets).
func (r *Reader) dec2byte() int64 {
	if r.info.Codec == Gzip || r.info.Codec == Bzip2 {
		return 8
	}
	return 1
}

// cursorFor takes an idle cursor that can reach o within seg, or starts one.
func (r *Reader) cursorFor(seg int, o int64) (*cursor, error) {
	r.mu.Lock()
	best := -1
	for i, c := range r.idle {
		if c.seg == seg && c.pos <= o && (best < 0 || c.pos > r.idle[best].pos) {
			best = i
		}
	}
	if best >= 0 {
		c := r.idle[best]
		r.idle = append(r.idle[:best], r.idle[best+1:]...)
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()
	rd, cl, err := r.dec.open(r, seg)
	if err != nil {
		return nil, err
	}
	end := r.info.Size
	if seg+1 < len(r.cps) {
		end = r.cps[seg+1].Out
	}
	return &cursor{seg: seg, pos: r.cps[seg].Out, r: io.LimitReader(rd, end-r.cps[seg].Out), c: cl, sum: crc32.New(castagnoli)}, nil
}

func (r *Reader) park(c *cursor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idle = append(r.idle, c)
	if len(r.idle) > maxIdle {
		old := r.idle[0]
		r.idle = r.idle[1:]
		if old.c != nil {
			old.c.Close()
		}
	}
}

func (r *Reader) drop(c *cursor) {
	if c.c != nil {
		c.c.Close()
	}
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b: b} }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
