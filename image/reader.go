package image

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// Reader gives random access to the partition an image holds: ReadAt at any
// partition offset returns the stored bytes, and zeros for free and excluded
// clusters. It is safe for concurrent use.
type Reader struct {
	Header *Header
	Footer *Footer
	Bitmap []byte

	src     io.ReaderAt
	closer  io.Closer
	size    int64
	frames  []frame
	ix      *index
	cache   *chunkCache
	trailer []byte
	last    atomic.Int64  // last chunk read, to spot sequential reading
	ahead   chan struct{} // bounds background prefetches
	recent  recentChunks  // raw chunks read in small pieces lately
}

// Options tune a Reader.
type Options struct {
	CacheBytes int64 // byte cap of the decompressed-chunk cache; 0 = 64 MiB
}

// Open opens an image file (the first volume of a split image) and checks
// its header, bitmap, chunk table and footer. Chunk data is checked when
// read; Verify checks all of it.
func Open(name string, opts *Options) (*Reader, error) {
	m, err := openParts(name)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(m, m.size(), opts)
	if err != nil {
		m.Close()
		return nil, err
	}
	if err := m.checkSplit(r.Header.SplitSize); err != nil {
		m.Close()
		return nil, err
	}
	r.closer = m
	return r, nil
}

// NewReader reads an image of size bytes from src.
func NewReader(src io.ReaderAt, size int64, opts *Options) (*Reader, error) {
	r := &Reader{src: src, size: size}
	if err := r.load(); err != nil {
		return nil, err
	}
	cb := int64(64 << 20)
	if opts != nil && opts.CacheBytes > 0 {
		cb = opts.CacheBytes
	}
	r.cache = newChunkCache(cb)
	r.last.Store(-2)
	r.ahead = make(chan struct{}, runtime.GOMAXPROCS(0))
	return r, nil
}

func (r *Reader) readAt(p []byte, off int64, region string) error {
	n, err := r.src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &FormatError{Region: region, Offset: off + int64(n), Msg: fmt.Sprintf("read %d bytes at %d: %v", len(p), off, err), Err: ErrTruncated}
}

func (r *Reader) load() error {
	var first [16]byte
	if r.size < 16 {
		return &FormatError{Region: "header", Offset: 0, Msg: fmt.Sprintf("file is %d bytes, too short for an image", r.size), Err: ErrTruncated}
	}
	if err := r.readAt(first[:], 0, "header"); err != nil {
		return err
	}
	hl, err := PeekHeaderLen(first[:])
	if err != nil {
		return err
	}
	if hl > r.size {
		return &FormatError{Region: "header", Offset: r.size, Msg: fmt.Sprintf("header needs %d bytes, file has %d", hl, r.size), Err: ErrTruncated}
	}
	hb := make([]byte, hl)
	if err := r.readAt(hb, 0, "header"); err != nil {
		return err
	}
	h, err := DecodeHeader(hb)
	if err != nil {
		return err
	}
	r.Header = h
	// Everything below is bounded by the file size before it is allocated.
	minLen := hl + h.BitmapLen + 4 + int64(h.ChunkCount)*frameHeaderLen + 12 + int64(h.ChunkCount)*tableEntryLen + FooterLen
	if minLen > r.size {
		return &FormatError{Region: "footer", Offset: r.size, Msg: fmt.Sprintf("image is %d bytes; its header needs at least %d: truncated", r.size, minLen), Err: ErrTruncated}
	}
	fb := make([]byte, FooterLen)
	if err := r.readAt(fb, r.size-FooterLen, "footer"); err != nil {
		return err
	}
	f, err := decodeFooter(fb, r.size-FooterLen)
	if err != nil {
		return err
	}
	r.Footer = f
	if f.ImageLen < r.size {
		// A padded file: the image, zeros, a copy of its footer (FORMAT.md).
		if err := r.unpad(fb, f, minLen); err != nil {
			return err
		}
	}
	if f.ImageLen != r.size {
		return &FormatError{Region: "footer", Offset: r.size - FooterLen, Msg: fmt.Sprintf("footer says the image is %d bytes, it is %d", f.ImageLen, r.size), Err: ErrTruncated}
	}
	if f.HeaderCRC != crc(hb) {
		return &FormatError{Region: "header", Offset: 0, Msg: "header does not match the footer's record of it", Err: ErrChecksum}
	}
	// Room for the CRC and for padding to whole words, which the index reads.
	bm := make([]byte, (h.BitmapLen+4+7)/8*8)
	if err := r.readAt(bm[:h.BitmapLen+4], hl, "bitmap"); err != nil {
		return err
	}
	bcrc := crc(bm[:h.BitmapLen])
	if bcrc != le32(bm[h.BitmapLen:]) || bcrc != f.BitmapCRC {
		return &FormatError{Region: "bitmap", Offset: hl, Msg: fmt.Sprintf("CRC32C %08x, stored %08x", bcrc, le32(bm[h.BitmapLen:])), Err: ErrChecksum}
	}
	clear(bm[h.BitmapLen:])
	r.Bitmap = bm[:h.BitmapLen:h.BitmapLen]
	if extra := h.BitmapBits % 8; extra != 0 && r.Bitmap[len(r.Bitmap)-1]>>extra != 0 {
		return &FormatError{Region: "bitmap", Offset: hl + h.BitmapLen - 1, Msg: "bits set past the last cluster", Err: ErrFormat}
	}
	ix, set := newIndex(h, bm[:(h.BitmapLen+7)/8*8])
	if set != h.ImageClusters {
		return &FormatError{Region: "bitmap", Offset: hl, Msg: fmt.Sprintf("%d clusters marked, header says %d stored", set, h.ImageClusters), Err: ErrFormat}
	}
	r.ix = ix
	return r.loadTable(hl + h.BitmapLen + 4)
}

func (r *Reader) loadTable(dataStart int64) error {
	h, f := r.Header, r.Footer
	tlen := r.size - FooterLen - int64(f.TrailerLen) - f.TableOffset
	want := 12 + int64(h.ChunkCount)*tableEntryLen
	if f.TableOffset < dataStart || tlen != want || f.ChunkCount != h.ChunkCount {
		return &FormatError{Region: "footer", Offset: r.size - FooterLen, Msg: fmt.Sprintf("chunk table at %d (%d bytes, %d chunks) does not fit the image (%d chunks expected)", f.TableOffset, tlen, f.ChunkCount, h.ChunkCount), Err: ErrFormat}
	}
	tb := make([]byte, tlen)
	if err := r.readAt(tb, f.TableOffset, "table"); err != nil {
		return err
	}
	tcrc := crc(tb[:tlen-4])
	if string(tb[:4]) != TableMagic {
		return &FormatError{Region: "table", Offset: f.TableOffset, Msg: "chunk table magic missing", Err: ErrFormat}
	}
	if tcrc != le32(tb[tlen-4:]) || tcrc != f.TableCRC {
		return &FormatError{Region: "table", Offset: f.TableOffset, Msg: fmt.Sprintf("CRC32C %08x, stored %08x", tcrc, le32(tb[tlen-4:])), Err: ErrChecksum}
	}
	if f.TrailerLen > 0 {
		if h.Flags&FlagRescue == 0 || f.TrailerLen > 1<<30 {
			return &FormatError{Region: "footer", Offset: r.size - FooterLen, Msg: fmt.Sprintf("unexpected trailer of %d bytes", f.TrailerLen), Err: ErrFormat}
		}
		tr := make([]byte, f.TrailerLen)
		if err := r.readAt(tr, f.TableOffset+tlen, "trailer"); err != nil {
			return err
		}
		runs, err := decodeTrailer(tr, f.TableOffset+tlen, h.ClusterCount)
		if err != nil {
			return err
		}
		h.Unreadable = runs
		r.trailer = tr
	}
	rb := readBuf{b: tb[4 : tlen-4]}
	if n := rb.u32(); n != h.ChunkCount {
		return &FormatError{Region: "table", Offset: f.TableOffset + 4, Msg: fmt.Sprintf("%d entries, header says %d", n, h.ChunkCount), Err: ErrFormat}
	}
	r.frames = make([]frame, h.ChunkCount)
	next := dataStart
	for i := range r.frames {
		fr := &r.frames[i]
		fr.readEntry(&rb)
		fr.Index = uint32(i)
		fr.sub, fr.xxh = h.SubFrameSize, h.RequiredFlags&RequireXXH3 != 0
		off := f.TableOffset + 8 + int64(i)*tableEntryLen
		wantLen := int64(h.ChunkSize)
		if i == len(r.frames)-1 {
			wantLen = h.LogicalLen - int64(i)*int64(h.ChunkSize)
		}
		switch {
		case fr.Offset != next:
			return &FormatError{Region: "table", Offset: off, Msg: fmt.Sprintf("chunk %d at %d, expected %d", i, fr.Offset, next), Err: ErrFormat}
		case int64(fr.LogicalLen) != wantLen:
			return &FormatError{Region: "table", Offset: off, Msg: fmt.Sprintf("chunk %d holds %d logical bytes, expected %d", i, fr.LogicalLen, wantLen), Err: ErrFormat}
		case !fr.storedLenOK(), fr.Flags&FrameBlockCRC != 0 && h.RequiredFlags&RequireBlockCRC == 0, fr.Flags&FrameSubFrames != 0 && h.RequiredFlags&RequireSubFrames == 0:
			return &FormatError{Region: "table", Offset: off, Msg: fmt.Sprintf("chunk %d: codec %d, flags %#02x with %d stored bytes", i, fr.Codec, fr.Flags, fr.StoredLen), Err: ErrFormat}
		case fr.StoredLen > maxChunkSize+maxChunkSize/8:
			return &FormatError{Region: "table", Offset: off, Msg: fmt.Sprintf("chunk %d: %d stored bytes", i, fr.StoredLen), Err: ErrFormat}
		}
		next = fr.Offset + frameHeaderLen + int64(fr.StoredLen)
		if next > f.TableOffset {
			return &FormatError{Region: "table", Offset: off, Msg: fmt.Sprintf("chunk %d runs past the table start", i), Err: ErrFormat}
		}
	}
	if next != f.TableOffset {
		return &FormatError{Region: "table", Offset: f.TableOffset, Msg: fmt.Sprintf("%d unaccounted bytes before the table", f.TableOffset-next), Err: ErrFormat}
	}
	return nil
}

// Size returns the partition length: the size of the logical volume.
func (r *Reader) Size() int64 { return r.Header.PartLength }

// ImageSize returns the bytes of the image (all volumes).
func (r *Reader) ImageSize() int64 { return r.size }

// Close releases the files.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// ReadAt reads partition bytes. A damaged chunk gives a *FormatError for
// the read that touches it; other ranges stay readable.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("image: negative offset %d", off)
	}
	size := r.Header.PartLength
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	done := 0
	for done < len(p) {
		pc := r.ix.locate(off+int64(done), int64(len(p)-done))
		dst := p[done : done+int(pc.length)]
		if pc.stream < 0 {
			clear(dst)
		} else if err := r.readStream(dst, pc.stream); err != nil {
			return done, err
		}
		done += len(dst)
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// readStream copies logical-stream bytes starting at so into dst. Raw
// chunks with block checksums are read straight into dst, checking only the
// blocks touched; small reads of chunks of zstd frames decode only the
// frames touched; other reads decode chunks whole, through the cache.
func (r *Reader) readStream(dst []byte, so int64) error {
	cs := int64(r.Header.ChunkSize)
	for len(dst) > 0 {
		ci := so / cs
		within := so - ci*cs
		if ci >= int64(len(r.frames)) || within >= int64(r.frames[ci].LogicalLen) {
			return &FormatError{Region: "chunk", Offset: -1, Msg: fmt.Sprintf("logical offset %d outside the stored chunks", so), Err: ErrFormat}
		}
		fr := &r.frames[ci]
		r.visit(int(ci))
		n := int(min(int64(len(dst)), int64(fr.LogicalLen)-within))
		if r.direct(int(ci), fr, len(dst)) {
			if err := r.readPieces(dst[:n], fr, within); err != nil {
				return err
			}
		} else if data, err := r.chunk(int(ci)); err == nil {
			copy(dst, data[within:])
		} else if !pieces(fr) {
			return err
		} else if err := r.readPieces(dst[:n], fr, within); err != nil {
			// Damage fails only the blocks or zstd frames it is in.
			return err
		}
		dst = dst[n:]
		so += int64(n)
	}
	return nil
}

// directMin is the read size from which raw chunks are always read
// directly (such reads gain nothing from a cache) and chunks of zstd frames
// decoded whole, through the cache and its read-ahead.
const directMin = 64 << 10

// pieces reports whether chunk fr can be read in pieces: 4 KiB blocks of
// a raw chunk or zstd frames of a compressed one.
func pieces(fr *frame) bool { return fr.Flags&(FrameBlockCRC|FrameSubFrames) != 0 }

// readPieces fills dst with the logical bytes at within.. of a chunk that
// can be read in pieces, reading and checking only the pieces touched.
func (r *Reader) readPieces(dst []byte, fr *frame, within int64) error {
	if fr.Flags&FrameBlockCRC != 0 {
		return r.readBlocks(dst, fr, within)
	}
	return r.readSubFrames(dst, fr, within)
}

// direct decides how a read of n bytes from chunk i is served: in pieces
// (a random reader pays only for the blocks or frames it wants) unless the
// chunk is cached already or has just been read in several small pieces —
// then a reader walking through it in small steps (file-system metadata,
// small files) gets the whole chunk once, through the cache. A random read
// through FUSE arrives as one or two requests (the page and the kernel's
// readahead), so a few touches do not yet count as walking.
func (r *Reader) direct(i int, fr *frame, n int) bool {
	if !pieces(fr) || r.cache.has(i) {
		return false
	}
	if n >= directMin {
		return fr.Flags&FrameBlockCRC != 0
	}
	return r.recent.touch(i) < walkTouches
}

// walkTouches is how many small reads of one raw chunk in a short while
// make it worth decoding whole.
const walkTouches = 4

// recentChunks counts small reads of the last few chunks read so.
type recentChunks struct {
	mu    sync.Mutex
	chunk [8]int
	count [8]int
	next  int
	n     int
}

// touch counts a small read of chunk i and returns its count so far.
func (c *recentChunks) touch(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := 0; k < c.n; k++ {
		if c.chunk[k] == i {
			c.count[k]++
			return c.count[k]
		}
	}
	c.chunk[c.next], c.count[c.next] = i, 1
	c.next = (c.next + 1) % len(c.chunk)
	c.n = min(c.n+1, len(c.chunk))
	return 1
}

// readBlocks fills dst with the logical bytes at within.. of a raw chunk
// with block checksums: whole blocks are read into dst directly, a partial
// first or last block through a block-sized buffer.
func (r *Reader) readBlocks(dst []byte, fr *frame, within int64) error {
	const bs = BlockSize
	L := int64(fr.LogicalLen)
	end := within + int64(len(dst))
	b0 := within / bs
	sums := make([]byte, 4*((end+bs-1)/bs-b0))
	data := fr.Offset + frameHeaderLen
	if err := r.readAt(sums, data+L+4*b0, "chunk"); err != nil {
		return err
	}
	for pos := within; pos < end; {
		b := pos / bs
		start := b * bs
		blockEnd := min(start+bs, L)
		sb := sums[4*(b-b0):]
		if pos == start && blockEnd <= end {
			run := start + (end-start)/bs*bs
			if end == L {
				run = L // the short last block is whole too
			}
			seg := dst[pos-within : run-within]
			if err := r.readAt(seg, data+pos, "chunk"); err != nil {
				return err
			}
			if err := checkBlocks(seg, sb, b, fr); err != nil {
				return err
			}
			pos = run
			continue
		}
		blk := make([]byte, blockEnd-start)
		if err := r.readAt(blk, data+start, "chunk"); err != nil {
			return err
		}
		if err := checkBlocks(blk, sb, b, fr); err != nil {
			return err
		}
		pos += int64(copy(dst[pos-within:], blk[pos-start:min(blockEnd, end)-start]))
	}
	return nil
}

// checkBlocks checks data, which starts at block first of chunk fr, against
// the block checksums in sums (first's at sums[0]).
func checkBlocks(data, sums []byte, first int64, fr *frame) error {
	for i := 0; i*BlockSize < len(data); i++ {
		blk := data[i*BlockSize : min((i+1)*BlockSize, len(data))]
		if got, want := crc(blk), le32(sums[4*i:]); got != want {
			b := first + int64(i)
			return &FormatError{Region: "chunk", Offset: fr.Offset + frameHeaderLen + b*BlockSize,
				Msg: fmt.Sprintf("chunk %d block %d: CRC32C %08x, stored %08x", fr.Index, b, got, want), Err: ErrChecksum}
		}
	}
	return nil
}

// checkBlocksAndStored checks the stored bytes of a raw chunk with block
// checksums (logical bytes, then one CRC32C per block) in one pass: each
// block against its checksum, and the CRC of all stored bytes, combined
// from the block CRCs, against the frame's.
func checkBlocksAndStored(stored []byte, fr *frame) error {
	data, sums := stored[:fr.LogicalLen], stored[fr.LogicalLen:]
	var all uint32
	for i := 0; i*BlockSize < len(data); i++ {
		blk := data[i*BlockSize : min((i+1)*BlockSize, len(data))]
		got, want := crc(blk), le32(sums[4*i:])
		if got != want {
			return &FormatError{Region: "chunk", Offset: fr.Offset + frameHeaderLen + int64(i)*BlockSize,
				Msg: fmt.Sprintf("chunk %d block %d: CRC32C %08x, stored %08x", fr.Index, i, got, want), Err: ErrChecksum}
		}
		op := blockShift
		if len(blk) != BlockSize {
			op = shiftOp(int64(len(blk)))
		}
		all = crcCombine(all, got, op)
	}
	if all = crcCombine(all, crc(sums), shiftOp(int64(len(sums)))); all != fr.StoredCRC {
		return &FormatError{Region: "chunk", Offset: fr.Offset + frameHeaderLen,
			Msg: fmt.Sprintf("chunk %d: data CRC32C %08x, stored %08x", fr.Index, all, fr.StoredCRC), Err: ErrChecksum}
	}
	return nil
}

// digest recomputes the image digest from the header, the bitmap, the
// chunk table's sums and the trailer: the sums are what chunk data is
// checked against, so it covers all content.
func (r *Reader) digest() ([32]byte, error) {
	var sum [32]byte
	hb := make([]byte, r.Header.Len)
	if err := r.readAt(hb, 0, "header"); err != nil {
		return sum, err
	}
	d := newDigest()
	d.Write(hb)
	d.Write(r.Bitmap)
	for i := range r.frames {
		d.Write(r.frames[i].Sum[:])
	}
	d.Write(r.trailer)
	copy(sum[:], d.Sum(nil))
	return sum, nil
}

// digestError is the problem of an image whose digest is not the footer's.
func (r *Reader) digestError() error {
	return &FormatError{Region: "footer", Offset: r.size - FooterLen + 32, Msg: "image digest differs from the one recorded", Err: ErrChecksum}
}

// chunk returns the logical bytes of chunk i, through the cache.
func (r *Reader) chunk(i int) ([]byte, error) {
	if i < 0 || i >= len(r.frames) {
		return nil, &FormatError{Region: "chunk", Offset: -1, Msg: fmt.Sprintf("chunk %d out of range", i), Err: ErrFormat}
	}
	return r.cache.get(i, func() ([]byte, error) { return r.loadChunk(&r.frames[i], false) })
}

// readAhead is how many chunks a sequential reader decodes in advance, and
// aheadSpan how far it looks for them.
const (
	readAhead = 2
	aheadSpan = 8
)

// visit notes a read of chunk i. Reading chunks in order starts decoding
// the next ones that go through the cache (compressed chunks) on other
// cores; raw chunks with block checksums are read directly when needed.
func (r *Reader) visit(i int) {
	if prev := r.last.Swap(int64(i)); prev != int64(i)-1 {
		return
	}
	for k, n := i+1, 0; k < len(r.frames) && k <= i+aheadSpan && n < readAhead; k++ {
		if r.frames[k].Flags&FrameBlockCRC == 0 {
			r.prefetch(k)
			n++
		}
	}
}

// prefetch loads chunk k into the cache in the background, unless it is
// there or too many prefetches run already.
func (r *Reader) prefetch(k int) {
	if r.cache.has(k) {
		return
	}
	select {
	case r.ahead <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-r.ahead }()
		r.cache.get(k, func() ([]byte, error) { return r.loadChunk(&r.frames[k], false) })
	}()
}

// loadChunk reads, checks and decodes one chunk. With full, the checksum of
// the logical bytes is checked too (verify); random reads rely on the CRC.
func (r *Reader) loadChunk(fr *frame, full bool) ([]byte, error) {
	n := frameHeaderLen + int(fr.StoredLen)
	if fr.Codec != CodecZstd {
		buf := make([]byte, n)
		if err := r.readAt(buf, fr.Offset, "chunk"); err != nil {
			return nil, err
		}
		return decodeChunk(buf, fr, full) // the logical bytes are buf's
	}
	// Compressed bytes are dropped once decoded: reuse their buffers.
	bp := getBuf(&storedPool, n)
	defer storedPool.Put(bp)
	if err := r.readAt(*bp, fr.Offset, "chunk"); err != nil {
		return nil, err
	}
	return decodeChunk(*bp, fr, full)
}

// storedPool holds buffers for the stored bytes of compressed chunks.
var storedPool sync.Pool

// getBuf returns a buffer of n bytes from pool, or a new one.
func getBuf(pool *sync.Pool, n int) *[]byte {
	bp, _ := pool.Get().(*[]byte)
	if bp == nil || cap(*bp) < n {
		b := make([]byte, n)
		bp = &b
	}
	*bp = (*bp)[:n]
	return bp
}

// decodeChunk checks a frame (header and stored bytes in buf) against the
// table entry want and returns the logical bytes.
func decodeChunk(buf []byte, want *frame, full bool) ([]byte, error) {
	got, err := decodeFrameHeader(buf, want.Offset)
	if err != nil {
		return nil, err
	}
	bad := func(off int64, err error, format string, a ...any) error {
		return &FormatError{Region: "chunk", Offset: off, Msg: fmt.Sprintf("chunk %d: ", want.Index) + fmt.Sprintf(format, a...), Err: err}
	}
	if got.Index != want.Index || got.LogicalLen != want.LogicalLen || got.StoredLen != want.StoredLen || got.Codec != want.Codec || got.Flags != want.Flags || got.StoredCRC != want.StoredCRC || got.Sum != want.Sum {
		return nil, bad(want.Offset, ErrFormat, "frame header disagrees with the chunk table")
	}
	stored := buf[frameHeaderLen:]
	if full && want.Flags&FrameBlockCRC != 0 && want.storedLenOK() {
		// One CRC pass checks every block and, combined, the whole.
		if err := checkBlocksAndStored(stored, want); err != nil {
			return nil, err
		}
	} else if c := crc(stored); c != want.StoredCRC {
		return nil, bad(want.Offset+frameHeaderLen, ErrChecksum, "data CRC32C %08x, stored %08x", c, want.StoredCRC)
	}
	if !want.storedLenOK() {
		return nil, bad(want.Offset, ErrFormat, "%d stored bytes for %d logical bytes, codec %s, flags %#02x", want.StoredLen, want.LogicalLen, want.Codec, want.Flags)
	}
	data, err := decodeStored(stored, want, full)
	if err != nil {
		return nil, err
	}
	if full {
		if s := want.logicalSum(data); s != want.Sum {
			return nil, bad(want.Offset+frameHeaderLen, ErrChecksum, "%s of the logical bytes differs", want.sumName())
		}
	}
	return data, nil
}

// decodeStored returns the logical bytes of a chunk's stored bytes, whose
// length fits want's codec and flags. With full, the CRC32C of every zstd
// frame is checked too.
func decodeStored(stored []byte, want *frame, full bool) ([]byte, error) {
	data := stored
	var err error
	switch {
	case want.Flags&FrameBlockCRC != 0:
		// The stored CRC covers the block checksums; Verify checks them
		// against the data as well.
		data = stored[:want.LogicalLen]
	case want.Flags&FrameSubFrames != 0:
		return decodeSubFrames(stored, want, full, make([]byte, want.LogicalLen))
	case want.Codec == CodecZstd:
		if data, err = decoder.DecodeAll(stored, make([]byte, 0, want.LogicalLen)); err != nil {
			return nil, want.subError(-1, ErrFormat, "zstd: %v", err)
		}
	}
	if len(data) != int(want.LogicalLen) {
		return nil, want.subError(-1, ErrFormat, "%d logical bytes, expected %d", len(data), want.LogicalLen)
	}
	return data, nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// chunkCache is an LRU of decoded chunks bounded in bytes; concurrent
// requests for one chunk share a single load.
type chunkCache struct {
	mu    sync.Mutex
	cap   int64
	used  int64
	ll    *list.List
	items map[int]*list.Element
}

type cacheEntry struct {
	key   int
	data  []byte
	err   error
	ready chan struct{}
}

func newChunkCache(capBytes int64) *chunkCache {
	return &chunkCache{cap: capBytes, ll: list.New(), items: map[int]*list.Element{}}
}

func (c *chunkCache) has(key int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

func (c *chunkCache) get(key int, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		c.mu.Unlock()
		<-e.ready
		return e.data, e.err
	}
	e := &cacheEntry{key: key, ready: make(chan struct{})}
	el := c.ll.PushFront(e)
	c.items[key] = el
	c.mu.Unlock()

	e.data, e.err = load()
	close(e.ready)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err != nil {
		// Do not cache failures: a re-read may succeed (transient I/O).
		if cur, ok := c.items[key]; ok && cur == el {
			c.ll.Remove(el)
			delete(c.items, key)
		}
		return nil, e.err
	}
	c.used += int64(len(e.data))
	for c.used > c.cap && c.ll.Len() > 1 {
		back := c.ll.Back()
		be := back.Value.(*cacheEntry)
		select {
		case <-be.ready:
		default:
			// Still loading: it is not counted yet; stop evicting.
			return e.data, nil
		}
		c.ll.Remove(back)
		delete(c.items, be.key)
		c.used -= int64(len(be.data))
	}
	return e.data, nil
}

// Stream returns a StreamReader over this image from its first byte.
func (r *Reader) Stream() (*StreamReader, error) {
	return NewStreamReader(io.NewSectionReader(r.src, 0, r.size))
}

// CheckStored reads every chunk's stored bytes and checks their CRC32C: a
// fast pass (no decompression, all cores) that lets a restore refuse a
// damaged image before it writes anything. The error, if any, is the one
// of the first damaged chunk.
func (r *Reader) CheckStored(ctx context.Context, progress func(done int64)) error {
	errs, err := r.eachChunk(ctx, func(i int, buf []byte) (int64, error) {
		return int64(r.frames[i].StoredLen) + frameHeaderLen, r.checkFrame(i, buf)
	}, progress)
	if err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) checkFrame(i int, buf []byte) error {
	fr := &r.frames[i]
	buf = buf[:frameHeaderLen+int(fr.StoredLen)]
	if err := r.readAt(buf, fr.Offset, "chunk"); err != nil {
		return err
	}
	got, err := decodeFrameHeader(buf, fr.Offset)
	if err != nil {
		return err
	}
	if got.Index != fr.Index || got.StoredLen != fr.StoredLen || got.Flags != fr.Flags || got.StoredCRC != fr.StoredCRC || got.Sum != fr.Sum {
		return &FormatError{Region: "chunk", Offset: fr.Offset, Msg: fmt.Sprintf("chunk %d: frame header disagrees with the chunk table", i), Err: ErrFormat}
	}
	if c := crc(buf[frameHeaderLen:]); c != fr.StoredCRC {
		return &FormatError{Region: "chunk", Offset: fr.Offset + frameHeaderLen, Msg: fmt.Sprintf("chunk %d: data CRC32C %08x, stored %08x", i, c, fr.StoredCRC), Err: ErrChecksum}
	}
	return nil
}
