// Package disk reads the partition tables of whole disks and disk images
// (MBR with extended and logical partitions, GPT) and opens one partition as
// a bounded reader and writer, so that a backup or restore can name
// "DISK@N" wherever it takes a partition.
//
// The readers are strict in the same way as the file-system readers: every
// short read is an error, every loop is bounded (EBR chains, GPT entry
// counts), and nothing read off disk sizes an allocation without a cap.
// Partitions are numbered as Linux numbers them: MBR primaries 1-4 by table
// slot, logical partitions from 5 in chain order, GPT by entry slot.
package disk

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/cbimg/cbimg/internal/sysdev"
)

// Scheme is a partitioning scheme.
type Scheme int

// Partitioning schemes; the values match the image header's scheme byte.
const (
	None Scheme = 0 // no partition table: the disk is one volume, or blank
	MBR  Scheme = 1
	GPT  Scheme = 2
)

func (s Scheme) String() string {
	switch s {
	case None:
		return "none"
	case MBR:
		return "mbr"
	case GPT:
		return "gpt"
	}
	return fmt.Sprintf("scheme(%d)", int(s))
}

// Partition is one entry of a partition table. Offsets are bytes from the
// start of the disk.
type Partition struct {
	Number   int
	Start    int64
	Length   int64
	MBRType  byte     // MBR partition type byte (0 for GPT)
	TypeGUID [16]byte // GPT partition type GUID, on-disk byte order
	GUID     [16]byte // GPT unique partition GUID, on-disk byte order
	Name     string   // GPT partition name
	Scheme   Scheme
	Bootable bool // MBR active flag, or GPT "legacy BIOS bootable" attribute
	Attrs    uint64
}

// End returns the first byte past the partition.
func (p Partition) End() int64 { return p.Start + p.Length }

// IsExtended reports whether p is an MBR extended partition: a container
// for logical partitions, holding no file system of its own.
func (p Partition) IsExtended() bool {
	return p.Scheme == MBR && isExtendedType(p.MBRType)
}

// TypeName is a short human name for the partition type, or "" when the
// type is not a common one.
func (p Partition) TypeName() string {
	switch p.Scheme {
	case MBR:
		return mbrTypeNames[p.MBRType]
	case GPT:
		return gptTypeNames[p.TypeGUID]
	}
	return ""
}

// TypeString is the partition type as tools print it: the MBR byte in hex
// ("0x07") or the GPT type GUID.
func (p Partition) TypeString() string {
	switch p.Scheme {
	case MBR:
		return fmt.Sprintf("0x%02x", p.MBRType)
	case GPT:
		return GUIDString(p.TypeGUID)
	}
	return ""
}

// Table is a disk's partition table.
type Table struct {
	Scheme     Scheme
	SectorSize int
	DiskGUID   [16]byte // GPT disk GUID
	DiskID     uint32   // MBR disk signature
	Partitions []Partition
	Warnings   []string // damage that did not stop the read (backup GPT used, overlaps, ...)

	usableStart, usableEnd int64 // GPT: the bytes partitions may use
}

// Partition returns partition n.
func (t *Table) Partition(n int) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}

// Errors. Callers test with errors.Is.
var (
	// ErrFormat means a partition table is damaged or inconsistent. Errors
	// wrapping it also match ErrCorrupt: the source is damaged.
	ErrFormat = errors.New("disk: damaged partition table")
	// ErrCorrupt means an on-disk structure of the source is damaged: a
	// partition table here, a file system in package volume, whose
	// ErrCorrupt is this error.
	ErrCorrupt = errors.New("corrupt on-disk structure")
	// ErrMounted means a device or file is in use where that is unsafe:
	// mounted, or refused a lock by Windows (Section.Lock).
	ErrMounted = sysdev.ErrMounted
	// ErrNoPartition means a partition number names no partition.
	ErrNoPartition = errors.New("disk: no such partition")
	// ErrOutOfRange means a read or write would cross a partition's end, or
	// a partition lies outside its disk or overlaps another.
	ErrOutOfRange = errors.New("disk: outside the partition")
)

// FormatError reports a damaged partition-table structure and where it is.
type FormatError struct {
	What   string // e.g. "GPT header", "EBR"
	Offset int64  // byte offset on the disk
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s at byte %d: %s", e.What, e.Offset, e.Msg)
}

// Unwrap lets errors.Is match both ErrFormat and ErrCorrupt (which is
// volume.ErrCorrupt), so a damaged table is reported like a damaged file
// system.
func (e *FormatError) Unwrap() []error { return []error{ErrFormat, ErrCorrupt} }

func formatErr(what string, off int64, format string, a ...any) error {
	return &FormatError{What: what, Offset: off, Msg: fmt.Sprintf(format, a...)}
}

// Sector sizes ReadTable accepts.
const (
	minSectorSize = 512
	maxSectorSize = 64 << 10
)

// ReadTable reads the partition table of a disk of size bytes. sectorSize
// is the disk's logical sector size; 0 means "find out": 4096 when a GPT
// header sits at byte 4096 and not at 512, else 512 (block devices should
// pass what the kernel says, see SectorSize).
//
// A disk whose first sector is not an MBR (no 0x55AA signature, or a file
// system's boot record as on a partition or "superfloppy") has Scheme None
// and no partitions. A protective MBR (type 0xEE) makes the GPT
// authoritative; a damaged primary GPT header or entry array is replaced
// by the backup, with a warning.
func ReadTable(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	if size < 0 {
		return nil, fmt.Errorf("disk: negative size %d", size)
	}
	if sectorSize == 0 {
		sectorSize = probeSectorSize(r, size)
	}
	if sectorSize < minSectorSize || sectorSize > maxSectorSize || sectorSize&(sectorSize-1) != 0 {
		return nil, fmt.Errorf("disk: bad sector size %d", sectorSize)
	}
	t := &Table{SectorSize: sectorSize}
	if size < int64(sectorSize) {
		return t, nil // too small to hold a table
	}
	mbr := make([]byte, 512)
	if err := readFull(r, mbr, 0); err != nil {
		return nil, fmt.Errorf("disk: MBR: %w", err)
	}
	if !isMBR(mbr) {
		if mbr[510] == 0x55 && mbr[511] == 0xAA && !isBootRecord(mbr) {
			t.Warnings = append(t.Warnings, "sector 0 has the 0x55AA signature but no valid partition entries: treated as no partition table")
		}
		return t, nil
	}
	entries := mbrEntries(mbr)
	protective, others := false, 0
	for _, e := range entries {
		if e.typ == 0xEE {
			protective = true
		} else if e.typ != 0 {
			others++
		}
	}
	var err error
	if protective {
		if others > 0 {
			t.Warnings = append(t.Warnings, "hybrid MBR: the GPT is used and the MBR's other entries are ignored")
		}
		err = readGPT(r, size, t)
	} else {
		err = readMBR(r, size, mbr, t)
	}
	if err != nil {
		return nil, err
	}
	t.checkLayout(size)
	return t, nil
}

// probeSectorSize guesses the sector size of a disk image: GPT's header is
// at LBA 1, so "EFI PART" at byte 4096 but not at 512 means 4 KiB sectors.
func probeSectorSize(r io.ReaderAt, size int64) int {
	sig := make([]byte, 8)
	if size >= 1024 && readFull(r, sig, 512) == nil && string(sig) == gptSignature {
		return 512
	}
	if size >= 8192 && readFull(r, sig, 4096) == nil && string(sig) == gptSignature {
		return 4096
	}
	return 512
}

// checkLayout adds warnings for partitions that run past the disk's end
// or overlap each other. Extended containers are checked against the
// primaries only, since they hold the logical partitions.
func (t *Table) checkLayout(size int64) {
	for _, p := range t.Partitions {
		if p.End() > size {
			t.Warnings = append(t.Warnings, fmt.Sprintf("partition %d (bytes %d-%d) runs past the end of the disk (%d bytes)", p.Number, p.Start, p.End(), size))
		}
	}
	for _, o := range t.overlaps() {
		t.Warnings = append(t.Warnings, fmt.Sprintf("partitions %d and %d overlap", o[0], o[1]))
	}
}

// overlaps lists pairs of partition numbers whose byte ranges overlap.
func (t *Table) overlaps() [][2]int {
	ps := append([]Partition(nil), t.Partitions...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start })
	var out [][2]int
	for i := range ps {
		for j := i + 1; j < len(ps) && ps[j].Start < ps[i].End(); j++ {
			a, b := ps[i], ps[j]
			if a.IsExtended() && b.Number > 4 || b.IsExtended() && a.Number > 4 {
				continue // a logical partition inside its container
			}
			out = append(out, [2]int{min(a.Number, b.Number), max(a.Number, b.Number)})
		}
	}
	return out
}

// Check returns an error when partition n runs past the disk's end or
// overlaps another partition: writing to it would damage its neighbour.
func (t *Table) Check(n int, size int64) error {
	p, ok := t.Partition(n)
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoPartition, n)
	}
	if p.Start < 0 || p.Length < 0 || p.End() > size {
		return fmt.Errorf("%w: partition %d (bytes %d-%d) runs past the end of the disk (%d bytes)", ErrOutOfRange, n, p.Start, p.End(), size)
	}
	if p.Start < int64(t.SectorSize) || t.Scheme == GPT && (p.Start < t.usableStart || p.End() > t.usableEnd) {
		return fmt.Errorf("%w: partition %d (bytes %d-%d) overlaps the partition table", ErrOutOfRange, n, p.Start, p.End())
	}
	for _, o := range t.overlaps() {
		if o[0] == n || o[1] == n {
			return fmt.Errorf("%w: partitions %d and %d overlap", ErrOutOfRange, o[0], o[1])
		}
	}
	return nil
}

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

// DiskInfo describes a whole disk found by ListDisks.
type DiskInfo struct {
	Path        string // e.g. /dev/sda
	Name        string // e.g. sda
	Size        int64  // bytes
	SectorSize  int    // logical sector size
	Model       string
	Removable   bool
	ReadOnly    bool
	BackingFile string // for a loop device: the file it shows
}
