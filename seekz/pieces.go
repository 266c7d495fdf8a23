package seekz

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Pieces returns the pieces of a split image given any one name: for
// NAME.aa (or NAME.aaa) every NAME.xx of the same suffix length in name
// order, which must run without a gap from the first suffix; any other name
// is a single piece.
func Pieces(name string) ([]string, error) {
	dir, base := filepath.Split(name)
	stem, suf, ok := splitSuffix(base)
	if !ok {
		return []string{name}, nil
	}
	entries, err := os.ReadDir(filepath.Clean(dir + "."))
	if err != nil {
		return nil, err
	}
	var sufs []string
	for _, e := range entries {
		s, t, ok := splitSuffix(e.Name())
		if ok && s == stem && len(t) == len(suf) && !e.IsDir() {
			sufs = append(sufs, t)
		}
	}
	sort.Strings(sufs)
	var out []string
	want := strings.Repeat("a", len(suf))
	for i, s := range sufs {
		if s != want {
			return nil, fmt.Errorf("%w: %s%s.%s is missing (found %s.%s after it)", ErrPieces, dir, stem, want, stem, s)
		}
		out = append(out, filepath.Join(dir, stem+"."+s))
		if i+1 < len(sufs) {
			want = nextSuffix(want)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no pieces named %s.%s", ErrPieces, stem, strings.Repeat("?", len(suf)))
	}
	return out, nil
}

// splitSuffix splits "x.gz.ab" into "x.gz" and "ab" when the suffix is two
// or three lower-case letters, as split(1) names pieces.
func splitSuffix(base string) (stem, suf string, ok bool) {
	i := strings.LastIndexByte(base, '.')
	if i <= 0 {
		return "", "", false
	}
	suf = base[i+1:]
	if len(suf) < 2 || len(suf) > 3 {
		return "", "", false
	}
	for _, c := range suf {
		if c < 'a' || c > 'z' {
			return "", "", false
		}
	}
	// Names such as "x.gz" or "x.xz" or "x.lz4" are codecs, not pieces.
	switch suf {
	case "gz", "xz", "bz2", "zst", "lz4", "lzo", "lrz", "lz", "img", "raw", "cbi", "bin", "dd", "iso":
		return "", "", false
	}
	return base[:i], suf, true
}

func nextSuffix(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 'z' {
			b[i]++
			return string(b)
		}
		b[i] = 'a'
	}
	return s + "a" // out of names; the caller stops before
}

// pieceSet is the pieces concatenated as one io.ReaderAt. Sizes are taken at
// open; a piece that later reads short is an error naming it.
type pieceSet struct {
	names []string
	files []io.ReaderAt
	close []io.Closer
	start []int64       // start offset of each piece; start[len] = total
	info  []os.FileInfo // nil for a piece given as an io.ReaderAt
}

func openPieces(names []string) (*pieceSet, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no pieces", ErrPieces)
	}
	p := &pieceSet{names: names, start: make([]int64, len(names)+1)}
	for i, n := range names {
		f, err := os.Open(n)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.files = append(p.files, f)
		p.close = append(p.close, f)
		st, err := f.Stat()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.info = append(p.info, st)
		p.start[i+1] = p.start[i] + st.Size()
	}
	// split(1) makes every piece but the last the same size: a shorter one
	// in the middle was cut.
	for i := 0; i+1 < len(names); i++ {
		if p.info[i].Size() != p.info[0].Size() || p.info[i].Size() == 0 {
			sz := p.info[i].Size()
			p.Close()
			return nil, fmt.Errorf("%w: piece %s is %d bytes, the first is %d (truncated piece?)", ErrPieces, names[i], sz, p.info[0].Size())
		}
	}
	if last := len(names) - 1; last > 0 && p.info[last].Size() > p.info[0].Size() {
		p.Close()
		return nil, fmt.Errorf("%w: last piece %s is larger than the others (pieces out of order?)", ErrPieces, names[last])
	}
	return p, nil
}

func (p *pieceSet) Size() int64 { return p.start[len(p.names)] }

func (p *pieceSet) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("seekz: negative offset")
	}
	n := 0
	for n < len(b) {
		o := off + int64(n)
		if o >= p.Size() {
			return n, io.EOF
		}
		i := sort.Search(len(p.names), func(i int) bool { return p.start[i+1] > o }) // piece holding o
		want := min(int64(len(b)-n), p.start[i+1]-o)
		m, err := p.files[i].ReadAt(b[n:n+int(want)], o-p.start[i])
		n += m
		if m < int(want) {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("%w: piece %s ends at %d, expected %d bytes", ErrTruncated, p.names[i], o-p.start[i]+int64(m), p.start[i+1]-p.start[i])
			}
			return n, err
		}
	}
	return n, nil
}

func (p *pieceSet) Close() error {
	var first error
	for _, f := range p.close {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
