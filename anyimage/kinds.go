package anyimage

import (
	"context"
	"fmt"
	"github.com/cbimg/cbimg/image"
	"io"

	"github.com/cbimg/cbimg/foreign/ntfsclone"
	"github.com/cbimg/cbimg/foreign/partclone"
)

func init() {
	Register(Kind{Name: "cbi", OpenName: openCBIName, Probe: isCBI, Open: openCBI})
	Register(Kind{Name: "partclone", Probe: partclone.Probe, Open: OpenPartclone})
	Register(Kind{Name: "ntfsclone", Probe: ntfsclone.Probe, Open: OpenNTFSClone})
}

// OpenPartclone opens a partclone image (version 0001 or 0002) of size
// bytes from src: a file, or a stream decompressed by another kind (which
// then sets Info().Compression and Pieces).
func OpenPartclone(src io.ReaderAt, size int64, name string, closer io.Closer, opts *Options) (Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	r, err := partclone.NewReader(src, size, &partclone.Options{CacheBytes: opts.CacheBytes})
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	h := r.Header
	bs := int64(h.BlockSize)
	origin := "partclone"
	if h.PtcVersion != "" {
		origin += " " + h.PtcVersion
	}
	info := Info{
		Format: "partclone", Version: fmt.Sprintf("%04d", h.Version), FSName: h.FS, Compression: "none",
		Origin: origin, Checksums: h.Checksums(), VerifyBytes: r.VerifyBytes(),
	}
	verify := func(ctx context.Context, progress func(int64)) (*Report, error) {
		res, err := r.Verify(ctx, progress)
		if err != nil {
			return nil, err
		}
		return &Report{Units: int(res.Groups), UnitName: "checksums", Logical: res.Blocks * bs,
			Checksummed: h.CsumMode != partclone.CsumNone, Problems: res.Problems}, nil
	}
	img, err := NewGrid(r, GridSpec{Name: name, BlockSize: h.BlockSize, Blocks: h.TotalBlocks, UsedBlocks: h.UsedBlocks,
		Verify: verify, Info: info, Closer: closer})
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	return img, nil
}

// OpenNTFSClone opens an image in ntfsclone's special format, indexing it
// in one pass (Options.Progress reports it as phase "index").
func OpenNTFSClone(src io.ReaderAt, size int64, name string, closer io.Closer, opts *Options) (Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	var no ntfsclone.Options
	if opts.Progress != nil {
		no.Progress = func(d, t int64) { opts.Progress("index", d, t) }
	}
	r, err := ntfsclone.NewReader(context.Background(), src, size, &no)
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	h := r.Header
	cs := int64(h.ClusterSize)
	info := Info{
		Format: "ntfsclone", Version: h.Version(), FSName: "NTFS", Compression: "none", Origin: "ntfsclone",
		Checksums:   "none (the format has none: verify checks the record structure and that the image ends where it should)",
		VerifyBytes: size, CheckedAtOpen: true,
	}
	var stored []image.Extent
	if t := h.TailLen(); t > 0 {
		stored = append(stored, image.Extent{Offset: h.Clusters * cs, Length: t})
	}
	verify := func(ctx context.Context, progress func(int64)) (*Report, error) {
		n, err := r.Verify(ctx, progress)
		rep := &Report{Units: int(n), UnitName: "clusters", Logical: n * cs}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.Problems = []error{err}
		}
		return rep, nil
	}
	img, err := NewGrid(r, GridSpec{Name: name, BlockSize: h.ClusterSize, Blocks: uint64(h.Clusters), UsedBlocks: uint64(h.InUse),
		Stored: stored, Verify: verify, Info: info, Closer: closer})
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	return img, nil
}
