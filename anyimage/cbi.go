package anyimage

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
)

// CBI is a .cbi image as an Image. Reader is the image itself, for code that
// needs more of it than Image says (the restore's chunk path, the digest).
type CBI struct {
	*image.Reader
	info Info
}

var _ Image = (*CBI)(nil)

// NewCBI wraps an opened .cbi image; name is its path, for Info.
func NewCBI(r *image.Reader, name string) *CBI {
	h := r.Header
	c := &CBI{Reader: r}
	c.info = Info{
		Format: "cbi", Version: fmt.Sprint(h.Version), Compression: h.Codec.String(), FSClusterSize: h.ClusterSize,
		Pieces: []string{name}, Origin: strings.TrimSpace(h.ToolVersion + " from " + h.SourceName),
		Checksums: "CRC32C and BLAKE3-256 per chunk, image digest", ImageBytes: r.ImageSize(),
		VerifyBytes: h.LogicalLen, Created: h.Created, Digest: hex.EncodeToString(r.Footer.Digest[:]),
	}
	if h.SplitSize > 0 {
		c.info.Pieces = nil
		for i, left := 1, r.ImageSize(); left > 0; i++ {
			c.info.Pieces = append(c.info.Pieces, image.PartName(name, i))
			left -= h.SplitSize
		}
	}
	return c
}

func (c *CBI) Header() *image.Header { return c.Reader.Header }
func (c *CBI) Bitmap() []byte        { return c.Reader.Bitmap }
func (c *CBI) Info() *Info           { return &c.info }

// Used streams the logical stream chunk by chunk, each checked against the
// table; io.EOF comes after the image digest was checked too.
func (c *CBI) Used(ctx context.Context) (io.ReadCloser, error) {
	if err := c.Reader.CheckDigest(); err != nil {
		return nil, err
	}
	return &chunkReader{ch: c.Reader.Chunks(ctx)}, nil
}

type chunkReader struct {
	ch  *image.Chunks
	cur []byte
	err error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.cur, r.err = r.ch.Next()
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *chunkReader) Close() error { r.ch.Close(); return nil }

// Verify checks every chunk and the digest.
func (c *CBI) Verify(ctx context.Context, progress func(done int64)) (*Report, error) {
	rep, err := c.Reader.Verify(ctx, progress)
	if err != nil {
		return nil, err
	}
	return &Report{Units: rep.Chunks, UnitName: "chunks", Logical: rep.Logical, Checksummed: true, Problems: rep.Problems}, nil
}

func isCBI(head []byte) bool {
	return len(head) >= len(image.Magic) && string(head[:len(image.Magic)]) == image.Magic
}

// openCBIName opens a plain .cbi path through image.Open, which finds the
// volumes of a split image; other names go the content way.
func openCBIName(name string, opts *Options) (Image, bool, error) {
	if _, _, ok := locate.Split(name); ok {
		return nil, false, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, false, nil
	}
	head := make([]byte, len(image.Magic))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !isCBI(head) {
		return nil, false, nil
	}
	r, err := image.Open(name, &image.Options{CacheBytes: opts.CacheBytes})
	if err != nil {
		return nil, true, err
	}
	return NewCBI(r, name), true, nil
}

func openCBI(src io.ReaderAt, size int64, name string, closer io.Closer, opts *Options) (Image, error) {
	r, err := image.NewReaderCloser(src, size, closer, &image.Options{CacheBytes: opts.CacheBytes})
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	if r.Header.SplitSize != 0 {
		r.Close()
		return nil, fmt.Errorf("split images cannot be read from inside a partition; copy its volumes out")
	}
	return NewCBI(r, name), nil
}

// openFile opens a plain path or PARTITION:PATH for reading.
func openFile(name string) (io.ReaderAt, int64, io.Closer, error) {
	if _, _, ok := locate.Split(name); ok {
		f, err := locate.Open(name)
		if err != nil {
			return nil, 0, nil, err
		}
		return f, f.Size, f, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: %w: a directory, and no kind of image cbimg reads claims it", name, image.ErrFormat)
	}
	return f, st.Size(), f, nil
}
