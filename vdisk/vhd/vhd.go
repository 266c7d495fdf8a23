// Package vhd reads Microsoft VHD disks: fixed, dynamic and differencing
// (following the parent through its locators and checking the parent's
// unique id). The layout is in struct.go, after Microsoft's "Virtual Hard
// Disk Image Format Specification".
package vhd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

// Disk is an open VHD.
type Disk struct {
	f         *vdio.File
	ft        footer
	size      int64
	blockSize int64
	bitmapLen int64    // sector bitmap bytes before each block's data
	bat       []uint32 // dynamic and differencing only
	parent    vdio.Disk
	bitmaps   *vdio.Cache
}

// Detect reports whether tail (the last 512 bytes of a file of size
// bytes) is a VHD footer with a valid checksum. A fixed VHD is raw bytes
// and a footer, so a footer whose disk size is not exactly the bytes
// before it is not taken for one: such a file is read raw, footer and
// all, as before it was ever wrapped.
func Detect(tail []byte, size int64) bool {
	f, ok := parseFooter(tail)
	if !ok || checksum(tail[:footerLen], 64) != f.checksum {
		return false
	}
	return f.diskType != typeFixed || int64(f.currentSize) == size-footerLen
}

// Open opens the VHD at path; open opens a differencing disk's parent.
func Open(path string, open vdio.Opener, depth int) (*Disk, error) {
	f, err := vdio.OpenFile(path)
	if err != nil {
		return nil, err
	}
	d, err := load(f, open, depth)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func load(f *vdio.File, open vdio.Opener, depth int) (*Disk, error) {
	name := f.Name()
	if f.Size < footerLen {
		return nil, vdio.Errf(name, 0, "a VHD of %d bytes has no footer", f.Size)
	}
	b := make([]byte, footerLen)
	if err := f.ReadFull(b, f.Size-footerLen, "footer"); err != nil {
		return nil, err
	}
	ft, ok := parseFooter(b)
	if !ok {
		return nil, vdio.Errf(name, f.Size-footerLen, "no VHD footer (cookie %q)", b[:8])
	}
	if c := checksum(b, 64); c != ft.checksum {
		return nil, vdio.Errf(name, f.Size-footerLen+64, "footer checksum %08x, computed %08x", ft.checksum, c)
	}
	if ft.version>>16 != 1 {
		return nil, vdio.Unsupported(name, "VHD version %#x", ft.version)
	}
	if ft.currentSize > 1<<50 {
		return nil, vdio.Errf(name, f.Size-footerLen+48, "disk size %d is implausible", ft.currentSize)
	}
	d := &Disk{f: f, ft: ft, size: int64(ft.currentSize)}
	switch ft.diskType {
	case typeFixed:
		if d.size > f.Size-footerLen {
			return nil, vdio.Errf(name, f.Size, "fixed VHD of %d bytes holds only %d bytes of data", d.size, f.Size-footerLen)
		}
		return d, nil
	case typeDynamic, typeDiff:
	default:
		return nil, vdio.Unsupported(name, "VHD disk type %d", ft.diskType)
	}
	if ft.dataOffset > uint64(f.Size) {
		return nil, vdio.Errf(name, f.Size-footerLen+16, "dynamic header offset %d past the end", ft.dataOffset)
	}
	off := int64(ft.dataOffset)
	hb := make([]byte, dynLen)
	if err := f.ReadFull(hb, off, "dynamic disk header"); err != nil {
		return nil, err
	}
	h, ok := parseDynHeader(hb)
	if !ok {
		return nil, vdio.Errf(name, off, "no dynamic disk header (cookie %q)", hb[:8])
	}
	if c := checksum(hb, 36); c != h.checksum {
		return nil, vdio.Errf(name, off+36, "dynamic header checksum %08x, computed %08x", h.checksum, c)
	}
	if h.version>>16 != 1 {
		return nil, vdio.Unsupported(name, "dynamic header version %#x", h.version)
	}
	bs := int64(h.blockSize)
	if bs < sector || bs > maxBlockSize || bits.OnesCount32(h.blockSize) != 1 {
		return nil, vdio.Errf(name, off+32, "block size %d is not a power of two from 512 to %d", bs, maxBlockSize)
	}
	blocks := (d.size + bs - 1) / bs
	if int64(h.maxTableEntries) < blocks {
		return nil, vdio.Errf(name, off+28, "%d BAT entries for %d blocks", h.maxTableEntries, blocks)
	}
	tb, err := f.Table(int64(min(h.tableOffset, 1<<62)), blocks*4, maxBAT, "block allocation table")
	if err != nil {
		return nil, err
	}
	d.blockSize = bs
	d.bitmapLen = (bs/sector/8 + sector - 1) / sector * sector
	d.bat = make([]uint32, blocks)
	for i := range d.bat {
		e := binary.BigEndian.Uint32(tb[4*i:])
		if e != unallocated {
			if end := int64(e)*sector + d.bitmapLen + bs; end > f.Size {
				return nil, vdio.Errf(name, int64(h.tableOffset)+4*int64(i), "BAT entry %d points at sector %d, its block ends at byte %d past the file's end (%d)", i, e, end, f.Size)
			}
		}
		d.bat[i] = e
	}
	if ft.diskType == typeDiff {
		d.bitmaps = vdio.NewCache(64)
		if d.parent, err = openParent(f, h, open, depth); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// openParent finds the parent through the locators (relative first), then
// checks that its unique id is the one the child recorded.
func openParent(f *vdio.File, h dynHeader, open vdio.Opener, depth int) (vdio.Disk, error) {
	name := f.Name()
	if depth+1 >= vdio.MaxChain {
		return nil, vdio.Errf(name, 0, "more than %d differencing disks in a chain (a loop?)", vdio.MaxChain)
	}
	var tried []string
	add := func(p string) {
		if p == "" {
			return
		}
		// Windows paths: a relative one is relative to the child's folder;
		// an absolute one may not exist here, so its base name is also
		// looked for beside the child.
		p = strings.ReplaceAll(p, `\`, "/")
		if len(p) >= 2 && p[1] == ':' {
			tried = append(tried, p)
			p = filepath.Base(p)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(name), p)
		}
		tried = append(tried, p)
	}
	for _, code := range []string{"W2ru", "W2ku", "MacX"} {
		for _, l := range h.locators {
			if l.code != code || l.length == 0 {
				continue
			}
			if l.length > 32<<10 {
				return nil, vdio.Errf(name, int64(l.offset), "parent locator of %d bytes", l.length)
			}
			b, err := f.Table(int64(min(l.offset, 1<<62)), int64(l.length), 32<<10, "parent locator")
			if err != nil {
				return nil, err
			}
			if code == "MacX" {
				add(strings.TrimPrefix(string(bytes.TrimRight(b, "\x00")), "file://"))
			} else {
				add(utf16String(b, binary.LittleEndian))
			}
		}
	}
	add(h.parentName)
	for _, p := range tried {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		par, err := open(p, depth+1)
		if err != nil {
			return nil, fmt.Errorf("parent of %s: %w", name, err)
		}
		pv, ok := par.(*Disk)
		if !ok || pv.ft.uniqueID != h.parentID {
			par.Close()
			return nil, vdio.Errf(name, 0, "the parent %s is not the disk this differencing disk was made from (unique id %x expected)", p, h.parentID)
		}
		return par, nil
	}
	return nil, fmt.Errorf("%w: parent of %s (%q) not found; looked for %s", vdio.ErrMissing, name, h.parentName, strings.Join(tried, ", "))
}

// Size is the disk's size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Close closes the file and its parents.
func (d *Disk) Close() error {
	if d.parent != nil {
		d.parent.Close()
	}
	return d.f.Close()
}

// Format names the kind of disk.
func (d *Disk) Format() string {
	switch d.ft.diskType {
	case typeFixed:
		return "VHD (fixed)"
	case typeDynamic:
		return "VHD (dynamic)"
	}
	return "VHD (differencing)"
}

// ReadAt reads the disk's bytes.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if d.bat == nil {
		return vdio.ReadBlocks(p, off, d.size, 1<<30, func(q []byte, b, in int64) error {
			return d.f.ReadFull(q, b<<30+in, "data")
		})
	}
	return vdio.ReadBlocks(p, off, d.size, d.blockSize, func(q []byte, b, in int64) error {
		e := d.bat[b]
		if e == unallocated {
			if d.parent != nil {
				return vdio.ReadParent(d.parent, q, b*d.blockSize+in)
			}
			clear(q)
			return nil
		}
		data := int64(e)*sector + d.bitmapLen
		if d.parent == nil {
			return d.f.ReadFull(q, data+in, "data block")
		}
		return d.readDiff(q, b, in, int64(e)*sector, data)
	})
}

// readDiff reads a differencing block: sectors whose bitmap bit is set
// come from this file, the others from the parent.
func (d *Disk) readDiff(q []byte, b, in, bmOff, data int64) error {
	bm := d.bitmaps.Get(bmOff)
	if bm == nil {
		bm = make([]byte, d.bitmapLen)
		if err := d.f.ReadFull(bm, bmOff, "sector bitmap"); err != nil {
			return err
		}
		d.bitmaps.Put(bmOff, bm)
	}
	here := func(s int64) bool { return bm[s/8]&(0x80>>(s%8)) != 0 }
	for len(q) > 0 {
		s := in / sector
		m := min(int64(len(q)), (s+1)*sector-in)
		// extend over sectors with the same source
		for m < int64(len(q)) && here((in+m)/sector) == here(s) {
			m = min(int64(len(q)), m+sector)
		}
		var err error
		if here(s) {
			err = d.f.ReadFull(q[:m], data+in, "data block")
		} else {
			err = vdio.ReadParent(d.parent, q[:m], b*d.blockSize+in)
		}
		if err != nil {
			return err
		}
		q, in = q[m:], in+m
	}
	return nil
}
