package restorecore

// Restoring a partition in place from an image stored inside it
// (PARTITION:PATH naming the image and PARTITION the target). The image's
// file was left out of the image when it was made (exclusion "this image"),
// so the restore has nothing to write there; this file makes sure of it
// before the first write: it reads the file's cluster list from the raw
// metadata once, refuses unless no byte the restore writes lies in those
// clusters and the image records the same clusters for its file (so the
// restored file system lists the file where its bytes are), and keeps the
// zeroing of excluded and free clusters away from them.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
)

// ErrInPlaceUnsafe means a restore in place from an image inside the
// target was refused; nothing was written.
var ErrInPlaceUnsafe = errors.New("restorecore: in-place restore refused")

// openImage opens the image by name: a path, or PARTITION:PATH, for which
// it also returns the file. On Windows a path on the target volume is
// read through the target, opened and locked here and returned as tgt
// (inplace_windows.go).
func openImage(name, target string) (r *image.Reader, f *locate.File, tgt *disk.Section, err error) {
	if r, f, tgt, err := openOnTarget(name, target); tgt != nil || err != nil {
		return r, f, tgt, err
	}
	if _, _, ok := locate.Split(name); !ok {
		r, err := image.Open(name, nil)
		return r, nil, nil, err
	}
	if f, err = locate.Open(name); err != nil {
		return nil, nil, nil, err
	}
	if r, err = image.NewReaderCloser(f, f.Size, f, nil); err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, f, nil, nil
}

// inPlace holds the byte ranges of the target the restore must not write.
type inPlace struct {
	f       *locate.File
	protect []image.Extent // sorted, the image file's whole clusters
}

// checkInPlace decides whether the target holds the image being read (the
// same partition, or bytes identical to the image's at its place) and, if
// so, whether the restore can leave the image untouched. It returns nil for
// an image stored elsewhere.
func checkInPlace(f *locate.File, tgt *disk.Section, h *image.Header, bitmap []byte) (*inPlace, error) {
	if f == nil {
		return nil, nil
	}
	same, overlap := devguard.Overlap(f.Part, tgt)
	if !same && f.Plain {
		same = holdsImage(f, tgt)
	}
	if !same {
		if overlap {
			return nil, fmt.Errorf("%w: the target %s overlaps %s, which holds the image, without being that partition", ErrInPlaceUnsafe, tgt.Spec, f.Part.Spec)
		}
		return nil, nil
	}
	if err := devguard.MayWrite(tgt); err != nil {
		return nil, fmt.Errorf("%w: %w: unmount it first", ErrTargetMounted, err)
	}
	if !f.Plain {
		return nil, fmt.Errorf("%w: the image %s is not stored plainly in its clusters (%s), so they cannot be kept apart from the restore: copy the image out of the partition", ErrInPlaceUnsafe, f.Spec, f.Why)
	}
	ip := &inPlace{f: f}
	cs := int64(f.Vol.Info.ClusterSize)
	for _, r := range f.Runs {
		ip.protect = append(ip.protect, image.Extent{Offset: f.Vol.Info.ClusterOffset(r.Start), Length: int64(r.Count) * cs})
	}
	ip.protect = mergeExtents(ip.protect)
	// What the restore writes: the system extents and the stored clusters.
	for _, e := range h.SysExtents {
		if p, ok := ip.hit(e.Offset, e.Length); ok {
			return nil, fmt.Errorf("%w: the image's system area at byte %d would overwrite its own file at byte %d", ErrInPlaceUnsafe, e.Offset, p)
		}
	}
	hcs := int64(h.ClusterSize)
	for _, p := range ip.protect {
		first := max(p.Offset-h.ClusterOrigin, 0) / hcs
		last := (p.Offset + p.Length - 1 - h.ClusterOrigin) / hcs
		for c := uint64(max(first, 0)); last >= 0 && c <= uint64(last) && c < h.ClusterCount; c++ {
			if bitmap[c/8]&(1<<(c%8)) != 0 {
				return nil, fmt.Errorf("%w: the image stores cluster %d, which now belongs to the image file %s: it was not made in place, or the file moved since", ErrInPlaceUnsafe, c, f.Spec)
			}
		}
	}
	// The restored file system must list the file where its bytes are.
	var rec []image.Extent
	for _, x := range h.Exclusions {
		if x.Reason == locate.SelfRule && strings.EqualFold(x.Path, f.Path) {
			for _, r := range x.Runs {
				rec = append(rec, image.Extent{Offset: h.ClusterOrigin + int64(r.Start)*hcs, Length: int64(r.Count) * hcs})
			}
		}
	}
	if !equalExtents(mergeExtents(rec), ip.protect) {
		return nil, fmt.Errorf("%w: %s was not made in place there, or the file has moved since the backup: the restored file system would not list it where its bytes are. Copy the image out of the partition and restore from the copy", ErrInPlaceUnsafe, f.Spec)
	}
	return ip, nil
}

// holdsImage reports whether the target shows the image file's first bytes
// where the file's first cluster is: then it is the same storage under
// another name (or a copy, where keeping those clusters is harmless).
func holdsImage(f *locate.File, tgt *disk.Section) bool {
	if len(f.Runs) == 0 {
		return false
	}
	n := min(int64(4096), f.Size)
	a, b := make([]byte, n), make([]byte, n)
	if _, err := f.ReadAt(a, 0); err != nil && err != io.EOF {
		return false
	}
	if k, _ := tgt.ReadAt(b, f.Vol.Info.ClusterOffset(f.Runs[0].Start)); int64(k) != n {
		return false
	}
	return bytes.Equal(a, b)
}

// hit returns the first protected byte in [off, off+n).
func (ip *inPlace) hit(off, n int64) (int64, bool) {
	for _, p := range ip.protect {
		if s, e := max(off, p.Offset), min(off+n, p.Offset+p.Length); s < e {
			return s, true
		}
	}
	return 0, false
}

// after checks that the image file is where it was and still reads as the
// image, through the restored file system's own metadata.
func (ip *inPlace) after(tgt *disk.Section) error {
	if ip == nil {
		return nil
	}
	vol, err := volume.Open(tgt, tgt.Size())
	if err != nil {
		return err
	}
	f, err := locate.Lookup(vol, tgt, ip.f.Path)
	if err != nil {
		return err
	}
	var got []image.Extent
	cs := int64(vol.Info.ClusterSize)
	for _, r := range f.Runs {
		got = append(got, image.Extent{Offset: vol.Info.ClusterOffset(r.Start), Length: int64(r.Count) * cs})
	}
	if !equalExtents(mergeExtents(got), ip.protect) {
		return fmt.Errorf("the restored file system lists %s in other clusters than those holding the image", ip.f.Path)
	}
	if _, err := image.NewReader(f, f.Size, nil); err != nil {
		return fmt.Errorf("the image %s does not read back after the restore: %w", ip.f.Path, err)
	}
	return nil
}

func mergeExtents(in []image.Extent) []image.Extent {
	out := append([]image.Extent(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	merged := out[:0]
	for _, e := range out {
		if n := len(merged); n > 0 && merged[n-1].Offset+merged[n-1].Length >= e.Offset {
			merged[n-1].Length = max(merged[n-1].Length, e.Offset+e.Length-merged[n-1].Offset)
			continue
		}
		merged = append(merged, e)
	}
	return merged
}

func equalExtents(a, b []image.Extent) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
