package image

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Chunks   int
	Logical  int64   // logical bytes checked
	Problems []error // every damaged chunk, then digest problems; empty when the image is whole
}

// OK reports whether nothing was found wrong.
func (v *VerifyReport) OK() bool { return len(v.Problems) == 0 }

// Verify reads every chunk, checks its CRC32C and chunk sum against the table,
// and recomputes the image digest. Damaged chunks are all listed (with
// their offsets); the header, bitmap, table and footer were already checked
// by Open. progress, when set, is called with logical bytes checked.
func (r *Reader) Verify(ctx context.Context, progress func(done int64)) (*VerifyReport, error) {
	rep := &VerifyReport{Chunks: len(r.frames)}
	errs, err := r.eachChunk(ctx, func(i int, buf []byte) (int64, error) {
		fr := &r.frames[i]
		buf = buf[:frameHeaderLen+int(fr.StoredLen)]
		if err := r.readAt(buf, fr.Offset, "chunk"); err != nil {
			return 0, err
		}
		// With full, decodeChunk checks every block checksum too.
		_, err := decodeChunk(buf, fr, true)
		return int64(fr.LogicalLen), err
	}, progress)
	if err != nil {
		return nil, err
	}
	for _, e := range errs {
		if e != nil {
			rep.Problems = append(rep.Problems, e)
		}
	}
	for i := range r.frames {
		rep.Logical += int64(r.frames[i].LogicalLen)
	}
	sum, err := r.digest()
	if err != nil {
		return nil, err
	}
	if sum != r.Footer.Digest {
		rep.Problems = append(rep.Problems, r.digestError())
	}
	return rep, nil
}

// Error summarizes the report as an error, nil when OK.
func (v *VerifyReport) Error() error {
	switch len(v.Problems) {
	case 0:
		return nil
	case 1:
		return v.Problems[0]
	}
	return fmt.Errorf("%w (and %d more problems)", v.Problems[0], len(v.Problems)-1)
}

// eachChunk calls check for every chunk on all cores (each goroutine with a
// buffer of its own) and returns each chunk's error. progress gets running
// totals of what check returns. It stops early when ctx is done.
func (r *Reader) eachChunk(ctx context.Context, check func(i int, buf []byte) (int64, error), progress func(int64)) ([]error, error) {
	errs := make([]error, len(r.frames))
	var most uint32
	for i := range r.frames {
		most = max(most, r.frames[i].StoredLen)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var done int64
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, frameHeaderLen+int(most))
			for i := range next {
				var n int64
				n, errs[i] = check(i, buf)
				if progress != nil {
					mu.Lock()
					done += n
					progress(done)
					mu.Unlock()
				}
			}
		}()
	}
	var cerr error
feed:
	for i := range r.frames {
		select {
		case next <- i:
		case <-ctx.Done():
			cerr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	return errs, cerr
}
