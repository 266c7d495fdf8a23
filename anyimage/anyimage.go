// Package anyimage opens every kind of partition image cbimg reads — its own
// .cbi images, partclone and ntfsclone images, and kinds other packages
// register — behind one interface, Image, so that mount, browse, restore,
// verify, info and the catalogue never branch on the format.
//
// Open detects the kind by content, not by name: first every registered
// kind that claims names (a directory of pieces, say) is asked, then the
// first bytes of the named file are matched against every kind's Probe.
// Images inside a partition are named PARTITION:PATH (package locate).
//
// An Image is the logical partition: ReadAt at a partition offset returns
// the stored bytes and zeros for clusters the image does not hold. Header
// describes that partition in the terms of a .cbi header (file-system type,
// sector and cluster size, the cluster grid, system extents, exclusions), so
// code written for .cbi headers serves every kind; for foreign kinds it is
// built from the image's own header and boot sector.
package anyimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cbimg/cbimg/image"
)

// Image is an opened partition image of any kind. Its methods are safe for
// concurrent use.
type Image interface {
	// ReadAt reads the logical partition: stored bytes, and zeros for
	// clusters the image does not hold. Damage is an error wrapping
	// image.ErrChecksum, image.ErrTruncated or image.ErrFormat.
	io.ReaderAt
	// Size is the logical partition's length in bytes.
	Size() int64
	// Header describes the partition as a .cbi header would. Callers must
	// not modify it.
	Header() *image.Header
	// Bitmap holds one bit per cluster of Header's cluster grid
	// (ClusterCount bits from ClusterOrigin, LSB first), set for the
	// clusters the image holds; image.NextRun walks it.
	Bitmap() []byte
	// Info is the image's metadata beyond the header: format, compression,
	// pieces, origin, what verify checks.
	Info() *Info
	// Used returns the stored bytes in restore order — every system extent
	// in Header().SysExtents order, then every used cluster in ascending
	// order — checked as they are read. Its Read returns io.EOF only when
	// everything was read and checked.
	Used(ctx context.Context) (io.ReadCloser, error)
	// Verify reads all of the image and checks every checksum it has, its
	// structure and its stream integrity. progress, when set, gets bytes
	// done of Info().VerifyBytes.
	Verify(ctx context.Context, progress func(done int64)) (*Report, error)
	Close() error
}

// Info is what an image says about itself beyond Header. A kind that wraps
// another — a partclone stream decompressed from pieces and opened with
// OpenPartclone, say — sets Compression, Pieces and Origin on the Info of
// the Image it got before handing that Image out.
type Info struct {
	Format  string // "cbi", "partclone", "ntfsclone", ...
	Version string // the format version as the image states it ("1", "0002", "10.1")
	FSName  string // the file system as the image names it ("NTFS", "FAT16"); "" when it names none
	// FSClusterSize is the file system's own cluster size, which may differ
	// from Header().ClusterSize, the unit the image stores (partclone keeps
	// FAT volumes in 512-byte blocks); 0 when unknown.
	FSClusterSize uint32
	Compression   string    // "none", "zstd", "gzip", ...
	Pieces        []string  // the files the image is read from, in order
	Origin        string    // the tool that made it and the source, as far as the image says
	Checksums     string    // what Verify checks ("CRC32 per 256 blocks", "none")
	ImageBytes    int64     // bytes of the image as stored (all pieces)
	VerifyBytes   int64     // the total Verify's progress counts up to
	Created       time.Time // when the image was made; the file's time when the image does not say
	Digest        string    // hex digest over the whole image, when the format has one
	// CheckedAtOpen says that Open already read all of the image and
	// checked everything Verify would (a format without checksums indexed
	// in one pass): a restore need not check it again first.
	CheckedAtOpen bool
	// Notes are facts a user should hear when the image is restored or
	// mounted (such as a boot sector rebuilt from another).
	Notes []string
}

// Report is the result of Verify.
type Report struct {
	Units    int    // checksummed units checked: chunks, checksum groups, clusters
	UnitName string // "chunks", "checksum groups", "clusters"
	Logical  int64  // bytes of the partition checked
	// Checksummed is false when the format has no checksums: Verify then
	// checked structure and stream integrity only.
	Checksummed bool
	// Problems lists every damaged region (*image.FormatError where the
	// offset is known); empty when the image is whole.
	Problems []error
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Options tune Open.
type Options struct {
	CacheBytes int64  // byte cap of decoded-data caches; 0 = the kind's default
	CacheDir   string // where kinds that need an index or cache keep it; "" = the user's cache directory
	// Progress, when set, reports one-time passes over the image made while
	// opening (building an index): phase, bytes done and total.
	Progress func(phase string, done, total int64)
}

// Kind is one image format Open knows.
type Kind struct {
	Name string
	// OpenName, when set, is asked first with the name as given: kinds
	// named by something other than one file's content (a directory, the
	// first of several pieces) claim it by returning ok. An error with ok
	// means the name is theirs and broken.
	OpenName func(name string, opts *Options) (img Image, ok bool, err error)
	// Probe reports whether a file starting with head (up to ProbeLen
	// bytes, fewer for a short file) is of this kind.
	Probe func(head []byte) bool
	// Open reads an image of this kind of size bytes from src; name is for
	// messages and Info.Pieces. closer, when not nil, is closed with the
	// Image (or when Open fails).
	Open func(src io.ReaderAt, size int64, name string, closer io.Closer, opts *Options) (Image, error)
}

// ProbeLen is how many bytes of a file Probe gets.
const ProbeLen = 4096

var (
	kindsMu sync.RWMutex
	kinds   []Kind
)

// Register adds a kind. Kinds registered earlier are asked first; the
// built-in kinds (.cbi, partclone, ntfsclone) are registered by this package.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	kinds = append(kinds, k)
}

func registered() []Kind {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	return append([]Kind(nil), kinds...)
}

// Detect names the kind of a file starting with head, or "" when no kind
// knows it.
func Detect(head []byte) string {
	for _, k := range registered() {
		if k.Probe != nil && k.Probe(head) {
			return k.Name
		}
	}
	return ""
}

// Open opens the image called name: a path (the first volume of a split
// .cbi image), PARTITION:PATH, or any name a registered kind claims.
func Open(name string, opts *Options) (Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	for _, k := range registered() {
		if k.OpenName == nil {
			continue
		}
		if img, ok, err := k.OpenName(name, opts); ok {
			return img, err
		}
	}
	src, size, closer, err := openFile(name)
	if err != nil {
		return nil, err
	}
	img, err := OpenReaderAt(src, size, name, closer, opts)
	if err != nil {
		return nil, err
	}
	if inf := img.Info(); inf.Created.IsZero() {
		if st, err := os.Stat(name); err == nil {
			inf.Created = st.ModTime().UTC()
			if h := img.Header(); h.Created.IsZero() {
				h.Created = inf.Created
			}
		}
	}
	return img, nil
}

// OpenReaderAt opens the image in src (size bytes), detected by content.
// closer, when not nil, is closed with the Image or when OpenReaderAt fails.
func OpenReaderAt(src io.ReaderAt, size int64, name string, closer io.Closer, opts *Options) (Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	head := make([]byte, min(size, ProbeLen))
	if _, err := src.ReadAt(head, 0); err != nil && err != io.EOF {
		closeQuietly(closer)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, k := range registered() {
		if k.Probe != nil && k.Open != nil && k.Probe(head) {
			img, err := k.Open(src, size, name, closer, opts)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			return img, nil
		}
	}
	closeQuietly(closer)
	return nil, fmt.Errorf("%s: %w: not a cbimg, partclone or ntfsclone image (nor any other kind cbimg reads)", name, image.ErrFormat)
}

func closeQuietly(c io.Closer) {
	if c != nil {
		c.Close()
	}
}
