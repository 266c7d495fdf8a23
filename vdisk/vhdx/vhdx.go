// Package vhdx reads Microsoft VHDX disks, fixed and dynamic. A disk
// whose log holds entries not yet applied (it was not closed cleanly) is
// refused: replaying it means writing, and cbimg never writes to a source;
// attaching it once in Windows (or `qemu-img check -r all`) replays it.
// Differencing VHDX disks are refused too. The layout is in struct.go,
// after [MS-VHDX].
package vhdx

import (
	"encoding/binary"
	"math/bits"

	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

// Disk is an open VHDX.
type Disk struct {
	f         *vdio.File
	size      int64
	blockSize int64
	ratio     int64    // payload blocks per sector bitmap block
	bat       []uint64 // payload entries only
	fixed     bool
}

// Detect reports whether b (the file's first bytes) starts a VHDX.
func Detect(head []byte) bool { return len(head) >= 8 && string(head[:8]) == fileMagic }

// Open opens the VHDX at path.
func Open(path string) (*Disk, error) {
	f, err := vdio.OpenFile(path)
	if err != nil {
		return nil, err
	}
	d, err := load(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func load(f *vdio.File) (*Disk, error) {
	name := f.Name()
	hb := make([]byte, headerLen)
	var h header
	found := false
	for _, off := range []int64{header1Off, header2Off} {
		if err := f.ReadFull(hb, off, "header"); err != nil {
			return nil, err
		}
		if x, ok := parseHeader(hb); ok && (!found || x.sequence > h.sequence) {
			h, found = x, true
		}
	}
	if !found {
		return nil, vdio.Errf(name, header1Off, "neither VHDX header is valid")
	}
	if h.version != 1 {
		return nil, vdio.Unsupported(name, "VHDX version %d", h.version)
	}
	if h.logGUID != [16]byte{} {
		return nil, vdio.Unsupported(name, "the VHDX log holds changes not yet applied (the disk was not closed cleanly); cbimg does not write to a source: attach it once in Windows, or run `qemu-img check -r all` on a copy")
	}
	rb := make([]byte, regionLen)
	var regions []region
	for _, off := range []int64{region1Off, region2Off} {
		if err := f.ReadFull(rb, off, "region table"); err != nil {
			return nil, err
		}
		if rs, ok := parseRegions(rb); ok {
			regions = rs
			break
		}
	}
	if regions == nil {
		return nil, vdio.Errf(name, region1Off, "neither region table is valid")
	}
	var batR, metaR *region
	for i, r := range regions {
		switch r.guid {
		case guidBAT:
			batR = &regions[i]
		case guidMetadata:
			metaR = &regions[i]
		default:
			if r.required {
				return nil, vdio.Unsupported(name, "required region %s", r.guid)
			}
		}
	}
	if batR == nil || metaR == nil {
		return nil, vdio.Errf(name, region1Off, "region table lacks the BAT or the metadata")
	}
	meta, err := f.Table(int64(min(metaR.offset, 1<<62)), int64(metaR.length), 64<<20, "metadata region")
	if err != nil {
		return nil, err
	}
	entries, ok := parseMetaTable(meta)
	if !ok {
		return nil, vdio.Errf(name, int64(metaR.offset), "bad metadata table")
	}
	item := func(g string, n int) []byte {
		for _, e := range entries {
			if e.guid == g && int(e.length) >= n && int64(e.offset)+int64(n) <= int64(len(meta)) {
				return meta[e.offset : int(e.offset)+n]
			}
		}
		return nil
	}
	for _, e := range entries {
		switch e.guid {
		case guidFileParams, guidDiskSize, guidLogical, guidPhysical, guidDiskID:
		case guidParentLoc:
			return nil, vdio.Unsupported(name, "differencing VHDX")
		default:
			if e.required {
				return nil, vdio.Unsupported(name, "required metadata item %s", e.guid)
			}
		}
	}
	fp, sz, ls := item(guidFileParams, 8), item(guidDiskSize, 8), item(guidLogical, 4)
	if fp == nil || sz == nil || ls == nil {
		return nil, vdio.Errf(name, int64(metaR.offset), "metadata lacks the file parameters, disk size or sector size")
	}
	le := binary.LittleEndian
	bs, flags := int64(le.Uint32(fp)), le.Uint32(fp[4:])
	size, lss := int64(le.Uint64(sz)), int64(le.Uint32(ls))
	switch {
	case flags&fileParamHasParent != 0:
		return nil, vdio.Unsupported(name, "differencing VHDX")
	case bs < mib || bs > 256*mib || bits.OnesCount64(uint64(bs)) != 1:
		return nil, vdio.Errf(name, int64(metaR.offset), "block size %d is not a power of two from 1 to 256 MiB", bs)
	case lss != 512 && lss != 4096:
		return nil, vdio.Errf(name, int64(metaR.offset), "logical sector size %d", lss)
	case size <= 0 || size > 64<<40 || size%lss != 0:
		return nil, vdio.Errf(name, int64(metaR.offset), "disk size %d", size)
	}
	d := &Disk{f: f, size: size, blockSize: bs, ratio: (1 << 23) * lss / bs, fixed: flags&1 != 0}
	blocks := (size + bs - 1) / bs
	total := blocks + (blocks-1)/d.ratio
	if total*8 > int64(batR.length) {
		return nil, vdio.Errf(name, int64(batR.offset), "BAT region of %d bytes for %d entries", batR.length, total)
	}
	tb, err := f.Table(int64(min(batR.offset, 1<<62)), total*8, maxBAT, "BAT")
	if err != nil {
		return nil, err
	}
	d.bat = make([]uint64, blocks)
	for i := range d.bat {
		j := int64(i) + int64(i)/d.ratio // skip the interleaved sector bitmap entries
		e := le.Uint64(tb[8*j:])
		switch e & stateMask {
		case payloadNotPresent, payloadUndefined, payloadZero, payloadUnmapped:
		case payloadFullyPresent:
			off := int64(e>>20) * mib
			if off < mib || off > f.Size-bs {
				return nil, vdio.Errf(name, int64(batR.offset)+8*j, "BAT entry %d points at byte %d: its block ends past the file's end (%d)", i, off, f.Size)
			}
		case payloadPartially:
			return nil, vdio.Unsupported(name, "differencing VHDX")
		default:
			return nil, vdio.Errf(name, int64(batR.offset)+8*j, "BAT entry %d has state %d", i, e&stateMask)
		}
		d.bat[i] = e
	}
	return d, nil
}

// Size is the disk's size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Close closes the file.
func (d *Disk) Close() error { return d.f.Close() }

// Format names the kind of disk.
func (d *Disk) Format() string {
	if d.fixed {
		return "VHDX (fixed)"
	}
	return "VHDX (dynamic)"
}

// ReadAt reads the disk's bytes; blocks not present read as zeros.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	return vdio.ReadBlocks(p, off, d.size, d.blockSize, func(q []byte, b, in int64) error {
		e := d.bat[b]
		if e&stateMask != payloadFullyPresent {
			clear(q)
			return nil
		}
		return d.f.ReadFull(q, int64(e>>20)*mib+in, "payload block")
	})
}
