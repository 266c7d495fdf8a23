package seekz

import (
	"io"
)

// gzip: checkpoints at DEFLATE block starts (bit offsets) at least Spacing
// apart, each with the member's last 32 KiB of output. The first is the
// first member's header (A = 1). The indexing pass checks every member's
// CRC-32 and size.

func indexGzip(b *builder) error {
	f := newInflater(b.src, b.src.total, 0)
	b.cps = append(b.cps, checkpoint{In: 0, Out: 0, A: 1})
	var ferr error
	f.onBlock = func(bit, out int64) {
		if ferr != nil || out-b.cps[len(b.cps)-1].Out < b.opt.Spacing {
			return
		}
		w := f.history(maxHist)
		off, clen, err := b.addWindow(w)
		if err != nil {
			ferr = err
			return
		}
		b.cps = append(b.cps, checkpoint{In: bit, Out: out, WinOff: off, WinLen: clen, WinRaw: int64(len(w))})
	}
	w, done := b.sums(io.Discard)
	n, err := io.Copy(w, f)
	done()
	if err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	b.size = n
	return nil
}

type gzipSegments struct{}

func (gzipSegments) open(r *Reader, i int) (io.Reader, io.Closer, error) {
	c := r.cps[i]
	if c.A == 1 {
		return newInflater(r.src, r.src.Size(), c.In/8), nil, nil
	}
	w, err := r.readWindow(i)
	if err != nil {
		return nil, nil, err
	}
	f, err := newInflaterAt(r.src, r.src.Size(), c.In, w)
	if err != nil {
		return nil, nil, err
	}
	return f, nil, nil
}
