package anyimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// Grid is what a reader of a foreign block image gives: the partition, its
// used-block bitmap over a grid of equal blocks from offset 0, and the used
// blocks front to back, checked.
type Grid interface {
	io.ReaderAt
	Size() int64      // bytes of the partition
	ImageSize() int64 // bytes of the image
	Bitmap() []byte   // one bit per block, LSB first
	// Used returns the used blocks' bytes in ascending order, checked.
	Used(ctx context.Context) io.ReadCloser
}

// GridSpec describes a Grid for NewGrid.
type GridSpec struct {
	Name       string // the image's name, for Info.Pieces and Header.SourceName
	BlockSize  uint32
	Blocks     uint64
	UsedBlocks uint64
	// Stored lists byte ranges past the block grid that the image holds
	// (ntfsclone's partial last cluster): they become system extents, read
	// through the Grid's ReadAt.
	Stored []image.Extent
	// Verify checks the whole image.
	Verify func(ctx context.Context, progress func(int64)) (*Report, error)
	Info   Info
	Closer io.Closer
}

// gridImage is a foreign block image as an Image.
type gridImage struct {
	g      Grid
	hdr    *image.Header
	info   Info
	verify func(ctx context.Context, progress func(int64)) (*Report, error)
	closer io.Closer
	// An NTFS backup boot sector the image leaves out, rebuilt from the
	// primary (nil when the image holds it or the volume is not NTFS).
	rebuiltAt int64
	rebuilt   []byte
	closeOnce sync.Once
}

// NewGrid makes an Image of a foreign block image: the header is built from
// spec and the file system's boot sector read through g. An NTFS backup boot
// sector that lies past the grid and is not in spec.Stored (partclone leaves
// it out) is rebuilt from the primary boot sector, and a note says so.
func NewGrid(g Grid, spec GridSpec) (Image, error) {
	size := g.Size()
	bs := int64(spec.BlockSize)
	if spec.Blocks == 0 || bs == 0 || int64(spec.Blocks) > size/bs {
		return nil, fmt.Errorf("%w: %d blocks of %d bytes do not fit a partition of %d bytes", image.ErrFormat, spec.Blocks, bs, size)
	}
	h := &image.Header{
		Version: 0, FSType: uint8(volume.Unknown), Codec: image.CodecNone, SectorSize: 512,
		ClusterSize: spec.BlockSize, ClusterCount: spec.Blocks, BitmapBits: spec.Blocks, ImageClusters: spec.UsedBlocks,
		PartLength: size, FSSize: size, FSSectors: uint64(size / 512), BitmapLen: int64((spec.Blocks + 7) / 8),
		SourceName: spec.Name, ToolVersion: spec.Info.Origin,
	}
	im := &gridImage{g: g, hdr: h, info: spec.Info, verify: spec.Verify, closer: spec.Closer}
	im.info.Pieces = append([]string(nil), spec.Info.Pieces...)
	if len(im.info.Pieces) == 0 && spec.Name != "" {
		im.info.Pieces = []string{spec.Name}
	}
	if im.info.ImageBytes == 0 {
		im.info.ImageBytes = g.ImageSize()
	}
	h.SysExtents = append(h.SysExtents, spec.Stored...)
	if err := im.describeFS(); err != nil {
		return nil, err
	}
	for _, e := range h.SysExtents {
		h.LogicalLen += e.Length
	}
	h.LogicalLen += int64(spec.UsedBlocks) * bs
	return im, nil
}

// describeFS fills the header from the file system's boot sector, when the
// partition holds one cbimg knows; otherwise the image stays a raw volume.
func (im *gridImage) describeFS() error {
	h := im.hdr
	boot := make([]byte, volume.BootSectorSize)
	if _, err := im.g.ReadAt(boot, 0); err != nil {
		return err
	}
	gridEnd := int64(h.ClusterCount) * int64(h.ClusterSize)
	if nb, err := volume.ParseNTFSBoot(boot); err == nil {
		h.FSType = uint8(volume.NTFS)
		im.info.FSClusterSize = nb.ClusterSize
		h.SectorSize = nb.BytesPerSector
		h.FSSectors = nb.TotalSectors
		h.FSSize = int64(nb.TotalSectors+1) * int64(nb.BytesPerSector)
		h.HiddenSectors, h.Serial, h.OEMName = nb.HiddenSectors, nb.Serial, nb.OEMName
		at := int64(nb.TotalSectors) * int64(nb.BytesPerSector)
		if h.FSSize <= h.PartLength && at >= gridEnd && !covered(h.SysExtents, at, int64(nb.BytesPerSector)) {
			full := make([]byte, nb.BytesPerSector)
			if _, err := im.g.ReadAt(full, 0); err != nil {
				return err
			}
			im.rebuiltAt, im.rebuilt = at, full
			h.SysExtents = append(h.SysExtents, image.Extent{Offset: at, Length: int64(len(full))})
			im.info.Notes = append(im.info.Notes, fmt.Sprintf("%s leaves out the NTFS backup boot sector (partition byte %d); cbimg rebuilds it from the primary boot sector", im.info.Format, at))
		}
	} else if fb, err := volume.ParseFATBoot(boot); err == nil {
		h.FSType = uint8(fb.Type)
		im.info.FSClusterSize = fb.ClusterSize()
		h.SectorSize = fb.SectorSize()
		h.FSSectors = fb.TotalSectors
		h.FSSize = min(fb.Size(), h.PartLength)
		h.HiddenSectors, h.Serial, h.OEMName, h.Label = uint64(fb.HiddenSectors), uint64(fb.VolumeID), fb.OEMName, fb.VolumeLabel
	}
	if v, err := volume.Open(im, h.PartLength); err == nil {
		h.Label = v.Info.Label
		if v.Info.Dirty {
			h.Flags |= image.FlagDirty
		}
	}
	if h.SectorSize < 512 || h.SectorSize > h.ClusterSize {
		h.SectorSize = 512
	}
	return nil
}

func covered(ext []image.Extent, off, n int64) bool {
	for _, e := range ext {
		if off >= e.Offset && off+n <= e.Offset+e.Length {
			return true
		}
	}
	return false
}

func (im *gridImage) Size() int64           { return im.hdr.PartLength }
func (im *gridImage) Header() *image.Header { return im.hdr }
func (im *gridImage) Bitmap() []byte        { return im.g.Bitmap() }
func (im *gridImage) Info() *Info           { return &im.info }

// ReadAt reads through the grid, with the rebuilt boot sector laid over.
func (im *gridImage) ReadAt(p []byte, off int64) (int, error) {
	n, err := im.g.ReadAt(p, off)
	if im.rebuilt != nil {
		s, e := max(off, im.rebuiltAt), min(off+int64(n), im.rebuiltAt+int64(len(im.rebuilt)))
		if s < e {
			copy(p[s-off:e-off], im.rebuilt[s-im.rebuiltAt:])
		}
	}
	return n, err
}

// Used gives the system extents (read at random) and then the grid's used
// blocks front to back.
func (im *gridImage) Used(ctx context.Context) (io.ReadCloser, error) {
	var readers []io.Reader
	for _, e := range im.hdr.SysExtents {
		buf := make([]byte, e.Length)
		if _, err := im.ReadAt(buf, e.Offset); err != nil {
			return nil, err
		}
		readers = append(readers, bytesReader(buf))
	}
	u := im.g.Used(ctx)
	return &multiCloser{Reader: io.MultiReader(append(readers, u)...), c: u}, nil
}

type multiCloser struct {
	io.Reader
	c io.Closer
}

func (m *multiCloser) Close() error { return m.c.Close() }

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func (im *gridImage) Verify(ctx context.Context, progress func(done int64)) (*Report, error) {
	if im.verify == nil {
		return nil, errors.New("anyimage: this image kind cannot be verified")
	}
	return im.verify(ctx, progress)
}

func (im *gridImage) Close() error {
	var err error
	im.closeOnce.Do(func() {
		if im.closer != nil {
			err = im.closer.Close()
		}
	})
	return err
}
