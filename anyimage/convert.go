package anyimage

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cbimg/cbimg/image"
)

// ConvertOptions describe a conversion to .cbi.
type ConvertOptions struct {
	Codec       image.Codec
	Level       int    // zstd level; 0 = 3
	ChunkSize   uint32 // 0 = image.DefaultChunkSize
	ZstdFrame   int    // logical bytes per zstd frame; 0 = image.DefaultSubFrameSize, < 0 = one frame per chunk
	ToolVersion string // "cbimg VERSION"
	Progress    func(done, total int64)
}

// ConvertHeader is the .cbi header an image converts to: its own header
// with the new compression, and an origin record saying where it came from.
func ConvertHeader(img Image, o ConvertOptions) (*image.Header, error) {
	src := img.Header()
	h := *src
	h.Version, h.RequiredFlags, h.Len = 0, 0, 0
	h.Codec, h.Level, h.ChunkSize, h.SubFrameSize = o.Codec, 0, o.ChunkSize, 0
	if h.ChunkSize == 0 {
		h.ChunkSize = image.DefaultChunkSize
	}
	if h.Codec == image.CodecZstd {
		h.Level = uint8(o.Level)
		if h.Level == 0 {
			h.Level = 3
		}
		sub := o.ZstdFrame
		if sub == 0 {
			sub = image.DefaultSubFrameSize
		}
		if sub > 0 && uint32(sub) < h.ChunkSize {
			h.SubFrameSize = uint32(sub)
		}
	}
	h.SplitSize = 0
	h.ToolVersion = o.ToolVersion
	inf := img.Info()
	if !inf.Created.IsZero() {
		h.Created = inf.Created.UTC()
	} else if h.Created.IsZero() {
		h.Created = time.Now().UTC()
	}
	h.Origin = Origin(inf)
	if len(h.Origin) > 4096 {
		h.Origin = h.Origin[:4096]
	}
	h.SysExtents = append([]image.Extent(nil), src.SysExtents...)
	h.Finish()
	if int64(len(img.Bitmap())) != h.BitmapLen {
		return nil, fmt.Errorf("anyimage: bitmap of %d bytes for %d clusters", len(img.Bitmap()), h.ClusterCount)
	}
	return &h, nil
}

// Origin describes an image for the origin record of what it converts to.
func Origin(inf *Info) string {
	s := fmt.Sprintf("%s %s image %s (%s)", inf.Format, inf.Version, strings.Join(inf.Pieces, ", "), inf.Compression)
	if inf.Origin != "" {
		s += " made by " + inf.Origin
	}
	if inf.Checksums != "" {
		s += "; checksums: " + inf.Checksums
	}
	return s
}

// ConvertResult describes a finished conversion.
type ConvertResult struct {
	Header  *image.Header
	Written int64 // bytes of .cbi written
	Digest  [32]byte
}

// Convert writes img as a .cbi image to out (a file from image.Create, or
// any writer): its used bytes, read front to back and checked as the
// source format allows, compressed and checksummed as a backup would be.
// out is not committed or closed.
func Convert(ctx context.Context, img Image, out io.Writer, o ConvertOptions) (*ConvertResult, error) {
	h, err := ConvertHeader(img, o)
	if err != nil {
		return nil, err
	}
	w, err := image.NewWriter(out, h, img.Bitmap(), image.WriterOptions{})
	if err != nil {
		return nil, err
	}
	u, err := img.Used(ctx)
	if err != nil {
		w.Close()
		return nil, err
	}
	defer u.Close()
	var src io.Reader = u
	if o.Progress != nil {
		src = &progressReader{r: u, fn: func(d int64) { o.Progress(d, h.LogicalLen) }}
	}
	n, err := w.ReadFrom(src)
	if err == nil && n != h.LogicalLen {
		err = fmt.Errorf("%w: the image gave %d bytes of data, its header announces %d", image.ErrFormat, n, h.LogicalLen)
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write image: %w", err)
	}
	return &ConvertResult{Header: h, Written: w.Written(), Digest: w.Digest()}, nil
}

type progressReader struct {
	r    io.Reader
	done int64
	fn   func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.fn(p.done)
	return n, err
}
