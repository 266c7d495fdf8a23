package backupcore

// An image stored inside the partition it backs up. Writing the image
// through the file system would change the file system while it is being
// imaged. Instead the image file is created first, at an upper bound of the
// image's size, through a file-system driver (the user's FUSE mount, a
// temporary ntfs-3g mount, or mtools), and flushed; then the volume is read
// raw, the file's clusters are found in the raw metadata and left out of
// the image (exclusion "this image"), and the image bytes are written
// straight into those clusters through the device. No file-system metadata
// changes while the image is taken, and a restore in place never has to
// write the image's own clusters. The file keeps its allocated size: the
// image is followed by zeros and a copy of its footer (FORMAT.md, "Padded
// files").

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
)

// InPlaceRule is the exclusion reason of an image's own file when the
// image is stored inside the partition it backs up.
const InPlaceRule = locate.SelfRule

// ErrInPlaceUnsafe means an image inside its own source partition cannot
// be made safely here; nothing was written.
var ErrInPlaceUnsafe = errors.New("backupcore: in-place image refused")

// How the image file is created.
const (
	viaUserMount = iota // the user's read-write FUSE mount of the source
	viaNTFS3G           // a temporary ntfs-3g mount of the unmounted source
	viaMtools           // mcopy into the unmounted FAT source
	viaExFATFuse        // a temporary exfat-fuse mount of the unmounted exFAT source
)

// inPlace is the image file inside the source and the writer that puts the
// image bytes into its clusters.
type inPlace struct {
	how       int
	volPath   string // the file's path inside the file system
	mountPath string // with viaUserMount: its path through the mount
	size      int64  // the file's size: the bound the image must fit
	devSpec   string // what the driver and the raw writes use
	dev       *disk.Section
	runs      []volume.Run
	ext       []volume.Extent
	fp        [32]byte // metadata fingerprint right after the file was made
	warn      func(string, ...any)
	zeroPad   bool   // the clusters hold old bytes (Windows SetFileValidData): commit zeros the padding
	winPath   string // Windows: the file's path through the file system

	buf  []byte
	off  int64 // image bytes accepted so far
	tail []byte
	err  error
	done bool
}

// clustersFor is how many clusters n bytes occupy.
func clustersFor(n int64, cs int64) int64 { return (n + cs - 1) / cs }

// maxImageLen is an upper bound of the length of an image of logical bytes
// with a header of hdrLen bytes: every chunk stored raw (a chunk that does
// not shrink is stored raw), its frame header and table entry, the table,
// and the footer.
func maxImageLen(hdrLen, bitmapLen, logical int64, chunkSize uint32) int64 {
	chunks := (logical + int64(chunkSize) - 1) / int64(chunkSize)
	blockSums := logical/image.BlockSize*4 + chunks*4 // raw chunks' block checksums
	return hdrLen + bitmapLen + 4 + logical + blockSums + chunks*64 + 12 + chunks*56 + image.FooterLen
}

// metaSlack is the allowance in clusters for metadata the file system
// allocates when the image file is created (an MFT record or directory
// cluster, MFT growth).
func metaSlack(cs int64) int64 { return clustersFor(8<<20, cs) + 16 }

// walkDamage walks the whole volume tolerantly and returns the damage met
// (the walk for exclusions may be skipped or stop at none).
func walkDamage(ctx context.Context, vol *volume.Volume) []volume.Damage {
	var out []volume.Damage
	err := vol.WalkTolerant(ctx, func(volume.File) error { return nil }, func(d volume.Damage) { out = append(out, d) })
	if err != nil {
		out = append(out, volume.Damage{Kind: volume.DamageDir, What: "file walk", Offset: -1, Msg: err.Error()})
	}
	return out
}

// plan computes the file's size from the volume before anything is
// written, and refuses when the free space is short.
func (ip *inPlace) plan(ctx context.Context, vol *volume.Volume, src io.ReaderAt, opts *Options) error {
	info := vol.Info
	if info.Type != volume.NTFS && !info.Type.IsFAT() && info.Type != volume.ExFAT {
		return fmt.Errorf("%w: %s file systems are not supported", ErrInPlaceUnsafe, info.Type)
	}
	bitmap, err := vol.Bitmap()
	if err != nil {
		return fmt.Errorf("read allocation bitmap: %w", err)
	}
	usedNow := popcount(bitmap)
	// Damage is reported by the backup itself; here it only sizes the header.
	dmg := &damageLog{warn: func(string, ...any) {}}
	excl, err := findExclusions(ctx, vol, src, bitmap, rules(*opts), !opts.NoDefaultExcludes, dmg)
	if err != nil {
		return err
	}
	// Writing into a damaged file system could spread the damage.
	found := slices.Clone(vol.OpenDamage())
	for _, d := range dmg.list {
		found = append(found, volume.Damage{Kind: d.Kind, Path: d.Path, What: d.What, Offset: d.Offset, Msg: d.Msg})
	}
	if len(rules(*opts)) == 0 && opts.NoDefaultExcludes {
		found = append(found, walkDamage(ctx, vol)...) // findExclusions walked nothing
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: the file system is damaged (%s): store the image on another disk", ErrInPlaceUnsafe, found[0])
	}
	cs := int64(info.ClusterSize)
	var sys int64
	for _, e := range vol.SystemExtents() {
		sys += e.Length
	}
	// Header: fixed part, strings, system extents, exclusions, and room
	// for the runs of this image's own file.
	hdr := int64(4096 + len(opts.Source) + 16*len(vol.SystemExtents()))
	for _, x := range excl {
		hdr += int64(32 + len(x.Reason) + len(x.Path) + 16*len(x.Runs))
	}
	for _, d := range dmg.list {
		hdr += int64(32 + len(d.Kind) + len(d.Path) + len(d.What) + len(d.Msg))
	}
	hdr += 64 << 10
	storage, err := opts.storage()
	if err != nil {
		return err
	}
	logical := sys + (int64(popcount(bitmap))+metaSlack(cs))*cs
	size := maxImageLen(hdr, int64(len(bitmap)), logical, storage.ChunkSize) + image.FooterLen
	ip.size = clustersFor(size, cs) * cs
	free := int64(info.ClusterCount - usedNow)
	need := ip.size/cs + metaSlack(cs)
	if free < need {
		return fmt.Errorf("%w: the image file needs up to %d bytes (%d clusters with room for metadata), but %s has only %d free clusters (%d bytes)",
			ErrInPlaceUnsafe, ip.size, need, opts.Source, free, free*cs)
	}
	return nil
}

// found checks the file as the raw metadata describes it after it was
// created, and takes its clusters and the metadata fingerprint.
func (ip *inPlace) found(vol *volume.Volume, part *disk.Section) error {
	f, err := locate.Lookup(vol, part, ip.volPath)
	if err != nil {
		return fmt.Errorf("%w: the image file was created but is not found in the raw file system (the driver did not write it out): %v", ErrInPlaceUnsafe, err)
	}
	if f.Size != ip.size {
		return fmt.Errorf("%w: the image file is %d bytes in the raw file system, %d were written (the driver did not write it out)", ErrInPlaceUnsafe, f.Size, ip.size)
	}
	if ip.ext, err = f.Extents(); err != nil {
		return fmt.Errorf("%w: %v", ErrInPlaceUnsafe, err)
	}
	ip.runs = f.Runs
	ip.fp, err = fingerprint(vol, part)
	return err
}

// exclude leaves the image file's clusters out of bitmap and records them.
func (ip *inPlace) exclude(bitmap []byte, excl []image.Exclusion, total uint64) []image.Exclusion {
	x := exclusion(InPlaceRule, ip.volPath, ip.runs)
	out := excl[:0]
	for _, e := range excl {
		if strings.EqualFold(e.Path, ip.volPath) {
			x.Clusters += e.Clusters // already cleared by a glob
			continue
		}
		out = append(out, e)
	}
	x.Clusters += clearRuns(bitmap, x.Runs, total)
	return append(out, x)
}

// start checks that the image of header h fits the file for sure.
func (ip *inPlace) start(h *image.Header) error {
	hb, err := h.Encode()
	if err != nil {
		return err
	}
	if max := maxImageLen(int64(len(hb)), h.BitmapLen, h.LogicalLen, h.ChunkSize) + image.FooterLen; max > ip.size {
		return fmt.Errorf("%w: the image may need %d bytes, the file allocated for it has %d (the file system grew while the file was made)", ErrInPlaceUnsafe, max, ip.size)
	}
	ip.buf = make([]byte, 0, 4<<20)
	return nil
}

// Write takes image bytes in order and writes them into the file's
// clusters.
func (ip *inPlace) Write(p []byte) (int, error) {
	if ip.err != nil {
		return 0, ip.err
	}
	if ip.off+int64(len(p)) > ip.size-image.FooterLen {
		ip.err = fmt.Errorf("backupcore: the image outgrows its file of %d bytes", ip.size)
		return 0, ip.err
	}
	ip.keepTail(p)
	n := len(p)
	for len(p) > 0 {
		k := min(cap(ip.buf)-len(ip.buf), len(p))
		ip.buf = append(ip.buf, p[:k]...)
		p = p[k:]
		if len(ip.buf) == cap(ip.buf) {
			if err := ip.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// keepTail remembers the last FooterLen bytes written: the footer, which
// is copied to the end of the file.
func (ip *inPlace) keepTail(p []byte) {
	if len(p) >= image.FooterLen {
		ip.tail = append(ip.tail[:0], p[len(p)-image.FooterLen:]...)
		return
	}
	ip.tail = append(ip.tail, p...)
	if d := len(ip.tail) - image.FooterLen; d > 0 {
		ip.tail = append(ip.tail[:0], ip.tail[d:]...)
	}
}

func (ip *inPlace) flush() error {
	if err := ip.writeAt(ip.buf, ip.off); err != nil {
		ip.err = err
		return err
	}
	ip.off += int64(len(ip.buf))
	ip.buf = ip.buf[:0]
	return nil
}

// writeAt writes p at file offset off through the file's extents.
func (ip *inPlace) writeAt(p []byte, off int64) error {
	var pos int64
	for _, e := range ip.ext {
		if len(p) == 0 {
			return nil
		}
		if off >= pos+e.Length {
			pos += e.Length
			continue
		}
		in := off - pos
		k := min(int64(len(p)), e.Length-in)
		if _, err := ip.dev.WriteAt(p[:k], e.Offset+in); err != nil {
			return fmt.Errorf("write image into its file at %d: %w", off, err)
		}
		p, off, pos = p[k:], off+k, pos+e.Length
	}
	if len(p) > 0 {
		return fmt.Errorf("backupcore: write at %d past the image file's %d bytes", off, ip.size)
	}
	return nil
}

// commit finishes the file: the footer copy at its end, a sync, then the
// checks that the file system did not change while the image was made and
// that the image reads back through the file system's own view of the file.
func (ip *inPlace) commit() error {
	if ip.err != nil {
		return ip.err
	}
	if err := ip.flush(); err != nil {
		return err
	}
	if ip.zeroPad {
		z := make([]byte, 1<<20)
		for off := ip.off; off < ip.size-image.FooterLen; off += int64(len(z)) {
			if err := ip.writeAt(z[:min(int64(len(z)), ip.size-image.FooterLen-off)], off); err != nil {
				return err
			}
		}
	}
	if ip.off < ip.size {
		if len(ip.tail) != image.FooterLen {
			return errors.New("backupcore: image ended without a footer")
		}
		if err := ip.writeAt(ip.tail, ip.size-image.FooterLen); err != nil {
			return err
		}
	}
	if err := ip.dev.Sync(); err != nil {
		return err
	}
	vol, err := volume.Open(ip.dev, ip.dev.Size())
	if err != nil {
		return fmt.Errorf("reopen the source after the backup: %w", err)
	}
	fp, err := fingerprint(vol, ip.dev)
	if err != nil {
		return err
	}
	if fp != ip.fp {
		return fmt.Errorf("%w: the file system changed while the image was being made (something wrote to it); the image is discarded", ErrInPlaceUnsafe)
	}
	f, err := locate.Lookup(vol, ip.dev, ip.volPath)
	if err != nil {
		return err
	}
	r, err := image.NewReader(f, f.Size, nil)
	if err != nil {
		return fmt.Errorf("the image does not read back from its file: %w", err)
	}
	if r.ImageSize() != ip.off {
		return fmt.Errorf("backupcore: the image reads back as %d bytes, %d were written", r.ImageSize(), ip.off)
	}
	ip.dropFileCache()
	ip.done = true
	return nil
}

// invalidate zeros the start and the end of the file, so that what is left
// of an unfinished image is never taken for one.
func (ip *inPlace) invalidate() {
	if ip.ext == nil {
		return
	}
	z := make([]byte, min(ip.size, 1<<20))
	ip.writeAt(z, 0)
	ip.writeAt(z[:image.FooterLen], ip.size-image.FooterLen)
	ip.dev.Sync()
}

// fingerprint hashes the file system's metadata: the allocation bitmap,
// the system areas, and the MFT (NTFS) or every directory (FAT). Equal
// fingerprints before and after the backup mean nothing was created,
// deleted, grown, renamed or touched meanwhile.
func fingerprint(vol *volume.Volume, r io.ReaderAt) ([32]byte, error) {
	h := sha256.New()
	var sum [32]byte
	bm, err := vol.Bitmap()
	if err != nil {
		return sum, err
	}
	h.Write(bm)
	copyRange := func(rd io.ReaderAt, off, n int64) error {
		_, err := io.Copy(h, io.NewSectionReader(rd, off, n))
		return err
	}
	for _, e := range vol.SystemExtents() {
		if err := copyRange(r, e.Offset, e.Length); err != nil {
			return sum, fmt.Errorf("fingerprint: %w", err)
		}
	}
	switch {
	case vol.NTFS() != nil:
		mft, err := vol.NTFS().Open("/$MFT")
		if err != nil {
			return sum, fmt.Errorf("fingerprint: %w", err)
		}
		if err := copyRange(mft, 0, mft.Size()); err != nil {
			return sum, fmt.Errorf("fingerprint: $MFT: %w", err)
		}
	default:
		cs := int64(vol.Info.ClusterSize)
		err := vol.Walk(context.Background(), func(f volume.File) error {
			fmt.Fprintf(h, "%s\x00%d\x00%v\x00", f.Path, f.Size, f.Runs)
			if !f.Dir {
				return nil
			}
			for _, run := range f.Runs {
				if err := copyRange(r, vol.Info.ClusterOffset(run.Start), int64(run.Count)*cs); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return sum, fmt.Errorf("fingerprint: %w", err)
		}
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// splitVolPath returns the directory and base name of a volume path.
func splitVolPath(p string) (string, string) {
	p = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	return path.Dir(p), path.Base(p)
}

// dirExists reports whether dir is a directory of vol.
func dirExists(vol *volume.Volume, dir string) bool {
	switch {
	case vol.NTFS() != nil:
		e, err := vol.NTFS().Stat(dir)
		return err == nil && e.IsDir()
	case vol.FAT() != nil:
		e, err := vol.FAT().Stat(dir)
		return err == nil && e.IsDir()
	case vol.ExFAT() != nil:
		e, err := vol.ExFAT().Stat(dir)
		return err == nil && e.IsDir()
	}
	return false
}

// fileExists reports whether p names anything in vol.
func fileExists(vol *volume.Volume, p string) bool {
	switch {
	case vol.NTFS() != nil:
		_, err := vol.NTFS().Stat(p)
		return err == nil
	case vol.FAT() != nil:
		_, err := vol.FAT().Stat(p)
		return err == nil
	case vol.ExFAT() != nil:
		_, err := vol.ExFAT().Stat(p)
		return err == nil
	}
	return false
}
