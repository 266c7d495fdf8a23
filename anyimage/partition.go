package anyimage

import (
	"context"
	"io"
	"os"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
)

// A partition named DISK@N — of a disk device, a raw disk file or a
// virtual disk (VHD, VHDX, qcow2, VMDK, E01) — opens as an image that holds
// every byte of it, so ls, cat, extract, info and convert read a partition
// straight from its disk, read-only, with no restore and no loop device.
func init() { Register(Kind{Name: "partition", OpenName: openPartitionName}) }

// partBlock is the grid of a partition read as an image: the bitmap costs
// one bit per 64 KiB (4 MiB for 2 TiB).
const partBlock = 64 << 10

func openPartitionName(name string, opts *Options) (Image, bool, error) {
	if _, _, ok := disk.ParseTarget(name); !ok {
		return nil, false, nil
	}
	if _, err := os.Stat(name); err == nil {
		return nil, false, nil // a file of the whole name wins, as everywhere
	}
	sec, err := disk.OpenPartition(name, false)
	if err != nil {
		return nil, true, err
	}
	size := sec.Size()
	n := uint64(size / partBlock)
	if n == 0 {
		sec.Close()
		return nil, true, &image.FormatError{Region: "header", Msg: "the partition is too small to hold a file system", Err: image.ErrFormat}
	}
	g := &partGrid{sec: sec, blocks: n, bitmap: make([]byte, (n+7)/8)}
	for i := uint64(0); i < n; i++ {
		g.bitmap[i/8] |= 1 << (i % 8)
	}
	var tail []image.Extent
	if end := int64(n) * partBlock; end < size {
		tail = []image.Extent{{Offset: end, Length: size - end}}
	}
	verify := func(ctx context.Context, progress func(int64)) (*Report, error) {
		buf := make([]byte, 1<<20)
		for off := int64(0); off < size; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			k := int(min(int64(len(buf)), size-off))
			if _, err := sec.ReadAt(buf[:k], off); err != nil {
				return &Report{Logical: off, UnitName: "bytes", Problems: []error{err}}, nil
			}
			off += int64(k)
			if progress != nil {
				progress(off)
			}
		}
		return &Report{Units: int(n), UnitName: "blocks read", Logical: size}, nil
	}
	img, err := NewGrid(g, GridSpec{Name: name, BlockSize: partBlock, Blocks: n, UsedBlocks: n, Stored: tail,
		Verify: verify, Closer: sec,
		Info: Info{Format: "partition", Compression: "none",
			Checksums: "none (a partition read as it is: verify reads every byte)", ImageBytes: size, VerifyBytes: size}})
	if err != nil {
		sec.Close()
		return nil, true, err
	}
	return img, true, nil
}

// partGrid is a partition as a Grid whose every block is used.
type partGrid struct {
	sec    *disk.Section
	blocks uint64
	bitmap []byte
}

func (g *partGrid) ReadAt(p []byte, off int64) (int, error) { return g.sec.ReadAt(p, off) }
func (g *partGrid) Size() int64                             { return g.sec.Size() }
func (g *partGrid) ImageSize() int64                        { return g.sec.Size() }
func (g *partGrid) Bitmap() []byte                          { return g.bitmap }

func (g *partGrid) Used(ctx context.Context) io.ReadCloser {
	return io.NopCloser(io.NewSectionReader(g.sec, 0, int64(g.blocks)*partBlock))
}
