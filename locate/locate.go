// Package locate names images in two ways: a plain path, or
// PARTITION:PATH — a file inside the NTFS, FAT or exFAT file system of a partition
// (a device, a file holding one partition, or DISK@N), read straight from
// the partition through cbimg's own file-system readers, so the partition
// need not be mounted. Restoring a partition in place from an image stored
// in it needs exactly this: the file's clusters, found from the raw
// metadata, and reads that never go through a file-system driver.
package locate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// SelfRule is the exclusion reason a backup records for the image's own
// file when the image is stored inside the partition it backs up.
const SelfRule = "this image"

// ErrNotPlain means a file's bytes are not simply its clusters in order
// (resident, compressed, sparse, encrypted, or with a valid data length
// short of its size), so it cannot be written or protected cluster by
// cluster.
var ErrNotPlain = errors.New("locate: file is not stored plainly in its clusters")

// Split splits spec into a partition and a path inside its file system.
// ok is false for a plain path: one that exists as it is, a Windows drive
// path such as C:\x, or one whose part before the last ':' is not an
// existing file, device or DISK@N.
func Split(spec string) (part, path string, ok bool) {
	if _, err := os.Stat(spec); err == nil {
		return "", "", false
	}
	i := strings.LastIndexByte(spec, ':')
	if i <= 0 || i == len(spec)-1 {
		return "", "", false
	}
	if runtime.GOOS == "windows" && i == 1 && isLetter(spec[0]) {
		return "", "", false
	}
	part, path = spec[:i], strings.ReplaceAll(spec[i+1:], `\`, "/")
	if !partitionExists(part) {
		return "", "", false
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return part, path, true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func partitionExists(p string) bool {
	if st, err := os.Stat(p); err == nil {
		return !st.IsDir()
	}
	d, _, ok := disk.ParseTarget(p)
	if !ok {
		return false
	}
	st, err := os.Stat(d)
	return err == nil && !st.IsDir()
}

// File is one file of a file system, read through the raw partition.
type File struct {
	Spec  string         // PARTITION:PATH as given, for messages
	Part  *disk.Section  // the partition (owned when opened by Open)
	Vol   *volume.Volume // its file system
	Path  string         // the path inside the file system
	Size  int64          // the file's size
	Runs  []volume.Run   // its clusters in file order
	Plain bool           // bytes are the clusters of Runs in order (see ErrNotPlain)
	Why   string         // when not Plain, why not
	r     io.ReaderAt    // the file system's reader for the file
	owned bool
}

// Open opens the file that spec (PARTITION:PATH) names, read-only.
func Open(spec string) (*File, error) {
	part, p, ok := Split(spec)
	if !ok {
		return nil, fmt.Errorf("locate: %s does not name a file inside a partition (PARTITION:PATH)", spec)
	}
	sec, err := disk.OpenPartition(part, false)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", part, err)
	}
	vol, err := volume.Open(sec, sec.Size())
	if err != nil {
		sec.Close()
		return nil, fmt.Errorf("%s: %w", part, err)
	}
	f, err := Lookup(vol, sec, p)
	if err != nil {
		sec.Close()
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	f.Spec, f.owned = spec, true
	return f, nil
}

// Lookup finds the regular file at path in vol (opened on part).
func Lookup(vol *volume.Volume, part *disk.Section, path string) (*File, error) {
	f := &File{Spec: part.Spec + ":" + path, Part: part, Vol: vol, Path: path}
	cs := int64(vol.Info.ClusterSize)
	switch {
	case vol.NTFS() != nil:
		nf, err := vol.NTFS().Open(path)
		if err != nil {
			return nil, err
		}
		f.r, f.Size, f.Runs = nf, nf.Size(), nf.Runs()
		switch {
		case nf.Resident():
			f.Why = "its data is resident in the MFT record"
		case nf.Compressed():
			f.Why = "it is compressed"
		case nf.Encrypted():
			f.Why = "it is encrypted"
		case nf.Sparse():
			f.Why = "it is sparse"
		case nf.ValidSize() != nf.Size():
			f.Why = fmt.Sprintf("its valid data length (%d) is short of its size (%d)", nf.ValidSize(), nf.Size())
		}
	case vol.FAT() != nil:
		ff, err := vol.FAT().Open(path)
		if err != nil {
			return nil, err
		}
		f.r, f.Size, f.Runs = ff, ff.Size(), ff.Runs()
	case vol.ExFAT() != nil:
		xf, err := vol.ExFAT().Open(path)
		if err != nil {
			return nil, err
		}
		f.r, f.Size, f.Runs = xf, xf.Size(), xf.Runs()
		if v := xf.Entry.ValidSize; v != xf.Size() {
			f.Why = fmt.Sprintf("its valid data length (%d) is short of its size (%d)", v, xf.Size())
		}
	default:
		return nil, fmt.Errorf("locate: %s file systems cannot be browsed", vol.Info.Type)
	}
	var n int64
	for _, r := range f.Runs {
		n += int64(r.Count)
	}
	if f.Why == "" && n*cs < f.Size {
		f.Why = fmt.Sprintf("its %d clusters do not cover its %d bytes", n, f.Size)
	}
	f.Plain = f.Why == ""
	return f, nil
}

// ReadAt reads the file's bytes as the file system defines them.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }

// Close closes the partition when Open opened it.
func (f *File) Close() error {
	if f.owned {
		return f.Part.Close()
	}
	return nil
}

// Extents returns the partition byte ranges that hold the file's bytes,
// in file order; for a file that is not Plain, an error.
func (f *File) Extents() ([]volume.Extent, error) {
	if !f.Plain {
		return nil, fmt.Errorf("%w: %s: %s", ErrNotPlain, f.Spec, f.Why)
	}
	cs := int64(f.Vol.Info.ClusterSize)
	left := f.Size
	var out []volume.Extent
	for _, r := range f.Runs {
		if left <= 0 {
			break
		}
		n := min(int64(r.Count)*cs, left)
		out = append(out, volume.Extent{Offset: f.Vol.Info.ClusterOffset(r.Start), Length: n})
		left -= n
	}
	return out, nil
}

// OpenImage opens an image by name: a plain path with image.Open, or
// PARTITION:PATH through the partition's file system.
func OpenImage(spec string) (*image.Reader, error) {
	if _, _, ok := Split(spec); !ok {
		return image.Open(spec, nil)
	}
	f, err := Open(spec)
	if err != nil {
		return nil, err
	}
	r, err := image.NewReaderCloser(f, f.Size, f, nil)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	if r.Header.SplitSize != 0 {
		r.Close()
		return nil, fmt.Errorf("%s: split images cannot be read from inside a partition; copy its volumes out", spec)
	}
	return r, nil
}
