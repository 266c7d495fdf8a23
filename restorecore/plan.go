package restorecore

// Planning a restore: what is written where, which boot records are
// held back, and what is never written.

import (
	"encoding/binary"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// restorePlan is what a restore writes, decided before the first write.
type restorePlan struct {
	h        *image.Header
	bitmap   []byte
	tgt      *disk.Section
	w        *guardWriter   // holds the boot records back, with their new hidden sectors
	hidden   uint64         // Result.HiddenSectors
	fresh    bool           // a new file: zeros need not be written
	skip     int64          // with Resume: logical bytes already on the target
	protect  []image.Extent // sorted; never written: an image inside the target
	zeroFree bool
}

// planRestore decides the boot records to hold back and how they change,
// where the restore resumes, and (through writes and zeros) what goes
// where. An image inside the target becomes protect: extents never written.
func planRestore(opts Options, in *restoreInput, t *restoreTarget) (*restorePlan, error) {
	h, tgt := in.h, t.f
	guards, err := bootGuards(h, in.src)
	if err != nil {
		return nil, err
	}
	p := &restorePlan{h: h, bitmap: in.bitmap, tgt: tgt, zeroFree: opts.ZeroFree}
	p.w = &guardWriter{f: tgt, guards: guards, sectorSize: int64(h.SectorSize)}
	// A partition at another place on its disk: the boot records' "hidden
	// sectors" (the partition's start LBA) must follow it.
	if tgt.Partition.Number > 0 {
		hs := uint64(tgt.Start()) / uint64(h.SectorSize)
		if volume.Type(h.FSType) == volume.ExFAT && len(guards) == 2 && hs != h.HiddenSectors && h.HiddenSectors != 0 {
			// exFAT: a 64-bit offset under the boot checksum (exfat.go).
			p.w.exfatOffset, p.w.setExfatOffset = hs, true
			p.hidden = hs
		} else if hs != h.HiddenSectors && hs <= 0xFFFFFFFF && h.FSType != 0 && volume.Type(h.FSType) != volume.ExFAT {
			p.w.hidden, p.w.setHidden = uint32(hs), true
			p.hidden = hs
		}
	}
	// A new (empty) file reads as zeros wherever nothing is written:
	// zeroing excluded or free clusters there would only allocate blocks.
	p.fresh = tgt.Regular && tgt.Size() == 0
	if in.jr != nil {
		p.skip = in.jr.Done
	}
	if t.ip != nil {
		p.protect = t.ip.protect
	}
	return p, nil
}

// writes calls fn for each extent the image's logical stream fills, in
// stream order: the system extents, then the stored clusters.
func (p *restorePlan) writes(fn func(off, n int64) error) error {
	h := p.h
	for _, e := range h.SysExtents {
		if err := fn(e.Offset, e.Length); err != nil {
			return err
		}
	}
	return p.runs(image.NextRun, fn)
}

// runs calls fn for each run of clusters next finds in the bitmap
// (image.NextRun, image.NextClear), as a partition extent.
func (p *restorePlan) runs(next func([]byte, uint64, uint64) (uint64, uint64, bool), fn func(off, n int64) error) error {
	h := p.h
	cs := int64(h.ClusterSize)
	for c := uint64(0); ; {
		s, e, ok := next(p.bitmap, h.ClusterCount, c)
		if !ok {
			return nil
		}
		if err := fn(h.ClusterOrigin+int64(s)*cs, int64(e-s)*cs); err != nil {
			return err
		}
		c = e
	}
}

// zeros calls fn for each extent to zero: the excluded files' clusters,
// and the free ones with ZeroFree, less the protected extents. On a fresh
// file the extents are whole (nothing is written there anyway).
func (p *restorePlan) zeros(fn func(off, n int64) error) error {
	h := p.h
	cs := int64(h.ClusterSize)
	each := func(off, n int64) error {
		if p.fresh {
			return fn(off, n)
		}
		return around(p.protect, off, n, fn)
	}
	for _, x := range h.Exclusions {
		for _, r := range x.Runs {
			if err := each(h.ClusterOrigin+int64(r.Start)*cs, int64(r.Count)*cs); err != nil {
				return err
			}
		}
	}
	if !p.zeroFree {
		return nil
	}
	return p.runs(image.NextClear, each)
}

// around calls fn for the parts of [off, off+n) outside the sorted
// extents skip.
func around(skip []image.Extent, off, n int64, fn func(off, n int64) error) error {
	end := off + n
	for _, p := range skip {
		if p.Offset+p.Length <= off || p.Offset >= end {
			continue
		}
		if p.Offset > off {
			if err := fn(off, p.Offset-off); err != nil {
				return err
			}
		}
		off = max(off, p.Offset+p.Length)
	}
	if off < end {
		return fn(off, end-off)
	}
	return nil
}

// bootGuards returns the boot-record sectors to hold back: sector 0, and
// the backup boot sector (NTFS: last sector of the volume; FAT32: the
// sector the BPB names). For FAT32 it peeks at the boot sector, which is the
// start of the first system extent.
func bootGuards(h *image.Header, in source) ([]image.Extent, error) {
	ss := int64(h.SectorSize)
	g := []image.Extent{{Offset: 0, Length: ss}}
	switch volume.Type(h.FSType) {
	case volume.NTFS:
		if h.FSSize >= 2*ss {
			g = append(g, image.Extent{Offset: h.FSSize - ss, Length: ss})
		}
	case volume.ExFAT:
		// Both boot regions whole: the checksum sector must never pair
		// with a boot sector it does not sum.
		if r := exfatBootRegion(ss); h.FSSize >= 2*r {
			g = []image.Extent{{Offset: 0, Length: r}, {Offset: r, Length: r}}
		}
	case volume.FAT32:
		if len(h.SysExtents) > 0 && h.SysExtents[0].Offset == 0 && h.SysExtents[0].Length >= 512 {
			b, err := in.peek(512)
			if err != nil {
				return nil, err
			}
			if bk := int64(binary.LittleEndian.Uint16(b[50:52])); bk > 0 && bk != 0xffff && bk*ss < h.SysExtents[0].Length {
				g = append(g, image.Extent{Offset: bk * ss, Length: ss})
			}
		}
	}
	return g, nil
}
