// Package partclone reads partclone images (partclone.* -c, to a file or
// to standard output), format versions 0001 and 0002, as the partition they
// hold: an io.ReaderAt over the source device, where blocks the image does
// not hold read as zeros. format.go names the sources of every fact about
// the format.
//
// The image is given as an io.ReaderAt and its size, so a partclone stream
// decompressed by someone else serves as well as a file. Nothing is read
// front to back for random access: a used block's place in the image follows
// from its rank among the used blocks (a rank index over the bitmap) and the
// checksum layout:
//
//	data start + rank × block size + ⌊rank / blocks per checksum⌋ × checksum size
//
// Memory, for T blocks: the bit bitmap (T/8 bytes) plus its rank index
// (T/64 bytes), plus the cache of checked checksum groups (Options.CacheBytes,
// 32 MiB by default). A 2 TiB partition in 4 KiB blocks (T = 2^29) takes
// 64 + 8 + 32 = 104 MiB.
//
// Reads of version 0002 images with reseeded CRC32 checksums (partclone's
// default) are checked: a read loads the checksum groups it touches (1 MiB
// each by default), checks their CRC32 and keeps them in the cache. Other
// layouts (no checksums, chained CRCs, version 0001's per-block CRC, groups
// over 8 MiB) are read unchecked, and so are reads from a source that checks
// itself (SourceChecker); Verify and Used check everything in one pass front
// to back.
package partclone

import (
	"bufio"
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/bitrank"
)

// Options tune a Reader.
type Options struct {
	CacheBytes int64 // byte cap of the checked-group cache; 0 = 32 MiB
}

// Reader is an opened partclone image. It is safe for concurrent use.
type Reader struct {
	Header *Header

	src       io.ReaderAt
	size      int64
	bitmap    []byte // one bit per block, LSB first, padded to whole words
	ix        *bitrank.Index
	dataStart int64
	dataLen   int64
	csum      int64 // bytes stored per checksum (0: none)
	perSum    int64 // blocks per checksum (0: none)
	checked   bool  // ReadAt checks groups
	cache     *groupCache
}

// SourceChecker is a source that checks every byte it hands out against
// sums of the image as written (a seek-indexed gzip stream whose indexing
// pass checked the member CRCs): ReadAt then reads blocks without loading
// their checksum groups. Verify still checks every checksum.
type SourceChecker interface {
	SourceChecked() bool
}

// maxCheckedGroup is the largest checksum group ReadAt loads and checks.
const maxCheckedGroup = 8 << 20

// NewReader opens the partclone image in src, size bytes long. It reads and
// checks the descriptor and the bitmap, and checks that the image is as
// long as they say.
func NewReader(src io.ReaderAt, size int64, opts *Options) (*Reader, error) {
	if size < descV2Len {
		return nil, errTrunc(size, "%d bytes: shorter than a partclone header", size)
	}
	desc := make([]byte, min(size, descV1Len))
	if err := readFull(src, desc, 0, "header"); err != nil {
		return nil, err
	}
	h, err := parseHeader(desc)
	if err != nil {
		return nil, err
	}
	r := &Reader{Header: h, src: src, size: size}
	r.dataStart = h.DescLen + h.BitmapLen
	if r.dataStart > size {
		return nil, errTrunc(size, "the bitmap of %d blocks needs the image to be at least %d bytes; it has %d", h.TotalBlocks, r.dataStart, size)
	}
	// Without a bitmap every block is used and in the image: the count is
	// bounded by its size before the bitmap is sized from it.
	if h.BitmapMode == BitmapNone && h.UsedBlocks > uint64(size-r.dataStart)/uint64(h.BlockSize) {
		return nil, errTrunc(size, "%d used blocks of %d bytes need more than the image's %d bytes", h.UsedBlocks, h.BlockSize, size)
	}
	if err := r.loadBitmap(); err != nil {
		return nil, err
	}
	r.ix = bitrank.New(r.bitmap, h.TotalBlocks)
	if n := r.ix.Count(); n != h.UsedBlocks {
		return nil, fe("bitmap", h.DescLen, image.ErrFormat, "the bitmap marks %d blocks used, the header says %d", n, h.UsedBlocks)
	}
	if err := r.layout(); err != nil {
		return nil, err
	}
	cb := int64(32 << 20)
	if opts != nil && opts.CacheBytes > 0 {
		cb = opts.CacheBytes
	}
	r.cache = &groupCache{cap: cb, m: map[int64]*list.Element{}}
	return r, nil
}

func readFull(src io.ReaderAt, p []byte, off int64, region string) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return fe(region, off+int64(n), image.ErrTruncated, "image ends after %d of %d bytes read here", n, len(p))
	}
	return fmt.Errorf("partclone %s at byte %d: %w", region, off, err)
}

// loadBitmap reads the bitmap into bit form and checks what follows it.
func (r *Reader) loadBitmap() error {
	h := r.Header
	nbytes := (h.TotalBlocks + 7) / 8
	r.bitmap = make([]byte, (nbytes+7)/8*8)
	bm := r.bitmap[:nbytes]
	off := h.DescLen
	switch h.BitmapMode {
	case BitmapNone:
		for i := range bm {
			bm[i] = 0xFF
		}
		if h.TotalBlocks%8 != 0 {
			bm[len(bm)-1] = byte(1)<<(h.TotalBlocks%8) - 1
		}
		return nil
	case BitmapBit:
		if err := readFull(r.src, bm, off, "bitmap"); err != nil {
			return err
		}
		if h.TotalBlocks%8 != 0 && bm[len(bm)-1]>>(h.TotalBlocks%8) != 0 {
			return fe("bitmap", off+int64(len(bm))-1, image.ErrFormat, "bits set past the last of %d blocks", h.TotalBlocks)
		}
		off += int64(len(bm))
	case BitmapByte:
		buf := make([]byte, 1<<20)
		for done := uint64(0); done < h.TotalBlocks; {
			n := min(uint64(len(buf)), h.TotalBlocks-done)
			if err := readFull(r.src, buf[:n], off, "bitmap"); err != nil {
				return err
			}
			for i, v := range buf[:n] {
				switch v {
				case 1:
					b := done + uint64(i)
					bm[b/8] |= 1 << (b % 8)
				case 0:
				default:
					return fe("bitmap", off+int64(i), image.ErrFormat, "byte map entry %d for block %d (0 or 1 expected)", v, done+uint64(i))
				}
			}
			done += n
			off += int64(n)
		}
	}
	tail := make([]byte, r.dataStart-off)
	if err := readFull(r.src, tail, off, "bitmap"); err != nil {
		return err
	}
	if h.Version == 1 {
		if string(tail) != bitMagic {
			return fe("bitmap", off, image.ErrFormat, "%q after the bitmap, %q expected", tail, bitMagic)
		}
		return nil
	}
	if got, want := binary.LittleEndian.Uint32(tail), crcUpdate(crcSeed, bm); got != want {
		return fe("bitmap", off, image.ErrChecksum, "bitmap CRC32 is %08x, its bytes give %08x", got, want)
	}
	return nil
}

// layout works out where the blocks are and checks the image's length.
func (r *Reader) layout() error {
	h := r.Header
	used := int64(h.UsedBlocks)
	bs := int64(h.BlockSize)
	avail := r.size - r.dataStart
	if h.CsumMode != CsumNone {
		r.csum, r.perSum = int64(h.CsumSize), int64(h.BlocksPerSum)
	}
	want := r.dataLenFor(used)
	if h.Version == 1 && avail != want && used > 0 && avail == used*(bs+csumV1Bugged) {
		// Old 64-bit builds stored each 0001 CRC in 8 bytes (checksum.c).
		r.csum = csumV1Bugged
		want = avail
	}
	r.dataLen = want
	switch {
	case avail < want:
		k := r.rankAtDataOffset(avail)
		b, _ := r.ix.Select(k)
		return fe("block", r.size, image.ErrTruncated, "image ends at byte %d, inside block %d (used block %d of %d); it should be %d bytes long", r.size, b, k, used, r.dataStart+want)
	case avail > want:
		return fe("image", r.dataStart+want, image.ErrFormat, "%d bytes after the last block", avail-want)
	}
	r.checked = h.Version == 2 && h.CsumMode == CsumCRC32 && h.Reseed && r.perSum*bs <= maxCheckedGroup
	if sc, ok := r.src.(SourceChecker); ok && sc.SourceChecked() {
		// Loading a whole group (1 MiB) per cold 4 KiB read would cost a
		// compressed source most of its random-read time, and its own
		// checks already cover the bytes partclone wrote.
		r.checked = false
	}
	return nil
}

// dataLenFor is the bytes n used blocks take with their checksums.
func (r *Reader) dataLenFor(n int64) int64 {
	d := n * int64(r.Header.BlockSize)
	if r.perSum > 0 {
		d += (n + r.perSum - 1) / r.perSum * r.csum
	}
	return d
}

// blockOffset is the image offset of the used block of rank k.
func (r *Reader) blockOffset(k int64) int64 {
	o := r.dataStart + k*int64(r.Header.BlockSize)
	if r.perSum > 0 {
		o += k / r.perSum * r.csum
	}
	return o
}

// rankAtDataOffset is the rank of the used block holding data offset d.
func (r *Reader) rankAtDataOffset(d int64) uint64 {
	bs := int64(r.Header.BlockSize)
	if r.perSum == 0 {
		return uint64(d / bs)
	}
	g := r.perSum*bs + r.csum
	return uint64(d/g*r.perSum + min(d%g/bs, r.perSum-1))
}

// Size is the partition's length: the source device size.
func (r *Reader) Size() int64 { return int64(r.Header.DeviceSize) }

// ImageSize is the image's length.
func (r *Reader) ImageSize() int64 { return r.size }

// Bitmap returns the used-block bitmap: TotalBlocks bits, LSB first.
func (r *Reader) Bitmap() []byte { return r.bitmap[:(r.Header.TotalBlocks+7)/8] }

// Checked reports whether ReadAt checks the checksums of what it reads.
func (r *Reader) Checked() bool { return r.checked }

// ReadAt reads the partition: used blocks from the image, zeros elsewhere.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("partclone: negative offset %d", off)
	}
	size := r.Size()
	if off >= size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > size-off {
		n = int(size - off)
	}
	bs := int64(r.Header.BlockSize)
	grid := int64(r.Header.TotalBlocks) * bs
	for done := 0; done < n; {
		o := off + int64(done)
		dst := p[done:n]
		if o >= grid {
			clear(dst)
			break
		}
		b := uint64(o / bs)
		within := o % bs
		want := uint64((within + int64(len(dst)) + bs - 1) / bs)
		run := r.ix.Run(b, want)
		k := min(int64(run)*bs-within, int64(len(dst)))
		if !r.ix.Bit(b) {
			clear(dst[:k])
		} else if err := r.readUsed(dst[:k], int64(r.ix.Rank(b)), within); err != nil {
			return done, err
		}
		done += int(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readUsed fills dst from consecutive used blocks, starting within bytes
// into the used block of rank k.
func (r *Reader) readUsed(dst []byte, k, within int64) error {
	bs := int64(r.Header.BlockSize)
	for len(dst) > 0 {
		if r.checked {
			g := k / r.perSum
			data, err := r.group(g)
			if err != nil {
				return err
			}
			at := (k-g*r.perSum)*bs + within
			n := copy(dst, data[at:])
			dst = dst[n:]
			k, within = (g+1)*r.perSum, 0
			continue
		}
		// Unchecked: as many blocks as lie together before the next checksum.
		span := int64(1)
		if r.perSum > 0 {
			span = r.perSum - k%r.perSum
		} else {
			span = int64(r.Header.UsedBlocks) - k
		}
		if r.Header.Version == 1 {
			span = 1
		}
		n := min(int64(len(dst)), span*bs-within)
		if err := readFull(r.src, dst[:n], r.blockOffset(k)+within, "block"); err != nil {
			return err
		}
		dst = dst[n:]
		adv := (within + n) / bs
		k += adv
		within = (within + n) % bs
	}
	return nil
}

// group returns the checked data of checksum group g.
func (r *Reader) group(g int64) ([]byte, error) {
	if d := r.cache.get(g); d != nil {
		return d, nil
	}
	bs := int64(r.Header.BlockSize)
	first := g * r.perSum
	nb := min(r.perSum, int64(r.Header.UsedBlocks)-first)
	buf := make([]byte, nb*bs+r.csum)
	off := r.blockOffset(first)
	if err := readFull(r.src, buf, off, "block"); err != nil {
		return nil, err
	}
	data := buf[:nb*bs]
	if got, want := binary.LittleEndian.Uint32(buf[nb*bs:]), crcUpdate(crcSeed, data); got != want {
		return nil, r.sumError(first, nb, off, got, want)
	}
	r.cache.put(g, data)
	return data, nil
}

// sumError names a checksum group that fails: its blocks and offsets.
func (r *Reader) sumError(first, nb, off int64, got, want uint32) error {
	b0, _ := r.ix.Select(uint64(first))
	b1, _ := r.ix.Select(uint64(first + nb - 1))
	bs := int64(r.Header.BlockSize)
	what := fmt.Sprintf("block %d (partition byte %d)", b0, int64(b0)*bs)
	if nb > 1 {
		what = fmt.Sprintf("blocks %d-%d (partition bytes %d-%d, used blocks %d-%d)", b0, b1, int64(b0)*bs, int64(b1+1)*bs-1, first, first+nb-1)
	}
	return fe("block", off, image.ErrChecksum, "CRC32 mismatch over %s stored at image byte %d: stored %08x, data gives %08x", what, off, got, want)
}

// Used returns the used blocks' bytes in ascending block order, read front
// to back and checked against every checksum; io.EOF comes only after the
// last checksum checked. A damaged group stops it with its error.
func (r *Reader) Used(ctx context.Context) io.ReadCloser {
	buf := int(min(4<<20, max(r.dataLen, 16)))
	return &usedReader{r: r, ctx: ctx, in: bufio.NewReaderSize(io.NewSectionReader(r.src, r.dataStart, r.dataLen), buf), crc: crcSeed}
}

type usedReader struct {
	r    *Reader
	ctx  context.Context
	in   *bufio.Reader
	k    int64  // next used block
	crc  uint32 // running checksum
	inG  int64  // blocks since the last checksum
	cur  []byte // rest of the current block
	buf  []byte
	err  error
	errs []error // with keepGoing: every damaged group
	keep bool
}

func (u *usedReader) Read(p []byte) (int, error) {
	for len(u.cur) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		u.err = u.next()
	}
	n := copy(p, u.cur)
	u.cur = u.cur[n:]
	return n, nil
}

func (u *usedReader) Close() error { return nil }

// next reads one block (and the checksum after it, if any) into cur.
func (u *usedReader) next() error {
	r := u.r
	h := r.Header
	used := int64(h.UsedBlocks)
	if u.k >= used {
		return io.EOF
	}
	if u.k%1024 == 0 {
		if err := u.ctx.Err(); err != nil {
			return err
		}
	}
	bs := int(h.BlockSize)
	if cap(u.buf) < bs+16 {
		u.buf = make([]byte, bs+16)
	}
	blk := u.buf[:bs]
	off := r.blockOffset(u.k)
	if _, err := io.ReadFull(u.in, blk); err != nil {
		return truncErr(err, off, u.k)
	}
	switch h.CsumMode {
	case CsumCRC32:
		u.crc = crcUpdate(u.crc, blk)
	case CsumCRC32v1:
		u.crc = crcV1(u.crc, blk)
	}
	u.k++
	u.inG++
	if r.perSum > 0 && (u.inG == r.perSum || u.k == used) {
		sum := u.buf[bs : int64(bs)+r.csum]
		if _, err := io.ReadFull(u.in, sum); err != nil {
			return truncErr(err, r.blockOffset(u.k-1)+int64(bs), u.k-1)
		}
		if got := binary.LittleEndian.Uint32(sum); got != u.crc {
			first := u.k - u.inG
			e := r.sumError(first, u.inG, r.blockOffset(first), got, u.crc)
			if !u.keep {
				return e
			}
			u.errs = append(u.errs, e)
			u.crc = got // a chained CRC goes on from what was stored
		}
		if h.Reseed {
			u.crc = crcSeed
		}
		u.inG = 0
	}
	u.cur = blk
	return nil
}

func truncErr(err error, off, k int64) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fe("block", off, image.ErrTruncated, "image ends inside used block %d", k)
	}
	return fmt.Errorf("partclone block at byte %d: %w", off, err)
}

// VerifyResult says what Verify found.
type VerifyResult struct {
	Groups   int64   // checksums checked
	Blocks   int64   // used blocks read
	Problems []error // every checksum that failed, or the one structural fault that stopped the pass
}

// Verify reads every used block front to back and checks every checksum,
// listing each failing group with its blocks and offsets. progress gets
// image bytes read.
func (r *Reader) Verify(ctx context.Context, progress func(done int64)) (*VerifyResult, error) {
	u := r.Used(ctx).(*usedReader)
	u.keep = true
	res := &VerifyResult{}
	var sums int64
	for {
		err := u.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.Problems = append(u.errs, err)
			return res, nil
		}
		res.Blocks++
		if progress != nil && res.Blocks%256 == 0 {
			progress(r.blockOffset(res.Blocks) - r.dataStart)
		}
	}
	if r.perSum > 0 {
		sums = (res.Blocks + r.perSum - 1) / r.perSum
	}
	if progress != nil {
		progress(r.dataLen)
	}
	res.Groups = sums
	res.Problems = u.errs
	return res, nil
}

// VerifyBytes is the total Verify's progress counts to.
func (r *Reader) VerifyBytes() int64 { return r.dataLen }

// groupCache keeps checked groups, least recently used out first.
type groupCache struct {
	mu   sync.Mutex
	cap  int64
	used int64
	ll   list.List
	m    map[int64]*list.Element
}

type groupEntry struct {
	g    int64
	data []byte
}

func (c *groupCache) get(g int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[g]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*groupEntry).data
	}
	return nil
}

func (c *groupCache) put(g int64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[g]; ok {
		return
	}
	c.m[g] = c.ll.PushFront(&groupEntry{g, data})
	c.used += int64(len(data))
	for c.used > c.cap && c.ll.Len() > 1 {
		e := c.ll.Back()
		ge := e.Value.(*groupEntry)
		c.ll.Remove(e)
		delete(c.m, ge.g)
		c.used -= int64(len(ge.data))
	}
}
