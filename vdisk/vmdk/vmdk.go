// Package vmdk reads VMware VMDK disks: monolithicSparse and
// streamOptimized files (a hosted sparse extent with its descriptor
// inside), and a descriptor file naming flat, sparse or zero extents
// (monolithicFlat, twoGbMaxExtent*). Disks with a parent (snapshots) are
// refused. The layout is in struct.go, after VMware's VMDK specification.
package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

// Disk is an open VMDK: its extents end to end.
type Disk struct {
	name       string
	createType string
	extents    []extent
	starts     []int64 // byte offset of each extent in the disk
	size       int64
	pending    []extentLine // from the descriptor, until opened
}

type extent interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// Detect reports whether b (the file's first bytes) starts a sparse
// extent or a descriptor file.
func Detect(head []byte) bool {
	return len(head) >= 4 && string(head[:4]) == sparseMagic ||
		bytes.HasPrefix(head, []byte(descriptorMagic))
}

// Open opens the VMDK at path: a sparse file or a descriptor.
func Open(path string) (*Disk, error) {
	f, err := vdio.OpenFile(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 4)
	if err := f.ReadFull(head, 0, "magic"); err != nil {
		f.Close()
		return nil, err
	}
	if string(head) == sparseMagic {
		s, err := openSparse(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		desc, err := s.descriptor()
		if err != nil {
			f.Close()
			return nil, err
		}
		d := &Disk{name: path, extents: []extent{s}, starts: []int64{0}, size: s.Size()}
		if desc != nil {
			dd, err := parseDescriptor(path, desc)
			if err != nil {
				f.Close()
				return nil, err
			}
			d.createType = dd.createType
		}
		return d, nil
	}
	defer f.Close()
	b, err := f.Table(0, f.Size, maxDescriptor, "descriptor")
	if err != nil {
		return nil, err
	}
	d, err := parseDescriptor(path, b)
	if err != nil {
		return nil, err
	}
	if err := d.openExtents(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// extentLine is one extent of a descriptor.
type extentLine struct {
	access  string
	sectors int64
	kind    string
	file    string
	offset  int64 // sectors, for FLAT
}

func parseDescriptor(name string, b []byte) (*Disk, error) {
	b = bytes.TrimRight(b, "\x00")
	d := &Disk{name: name}
	var lines []extentLine
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(strings.TrimSpace(k), " ") {
			k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.ToLower(k) {
			case "createtype":
				d.createType = v
			case "parentcid":
				if !strings.EqualFold(v, "ffffffff") {
					return nil, vdio.Unsupported(name, "a VMDK with a parent (snapshot delta)")
				}
			}
			continue
		}
		e, err := parseExtent(line)
		if err != nil {
			return nil, vdio.Errf(name, 0, "descriptor line %d: %v", i+1, err)
		}
		if len(lines) >= maxExtents {
			return nil, vdio.Errf(name, 0, "more than %d extents", maxExtents)
		}
		lines = append(lines, e)
	}
	d.pending = lines
	return d, nil
}

// parseExtent reads `RW 2048 FLAT "name" 0`.
func parseExtent(line string) (extentLine, error) {
	var e extentLine
	f := strings.Fields(line)
	if len(f) < 3 {
		return e, fmt.Errorf("not an extent: %q", line)
	}
	e.access, e.kind = f[0], strings.ToUpper(f[2])
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n <= 0 || n > 1<<47 {
		return e, fmt.Errorf("extent size %q", f[1])
	}
	e.sectors = n
	if e.kind == "ZERO" {
		return e, nil
	}
	q1 := strings.IndexByte(line, '"')
	q2 := strings.LastIndexByte(line, '"')
	if q1 < 0 || q2 <= q1 {
		return e, fmt.Errorf("extent without a file name: %q", line)
	}
	e.file = line[q1+1 : q2]
	if rest := strings.Fields(line[q2+1:]); len(rest) > 0 {
		if e.offset, err = strconv.ParseInt(rest[0], 10, 64); err != nil || e.offset < 0 || e.offset > 1<<47 {
			return e, fmt.Errorf("extent offset %q", rest[0])
		}
	}
	return e, nil
}

func (d *Disk) openExtents() error {
	if len(d.pending) == 0 {
		return vdio.Errf(d.name, 0, "descriptor names no extent")
	}
	for _, e := range d.pending {
		if e.access == "NOACCESS" {
			return vdio.Unsupported(d.name, "a NOACCESS extent")
		}
		var x extent
		switch e.kind {
		case "ZERO":
			x = zeroExtent(e.sectors * sector)
		case "FLAT", "VMFS":
			p := extentPath(d.name, e.file)
			f, err := vdio.OpenFile(p)
			if err != nil {
				return fmt.Errorf("extent of %s: %w", d.name, err)
			}
			x = &flatExtent{f: f, off: e.offset * sector, size: e.sectors * sector}
			if e.offset*sector+e.sectors*sector > f.Size {
				f.Close()
				return vdio.Errf(p, f.Size, "flat extent of %d sectors at sector %d runs past the file's end", e.sectors, e.offset)
			}
		case "SPARSE":
			p := extentPath(d.name, e.file)
			f, err := vdio.OpenFile(p)
			if err != nil {
				return fmt.Errorf("extent of %s: %w", d.name, err)
			}
			s, err := openSparse(f)
			if err != nil {
				f.Close()
				return err
			}
			if s.Size() < e.sectors*sector {
				s.Close()
				return vdio.Errf(p, 12, "sparse extent of %d bytes, the descriptor says %d sectors", s.Size(), e.sectors)
			}
			s.size = e.sectors * sector
			x = s
		default:
			return vdio.Unsupported(d.name, "extent type %s", e.kind)
		}
		d.starts = append(d.starts, d.size)
		d.extents = append(d.extents, x)
		d.size += x.Size()
	}
	return nil
}

// extentPath resolves an extent's name beside the descriptor.
func extentPath(desc, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(filepath.Dir(desc), file)
}

// Size is the disk's size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Format names the kind of disk.
func (d *Disk) Format() string {
	if d.createType == "" {
		return "VMDK"
	}
	return "VMDK (" + d.createType + ")"
}

// Close closes every extent.
func (d *Disk) Close() error {
	var first error
	for _, x := range d.extents {
		if err := x.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ReadAt reads the disk's bytes across extents.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vdisk: negative offset %d", off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > d.size-off {
		p, eof = p[:d.size-off], io.EOF
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		i := sort.Search(len(d.starts), func(i int) bool { return d.starts[i] > pos }) - 1
		x := d.extents[i]
		in := pos - d.starts[i]
		m := int(min(int64(len(p)-n), x.Size()-in))
		k, err := x.ReadAt(p[n:n+m], in)
		n += k
		if k < m {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, eof
}

type zeroExtent int64

func (z zeroExtent) ReadAt(p []byte, off int64) (int, error) { clear(p); return len(p), nil }
func (z zeroExtent) Size() int64                             { return int64(z) }
func (z zeroExtent) Close() error                            { return nil }

type flatExtent struct {
	f         *vdio.File
	off, size int64
}

func (x *flatExtent) ReadAt(p []byte, off int64) (int, error) {
	if err := x.f.ReadFull(p, x.off+off, "flat extent"); err != nil {
		return 0, err
	}
	return len(p), nil
}
func (x *flatExtent) Size() int64  { return x.size }
func (x *flatExtent) Close() error { return x.f.Close() }

// sparse is a hosted sparse extent.
type sparse struct {
	f      *vdio.File
	h      sparseHeader
	gs     int64 // grain size in bytes
	gd     []uint32
	size   int64
	tables *vdio.Cache
	grains *vdio.Cache
}

func openSparse(f *vdio.File) (*sparse, error) {
	name := f.Name()
	b := make([]byte, headerLen)
	if err := f.ReadFull(b, 0, "sparse header"); err != nil {
		return nil, err
	}
	h, ok := parseSparseHeader(b)
	if !ok {
		return nil, vdio.Errf(name, 0, "not a VMDK sparse extent")
	}
	if h.version < 1 || h.version > 3 {
		return nil, vdio.Unsupported(name, "sparse extent version %d", h.version)
	}
	if h.gdOffset == gdAtEnd {
		// streamOptimized: the footer (a copy of the header with the real
		// grain directory offset) sits before the end-of-stream marker.
		if f.Size < 3*headerLen {
			return nil, vdio.Errf(name, f.Size, "stream without a footer")
		}
		if err := f.ReadFull(b, f.Size-2*headerLen, "footer"); err != nil {
			return nil, err
		}
		if h, ok = parseSparseHeader(b); !ok || h.gdOffset == gdAtEnd {
			return nil, vdio.Errf(name, f.Size-2*headerLen, "no valid footer")
		}
	}
	s := &sparse{f: f, h: h, tables: vdio.NewCache(64), grains: vdio.NewCache(32)}
	switch {
	case h.grainSize == 0 || h.grainSize > maxGrainSectors || h.grainSize&(h.grainSize-1) != 0:
		return nil, vdio.Errf(name, 20, "grain size of %d sectors", h.grainSize)
	case h.numGTEsPerGT == 0 || h.numGTEsPerGT > maxGTEs:
		return nil, vdio.Errf(name, 44, "%d entries per grain table", h.numGTEsPerGT)
	case h.capacity == 0 || h.capacity > 1<<47:
		return nil, vdio.Errf(name, 12, "capacity of %d sectors", h.capacity)
	case h.flags&flagCompressed != 0 && h.compressAlgo != compressDeflate:
		return nil, vdio.Unsupported(name, "compression algorithm %d", h.compressAlgo)
	}
	s.gs = int64(h.grainSize) * sector
	s.size = int64(h.capacity) * sector
	span := s.gs * int64(h.numGTEsPerGT)
	n := (s.size + span - 1) / span
	gd, err := f.Table(int64(min(h.gdOffset, 1<<50))*sector, n*4, maxGD, "grain directory")
	if err != nil {
		return nil, err
	}
	s.gd = make([]uint32, n)
	for i := range s.gd {
		s.gd[i] = binary.LittleEndian.Uint32(gd[4*i:])
		if end := (int64(s.gd[i]) + 1) * sector; s.gd[i] != 0 && end+int64(h.numGTEsPerGT)*4 > f.Size+sector {
			return nil, vdio.Errf(name, int64(h.gdOffset)*sector+4*int64(i), "grain directory entry %d points past the end of the file", i)
		}
	}
	return s, nil
}

// descriptor returns the embedded descriptor text, if any.
func (s *sparse) descriptor() ([]byte, error) {
	if s.h.descriptorOffset == 0 || s.h.descriptorSize == 0 {
		return nil, nil
	}
	if s.h.descriptorSize > maxDescriptor/sector || s.h.descriptorOffset > 1<<40 {
		return nil, vdio.Errf(s.f.Name(), 28, "embedded descriptor of %d sectors", s.h.descriptorSize)
	}
	return s.f.Table(int64(s.h.descriptorOffset)*sector, int64(s.h.descriptorSize)*sector, maxDescriptor, "embedded descriptor")
}

func (s *sparse) Size() int64  { return s.size }
func (s *sparse) Close() error { return s.f.Close() }

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	return vdio.ReadBlocks(p, off, s.size, s.gs, s.readGrain)
}

func (s *sparse) readGrain(q []byte, g, in int64) error {
	per := int64(s.h.numGTEsPerGT)
	gde := s.gd[g/per]
	if gde == 0 {
		clear(q)
		return nil
	}
	toff := int64(gde) * sector
	t := s.tables.Get(toff)
	if t == nil {
		t = make([]byte, per*4)
		if err := s.f.ReadFull(t, toff, "grain table"); err != nil {
			return err
		}
		s.tables.Put(toff, t)
	}
	gte := int64(binary.LittleEndian.Uint32(t[4*(g%per):]))
	switch {
	case gte == 0, gte == 1 && s.h.flags&flagZeroGrain != 0:
		clear(q)
		return nil
	case s.h.flags&flagCompressed != 0:
		plain, err := s.inflate(g, gte*sector)
		if err != nil {
			return err
		}
		copy(q, plain[in:])
		return nil
	}
	return s.f.ReadFull(q, gte*sector+in, "grain")
}

// inflate decodes the compressed grain behind the marker at off: its LBA
// must be the grain's, and its data must inflate to exactly one grain.
func (s *sparse) inflate(g, off int64) ([]byte, error) {
	if p := s.grains.Get(off); p != nil {
		return p, nil
	}
	name := s.f.Name()
	m := make([]byte, markerLen)
	if err := s.f.ReadFull(m, off, "grain marker"); err != nil {
		return nil, err
	}
	lba, n := binary.LittleEndian.Uint64(m), int64(binary.LittleEndian.Uint32(m[8:]))
	if lba != uint64(g)*s.h.grainSize {
		return nil, vdio.Errf(name, off, "grain marker for sector %d where grain %d (sector %d) was expected", lba, g, g*int64(s.h.grainSize))
	}
	if n <= 0 || n > 2*s.gs+1024 {
		return nil, vdio.Errf(name, off+8, "compressed grain of %d bytes", n)
	}
	src := make([]byte, n)
	if err := s.f.ReadFull(src, off+markerLen, "compressed grain"); err != nil {
		return nil, err
	}
	zr, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, vdio.Errf(name, off+markerLen, "compressed grain: %v", err)
	}
	out := make([]byte, s.gs)
	// The last grain of a disk whose size is not a multiple of the grain
	// size may inflate to less.
	k, err := io.ReadFull(zr, out)
	if err != nil && !(err == io.ErrUnexpectedEOF && (g+1)*s.gs > s.size && int64(k) >= s.size-g*s.gs) {
		return nil, vdio.Errf(name, off+markerLen, "compressed grain does not inflate to %d bytes: %v", s.gs, err)
	}
	var one [1]byte
	if k == len(out) {
		if x, _ := zr.Read(one[:]); x > 0 {
			return nil, vdio.Errf(name, off+markerLen, "compressed grain inflates past %d bytes", s.gs)
		}
	}
	s.grains.Put(off, out)
	return out, nil
}
