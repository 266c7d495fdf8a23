// Package vdwrite writes whole virtual disks — raw (sparse), qcow2
// (version 3), VHDX (dynamic) and VMDK (monolithicSparse) — from a Source:
// a disk's bytes and the ranges of it that hold data. Only those ranges
// become allocated blocks; everything else reads as zeros. FromImage makes
// the Source of a .cbi image: a fresh partition table around the
// partition at its original offset, the boot records' hidden sectors set
// to that offset. The layouts follow the same specifications the readers
// in vdisk cite; each writer's output is read back by qemu-img in tests.
package vdwrite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/image"
)

// Extent is a byte range of the disk.
type Extent struct{ Off, Len int64 }

// Source is a whole disk to write: ReadAt over [0, Size) and the extents
// that hold data, ascending and not overlapping.
type Source struct {
	io.ReaderAt
	Size    int64
	Extents []Extent
}

// Format is an output format.
type Format string

// The formats Write knows, by file extension.
const (
	Raw   Format = "raw"
	QCOW2 Format = "qcow2"
	VHDX  Format = "vhdx"
	VMDK  Format = "vmdk"
)

// FormatOf picks the format from a file name's extension (.raw, .img,
// .qcow2, .vhdx, .vmdk).
func FormatOf(name string) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".raw", ".img", ".dd":
		return Raw, nil
	case ".qcow2":
		return QCOW2, nil
	case ".vhdx":
		return VHDX, nil
	case ".vmdk":
		return VMDK, nil
	}
	return "", fmt.Errorf("vdwrite: %s: the extension names no disk format (.raw, .qcow2, .vhdx, .vmdk)", name)
}

// Create writes src to path in format f. It writes path + ".partial" and
// renames it at the end, so no half-written disk carries the name.
func Create(ctx context.Context, path string, f Format, src *Source) error {
	tmp := path + ".partial"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := &writer{ctx: ctx, f: out}
	switch f {
	case Raw:
		err = writeRaw(w, src)
	case QCOW2:
		err = writeQCOW2(w, src)
	case VHDX:
		err = writeVHDX(w, src)
	case VMDK:
		err = writeVMDK(w, src, filepath.Base(path))
	default:
		err = fmt.Errorf("vdwrite: unknown format %q", f)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writer writes at offsets of the output file, checking ctx between
// blocks.
type writer struct {
	ctx context.Context
	f   *os.File
}

func (w *writer) at(p []byte, off int64) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	_, err := w.f.WriteAt(p, off)
	return err
}

// blocks calls fn for every block of bs bytes that an extent touches, in
// ascending order, each once.
func blocks(src *Source, bs int64, fn func(b int64) error) error {
	last := int64(-1)
	for _, e := range src.Extents {
		if e.Len <= 0 {
			continue
		}
		for b := max(e.Off/bs, last+1); b <= (e.Off+e.Len-1)/bs; b++ {
			if err := fn(b); err != nil {
				return err
			}
			last = b
		}
	}
	return nil
}

// readBlock reads block b of bs bytes from src, zero past its end.
func readBlock(src *Source, buf []byte, b int64) error {
	off := b * int64(len(buf))
	n := min(int64(len(buf)), src.Size-off)
	clear(buf[n:])
	k, err := src.ReadAt(buf[:n], off)
	if int64(k) == n {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read disk bytes at %d: %w", off, err)
}

func writeRaw(w *writer, src *Source) error {
	if err := w.f.Truncate(src.Size); err != nil {
		return err
	}
	const bs = 1 << 20
	buf := make([]byte, bs)
	return blocks(src, bs, func(b int64) error {
		if err := readBlock(src, buf, b); err != nil {
			return err
		}
		n := min(int64(bs), src.Size-b*bs)
		if allZero(buf[:n]) {
			return w.ctx.Err()
		}
		return w.at(buf[:n], b*bs)
	})
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ConvertImage writes the .cbi image at imagePath as the virtual disk out,
// its format taken from out's extension (see FormatOf and FromImage).
func ConvertImage(ctx context.Context, imagePath, out string) error {
	f, err := FormatOf(out)
	if err != nil {
		return err
	}
	r, err := image.Open(imagePath, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", imagePath, err)
	}
	defer r.Close()
	src, err := FromImage(r)
	if err != nil {
		return err
	}
	return Create(ctx, out, f, src)
}
