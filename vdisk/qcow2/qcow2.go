// Package qcow2 reads qemu's qcow2 disks, versions 2 and 3: standard,
// all-zero and compressed clusters (deflate, or zstd when the header says
// so) and backing files; refcounts and snapshots are not read. The layout
// is in struct.go, after qemu's docs/interop/qcow2.txt.
package qcow2

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cbimg/cbimg/vdisk/internal/vdio"
	"github.com/klauspost/compress/zstd"
)

// Disk is an open qcow2 disk.
type Disk struct {
	f       *vdio.File
	h       header
	cs      int64 // cluster size
	l1      []uint64
	l2      *vdio.Cache
	plain   *vdio.Cache // decompressed clusters
	backing vdio.Disk
	Backing string // the backing file's path, if any
}

// Detect reports whether b (the file's first bytes) starts a qcow2 disk.
func Detect(head []byte) bool { return len(head) >= 4 && string(head[:4]) == magic }

// Open opens the qcow2 disk at path; open opens its backing file.
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
	b := make([]byte, 112)
	n, _ := f.ReadAt(b, 0)
	if n < 72 || !Detect(b) {
		return nil, vdio.Errf(name, 0, "not a qcow2 header")
	}
	h := parseHeader(b)
	switch {
	case h.version != 2 && h.version != 3:
		return nil, vdio.Unsupported(name, "qcow2 version %d", h.version)
	case h.version == 3 && (n < 104 || h.headerLength < 104 || h.headerLength%8 != 0):
		return nil, vdio.Errf(name, 100, "header length %d", h.headerLength)
	case h.clusterBits < minClusterBits || h.clusterBits > maxClusterBits:
		return nil, vdio.Errf(name, 20, "cluster bits %d out of %d-%d", h.clusterBits, minClusterBits, maxClusterBits)
	case h.cryptMethod != 0:
		return nil, vdio.Unsupported(name, "encrypted qcow2 (method %d)", h.cryptMethod)
	case h.size > 1<<56:
		return nil, vdio.Errf(name, 24, "disk size %d is implausible", h.size)
	case h.incompatible&featCorrupt != 0:
		return nil, vdio.Errf(name, 72, "qemu marked this image corrupt")
	case h.incompatible&featExternalData != 0:
		return nil, vdio.Unsupported(name, "an external data file")
	case h.incompatible&featExtendedL2 != 0:
		return nil, vdio.Unsupported(name, "extended L2 entries (subclusters)")
	case h.incompatible&^knownIncompat != 0:
		return nil, vdio.Unsupported(name, "incompatible feature bits %#x", h.incompatible&^knownIncompat)
	}
	if h.incompatible&featCompression == 0 {
		h.compressionType = compressZlib
	}
	if h.compressionType != compressZlib && h.compressionType != compressZstd {
		return nil, vdio.Unsupported(name, "compression type %d", h.compressionType)
	}
	d := &Disk{f: f, h: h, cs: 1 << h.clusterBits, l2: vdio.NewCache(64), plain: vdio.NewCache(64)}
	// One L1 entry covers cs/8 clusters.
	per := d.cs * d.cs / 8
	need := (int64(h.size) + per - 1) / per
	if int64(h.l1Size) < need {
		return nil, vdio.Errf(name, 36, "L1 table of %d entries for %d needed", h.l1Size, need)
	}
	tb, err := f.Table(int64(min(h.l1Offset, 1<<62)), need*8, maxL1, "L1 table")
	if err != nil {
		return nil, err
	}
	d.l1 = make([]uint64, need)
	for i := range d.l1 {
		e := binary.BigEndian.Uint64(tb[8*i:]) & l1OffsetMask
		if e%uint64(d.cs) != 0 || e != 0 && int64(e) > f.Size-d.cs {
			return nil, vdio.Errf(name, int64(h.l1Offset)+8*int64(i), "L1 entry %d points at %d, not a cluster of the file", i, e)
		}
		if e != 0 && e < uint64(d.cs) {
			return nil, vdio.Errf(name, int64(h.l1Offset)+8*int64(i), "L1 entry %d points at the header", i)
		}
		d.l1[i] = e
	}
	if h.backingOffset != 0 {
		if err := d.openBacking(open, depth); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *Disk) openBacking(open vdio.Opener, depth int) error {
	name := d.f.Name()
	if d.h.backingSize == 0 || d.h.backingSize > maxBackingLen {
		return vdio.Errf(name, 16, "backing file name of %d bytes", d.h.backingSize)
	}
	b, err := d.f.Table(int64(min(d.h.backingOffset, 1<<62)), int64(d.h.backingSize), maxBackingLen, "backing file name")
	if err != nil {
		return err
	}
	p := string(b)
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(name), p)
	}
	d.Backing = p
	if depth+1 >= vdio.MaxChain {
		return vdio.Errf(name, int64(d.h.backingOffset), "more than %d backing files in a chain (a loop?)", vdio.MaxChain)
	}
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("%w: backing file %s of %s: %v", vdio.ErrMissing, p, name, err)
	}
	if d.backing, err = open(p, depth+1); err != nil {
		return fmt.Errorf("backing file of %s: %w", name, err)
	}
	return nil
}

// Size is the disk's size in bytes.
func (d *Disk) Size() int64 { return int64(d.h.size) }

// Format names the kind of disk.
func (d *Disk) Format() string { return fmt.Sprintf("qcow2 (version %d)", d.h.version) }

// Close closes the file and its backing files.
func (d *Disk) Close() error {
	if d.backing != nil {
		d.backing.Close()
	}
	return d.f.Close()
}

// ReadAt reads the disk's bytes. Standard clusters that follow each other
// in the file as on the disk are read with one call.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	var runHost int64
	var runAt, runLen, at int
	flush := func() error {
		if runLen == 0 {
			return nil
		}
		err := d.f.ReadFull(p[runAt:runAt+runLen], runHost, "data clusters")
		runLen = 0
		return err
	}
	n, err := vdio.ReadBlocks(p, off, d.Size(), d.cs, func(q []byte, c, in int64) error {
		pos := at
		at += len(q)
		host, err := d.readCluster(q, c, in)
		if err != nil || host < 0 {
			if ferr := flush(); err == nil {
				err = ferr
			}
			return err
		}
		if runLen > 0 && runAt+runLen == pos && runHost+int64(runLen) == host+in {
			runLen += len(q)
			return nil
		}
		if err := flush(); err != nil {
			return err
		}
		runHost, runAt, runLen = host+in, pos, len(q)
		return nil
	})
	if ferr := flush(); ferr != nil && (err == nil || err == io.EOF) {
		return 0, ferr
	}
	return n, err
}

// readCluster fills q (bytes in.. of guest cluster c) unless the cluster
// is a standard one: then it returns its host offset for the caller to
// read, and -1 otherwise.
func (d *Disk) readCluster(q []byte, c, in int64) (int64, error) {
	name := d.f.Name()
	per := d.cs / 8
	l2off := d.l1[c/per]
	var e uint64
	if l2off != 0 {
		t, err := d.table(int64(l2off))
		if err != nil {
			return -1, err
		}
		e = binary.BigEndian.Uint64(t[8*(c%per):])
	}
	switch {
	case e&l2Compressed != 0:
		plain, err := d.decompress(e, int64(l2off)+8*(c%per))
		if err != nil {
			return -1, err
		}
		copy(q, plain[in:])
		return -1, nil
	case d.h.version >= 3 && e&l2AllZero != 0:
		clear(q)
		return -1, nil
	case e&l2OffsetMask == 0:
		return -1, vdio.ReadParent(d.backing, q, c*d.cs+in)
	}
	host := int64(e & l2OffsetMask)
	if host%d.cs != 0 || host < d.cs {
		return -1, vdio.Errf(name, int64(l2off)+8*(c%per), "L2 entry for cluster %d points at %d, not a data cluster", c, host)
	}
	return host, nil
}

// table returns the L2 table at off.
func (d *Disk) table(off int64) ([]byte, error) {
	if t := d.l2.Get(off); t != nil {
		return t, nil
	}
	t := make([]byte, d.cs)
	if err := d.f.ReadFull(t, off, "L2 table"); err != nil {
		return nil, err
	}
	d.l2.Put(off, t)
	return t, nil
}

// decompress returns the cluster a compressed L2 entry describes: bits 0
// to x-1 the host offset, x to 61 the count of 512-byte sectors beyond the
// first, x = 62 - (cluster_bits - 8).
func (d *Disk) decompress(e uint64, entryOff int64) ([]byte, error) {
	name := d.f.Name()
	x := 62 - (d.h.clusterBits - 8)
	host := int64(e & (1<<x - 1))
	sectors := int64((e&(1<<62-1))>>x) + 1
	if p := d.plain.Get(host); p != nil {
		return p, nil
	}
	n := sectors*512 - host%512
	if host+n > d.f.Size {
		n = d.f.Size - host // qemu does not pad the last compressed cluster
	}
	if host < d.cs || n <= 0 || n > 2*d.cs+512 {
		return nil, vdio.Errf(name, entryOff, "compressed cluster at %d of %d bytes is outside the file", host, n)
	}
	src := make([]byte, n)
	if err := d.f.ReadFull(src, host, "compressed cluster"); err != nil {
		return nil, err
	}
	out := make([]byte, d.cs)
	var zr io.Reader
	switch d.h.compressionType {
	case compressZlib:
		zr = flate.NewReader(bytes.NewReader(src))
	default:
		zd, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(2*d.cs)))
		if err != nil {
			return nil, err
		}
		defer zd.Close()
		zr = zd
	}
	// Exactly one cluster: trailing bytes are the sector padding.
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, vdio.Errf(name, host, "compressed cluster does not inflate to %d bytes: %v", d.cs, err)
	}
	d.plain.Put(host, out)
	return out, nil
}
