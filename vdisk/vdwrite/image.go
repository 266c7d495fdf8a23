package vdwrite

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"unicode/utf16"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// defaultStart is where a partition imaged without its disk is placed.
const defaultStart = 1 << 20

// FromImage returns the whole disk around the partition an image holds:
// a fresh MBR (a GPT when the image came from a GPT disk) with the one
// partition at the offset it had (1 MiB when the image was made from a
// bare partition), the partition's bytes as a restore writes them, and
// the boot records' hidden sectors set to the partition's start. The MBR
// (GPT: the protective MBR) gets the boot code of the disk the image was
// made from, when the image recorded it (Header.BootCode).
func FromImage(r *image.Reader) (*Source, error) { return FromImages(r) }

// FromImages is FromImage for the images of several partitions of one
// disk: each at the offset it had, in one table (at most four in an MBR).
func FromImages(rs ...*image.Reader) (*Source, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("vdwrite: no image")
	}
	h0 := rs[0].Header
	ss := int64(h0.SectorSize)
	if ss != 512 && ss != 4096 {
		return nil, fmt.Errorf("vdwrite: sector size %d", ss)
	}
	gpt := h0.Scheme == 2
	entrySectors := int64(128*128) / ss
	d := &imageDisk{}
	var end int64
	for i, r := range rs {
		h := r.Header
		p := part{r: r, start: h.PartStart, length: h.PartLength}
		if p.start == 0 {
			if len(rs) > 1 {
				return nil, fmt.Errorf("vdwrite: image %d was made from a bare partition: its place on a disk is unknown", i+1)
			}
			p.start = defaultStart
		}
		switch {
		case int64(h.SectorSize) != ss:
			return nil, fmt.Errorf("vdwrite: the images have different sector sizes")
		case (h.Scheme == 2) != gpt:
			return nil, fmt.Errorf("vdwrite: the images come from MBR and GPT disks")
		case p.start%ss != 0:
			return nil, fmt.Errorf("vdwrite: partition start %d is not a multiple of the %d-byte sector", p.start, ss)
		}
		for _, q := range d.parts {
			if p.start < q.start+q.length && q.start < p.start+p.length {
				return nil, fmt.Errorf("vdwrite: the partitions at bytes %d and %d overlap", q.start, p.start)
			}
		}
		if err := p.hidden(h, ss); err != nil {
			return nil, err
		}
		d.parts = append(d.parts, p)
		end = max(end, p.start+p.length)
	}
	sort.Slice(d.parts, func(i, j int) bool { return d.parts[i].start < d.parts[j].start })
	if gpt {
		end += (1 + entrySectors) * ss
	}
	d.size = (end + defaultStart - 1) / defaultStart * defaultStart
	var err error
	if gpt {
		err = d.gpt(ss, entrySectors)
	} else {
		err = d.mbr(ss)
	}
	if err != nil {
		return nil, err
	}
	src := &Source{ReaderAt: d, Size: d.size}
	src.Extents = append(src.Extents, Extent{0, int64(len(d.head))})
	for _, p := range d.parts {
		h := p.r.Header
		for _, e := range h.SysExtents {
			src.Extents = append(src.Extents, Extent{p.start + e.Offset, e.Length})
		}
		cs := int64(h.ClusterSize)
		bm := p.r.Bitmap
		for c := uint64(0); c < h.BitmapBits; {
			if c%8 == 0 && c+8 <= h.BitmapBits && bm[c/8] == 0 {
				c += 8
				continue
			}
			if bm[c/8]&(1<<(c%8)) == 0 {
				c++
				continue
			}
			e := c
			for e < h.BitmapBits && bm[e/8]&(1<<(e%8)) != 0 {
				e++
			}
			src.Extents = append(src.Extents, Extent{p.start + h.ClusterOrigin + int64(c)*cs, int64(e-c) * cs})
			c = e
		}
	}
	if d.tail != nil {
		src.Extents = append(src.Extents, Extent{d.size - int64(len(d.tail)), int64(len(d.tail))})
	}
	sort.SliceStable(src.Extents, func(i, j int) bool { return src.Extents[i].Off < src.Extents[j].Off })
	return src, nil
}

// imageDisk is the disk: head (the table) at 0, the partitions, tail (a
// GPT's backup) at the end, zeros elsewhere.
type imageDisk struct {
	parts      []part
	size       int64
	head, tail []byte
}

// part is one partition: an image's bytes at start, with patches over its
// boot records (at partition offsets).
type part struct {
	r             *image.Reader
	start, length int64
	patches       []patch
}

type patch struct {
	off  int64
	data []byte
}

func (d *imageDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= d.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > d.size-off {
		p, eof = p[:d.size-off], io.EOF
	}
	clear(p)
	overlay := func(b []byte, at int64) {
		lo, hi := max(off, at), min(off+int64(len(p)), at+int64(len(b)))
		if lo < hi {
			copy(p[lo-off:hi-off], b[lo-at:hi-at])
		}
	}
	overlay(d.head, 0)
	if d.tail != nil {
		overlay(d.tail, d.size-int64(len(d.tail)))
	}
	for _, pt := range d.parts {
		lo, hi := max(off, pt.start), min(off+int64(len(p)), pt.start+pt.length)
		if lo >= hi {
			continue
		}
		if _, err := pt.r.ReadAt(p[lo-off:hi-off], lo-pt.start); err != nil && err != io.EOF {
			return 0, err
		}
		for _, x := range pt.patches {
			overlay(x.data, pt.start+x.off)
		}
	}
	return len(p), eof
}

// hidden sets the "hidden sectors" of the boot sector and its backups
// (NTFS: the sector after the volume; FAT32: the backup boot sector) to
// the partition's start, as a restore to that place does.
func (d *part) hidden(h *image.Header, ss int64) error {
	t := volume.Type(h.FSType)
	hs := d.start / ss
	if t == 0 || uint64(hs) == h.HiddenSectors || hs > 0xFFFFFFFF {
		return nil
	}
	offs := []int64{0}
	boot := make([]byte, ss)
	if _, err := d.r.ReadAt(boot, 0); err != nil && err != io.EOF {
		return err
	}
	switch t {
	case volume.NTFS:
		if h.FSSize >= 2*ss {
			offs = append(offs, h.FSSize-ss)
		}
	case volume.FAT32:
		if bk := int64(binary.LittleEndian.Uint16(boot[50:])); bk > 0 && bk != 0xffff {
			offs = append(offs, bk*ss)
		}
	}
	for _, o := range offs {
		b := make([]byte, ss)
		if _, err := d.r.ReadAt(b, o); err != nil && err != io.EOF {
			return err
		}
		binary.LittleEndian.PutUint32(b[0x1C:], uint32(hs))
		d.patches = append(d.patches, patch{o, b})
	}
	return nil
}

// mbrType picks the type byte of a partition without a recorded one.
func mbrType(h *image.Header) byte {
	if h.MBRType != 0 {
		return h.MBRType
	}
	switch volume.Type(h.FSType) {
	case volume.FAT12:
		return 0x01
	case volume.FAT16:
		return 0x0E
	case volume.FAT32:
		return 0x0C
	}
	return 0x07
}

// chs encodes an LBA as cylinder/head/sector for 255 heads and 63
// sectors, saturating at 1023/254/63 as everyone does beyond 8 GiB.
func chs(lba int64) [3]byte {
	c, rest := lba/(255*63), lba%(255*63)
	hd, s := rest/63, rest%63+1
	if c > 1023 {
		c, hd, s = 1023, 254, 63
	}
	return [3]byte{byte(hd), byte(s) | byte(c>>8)<<6, byte(c)}
}

func putMBREntry(e []byte, boot, typ byte, lba, n int64) {
	e[0] = boot
	a, b := chs(lba), chs(lba+n-1)
	copy(e[1:4], a[:])
	e[4] = typ
	copy(e[5:8], b[:])
	binary.LittleEndian.PutUint32(e[8:], uint32(lba))
	binary.LittleEndian.PutUint32(e[12:], uint32(n))
}

func (d *imageDisk) mbr(ss int64) error {
	if len(d.parts) > 4 {
		return fmt.Errorf("vdwrite: %d partitions do not fit an MBR's four entries", len(d.parts))
	}
	d.head = make([]byte, ss)
	d.bootCode()
	rand.Read(d.head[440:444]) // disk signature
	for i, p := range d.parts {
		lba, n := p.start/ss, p.length/ss
		if lba+n > 0xFFFFFFFF {
			return fmt.Errorf("vdwrite: a partition ending at sector %d does not fit an MBR", lba+n)
		}
		boot := byte(0)
		if i == 0 {
			boot = 0x80
		}
		putMBREntry(d.head[446+16*i:], boot, mbrType(p.r.Header), lba, n)
	}
	d.head[510], d.head[511] = 0x55, 0xAA
	return nil
}

func (d *imageDisk) gpt(ss, entrySectors int64) error {
	le := binary.LittleEndian
	total := d.size / ss
	last := total - 1
	first, lastUsable := 2+entrySectors, last-1-entrySectors
	entries := make([]byte, entrySectors*ss)
	for i, p := range d.parts {
		h := p.r.Header
		lba, n := p.start/ss, p.length/ss
		if lba < first || lba+n-1 > lastUsable {
			return fmt.Errorf("vdwrite: partition at sector %d does not leave room for the GPT", lba)
		}
		e := entries[128*i:]
		copy(e[0:16], h.GPTType[:])
		copy(e[16:32], h.GPTGUID[:])
		le.PutUint64(e[32:], uint64(lba))
		le.PutUint64(e[40:], uint64(lba+n-1))
		for j, c := range utf16.Encode([]rune(h.PartName)) {
			if j < 36 {
				le.PutUint16(e[56+2*j:], c)
			}
		}
	}
	var diskGUID [16]byte
	rand.Read(diskGUID[:])
	hdr := func(my, alt, entriesLBA int64) []byte {
		b := make([]byte, ss)
		copy(b, "EFI PART")
		le.PutUint32(b[8:], 0x00010000)
		le.PutUint32(b[12:], 92)
		le.PutUint64(b[24:], uint64(my))
		le.PutUint64(b[32:], uint64(alt))
		le.PutUint64(b[40:], uint64(first))
		le.PutUint64(b[48:], uint64(lastUsable))
		copy(b[56:], diskGUID[:])
		le.PutUint64(b[72:], uint64(entriesLBA))
		le.PutUint32(b[80:], 128)
		le.PutUint32(b[84:], 128)
		le.PutUint32(b[88:], crc32.ChecksumIEEE(entries[:128*128]))
		le.PutUint32(b[16:], crc32.ChecksumIEEE(b[:92]))
		return b
	}
	pm := make([]byte, ss)
	putMBREntry(pm[446:], 0, 0xEE, 1, min(total-1, 0xFFFFFFFF))
	pm[510], pm[511] = 0x55, 0xAA
	d.head = append(append(pm, hdr(1, last, 2)...), entries...)
	d.bootCode()
	d.tail = append(append([]byte(nil), entries...), hdr(last, 1, last-entrySectors)...)
	return nil
}

// bootCode puts the first recorded boot code into the first sector.
func (d *imageDisk) bootCode() {
	for _, p := range d.parts {
		if c := p.r.Header.BootCode; len(c) == image.BootCodeLen {
			copy(d.head, c)
			return
		}
	}
}
