// Package catalog finds partition images — cbimg's own and every kind
// package anyimage reads (partclone, ntfsclone, ...), detected by content —
// on the NTFS and FAT partitions of a disk, read raw without mounting
// anything, or in a directory tree. For each it reads the header and says
// which partitions it could restore.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// Found is one image.
type Found struct {
	Location  string        // where it lies: "DISK@N:/path", "PARTITION:/path", or a file path
	Partition string        // the partition holding it ("" for a file in a directory)
	Path      string        // path inside that partition, or the file path
	Size      int64         // bytes of its first volume
	Format    string        // "cbi", "partclone", "ntfsclone", ... (anyimage kinds)
	Header    *image.Header // nil when the header could not be read
	Err       error         // why the header could not be read
	// Targets are the partitions of the scanned disk the image fits
	// (file-system size ≤ partition size), InPlace those among them whose
	// file system is the one the image was made of.
	Targets []string
	InPlace []string
}

// candidate partition of a scan.
type part struct {
	spec   string
	ra     io.ReaderAt
	size   int64
	serial uint64
	fsOK   bool
}

// Scan finds images in spec: a disk (every partition), a partition or
// volume file, or a directory.
func Scan(ctx context.Context, spec string) ([]Found, error) {
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return scanDir(ctx, spec)
	}
	parts, closeAll, err := partitions(spec)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	var out []Found
	for _, p := range parts {
		if !p.fsOK {
			continue
		}
		f, err := scanVolume(ctx, p)
		if err != nil {
			return out, fmt.Errorf("%s: %w", p.spec, err)
		}
		out = append(out, f...)
	}
	for i := range out {
		h := out[i].Header
		if h == nil {
			continue
		}
		for _, p := range parts {
			if p.size >= h.FSSize {
				out[i].Targets = append(out[i].Targets, p.spec)
				if p.fsOK && p.serial == h.Serial {
					out[i].InPlace = append(out[i].InPlace, p.spec)
				}
			}
		}
	}
	return out, nil
}

// partitions opens every partition of a disk, or spec itself when it has
// no partition table (a partition or a volume file).
func partitions(spec string) ([]part, func(), error) {
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	add := func(spec string, ra io.ReaderAt, size int64) part {
		p := part{spec: spec, ra: ra, size: size}
		if v, err := volume.Open(ra, size); err == nil {
			p.fsOK, p.serial = true, v.Info.Serial
		}
		return p
	}
	if _, _, ok := disk.ParseTarget(spec); ok {
		s, err := disk.OpenPartition(spec, false)
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, s)
		return []part{add(spec, s, s.Size())}, closeAll, nil
	}
	d, err := disk.OpenDisk(spec)
	if err != nil {
		return nil, closeAll, err
	}
	closers = append(closers, d)
	if d.Table.Scheme == disk.None {
		return []part{add(spec, d, d.Size)}, closeAll, nil
	}
	var out []part
	for _, p := range d.Table.Partitions {
		if p.IsExtended() {
			continue
		}
		out = append(out, add(fmt.Sprintf("%s@%d", spec, p.Number), d.Section(p), p.Length))
	}
	return out, closeAll, nil
}

// scanVolume walks a file system and reads the header of every file that
// starts with the image magic.
func scanVolume(ctx context.Context, p part) ([]Found, error) {
	v, err := volume.Open(p.ra, p.size)
	if err != nil {
		return nil, err
	}
	var out []Found
	err = v.Walk(ctx, func(f volume.File) error {
		if f.Dir || f.Stream != "" || len(f.Runs) == 0 || f.Size < image.FooterLen {
			return nil
		}
		head := make([]byte, min(f.Size, probeLen, int64(v.Info.ClusterSize)))
		if _, err := p.ra.ReadAt(head, v.Info.ClusterOffset(f.Runs[0].Start)); err != nil {
			return nil
		}
		kind := anyimage.Detect(head)
		if kind == "" {
			return nil
		}
		r, err := openFile(v, f.Path)
		fd := Found{Location: p.spec + ":" + f.Path, Partition: p.spec, Path: f.Path, Size: f.Size, Format: kind}
		if err == nil {
			fd.Header, fd.Err = describe(r, f.Size, fd.Location)
		} else {
			fd.Err = err
		}
		out = append(out, fd)
		return nil
	})
	return out, err
}

// openFile opens a file of an NTFS or FAT volume for reading.
func openFile(v *volume.Volume, path string) (io.ReaderAt, error) {
	if n := v.NTFS(); n != nil {
		return n.Open(path)
	}
	if f := v.FAT(); f != nil {
		return f.Open(path)
	}
	return nil, errors.New("catalog: not an NTFS or FAT volume")
}

// readHeader reads and checks just the header: enough to list an image,
// also the first volume of a split one.
func readHeader(r io.ReaderAt) (*image.Header, error) {
	first := make([]byte, 16)
	if _, err := r.ReadAt(first, 0); err != nil {
		return nil, err
	}
	n, err := image.PeekHeaderLen(first)
	if err != nil {
		return nil, err
	}
	hb := make([]byte, n)
	if _, err := r.ReadAt(hb, 0); err != nil {
		return nil, err
	}
	return image.DecodeHeader(hb)
}

func scanDir(ctx context.Context, dir string) ([]Found, error) {
	var out []Found
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable corners are skipped, not fatal
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() || strings.HasSuffix(path, ".partial") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		kind := sniff(f)
		if kind == "" {
			return nil
		}
		st, err := f.Stat()
		if err != nil {
			return nil
		}
		h, herr := describe(f, st.Size(), path)
		if h != nil && h.Created.IsZero() {
			h.Created = st.ModTime().UTC() // formats that do not say when they were made
		}
		out = append(out, Found{Location: path, Path: path, Size: st.Size(), Format: kind, Header: h, Err: herr})
		return nil
	})
	return out, err
}

// probeLen is how much of a file's start tells its kind.
const probeLen = 64

// sniff names the image kind of a file, "" for none.
func sniff(f *os.File) string {
	m := make([]byte, probeLen)
	n, err := f.ReadAt(m, 0)
	if err != nil && err != io.EOF {
		return ""
	}
	return anyimage.Detect(m[:n])
}

// describe reads an image's header: a .cbi header as stored, also the
// first volume of a split one; for other kinds what anyimage.Describe makes
// of theirs.
func describe(r io.ReaderAt, size int64, name string) (*image.Header, error) {
	var first [8]byte
	if _, err := r.ReadAt(first[:], 0); err == nil && string(first[:]) == image.Magic {
		return readHeader(r)
	}
	h, _, err := anyimage.Describe(r, size, name)
	return h, err
}
