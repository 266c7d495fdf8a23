package seekz

import (
	"io"
)

// gzip: checkpoints at DEFLATE block starts (bit offsets) at least Spacing
// apart, each with as much of the member's last 32 KiB of output as the
// matches up to the next checkpoint copy from (none for data that did not
// compress: no match reaches back). The first is the first member's header
// (A = 1). The indexing pass checks every member's CRC-32 and size.

func indexGzip(b *builder) error {
	f := newInflater(b.src, b.src.total, 0)
	b.cps = append(b.cps, checkpoint{In: 0, Out: 0, A: 1})
	var ferr error
	var pend []byte // the last checkpoint's history, stored once its segment is decoded
	flush := func() error {
		if pend == nil {
			return nil
		}
		c := &b.cps[len(b.cps)-1]
		need := min(c.Out-min(f.minRef, c.Out), int64(len(pend)))
		w := pend[int64(len(pend))-need:]
		pend = nil
		if need == 0 {
			return nil
		}
		off, clen, err := b.addWindow(w)
		c.WinOff, c.WinLen, c.WinRaw = off, clen, need
		return err
	}
	f.onBlock = func(bit, out int64) {
		if ferr != nil || out-b.cps[len(b.cps)-1].Out < b.opt.Spacing {
			return
		}
		if ferr = flush(); ferr != nil {
			return
		}
		pend = f.history(maxHist)
		f.minRef = out
		b.cps = append(b.cps, checkpoint{In: bit, Out: out})
	}
	b.subSums = true
	w, done := b.sums(io.Discard)
	n, err := io.Copy(w, f)
	if derr := done(); err == nil {
		err = derr
	}
	if err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	if err := flush(); err != nil {
		return err
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
