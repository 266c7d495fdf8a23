package seekz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// The seek index file, all integers little-endian:
//
//	payload   gzip: the checkpoints' histories (the part of the last 32 KiB
//	          of output that matches copy from), each zstd-compressed, and
//	          each segment's sub-sums: the CRC-32C (uint32) of every 32 KiB
//	          of its output from its checkpoint on, the last one shorter
//	table     count × 56-byte checkpoint records (below)
//	trailer   96 bytes (below)
//
// A checkpoint record: In (int64: bit offset for gzip and bzip2, byte offset
// otherwise), Out (int64, decompressed offset), A, B (int64, per codec; for
// gzip A = 1 marks a member header and B is the payload offset of the
// segment's sub-sums),
// WinOff (int64, payload offset), WinLen (int64, compressed history
// length), WinRaw (int64, history length), Sum (int64 holding the CRC-32C
// of the decompressed bytes up to the next checkpoint, so that reads that
// start mid-stream are checked too).
//
// The trailer: magic "CBIMGSZ1", version (uint32, 3: gzip checkpoints
// every 256 KiB; version 2 indexes are rebuilt), codec (uint8), strategy
// (uint8), 2 zero bytes, identity (32 bytes: SHA-256, see identity), size
// (int64), compressed size (int64), count (int64), table offset (int64),
// table CRC32C (uint32), trailer CRC32C over the bytes before it (uint32).
const (
	idxMagic    = "CBIMGSZ1"
	idxVersion  = 3
	cpBytes     = 64
	trailerSize = 96
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type checkpoint struct {
	In, Out, A, B          int64
	WinOff, WinLen, WinRaw int64
	Sum                    int64
}

var codecIDs = []Codec{None, Gzip, Zstd, Xz, Bzip2, Lz4}
var strategyIDs = []Strategy{Direct, Checkpoints, CacheFile}

func codecID(c Codec) uint8 {
	for i, x := range codecIDs {
		if x == c {
			return uint8(i)
		}
	}
	return 255
}

func strategyID(s Strategy) uint8 {
	for i, x := range strategyIDs {
		if x == s {
			return uint8(i)
		}
	}
	return 255
}

type trailer struct {
	codec    Codec
	strategy Strategy
	identity [32]byte
	size     int64
	csize    int64
	count    int64
	tableOff int64
	tableCRC uint32
}

func (t *trailer) encode() []byte {
	b := make([]byte, trailerSize)
	copy(b, idxMagic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], idxVersion)
	b[12], b[13] = codecID(t.codec), strategyID(t.strategy)
	copy(b[16:48], t.identity[:])
	le.PutUint64(b[48:], uint64(t.size))
	le.PutUint64(b[56:], uint64(t.csize))
	le.PutUint64(b[64:], uint64(t.count))
	le.PutUint64(b[72:], uint64(t.tableOff))
	le.PutUint32(b[80:], t.tableCRC)
	le.PutUint32(b[92:], crc32.Checksum(b[:92], castagnoli))
	return b
}

// parseTrailer checks a trailer; fileSize bounds the table it points at.
func parseTrailer(b []byte, fileSize int64) (*trailer, error) {
	le := binary.LittleEndian
	if len(b) != trailerSize || string(b[:8]) != idxMagic {
		return nil, fmt.Errorf("%w: no index trailer", ErrIndex)
	}
	if crc32.Checksum(b[:92], castagnoli) != le.Uint32(b[92:]) {
		return nil, fmt.Errorf("%w: trailer checksum", ErrIndex)
	}
	if v := le.Uint32(b[8:]); v != idxVersion {
		return nil, fmt.Errorf("%w: index version %d", ErrIndex, v)
	}
	if b[12] >= uint8(len(codecIDs)) || b[13] >= uint8(len(strategyIDs)) || b[14] != 0 || b[15] != 0 {
		return nil, fmt.Errorf("%w: codec or strategy", ErrIndex)
	}
	t := &trailer{codec: codecIDs[b[12]], strategy: strategyIDs[b[13]]}
	copy(t.identity[:], b[16:48])
	t.size, t.csize = int64(le.Uint64(b[48:])), int64(le.Uint64(b[56:]))
	t.count, t.tableOff = int64(le.Uint64(b[64:])), int64(le.Uint64(b[72:]))
	t.tableCRC = le.Uint32(b[80:])
	if t.size < 0 || t.csize < 0 || t.count < 0 || t.tableOff < 0 ||
		t.count > (fileSize-trailerSize)/cpBytes || t.tableOff != fileSize-trailerSize-t.count*cpBytes {
		return nil, fmt.Errorf("%w: table bounds", ErrIndex)
	}
	return t, nil
}

// parseTable decodes and checks checkpoint records: ascending offsets within
// the stream, histories inside the payload.
func parseTable(b []byte, t *trailer) ([]checkpoint, error) {
	if crc32.Checksum(b, castagnoli) != t.tableCRC {
		return nil, fmt.Errorf("%w: table checksum", ErrIndex)
	}
	le := binary.LittleEndian
	cps := make([]checkpoint, t.count)
	for i := range cps {
		r := b[i*cpBytes:]
		c := checkpoint{}
		for j, p := range []*int64{&c.In, &c.Out, &c.A, &c.B, &c.WinOff, &c.WinLen, &c.WinRaw, &c.Sum} {
			*p = int64(le.Uint64(r[j*8:]))
		}
		if c.Out < 0 || c.Out > t.size || c.In < 0 || c.In > t.csize*8 || c.WinOff < 0 || c.WinLen < 0 ||
			c.WinOff > t.tableOff || c.WinLen > t.tableOff-c.WinOff || c.WinLen > 2*maxHist || c.WinRaw < 0 || c.WinRaw > maxHist || c.Sum < 0 || c.Sum > 1<<32-1 {
			return nil, fmt.Errorf("%w: checkpoint %d out of range", ErrIndex, i)
		}
		if i > 0 && (c.Out <= cps[i-1].Out || c.In <= cps[i-1].In) {
			return nil, fmt.Errorf("%w: checkpoint %d out of order", ErrIndex, i)
		}
		cps[i] = c
	}
	if t.strategy == Checkpoints && t.size > 0 && (len(cps) == 0 || cps[0].Out != 0) {
		return nil, fmt.Errorf("%w: no checkpoint at the start", ErrIndex)
	}
	if t.codec == Gzip {
		for i, c := range cps {
			end := t.size
			if i+1 < len(cps) {
				end = cps[i+1].Out
			}
			if n := subCount(end - c.Out); c.B < 0 || c.B > t.tableOff || n > (t.tableOff-c.B)/4 {
				return nil, fmt.Errorf("%w: sub-sums of checkpoint %d out of range", ErrIndex, i)
			}
		}
	}
	return cps, nil
}

func encodeTable(cps []checkpoint) []byte {
	b := make([]byte, len(cps)*cpBytes)
	le := binary.LittleEndian
	for i, c := range cps {
		r := b[i*cpBytes:]
		for j, v := range []int64{c.In, c.Out, c.A, c.B, c.WinOff, c.WinLen, c.WinRaw, c.Sum} {
			le.PutUint64(r[j*8:], uint64(v))
		}
	}
	return b
}

// identity hashes what identifies the pieces: names, sizes, modification
// times, and the first and last MiB of the stream.
func identity(src *pieceSet) ([32]byte, error) {
	h := sha256.New()
	for i, n := range src.names {
		var mtime int64
		if src.info != nil {
			mtime = src.info[i].ModTime().UnixNano()
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", filepath.Base(n), src.start[i+1]-src.start[i], mtime)
	}
	const mib = 1 << 20
	buf := make([]byte, mib)
	total := src.Size()
	for _, off := range []int64{0, max(0, total-mib)} {
		n := min(mib, total-off)
		if _, err := src.ReadAt(buf[:n], off); err != nil {
			return [32]byte{}, err
		}
		h.Write(buf[:n])
	}
	var id [32]byte
	copy(id[:], h.Sum(nil))
	return id, nil
}

// indexName names the index of pieces by where they are, so a changed image
// finds (and replaces) its old index.
func indexName(dir string, src *pieceSet) string {
	key := src.names[0]
	if src.info != nil {
		if abs, err := filepath.Abs(key); err == nil {
			key = abs
		}
	} else {
		// A stream read from elsewhere (inside a partition, or decompressed
		// from another stream) under a name that may also be a file's.
		key = fmt.Sprintf("readerat\x00%s\x00%d", key, src.Size())
	}
	s := sha256.Sum256([]byte(key))
	return filepath.Join(dir, hex.EncodeToString(s[:12]))
}

// loadOrBuild uses a matching index or makes a new one.
func (r *Reader) loadOrBuild(ctx context.Context, opt Options) error {
	id, err := identity(r.src)
	if err != nil {
		return err
	}
	base := indexName(opt.CacheDir, r.src)
	r.info.IndexPath = base + ".idx"
	why, err := r.load(base, id)
	if err == nil {
		r.info.Reused = true
		r.setDec()
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		r.info.Rebuilt = why
	}
	if err := os.MkdirAll(opt.CacheDir, 0o700); err != nil {
		return err
	}
	if err := r.build(ctx, opt, base, id); err != nil {
		return err
	}
	if _, err := r.load(base, id); err != nil {
		return fmt.Errorf("index just written does not load: %w", err)
	}
	r.setDec()
	return nil
}

func (r *Reader) setDec() {
	switch r.info.Codec {
	case Gzip:
		r.dec = gzipSegments{}
	case Zstd:
		r.dec = zstdSegments{}
	case Xz:
		r.dec = xzSegments{}
	case Bzip2:
		r.dec = bzip2Segments{}
	case Lz4:
		r.dec = lz4Segments{}
	}
}

// load opens base.idx (and base.data) if they describe these pieces; on
// failure it says why.
func (r *Reader) load(base string, id [32]byte) (string, error) {
	f, err := os.Open(base + ".idx")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() < trailerSize {
		return "index damaged", fmt.Errorf("%w: short", ErrIndex)
	}
	tb := make([]byte, trailerSize)
	if _, err := f.ReadAt(tb, st.Size()-trailerSize); err != nil {
		return "index unreadable", err
	}
	t, err := parseTrailer(tb, st.Size())
	if err != nil {
		if string(tb[:8]) == idxMagic && binary.LittleEndian.Uint32(tb[8:]) != idxVersion {
			return "index made by another version of cbimg", err
		}
		return "index damaged", err
	}
	if t.identity != id || t.csize != r.src.Size() {
		return "the image changed since its index was made", fmt.Errorf("%w: stale", ErrIndex)
	}
	if t.codec != r.info.Codec {
		return "codec differs", fmt.Errorf("%w: codec", ErrIndex)
	}
	tab := make([]byte, t.count*cpBytes)
	if _, err := f.ReadAt(tab, t.tableOff); err != nil {
		return "index unreadable", err
	}
	cps, err := parseTable(tab, t)
	if err != nil {
		return "index damaged", err
	}
	r.info.Strategy, r.info.Size, r.info.Checkpoints = t.strategy, t.size, len(cps)
	r.info.IndexBytes = allocated(st)
	r.cps = cps
	if t.strategy == CacheFile {
		d, err := os.Open(base + ".data")
		if err != nil {
			return "cache file missing", err
		}
		ds, err := d.Stat()
		if err != nil || ds.Size() != t.size {
			d.Close()
			return "cache file damaged", fmt.Errorf("%w: cache file size", ErrIndex)
		}
		r.data = d
		r.info.CacheBytes = allocated(ds)
	}
	r.idx = f
	ok = true
	return "", nil
}

// builder collects what an indexing pass makes.
type builder struct {
	ctx      context.Context
	opt      Options
	src      *progressSrc
	idx      io.Writer // payload then table and trailer
	check    bool      // only check the stream: no cache file
	payload  int64
	data     *sparseWriter // cache-file strategy
	dataPath string
	cps      []checkpoint
	strategy Strategy
	size     int64
	enc      *zstd.Encoder
	subSums  bool // store each segment's sub-sums (gzip)
}

// segSums computes each segment's CRC-32C as the pass's output flows by;
// checkpoints must be added before the output they start reaches it.
type segSums struct {
	b    *builder
	pos  int64
	j    int
	crc  uint32
	sub  uint32   // CRC-32C of the current sub-block
	subs []uint32 // sub-sums of the current segment, when b.subSums
	err  error
}

// subSum is the stretch of output each sub-sum covers.
const subSum = 32 << 10

// subCount is the number of sub-sums of a segment n bytes long.
func subCount(n int64) int64 { return (n + subSum - 1) / subSum }

func (s *segSums) Write(p []byte) (int, error) {
	n := len(p)
	if s.err != nil {
		return 0, s.err
	}
	for len(p) > 0 {
		k := len(p)
		if s.j+1 < len(s.b.cps) {
			k = int(min(int64(k), s.b.cps[s.j+1].Out-s.pos))
		}
		if s.b.subSums {
			// Also cut at sub-block ends.
			k = int(min(int64(k), subSum-(s.pos-s.b.cps[s.j].Out)%subSum))
			s.sub = crc32.Update(s.sub, castagnoli, p[:k])
			if (s.pos+int64(k)-s.b.cps[s.j].Out)%subSum == 0 {
				s.subs = append(s.subs, s.sub)
				s.sub = 0
			}
		}
		s.crc = crc32.Update(s.crc, castagnoli, p[:k])
		s.pos += int64(k)
		p = p[k:]
		if s.j+1 < len(s.b.cps) && s.pos == s.b.cps[s.j+1].Out {
			s.finish()
			s.j++
		}
	}
	return n, nil
}

// finish stores the current segment's sum (and sub-sums).
func (s *segSums) finish() {
	if s.j < len(s.b.cps) {
		s.b.cps[s.j].Sum = int64(s.crc)
		if s.b.subSums {
			if s.pos > s.b.cps[s.j].Out && (s.pos-s.b.cps[s.j].Out)%subSum != 0 {
				s.subs = append(s.subs, s.sub)
			}
			buf := make([]byte, 4*len(s.subs))
			for i, v := range s.subs {
				binary.LittleEndian.PutUint32(buf[4*i:], v)
			}
			s.b.cps[s.j].B = s.b.payload
			if _, err := s.b.idx.Write(buf); err != nil && s.err == nil {
				s.err = err
			}
			s.b.payload += int64(len(buf))
		}
	}
	s.crc, s.sub, s.subs = 0, 0, s.subs[:0]
}

// sums wraps w so that the output written through it sets the checkpoints'
// sums; call done at the end of the pass; it returns an error writing the
// sub-sums.
func (b *builder) sums(w io.Writer) (io.Writer, func() error) {
	s := &segSums{b: b}
	return io.MultiWriter(w, s), func() error { s.finish(); return s.err }
}

// addWindow stores a history in the payload and returns its place.
func (b *builder) addWindow(w []byte) (off, clen int64, err error) {
	if b.enc == nil {
		b.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return 0, 0, err
		}
	}
	c := b.enc.EncodeAll(w, nil)
	if _, err := b.idx.Write(c); err != nil {
		return 0, 0, err
	}
	off = b.payload
	b.payload += int64(len(c))
	return off, int64(len(c)), nil
}

// startCache switches the pass to the cache-file strategy.
func (b *builder) startCache() error {
	if b.check {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(b.dataPath), "data-*.partial")
	if err != nil {
		return err
	}
	b.data = &sparseWriter{f: f}
	b.strategy = CacheFile
	return nil
}

// Verify decodes the whole stream again and checks everything the codec
// checks (gzip member CRCs, zstd frame checksums, xz block checks, bzip2
// block and stream CRCs, lz4 checksums), which random reads from a
// checkpoint cannot. progress, if set, gets compressed bytes read.
func (r *Reader) Verify(ctx context.Context, progress func(done, total int64)) error {
	if r.info.Codec == None {
		return nil
	}
	b := &builder{ctx: ctx, opt: Options{Spacing: 1 << 62, SegmentLimit: 1 << 62}, idx: io.Discard, check: true, strategy: Checkpoints,
		src: &progressSrc{ctx: ctx, r: r.src, total: r.src.Size(), fn: progress}}
	err := runIndexer(r.info.Codec, b)
	if err != nil {
		return err
	}
	if b.size != r.info.Size {
		return fmt.Errorf("%w: the stream decodes to %d bytes, its index says %d", ErrIndex, b.size, r.info.Size)
	}
	return nil
}

func runIndexer(c Codec, b *builder) error {
	switch c {
	case Gzip:
		return indexGzip(b)
	case Zstd:
		return indexZstd(b)
	case Xz:
		return indexXz(b)
	case Bzip2:
		return indexBzip2(b)
	case Lz4:
		return indexLz4(b)
	}
	return fmt.Errorf("%w: %s", ErrCodec, c)
}

func (r *Reader) build(ctx context.Context, opt Options, base string, id [32]byte) (err error) {
	tmp, err := os.CreateTemp(opt.CacheDir, "idx-*.partial")
	if err != nil {
		return err
	}
	b := &builder{ctx: ctx, opt: opt, idx: tmp, dataPath: base + ".data", strategy: Checkpoints,
		src: &progressSrc{ctx: ctx, r: r.src, total: r.src.Size(), fn: opt.Progress}}
	defer func() {
		if b.enc != nil {
			b.enc.Close()
		}
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			if b.data != nil {
				b.data.f.Close()
				os.Remove(b.data.f.Name())
			}
		}
	}()
	if err = runIndexer(r.info.Codec, b); err != nil {
		return err
	}
	if b.data != nil {
		if err = b.data.finish(b.size); err != nil {
			return err
		}
	}
	tab := encodeTable(b.cps)
	t := trailer{codec: r.info.Codec, strategy: b.strategy, identity: id, size: b.size, csize: r.src.Size(),
		count: int64(len(b.cps)), tableOff: b.payload, tableCRC: crc32.Checksum(tab, castagnoli)}
	if _, err = tmp.Write(append(tab, t.encode()...)); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	// The cache file goes in place before the index that vouches for it.
	if b.data != nil {
		if err = os.Rename(b.data.f.Name(), b.dataPath); err != nil {
			return err
		}
	} else {
		os.Remove(b.dataPath)
	}
	if opt.Progress != nil {
		opt.Progress(r.src.Size(), r.src.Size())
	}
	return os.Rename(tmp.Name(), base+".idx")
}

// progressSrc is the pieces seen by an indexing pass: it reports progress
// and stops when the context is cancelled.
type progressSrc struct {
	ctx   context.Context
	r     io.ReaderAt
	total int64
	fn    func(done, total int64)
	high  int64
	last  int64
}

func (p *progressSrc) ReadAt(b []byte, off int64) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.ReadAt(b, off)
	if e := off + int64(n); e > p.high {
		p.high = e
		if p.fn != nil && p.high-p.last >= 1<<20 {
			p.last = p.high
			p.fn(p.high, p.total)
		}
	}
	return n, err
}

// sparseWriter writes the cache file, skipping all-zero 64 KiB blocks.
type sparseWriter struct {
	f   *os.File
	off int64
	buf []byte
}

var zero64k = make([]byte, 64<<10)

func (s *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := 64<<10 - len(s.buf)
		k := min(room, len(p))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		if len(s.buf) == 64<<10 {
			if err := s.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (s *sparseWriter) flush() error {
	if !bytes.Equal(s.buf, zero64k[:len(s.buf)]) {
		if _, err := s.f.WriteAt(s.buf, s.off); err != nil {
			return err
		}
	}
	s.off += int64(len(s.buf))
	s.buf = s.buf[:0]
	return nil
}

func (s *sparseWriter) finish(size int64) error {
	if err := s.flush(); err != nil {
		return err
	}
	if s.off != size {
		return fmt.Errorf("seekz: cache file holds %d bytes, stream has %d", s.off, size)
	}
	if err := s.f.Truncate(size); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	return s.f.Close()
}

// readWindow reads checkpoint i's history from the index.
func (r *Reader) readWindow(i int) ([]byte, error) {
	c := r.cps[i]
	if c.WinRaw == 0 {
		return nil, nil
	}
	comp := make([]byte, c.WinLen)
	if _, err := r.idx.ReadAt(comp, c.WinOff); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	r.wdecOnce.Do(func() {
		r.wdec, r.wdecErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(maxHist))
	})
	if r.wdecErr != nil {
		return nil, r.wdecErr
	}
	w, err := r.wdec.DecodeAll(comp, make([]byte, 0, maxHist))
	if err != nil || int64(len(w)) != c.WinRaw {
		return nil, fmt.Errorf("%w: history of checkpoint %d", ErrIndex, i)
	}
	return w, nil
}
