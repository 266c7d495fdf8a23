package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// file is the disk or file under a Section: an *os.File, or on Windows a
// sysdev.Device, which sends volumes and disks only whole, aligned sectors.
// openFile, fileSize, osFile, sectorSizeOf and partitionDevices are per
// system.
type file interface {
	io.ReaderAt
	io.WriterAt
	Stat() (os.FileInfo, error)
	Sync() error
	Truncate(size int64) error
	Close() error
	Name() string
}

// maxPartNumber bounds the N of "DISK@N": GPT slots are capped by
// gptMaxEntries and logical partitions by maxLogicals.
const maxPartNumber = gptMaxEntries

// ParseTarget splits "DISK@N" into the disk path and partition number N
// (1 or more, decimal, no sign or leading zero).
//
// The rule for names that contain '@': when a file or device of the whole
// name s exists, s names it and ok is false, so a file called "a@2" is
// never mistaken for partition 2 of "a". Only when s does not exist is
// the text after the last '@' taken as a partition number.
func ParseTarget(s string) (path string, part int, ok bool) {
	if _, err := os.Stat(s); err == nil {
		return s, 0, false
	}
	return splitTarget(s)
}

// splitTarget is ParseTarget without the existence check.
func splitTarget(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return s, 0, false
	}
	num := s[i+1:]
	if num[0] == '0' || len(num) > 6 {
		return s, 0, false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return s, 0, false
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > maxPartNumber {
		return s, 0, false
	}
	return s[:i], n, true
}

// Section is an opened partition of a disk, or a whole file or device when
// it was named without "@N". Reads and writes are confined to the
// partition: ReadAt returns io.EOF at its end, and a WriteAt that would
// cross it writes nothing and fails with ErrOutOfRange.
type Section struct {
	Path      string    // the disk, or the plain path
	Spec      string    // what was asked for, e.g. "/dev/sda@2"
	Partition Partition // zero for a plain path
	Table     *Table    // the disk's table; nil for a plain path
	DiskSize  int64     // bytes of the whole disk or file
	// Regular is true only for a plain regular file: it may grow (Truncate)
	// and have holes. A partition of a disk image is not Regular.
	Regular bool
	// Devices are the kernel's block devices for the same bytes (for a
	// plain path: the path itself; for a partition: e.g. /dev/sda2, or
	// /dev/loop0p1 for a partition of a loop-attached image), so that mount
	// checks can ask about them. It may be empty for a partition.
	Devices []string

	f     file
	start int64
	size  int64
	bound bool // confine I/O to [start, start+size)
}

// OpenPartition opens spec, "DISK@N" (see ParseTarget) or a plain path,
// for reading, or for reading and writing when write is set. A plain path
// opened for writing is created (mode 0600) when missing, as a restore
// target; a disk never is. A partition that runs past the disk's end is
// refused, and for writing so is one that overlaps another partition or
// the table itself. An extended (container) partition is refused.
func OpenPartition(spec string, write bool) (*Section, error) {
	path, n, ok := ParseTarget(spec)
	if !ok {
		return openPlain(spec, write)
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := openSource(path, flag, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: neither %s nor the disk %s exists", spec, spec, path)
		}
		return nil, err
	}
	s, err := openIn(f, spec, n, write)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func openIn(f file, spec string, n int, write bool) (*Section, error) {
	d, err := readDisk(f)
	if err != nil {
		return nil, err
	}
	path, t, size := d.Path, d.Table, d.Size
	if t.Scheme == None {
		return nil, fmt.Errorf("%w: %s has no partition table, so no partition %d", ErrNoPartition, path, n)
	}
	p, ok := t.Partition(n)
	if !ok {
		var have []string
		for _, q := range t.Partitions {
			have = append(have, strconv.Itoa(q.Number))
		}
		return nil, fmt.Errorf("%w: %s has no partition %d (%s table with partitions %s)", ErrNoPartition, path, n, t.Scheme, strings.Join(have, ", "))
	}
	if p.IsExtended() {
		return nil, fmt.Errorf("%w: partition %d of %s is an extended partition, a container for logical partitions %d and up", ErrNoPartition, n, path, firstLogical)
	}
	if err := t.Check(n, size); err != nil {
		if write || p.End() > size {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return &Section{Path: path, Spec: spec, Partition: p, Table: t, DiskSize: size,
		Devices: partitionDevices(f, p), f: f, start: p.Start, size: p.Length, bound: true}, nil
}

// Disk is a whole disk or disk image opened read-only, with its table.
type Disk struct {
	Path  string
	Size  int64
	Table *Table
	f     file
}

// OpenDisk opens a whole disk or disk image read-only and reads its
// partition table, with the sector size the kernel reports for a block
// device (see ReadTable for files).
func OpenDisk(path string) (*Disk, error) {
	f, err := openSource(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	d, err := readDisk(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func readDisk(f file) (*Disk, error) {
	size, _, err := sizeOfFile(f)
	if err != nil {
		return nil, err
	}
	t, err := ReadTable(f, size, sectorSizeOfFile(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return &Disk{Path: f.Name(), Size: size, Table: t, f: f}, nil
}

// ReadAt reads from the whole disk.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

// Section returns a reader over partition p's bytes.
func (d *Disk) Section(p Partition) *io.SectionReader {
	return io.NewSectionReader(d.f, p.Start, p.Length)
}

// Close closes the disk.
func (d *Disk) Close() error { return d.f.Close() }

func openPlain(path string, write bool) (*Section, error) {
	var f file
	var err error
	if write {
		f, err = openSource(path, os.O_RDWR|os.O_CREATE, 0o600)
	} else {
		f, err = openSource(path, os.O_RDONLY, 0)
	}
	if err != nil {
		return nil, err
	}
	size, regular, err := sizeOfFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Section{Path: path, Spec: path, DiskSize: size, Regular: regular, Devices: []string{path}, f: f, size: size}, nil
}

// sizeOf returns the size of a file or device; block devices report 0
// from Stat, so their size comes from seeking to the end.
func sizeOf(f *os.File) (int64, bool, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	if st.Mode().IsRegular() {
		return st.Size(), true, nil
	}
	if st.IsDir() {
		return 0, false, fmt.Errorf("%s is a directory", f.Name())
	}
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, false, fmt.Errorf("size of %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, false, err
	}
	return n, false, nil
}

// Size returns the partition's length in bytes (for a plain path, the
// file's or device's size when opened, or after Truncate).
func (s *Section) Size() int64 { return s.size }

// Start returns the partition's first byte on its disk (0 for a plain path).
func (s *Section) Start() int64 { return s.start }

// ReadAt reads from the partition; reading at or past its end gives io.EOF.
func (s *Section) ReadAt(p []byte, off int64) (int, error) {
	if !s.bound {
		return s.f.ReadAt(p, off)
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", ErrOutOfRange, off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	var eof error
	if rest := s.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	n, err := s.f.ReadAt(p, s.start+off)
	if err == nil {
		err = eof
	}
	return n, err
}

// WriteAt writes to the partition. A write that does not fit entirely
// inside it writes nothing.
func (s *Section) WriteAt(p []byte, off int64) (int, error) {
	if !s.bound {
		return s.f.WriteAt(p, off)
	}
	if off < 0 || off > s.size || int64(len(p)) > s.size-off {
		return 0, fmt.Errorf("%w: write of %d bytes at %d into a partition of %d bytes", ErrOutOfRange, len(p), off, s.size)
	}
	return s.f.WriteAt(p, s.start+off)
}

// Sync commits writes to stable storage.
func (s *Section) Sync() error { return s.f.Sync() }

// Stat describes the underlying file or device (the whole disk for a
// partition), e.g. for os.SameFile.
func (s *Section) Stat() (os.FileInfo, error) { return s.f.Stat() }

// Truncate sets the size of a plain regular file; partitions and devices
// cannot change size.
func (s *Section) Truncate(size int64) error {
	if s.bound || !s.Regular {
		return fmt.Errorf("%w: %s cannot change size", ErrOutOfRange, s.Spec)
	}
	if err := s.f.Truncate(size); err != nil {
		return err
	}
	s.size = size
	s.DiskSize = size
	return nil
}

// File returns the underlying file or device (on Windows the device's
// handle: use the Section, not the File, for I/O).
func (s *Section) File() *os.File { return osFileOf(s.f) }

// Lock takes exclusive use of the section's bytes before they are
// written, where the system asks for it: on Windows a volume is locked and
// dismounted, and so are the volumes on a disk's partition (see
// sysdev.Device.Lock). Elsewhere, and for files, it does nothing.
func (s *Section) Lock() error {
	if l, ok := s.f.(locker); ok {
		return l.Lock(s.start, s.size)
	}
	return nil
}

// locker is a file that must be locked before it is written.
type locker interface {
	Lock(start, length int64) error
}

// Close closes the underlying file or device.
func (s *Section) Close() error { return s.f.Close() }

// BootCode returns the first 440 bytes of the disk a partition lies on —
// the MBR's boot code, which a disk rebuilt around the partition needs to
// start — or nil for a plain path or when they are all zero.
func (s *Section) BootCode() ([]byte, error) {
	if s.Table == nil || !s.bound {
		return nil, nil
	}
	n := int64(4096) // whole sectors: devices on Windows read nothing less
	if s.DiskSize < n {
		n = 512
	}
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("%s: boot code: %w", s.Path, err)
	}
	for _, c := range b[:440] {
		if c != 0 {
			return b[:440:440], nil
		}
	}
	return nil, nil
}
