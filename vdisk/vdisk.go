// Package vdisk opens virtual disks and forensic images as plain disks:
// VHD (fixed, dynamic, differencing), VHDX, qcow2, VMDK (monolithicSparse,
// streamOptimized, descriptor with extents) and EWF (E01). Each reader is
// its own package (vhd, vhdx, qcow2, vmdk, ewf) with its on-disk layout in
// struct.go; Open detects the kind by content and returns an io.ReaderAt
// over the whole disk. All are read-only and strict: every table is bounded
// by the file and a cap before it is allocated, every chain is bounded, and
// anything damaged is an error wrapping ErrFormat.
package vdisk

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cbimg/cbimg/vdisk/ewf"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
	"github.com/cbimg/cbimg/vdisk/qcow2"
	"github.com/cbimg/cbimg/vdisk/vhd"
	"github.com/cbimg/cbimg/vdisk/vhdx"
	"github.com/cbimg/cbimg/vdisk/vmdk"
)

// Errors; test with errors.Is.
var (
	ErrFormat      = vdio.ErrFormat      // damaged
	ErrUnsupported = vdio.ErrUnsupported // a feature not read
	ErrMissing     = vdio.ErrMissing     // a parent, backing file, extent or segment is missing
	// ErrNotVirtual: the file is none of the known kinds (a raw disk).
	ErrNotVirtual = errors.New("vdisk: not a virtual disk")
)

// FormatError is the error for damage, with the file and byte offset.
type FormatError = vdio.FormatError

// Kind is a virtual disk format.
type Kind int

// The kinds Detect tells apart.
const (
	Raw Kind = iota
	VHD
	VHDX
	QCOW2
	VMDK
	EWF
)

func (k Kind) String() string {
	return [...]string{"raw", "VHD", "VHDX", "qcow2", "VMDK", "EWF"}[k]
}

// Disk is an open virtual disk: its bytes from 0 to Size, safe for
// concurrent reads.
type Disk interface {
	io.ReaderAt
	Size() int64
	Close() error
	Format() string // e.g. "VHDX (dynamic)"
}

// Detect tells the kind of the file at path from its first bytes and, for
// VHD, its footer.
func Detect(path string) (Kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return Raw, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Raw, err
	}
	if !st.Mode().IsRegular() {
		return Raw, nil // devices are raw disks
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case qcow2.Detect(head):
		return QCOW2, nil
	case vhdx.Detect(head):
		return VHDX, nil
	case vmdk.Detect(head):
		return VMDK, nil
	case ewf.Detect(head):
		return EWF, nil
	}
	if st.Size() >= 512 {
		tail := make([]byte, 512)
		if _, err := f.ReadAt(tail, st.Size()-512); err == nil && vhd.Detect(tail, st.Size()) {
			return VHD, nil
		}
	}
	return Raw, nil
}

// Open opens the virtual disk at path, detecting its kind; a file of none
// of the kinds gives ErrNotVirtual.
func Open(path string) (Disk, error) {
	d, err := open(path, 0)
	if err != nil {
		return nil, err
	}
	v, ok := d.(Disk)
	if !ok {
		d.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotVirtual, path)
	}
	return v, nil
}

// open opens any disk of a chain; a raw file is a valid backing file.
func open(path string, depth int) (vdio.Disk, error) {
	k, err := Detect(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrMissing, err)
		}
		return nil, err
	}
	var d vdio.Disk
	switch k {
	case VHD:
		d, err = vhd.Open(path, open, depth)
	case VHDX:
		d, err = vhdx.Open(path)
	case QCOW2:
		d, err = qcow2.Open(path, open, depth)
	case VMDK:
		d, err = vmdk.Open(path)
	case EWF:
		d, err = ewf.Open(path)
	default:
		f, err := vdio.OpenFile(path)
		if err != nil {
			return nil, err
		}
		return rawFile{f}, nil
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// rawFile is a raw backing file: a plain file is a disk of its size.
type rawFile struct{ *vdio.File }

func (r rawFile) Size() int64 { return r.File.Size }

// VerifyResult is what Verify found.
type VerifyResult struct {
	Format    string
	Size      int64
	StoredMD5 string // the MD5 an E01 records, hex; "" for other formats
	MD5       string // the MD5 of the disk's bytes, hex
}

// Verify reads the whole virtual disk at path, which checks every table,
// compressed cluster and chunk checksum the format has, and for an E01
// compares the media's MD5 with the stored one (a mismatch wraps
// ErrFormat).
func Verify(ctx context.Context, path string) (*VerifyResult, error) {
	d, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	res := &VerifyResult{Format: d.Format(), Size: d.Size()}
	if e, ok := d.(*ewf.Disk); ok {
		res.StoredMD5 = e.StoredMD5()
		res.MD5, err = e.Verify(ctx)
		return res, err
	}
	h := md5.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < d.Size(); off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := int(min(int64(len(buf)), d.Size()-off))
		if _, err := d.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return nil, err
		}
		h.Write(buf[:n])
	}
	res.MD5 = hex.EncodeToString(h.Sum(nil))
	return res, nil
}
