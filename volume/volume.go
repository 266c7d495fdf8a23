// Package volume holds cbimg's file-system knowledge: it recognizes NTFS,
// FAT12/16/32 and exFAT from the boot record, reports the parameters a backup needs,
// builds the used-cluster bitmap from the file system's own allocation data,
// names the areas outside the cluster grid that must be copied, and walks the
// files so that backups can leave some of them out. Damage met on a walk
// can be reported instead of ending it (WalkTolerant), and Check lists a
// file system's damage the way fsck.fat -n or chkdsk would (damage.go).
//
// The readers are strict: every short read is an error, every loop is
// bounded, and nothing read off disk sizes an allocation without a cap.
package volume

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cbimg/cbimg/disk"
)

// Type is a file-system type.
type Type uint8

// File-system types. The numeric values are stored in .cbi headers.
const (
	Unknown Type = 0 // also: a sector-by-sector copy with no file-system knowledge
	NTFS    Type = 1
	FAT12   Type = 2
	FAT16   Type = 3
	FAT32   Type = 4
	ExFAT   Type = 5
)

func (t Type) String() string {
	switch t {
	case NTFS:
		return "ntfs"
	case FAT12:
		return "fat12"
	case FAT16:
		return "fat16"
	case FAT32:
		return "fat32"
	case ExFAT:
		return "exfat"
	}
	if t == Unknown {
		return "raw"
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// IsFAT reports whether t is one of the FAT variants.
func (t Type) IsFAT() bool { return t == FAT12 || t == FAT16 || t == FAT32 }

// Errors. Callers test with errors.Is.
var (
	// ErrUnknownFS means the boot record is neither NTFS nor FAT.
	ErrUnknownFS = errors.New("volume: unrecognized file system")
	// ErrCorrupt means an on-disk structure is damaged or inconsistent. It
	// is disk.ErrCorrupt, so that a damaged partition table and a damaged
	// file system are one kind of error.
	ErrCorrupt = disk.ErrCorrupt
	// ErrEncrypted means a BitLocker (or similar) volume whose file system
	// cannot be read without unlocking it.
	ErrEncrypted = errors.New("volume: encrypted volume")
	// ErrUnsupported means a valid feature this reader does not handle.
	ErrUnsupported = errors.New("volume: unsupported file-system feature")
)

// FormatError reports a damaged structure and where it was found.
type FormatError struct {
	What   string // the structure, e.g. "NTFS boot sector", "MFT record 6"
	Offset int64  // byte offset in the partition, or -1 when unknown
	Msg    string
	Err    error // ErrCorrupt, ErrUnknownFS or ErrUnsupported
}

func (e *FormatError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("%s at byte %d: %s", e.What, e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.What, e.Msg)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Extent is a byte range of the partition.
type Extent struct {
	Offset int64
	Length int64
}

// End returns the first byte past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Run is a range of clusters in bitmap numbering (bit 0 is the first
// cluster of the grid that starts at Info.ClusterOrigin).
type Run struct {
	Start uint64
	Count uint64
}

// Info holds the parameters read from the boot record and the metadata
// computed from them.
type Info struct {
	Type          Type
	SectorSize    uint32 // bytes per logical sector
	ClusterSize   uint32 // bytes per cluster
	TotalSectors  uint64 // sectors of the file system, as the boot record says
	Size          int64  // bytes of the partition the file system uses (NTFS: including the backup boot sector)
	ClusterCount  uint64 // bits in the allocation bitmap
	ClusterOrigin int64  // byte offset of bitmap cluster 0 (NTFS 0; FAT the data area)
	HiddenSectors uint64 // boot record's "hidden sectors": partition start LBA as formatted
	Label         string
	Serial        uint64
	OEMName       string
	Dirty         bool  // NTFS volume dirty flag, or FAT "not cleanly unmounted" bits
	Missing       int64 // bytes the boot record claims past the partition's end; only ever sectors without data
}

// ClusterOffset returns the partition byte offset of bitmap cluster c.
func (i *Info) ClusterOffset(c uint64) int64 {
	return i.ClusterOrigin + int64(c)*int64(i.ClusterSize)
}

// File is one allocated file or stream found by Walk.
type File struct {
	Path   string // absolute, "/" separated, as stored (original case)
	Stream string // NTFS named data stream; "" for the main data
	Dir    bool
	Size   int64 // logical size of this stream
	Runs   []Run // clusters holding the stream's data, in file order; sparse ranges omitted; nil when resident
	// Damaged is set by WalkTolerant when the file's chain or runs are
	// damaged: Runs holds only what could be followed.
	Damaged bool
}

// fsImpl is what each file-system reader provides.
type fsImpl interface {
	info() *Info
	// bitmap returns ceil(ClusterCount/8) bytes, LSB first, bit set = in use;
	// bits at or past ClusterCount are zero.
	bitmap() ([]byte, error)
	// systemExtents lists byte ranges outside the cluster grid that a
	// faithful copy needs (FAT reserved area, FATs, root directory; NTFS
	// sectors past the last cluster such as the backup boot sector).
	systemExtents() []Extent
	// walk calls fn for every allocated file, directory and named stream.
	walk(ctx context.Context, fn func(File) error) error
	// hibernated reports whether hiberfil.sys holds an active hibernation image.
	hibernated() (bool, error)
}

// Volume is an opened file system.
type Volume struct {
	Info Info
	impl fsImpl
	r    io.ReaderAt

	openDamage []Damage
}

// Raw describes a partition for a sector-by-sector copy: every sector is
// "used", in clusters of 4 KiB (512 bytes when the size is not a multiple of
// 4 KiB), with any remainder as a system extent.
func Raw(size int64) *Info {
	cs := int64(4096)
	if size%cs != 0 {
		cs = 512
	}
	return &Info{Type: Unknown, SectorSize: 512, ClusterSize: uint32(cs), TotalSectors: uint64(size / 512),
		Size: size, ClusterCount: uint64(size / cs)}
}

// RawTail is the system extent of a Raw copy: the bytes after the last
// whole cluster (none when the size is a multiple of the cluster size).
func (i *Info) RawTail() []Extent {
	end := int64(i.ClusterCount) * int64(i.ClusterSize)
	if end < i.Size {
		return []Extent{{Offset: end, Length: i.Size - end}}
	}
	return nil
}

// BootSectorSize is how many bytes Detect needs.
const BootSectorSize = 512

// Open recognizes the file system at the start of r (size bytes long).
func Open(r io.ReaderAt, size int64) (*Volume, error) {
	var boot [BootSectorSize]byte
	if err := readFull(r, boot[:], 0); err != nil {
		return nil, &FormatError{What: "boot record", Offset: 0, Msg: err.Error(), Err: ErrCorrupt}
	}
	var impl fsImpl
	var err error
	switch {
	case isNTFSBoot(boot[:]):
		impl, err = openNTFS(r, size)
	case isFATBoot(boot[:]):
		impl, err = openFAT(r, size)
	case isExFATBoot(boot[:]):
		impl, err = openExFAT(r, size)
	case string(boot[3:11]) == "-FVE-FS-":
		return nil, &FormatError{What: "boot record", Offset: 3, Msg: "BitLocker-encrypted volume: unlock it and back up the unlocked device, or copy it encrypted with --sector-by-sector", Err: ErrEncrypted}
	default:
		return nil, &FormatError{What: "boot record", Offset: 0, Msg: describeBoot(boot[:]), Err: ErrUnknownFS}
	}
	if err != nil {
		return nil, err
	}
	v := &Volume{Info: *impl.info(), impl: impl, r: r}
	if d, ok := impl.(interface{ damageAtOpen() []Damage }); ok {
		v.openDamage = d.damageAtOpen()
	}
	return v, nil
}

// Bitmap returns the used-cluster bitmap (see fsImpl.bitmap).
func (v *Volume) Bitmap() ([]byte, error) { return v.impl.bitmap() }

// SystemExtents returns the non-cluster areas a copy must include.
func (v *Volume) SystemExtents() []Extent { return v.impl.systemExtents() }

// Walk calls fn for every allocated file, directory and named stream.
// Returning an error from fn stops the walk with that error.
func (v *Volume) Walk(ctx context.Context, fn func(File) error) error {
	return v.impl.walk(ctx, fn)
}

// Hibernated reports whether the volume holds an active hibernation image
// (Windows hibernation or Fast Startup); always false for FAT.
func (v *Volume) Hibernated() (bool, error) { return v.impl.hibernated() }

// readFull reads exactly len(p) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: got %d: %w", len(p), off, n, err)
}

// describeBoot says what an unrecognized boot record looks like, for errors.
func describeBoot(b []byte) string {
	allZero := true
	for _, c := range b {
		if c != 0 {
			allZero = false
			break
		}
	}
	if allZero {
		return "boot record is all zeros (no file system, or wiped)"
	}
	sig := ""
	if b[510] != 0x55 || b[511] != 0xAA {
		sig = fmt.Sprintf(", signature %02x%02x instead of 55aa", b[510], b[511])
	}
	return fmt.Sprintf("neither NTFS nor FAT: OEM name %q%s", printable(b[3:11]), sig)
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}
