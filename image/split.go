package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
)

// PartName returns the file name of split volume n (1-based) of an image:
// the first volume is the image name itself, then NAME.002, NAME.003, ….
func PartName(name string, n int) string {
	if n <= 1 {
		return name
	}
	return fmt.Sprintf("%s.%03d", name, n)
}

// Output is an image being written to one or more files. Data goes to
// temporary names and appears under the final names only on Commit, the
// first volume last, so an interrupted backup never leaves an image that
// looks complete.
type Output struct {
	name    string
	split   int64
	parts   []*os.File
	cur     int64 // bytes in the current part
	err     error
	removed bool
}

const partialSuffix = ".partial"

// Create starts an image at name, split into volumes of split bytes (0: one
// file). Files are created 0600; an existing final name is not touched until
// Commit.
func Create(name string, split int64) (*Output, error) {
	o := &Output{name: name, split: split}
	if err := o.next(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *Output) next() error {
	n := len(o.parts) + 1
	if n > 999 {
		return errors.New("image: more than 999 split volumes; choose a larger split size")
	}
	f, err := os.OpenFile(PartName(o.name, n)+partialSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	o.parts = append(o.parts, f)
	o.cur = 0
	return nil
}

func (o *Output) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	total := 0
	for len(p) > 0 {
		if o.split > 0 && o.cur == o.split {
			if o.err = o.next(); o.err != nil {
				return total, o.err
			}
		}
		k := len(p)
		if o.split > 0 && int64(k) > o.split-o.cur {
			k = int(o.split - o.cur)
		}
		n, err := o.parts[len(o.parts)-1].Write(p[:k])
		total += n
		o.cur += int64(n)
		if err != nil {
			o.err = err
			return total, err
		}
		p = p[k:]
	}
	return total, nil
}

// Commit syncs every volume and renames them into place.
func (o *Output) Commit() error {
	if o.err != nil {
		return o.err
	}
	for _, f := range o.parts {
		if err := f.Sync(); err != nil {
			o.err = err
			return err
		}
		if err := f.Close(); err != nil {
			o.err = err
			return err
		}
	}
	// Stale volumes of an earlier, longer image under the same name would
	// be read as part of this one.
	for i := len(o.parts) + 1; ; i++ {
		if err := os.Remove(PartName(o.name, i)); err != nil {
			break
		}
	}
	for i := len(o.parts); i >= 1; i-- {
		if err := os.Rename(PartName(o.name, i)+partialSuffix, PartName(o.name, i)); err != nil {
			o.err = err
			return err
		}
	}
	if d, err := os.Open(dirOf(o.name)); err == nil {
		d.Sync()
		d.Close()
	}
	o.removed = true
	return nil
}

// Abort removes everything written. Safe after Commit (does nothing).
func (o *Output) Abort() {
	if o.removed {
		return
	}
	o.removed = true
	for i, f := range o.parts {
		f.Close()
		os.Remove(PartName(o.name, i+1) + partialSuffix)
	}
}

// Parts returns the number of volumes written so far.
func (o *Output) Parts() int { return len(o.parts) }

func dirOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if os.IsPathSeparator(name[i]) {
			if i == 0 {
				return name[:1]
			}
			return name[:i]
		}
	}
	return "."
}

// multiFile is an io.ReaderAt over the concatenated split volumes.
type multiFile struct {
	files []*os.File
	names []string
	ends  []int64 // cumulative end offset of each volume
}

// openParts opens name and its .002, .003, … volumes.
func openParts(name string) (*multiFile, error) {
	m := &multiFile{}
	var end int64
	for i := 1; i <= 999; i++ {
		pn := PartName(name, i)
		f, err := os.Open(pn)
		if err != nil {
			if i > 1 && errors.Is(err, fs.ErrNotExist) {
				break
			}
			m.Close()
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			m.Close()
			return nil, err
		}
		end += st.Size()
		m.files = append(m.files, f)
		m.names = append(m.names, pn)
		m.ends = append(m.ends, end)
	}
	return m, nil
}

func (m *multiFile) size() int64 {
	if len(m.ends) == 0 {
		return 0
	}
	return m.ends[len(m.ends)-1]
}

func (m *multiFile) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for len(p) > 0 {
		i := sort.Search(len(m.ends), func(i int) bool { return m.ends[i] > off })
		if i == len(m.ends) {
			return total, io.EOF
		}
		start := int64(0)
		if i > 0 {
			start = m.ends[i-1]
		}
		k := min(int64(len(p)), m.ends[i]-off)
		n, err := m.files[i].ReadAt(p[:k], off-start)
		total += n
		if int64(n) < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return total, fmt.Errorf("%s: %w", m.names[i], err)
		}
		p = p[k:]
		off += k
	}
	return total, nil
}

// checkSplit verifies that every volume but the last has the split size.
func (m *multiFile) checkSplit(split int64) error {
	if split == 0 {
		if len(m.files) > 1 {
			return &FormatError{Region: "split", Offset: m.ends[0], Msg: fmt.Sprintf("image is not split but %s exists", m.names[1]), Err: ErrFormat}
		}
		return nil
	}
	start := int64(0)
	for i := range m.files {
		size := m.ends[i] - start
		if i < len(m.files)-1 && size != split || i == len(m.files)-1 && size > split {
			return &FormatError{Region: "split", Offset: start, Msg: fmt.Sprintf("volume %s is %d bytes, expected %d (a volume is missing, truncated or out of order)", m.names[i], size, split), Err: ErrTruncated}
		}
		start = m.ends[i]
	}
	return nil
}

func (m *multiFile) Close() error {
	var first error
	for _, f := range m.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
