// Package ewf reads EWF-E01 forensic images (EnCase, FTK Imager,
// ewfacquire): zlib-compressed and stored chunks across segment files
// .E01, .E02, … .E99, .EAA, …; Verify checks the stored MD5. The layout
// is in struct.go.
package ewf

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/adler32"
	"io"
	"sort"
	"strings"

	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

// Disk is an open E01 image.
type Disk struct {
	segs      []*vdio.File
	tables    []table
	size      int64
	chunkSize int64
	chunks    int64
	md5       []byte // stored, nil if none
	cache     *vdio.Cache
}

// table is one table section: the chunks first, first+1, … in segment seg.
type table struct {
	seg     int
	first   int64
	base    int64
	entries []uint32
	sectors [][2]int64 // the segment's sectors sections, to end the last chunk
}

// Detect reports whether b (the file's first bytes) starts an E01 segment.
func Detect(head []byte) bool { return bytes.HasPrefix(head, []byte(signature)) }

// SegmentName returns the name of segment n (1-based) of the set whose
// first segment is first (ending .E01 or .e01).
func SegmentName(first string, n int) string {
	base, ext := first[:len(first)-3], first[len(first)-3:]
	lower := ext[0] >= 'a'
	var s string
	if n < 100 {
		s = fmt.Sprintf("%c%02d", ext[0], n)
	} else {
		k := n - 100
		s = string([]byte{byte('E' + k/676), byte('A' + k/26%26), byte('A' + k%26)})
		if lower {
			s = strings.ToLower(s)
		}
	}
	return base + s
}

// Open opens the image whose first segment is path.
func Open(path string) (*Disk, error) {
	d := &Disk{cache: vdio.NewCache(32)}
	if err := d.load(path); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Disk) load(path string) error {
	if len(path) < 4 || path[len(path)-4] != '.' {
		return vdio.Unsupported(path, "an EWF segment must be named *.E01 to be opened with its followers")
	}
	var vol *volume
	done := false
	for n := 1; !done; n++ {
		if n > maxSegments {
			return vdio.Errf(path, 0, "more than %d segments", maxSegments)
		}
		name := path
		if n > 1 {
			name = SegmentName(path, n)
		}
		f, err := vdio.OpenFile(name)
		if err != nil {
			return fmt.Errorf("segment %d of %s: %w", n, path, err)
		}
		d.segs = append(d.segs, f)
		h := make([]byte, fileHeaderLen)
		if err := f.ReadFull(h, 0, "file header"); err != nil {
			return err
		}
		if !Detect(h) || h[8] != 1 {
			return vdio.Errf(name, 0, "not an EWF segment")
		}
		if got := int(binary.LittleEndian.Uint16(h[9:])); got != n {
			return vdio.Errf(name, 9, "segment number %d where %d was expected", got, n)
		}
		if done, err = d.walk(f, n-1, &vol); err != nil {
			return err
		}
	}
	if vol == nil {
		return vdio.Errf(path, 0, "no volume section")
	}
	cs := int64(vol.sectorsPerChunk) * int64(vol.bytesPerSector)
	if vol.bytesPerSector == 0 || cs == 0 || cs > maxChunkBytes {
		return vdio.Errf(path, 0, "chunks of %d sectors of %d bytes", vol.sectorsPerChunk, vol.bytesPerSector)
	}
	d.chunkSize = cs
	d.size = int64(vol.sectors) * int64(vol.bytesPerSector)
	if vol.sectors > 1<<50 || d.size/int64(vol.bytesPerSector) != int64(vol.sectors) {
		return vdio.Errf(path, 0, "%d sectors is implausible", vol.sectors)
	}
	if want := (d.size + cs - 1) / cs; d.chunks != want {
		return vdio.Errf(path, 0, "%d chunks in the tables, %d needed for %d bytes", d.chunks, want, d.size)
	}
	return nil
}

// walk reads the sections of one segment; it reports whether the segment
// ends the set ("done").
func (d *Disk) walk(f *vdio.File, seg int, vol **volume) (bool, error) {
	name := f.Name()
	var sectors [][2]int64
	b := make([]byte, sectionLen)
	off := int64(fileHeaderLen)
	for i := 0; ; i++ {
		if i >= maxSections {
			return false, vdio.Errf(name, off, "more than %d sections", maxSections)
		}
		if err := f.ReadFull(b, off, "section descriptor"); err != nil {
			return false, err
		}
		s, ok := parseSection(b)
		if !ok {
			return false, vdio.Errf(name, off, "section descriptor checksum")
		}
		switch s.typ {
		case "done":
			return true, nil
		case "next":
			return false, nil
		}
		if s.size < sectionLen || s.size > f.Size-off {
			return false, vdio.Errf(name, off+24, "%s section of %d bytes", s.typ, s.size)
		}
		data := off + sectionLen
		dlen := s.size - sectionLen
		switch s.typ {
		case "volume", "disk", "data":
			if *vol == nil {
				vb := make([]byte, volumeLen)
				if dlen < volumeLen {
					return false, vdio.Unsupported(name, "a %s section of %d bytes (only the EnCase layout is read)", s.typ, dlen)
				}
				if err := f.ReadFull(vb, data, s.typ+" section"); err != nil {
					return false, err
				}
				v, ok := parseVolume(vb)
				if !ok {
					return false, vdio.Errf(name, data+1048, "%s section checksum", s.typ)
				}
				*vol = &v
			}
		case "sectors":
			sectors = append(sectors, [2]int64{data, off + s.size})
		case "table":
			if err := d.readTable(f, seg, data, dlen, sectors); err != nil {
				return false, err
			}
		case "hash", "digest":
			if dlen >= 16 && d.md5 == nil {
				m := make([]byte, 16)
				if err := f.ReadFull(m, data, "MD5"); err != nil {
					return false, err
				}
				if !bytes.Equal(m, make([]byte, 16)) {
					d.md5 = m
				}
			}
		}
		if s.next <= off || s.next > f.Size-sectionLen {
			return false, vdio.Errf(name, off+16, "%s section's next offset %d does not move forward inside the file", s.typ, s.next)
		}
		off = s.next
	}
}

func (d *Disk) readTable(f *vdio.File, seg int, data, dlen int64, sectors [][2]int64) error {
	name := f.Name()
	h := make([]byte, tableHeadLen)
	if dlen < tableHeadLen {
		return vdio.Errf(name, data, "table section of %d bytes", dlen)
	}
	if err := f.ReadFull(h, data, "table header"); err != nil {
		return err
	}
	if adler32.Checksum(h[:20]) != binary.LittleEndian.Uint32(h[20:]) {
		return vdio.Errf(name, data+20, "table header checksum")
	}
	n := int64(binary.LittleEndian.Uint32(h))
	if n > maxEntries || tableHeadLen+4*n > dlen {
		return vdio.Errf(name, data, "table of %d entries in a section of %d bytes", n, dlen)
	}
	eb := make([]byte, 4*n)
	if err := f.ReadFull(eb, data+tableHeadLen, "table entries"); err != nil {
		return err
	}
	if tableHeadLen+4*n+4 <= dlen {
		sum := make([]byte, 4)
		if err := f.ReadFull(sum, data+tableHeadLen+4*n, "table checksum"); err != nil {
			return err
		}
		if adler32.Checksum(eb) != binary.LittleEndian.Uint32(sum) {
			return vdio.Errf(name, data+tableHeadLen+4*n, "table entries checksum")
		}
	}
	t := table{seg: seg, first: d.chunks, base: int64(binary.LittleEndian.Uint64(h[8:])), entries: make([]uint32, n), sectors: sectors}
	if t.base < 0 || t.base > f.Size {
		return vdio.Errf(name, data+8, "table base offset %d", t.base)
	}
	for i := range t.entries {
		t.entries[i] = binary.LittleEndian.Uint32(eb[4*i:])
	}
	d.tables = append(d.tables, t)
	d.chunks += n
	return nil
}

// Size is the media size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Format names the kind of image.
func (d *Disk) Format() string {
	return fmt.Sprintf("EWF (E01, %d segment(s))", len(d.segs))
}

// Close closes every segment.
func (d *Disk) Close() error {
	for _, f := range d.segs {
		f.Close()
	}
	return nil
}

// ReadAt reads the media's bytes.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	return vdio.ReadBlocks(p, off, d.size, d.chunkSize, func(q []byte, c, in int64) error {
		b, err := d.chunk(c)
		if err != nil {
			return err
		}
		copy(q, b[in:])
		return nil
	})
}

// chunk returns chunk c decoded: inflated (and exactly as long as the
// chunk), or stored with its Adler-32 checked.
func (d *Disk) chunk(c int64) ([]byte, error) {
	if b := d.cache.Get(c); b != nil {
		return b, nil
	}
	i := sort.Search(len(d.tables), func(i int) bool { return d.tables[i].first > c }) - 1
	t := &d.tables[i]
	f := d.segs[t.seg]
	name := f.Name()
	k := c - t.first
	e := t.entries[k]
	off := t.base + int64(e&^compressedBit)
	want := min(d.chunkSize, d.size-c*d.chunkSize)
	var end int64 = -1
	if k+1 < int64(len(t.entries)) {
		end = t.base + int64(t.entries[k+1]&^compressedBit)
	} else {
		for _, s := range t.sectors {
			if off >= s[0] && off < s[1] {
				end = s[1]
			}
		}
	}
	if e&compressedBit == 0 {
		end = off + want + 4
	}
	if end <= off || end-off > 2*d.chunkSize+1024 {
		return nil, vdio.Errf(name, off, "chunk %d has no plausible extent (%d to %d)", c, off, end)
	}
	src := make([]byte, end-off)
	if err := f.ReadFull(src, off, fmt.Sprintf("chunk %d", c)); err != nil {
		return nil, err
	}
	out := make([]byte, want)
	if e&compressedBit == 0 {
		copy(out, src)
		if adler32.Checksum(out) != binary.LittleEndian.Uint32(src[want:]) {
			return nil, vdio.Errf(name, off, "chunk %d checksum", c)
		}
	} else {
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, vdio.Errf(name, off, "chunk %d: %v", c, err)
		}
		if _, err := io.ReadFull(zr, out); err != nil {
			return nil, vdio.Errf(name, off, "chunk %d does not inflate to %d bytes: %v", c, want, err)
		}
		var one [1]byte
		if n, err := zr.Read(one[:]); n > 0 || err != io.EOF {
			return nil, vdio.Errf(name, off, "chunk %d inflates past %d bytes or fails its checksum", c, want)
		}
	}
	d.cache.Put(c, out)
	return out, nil
}

// StoredMD5 returns the MD5 the image records for the media, hex, or "".
func (d *Disk) StoredMD5() string {
	if d.md5 == nil {
		return ""
	}
	return hex.EncodeToString(d.md5)
}

// Verify reads every chunk and compares the media's MD5 with the stored
// one. It returns the computed MD5 (hex); a mismatch wraps ErrFormat.
func (d *Disk) Verify(ctx context.Context) (string, error) {
	h := md5.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < d.size; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n := int(min(int64(len(buf)), d.size-off))
		if _, err := d.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return "", err
		}
		h.Write(buf[:n])
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if d.md5 == nil {
		return sum, nil
	}
	if sum != d.StoredMD5() {
		return sum, vdio.Errf(d.segs[0].Name(), 0, "the media's MD5 is %s, the image records %s", sum, d.StoredMD5())
	}
	return sum, nil
}
