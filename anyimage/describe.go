package anyimage

import (
	"context"
	"fmt"
	"io"

	"github.com/cbimg/cbimg/foreign/ntfsclone"
	"github.com/cbimg/cbimg/image"
)

// Describe reads what an image says about itself — its header and Info —
// as cheaply as its kind allows, without building the index a read needs
// (an ntfsclone image is not walked). For listing images; the bitmap-derived
// counts are the image header's for kinds that are not walked.
func Describe(src io.ReaderAt, size int64, name string) (*image.Header, *Info, error) {
	head := make([]byte, min(size, ProbeLen))
	if _, err := src.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, nil, err
	}
	switch Detect(head) {
	case "cbi":
		n, err := image.PeekHeaderLen(head)
		if err != nil {
			return nil, nil, err
		}
		hb := make([]byte, n)
		if _, err := src.ReadAt(hb, 0); err != nil {
			return nil, nil, err
		}
		h, err := image.DecodeHeader(hb)
		if err != nil {
			return nil, nil, err
		}
		return h, &Info{Format: "cbi", Version: fmt.Sprint(h.Version), Compression: h.Codec.String(), Pieces: []string{name}, ImageBytes: size, Created: h.Created}, nil
	case "ntfsclone":
		nh, boot, err := ntfsclone.Peek(src, size)
		if err != nil {
			return nil, nil, err
		}
		g := &bootOnly{boot: boot, size: nh.DeviceSize, imageSize: size}
		var stored []image.Extent
		if t := nh.TailLen(); t > 0 {
			stored = []image.Extent{{Offset: nh.Clusters * int64(nh.ClusterSize), Length: t}}
		}
		img, err := NewGrid(g, GridSpec{Name: name, BlockSize: nh.ClusterSize, Blocks: uint64(nh.Clusters), UsedBlocks: uint64(nh.InUse), Stored: stored,
			Info: Info{Format: "ntfsclone", Version: nh.Version(), FSName: "NTFS", Compression: "none", Origin: "ntfsclone"}})
		if err != nil {
			return nil, nil, err
		}
		return img.Header(), img.Info(), nil
	case "":
		return nil, nil, fmt.Errorf("%s: %w: not an image kind cbimg reads", name, image.ErrFormat)
	}
	img, err := OpenReaderAt(src, size, name, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	defer img.Close()
	return img.Header(), img.Info(), nil
}

// bootOnly is a Grid that knows only the boot sector: enough for NewGrid to
// describe the file system.
type bootOnly struct {
	boot            []byte
	size, imageSize int64
}

func (b *bootOnly) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	if off < int64(len(b.boot)) {
		copy(p, b.boot[off:])
	}
	return len(p), nil
}
func (b *bootOnly) Size() int64                        { return b.size }
func (b *bootOnly) ImageSize() int64                   { return b.imageSize }
func (b *bootOnly) Bitmap() []byte                     { return nil }
func (b *bootOnly) Used(context.Context) io.ReadCloser { return nil }
