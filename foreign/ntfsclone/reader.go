// Package ntfsclone reads images in ntfsclone's special format
// (ntfsclone --save-image, to a file or to standard output) as the NTFS
// partition they hold: an io.ReaderAt over the source device, where clusters
// the image does not hold read as zeros. format.go names the sources of
// every fact about the format.
//
// The format is a stream of records — "skip n clusters" and "one cluster
// follows" — with no index and no checksums. NewReader builds the index in
// one pass over the whole image, reading every byte of it once (the
// command bytes sit between the clusters): runs of stored clusters and
// where their records start. Memory: 24 bytes per run of consecutive stored
// clusters (at most one run per stored cluster, for a volume fragmented to
// the worst: so never more than the image's size / (cluster size + 1) × 24
// bytes), plus, only when asked for (restore, convert), the used-cluster
// bitmap of clusters/8 bytes. A 2 TiB volume in 4 KiB clusters with a
// million runs takes 24 MiB to mount, 88 MiB to restore. Time: one
// sequential read of the image.
package ntfsclone

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/cbimg/cbimg/image"
)

// Options tune NewReader.
type Options struct {
	// Progress, when set, gets image bytes read by the indexing pass.
	Progress func(done, total int64)
}

// Reader is an opened ntfsclone image. It is safe for concurrent use.
type Reader struct {
	Header *Header

	src     io.ReaderAt
	size    int64
	runs    []run
	bmOnce  sync.Once
	bitmap  []byte // built from runs on first use
	tailOff int64  // image offset of the tail cluster's data (HasTail)
	records int64  // records walked (gaps and clusters)
}

// run is a stretch of consecutive stored clusters whose records follow each
// other in the image.
type run struct {
	cluster int64 // first cluster
	n       int64 // clusters
	off     int64 // image offset of the first record's command byte
}

// NewReader opens the ntfsclone image in src, size bytes long, and indexes
// it in one pass.
func NewReader(ctx context.Context, src io.ReaderAt, size int64, opts *Options) (*Reader, error) {
	head := make([]byte, min(size, hdrLen))
	if err := readFull(src, head, 0, "header"); err != nil {
		return nil, err
	}
	h, err := parseHeader(head, size)
	if err != nil {
		return nil, err
	}
	r := &Reader{Header: h, src: src, size: size}
	var prog func(int64)
	if opts != nil && opts.Progress != nil {
		prog = func(d int64) { opts.Progress(d, size) }
	}
	var stored int64
	w := r.walker(ctx, false, prog)
	for {
		c, off, _, err := w.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if c == h.Clusters {
			r.tailOff = off + 1
			continue
		}
		stored++
		if k := len(r.runs) - 1; k >= 0 && r.runs[k].cluster+r.runs[k].n == c && r.runs[k].off+r.runs[k].n*(int64(h.ClusterSize)+1) == off {
			r.runs[k].n++
		} else {
			r.runs = append(r.runs, run{c, 1, off})
		}
	}
	r.records = w.records
	if stored != h.InUse {
		return nil, fe("image", size, image.ErrFormat, "%d clusters stored, the header says %d in use", stored, h.InUse)
	}
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
	return fmt.Errorf("ntfsclone %s at byte %d: %w", region, off, err)
}

// walker reads the records front to back, checking each.
type walker struct {
	r       *Reader
	ctx     context.Context
	in      *bufio.Reader
	off     int64 // image offset of the next byte
	pos     int64 // next cluster
	limit   int64 // clusters the records cover (one more with the tail)
	data    bool  // read the clusters' bytes (else skip them)
	buf     []byte
	prog    func(int64)
	records int64
	done    bool
}

func (r *Reader) walker(ctx context.Context, data bool, prog func(int64)) *walker {
	h := r.Header
	w := &walker{r: r, ctx: ctx, off: h.DataOffset, limit: h.Clusters, data: data, prog: prog,
		in: bufio.NewReaderSize(io.NewSectionReader(r.src, h.DataOffset, r.size-h.DataOffset), int(min(4<<20, max(r.size-h.DataOffset, 16))))}
	if h.HasTail() {
		w.limit++
	}
	if data {
		w.buf = make([]byte, h.ClusterSize)
	}
	return w
}

// next returns the next stored cluster: its number, the offset of its
// record and (with data) its bytes. io.EOF comes after the last record,
// once the image was found to end there.
func (w *walker) next() (cluster, off int64, data []byte, err error) {
	h := w.r.Header
	cs := int64(h.ClusterSize)
	for w.pos < w.limit {
		if w.records%4096 == 0 {
			if err := w.ctx.Err(); err != nil {
				return 0, 0, nil, err
			}
			if w.prog != nil {
				w.prog(w.off)
			}
		}
		w.records++
		at := w.off
		cmd, err := w.in.ReadByte()
		if err != nil {
			return 0, 0, nil, w.trunc(err, at)
		}
		w.off++
		switch cmd {
		case cmdGap:
			var b [8]byte
			if _, err := io.ReadFull(w.in, b[:]); err != nil {
				return 0, 0, nil, w.trunc(err, at)
			}
			w.off += 8
			n := int64(binary.LittleEndian.Uint64(b[:]))
			if n <= 0 || n > h.Clusters-w.pos {
				return 0, 0, nil, fe("record", at, image.ErrFormat, "a gap of %d clusters at cluster %d of %d", n, w.pos, h.Clusters)
			}
			w.pos += n
		case cmdNext:
			n := cs
			if w.pos == h.Clusters {
				n = h.TailLen()
			}
			if w.data {
				if _, err := io.ReadFull(w.in, w.buf[:n]); err != nil {
					return 0, 0, nil, w.trunc(err, at)
				}
				data = w.buf[:n]
			} else if k, err := w.in.Discard(int(n)); k != int(n) {
				return 0, 0, nil, w.trunc(err, at)
			}
			w.off += n
			w.pos++
			return w.pos - 1, at, data, nil
		default:
			return 0, 0, nil, fe("record", at, image.ErrFormat, "command byte %d at cluster %d (0 or 1 expected)", cmd, w.pos)
		}
	}
	if !w.done {
		w.done = true
		if _, err := w.in.ReadByte(); err != io.EOF {
			if err == nil {
				return 0, 0, nil, fe("image", w.off, image.ErrFormat, "%d bytes after the last record", w.r.size-w.off)
			}
			return 0, 0, nil, err
		}
		if w.prog != nil {
			w.prog(w.r.size)
		}
	}
	return 0, 0, nil, io.EOF
}

func (w *walker) trunc(err error, at int64) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF || err == nil {
		return fe("record", at, image.ErrTruncated, "image ends in the record for cluster %d of %d", w.pos, w.r.Header.Clusters)
	}
	return fmt.Errorf("ntfsclone record at byte %d: %w", at, err)
}

// Size is the partition's length: the source device size.
func (r *Reader) Size() int64 { return r.Header.DeviceSize }

// ImageSize is the image's length.
func (r *Reader) ImageSize() int64 { return r.size }

// Bitmap is the stored-cluster bitmap: Clusters bits, LSB first. It is
// built from the index on first use (reads need only the index).
func (r *Reader) Bitmap() []byte {
	r.bmOnce.Do(func() {
		r.bitmap = make([]byte, (r.Header.Clusters+7)/8)
		for _, ru := range r.runs {
			for c := ru.cluster; c < ru.cluster+ru.n; c++ {
				r.bitmap[c/8] |= 1 << (c % 8)
			}
		}
	})
	return r.bitmap
}

// Runs is the number of index entries (runs of stored clusters).
func (r *Reader) Runs() int { return len(r.runs) }

// ReadAt reads the partition: stored clusters, the stored tail past the
// last cluster, zeros elsewhere.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ntfsclone: negative offset %d", off)
	}
	size := r.Size()
	if off >= size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > size-off {
		n = int(size - off)
	}
	h := r.Header
	cs := int64(h.ClusterSize)
	grid := h.Clusters * cs
	for done := 0; done < n; {
		o := off + int64(done)
		dst := p[done:n]
		if o >= grid {
			tail := h.TailLen()
			if o < grid+tail {
				m := min(int64(len(dst)), grid+tail-o)
				if err := readFull(r.src, dst[:m], r.tailOff+o-grid, "tail"); err != nil {
					return done, err
				}
				dst = dst[m:]
				done += int(m)
			}
			clear(dst)
			done += len(dst)
			break
		}
		c := o / cs
		within := o % cs
		i := sort.Search(len(r.runs), func(i int) bool { return r.runs[i].cluster+r.runs[i].n > c })
		if i == len(r.runs) || r.runs[i].cluster > c {
			// Free up to the next run.
			end := grid
			if i < len(r.runs) {
				end = r.runs[i].cluster * cs
			}
			m := min(int64(len(dst)), end-o)
			clear(dst[:m])
			done += int(m)
			continue
		}
		ru := r.runs[i]
		m := min(int64(len(dst)), (ru.cluster+ru.n)*cs-o)
		if err := r.readRun(dst[:m], ru, c-ru.cluster, within); err != nil {
			return done, err
		}
		done += int(m)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readRun fills dst from run ru, starting within bytes into its cluster k,
// checking that the command bytes between the clusters are still there.
func (r *Reader) readRun(dst []byte, ru run, k, within int64) error {
	cs := int64(r.Header.ClusterSize)
	rec := cs + 1
	for len(dst) > 0 {
		// At most 1 MiB of records per read.
		nc := min((within+int64(len(dst))+cs-1)/cs, max(1, (1<<20)/rec), ru.n-k)
		bp := recordPool.Get().(*[]byte)
		if int64(cap(*bp)) < nc*rec {
			*bp = make([]byte, nc*rec)
		}
		buf := (*bp)[:nc*rec]
		at := ru.off + k*rec
		if err := readFull(r.src, buf, at, "record"); err != nil {
			recordPool.Put(bp)
			return err
		}
		for j := int64(0); j < nc && len(dst) > 0; j++ {
			b := buf[j*rec:]
			if b[0] != cmdNext {
				recordPool.Put(bp)
				return fe("record", at+j*rec, image.ErrFormat, "command byte %d where cluster %d's record was indexed", b[0], ru.cluster+k+j)
			}
			m := copy(dst, b[1+within:rec])
			dst = dst[m:]
			within = 0
		}
		recordPool.Put(bp)
		k += nc
	}
	return nil
}

// recordPool holds read buffers of up to about 1 MiB of records.
var recordPool = sync.Pool{New: func() any { return new([]byte) }}

// Used returns the stored clusters' bytes in ascending order (the tail
// past the last cluster left out), walking the records again; io.EOF comes
// once the image was found to end after the last record.
func (r *Reader) Used(ctx context.Context) io.ReadCloser {
	return &usedReader{w: r.walker(ctx, true, nil)}
}

type usedReader struct {
	w   *walker
	cur []byte
	err error
}

func (u *usedReader) Read(p []byte) (int, error) {
	for len(u.cur) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		var c int64
		c, _, u.cur, u.err = u.w.next()
		if u.err == nil && c == u.w.r.Header.Clusters {
			u.cur = nil // the tail is a system extent, given first
		}
	}
	n := copy(p, u.cur)
	u.cur = u.cur[n:]
	return n, nil
}

func (u *usedReader) Close() error { return nil }

// Verify walks every record again, checking the stream's structure: command
// bytes, gap counts, the clusters in use, and that the image ends exactly
// after the last record. The format has no checksums. progress gets image
// bytes read.
func (r *Reader) Verify(ctx context.Context, progress func(done int64)) (clusters int64, err error) {
	w := r.walker(ctx, false, progress)
	for {
		c, _, _, err := w.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return clusters, err
		}
		if c < r.Header.Clusters {
			clusters++
		}
	}
	if clusters != r.Header.InUse {
		return clusters, fe("image", r.size, image.ErrFormat, "%d clusters stored, the header says %d in use", clusters, r.Header.InUse)
	}
	return clusters, nil
}

// Peek reads just the header and the first cluster's first bytes (the
// NTFS boot sector, when cluster 0 is stored), without indexing: enough to
// list an image.
func Peek(src io.ReaderAt, size int64) (*Header, []byte, error) {
	head := make([]byte, min(size, hdrLen))
	if err := readFull(src, head, 0, "header"); err != nil {
		return nil, nil, err
	}
	h, err := parseHeader(head, size)
	if err != nil {
		return nil, nil, err
	}
	var cmd [1]byte
	if err := readFull(src, cmd[:], h.DataOffset, "record"); err != nil {
		return nil, nil, err
	}
	boot := make([]byte, min(512, int64(h.ClusterSize)))
	if cmd[0] == cmdNext {
		if err := readFull(src, boot, h.DataOffset+1, "record"); err != nil {
			return nil, nil, err
		}
	}
	return h, boot, nil
}
