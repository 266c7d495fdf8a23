package disk

import (
	"encoding/binary"
	"fmt"
	"io"
)

// MBR layout: four 16-byte entries at byte 446, signature 0x55AA at 510.
// Each entry: status (0x80 active), CHS start (3), type, CHS end (3),
// LBA start (4), sector count (4). CHS values are ignored.
const (
	mbrEntryOff   = 446
	mbrEntryLen   = 16
	mbrDiskIDOff  = 440
	maxEBRs       = 256 // hard cap on an EBR chain, empty links included
	maxLogicals   = 128
	firstLogical  = 5
	mbrTypeGPTPMB = 0xEE
)

type mbrEntry struct {
	status  byte
	typ     byte
	lba     uint64
	sectors uint64
}

func mbrEntries(s []byte) [4]mbrEntry {
	var out [4]mbrEntry
	for i := range out {
		e := s[mbrEntryOff+mbrEntryLen*i:]
		out[i] = mbrEntry{status: e[0], typ: e[4],
			lba: uint64(binary.LittleEndian.Uint32(e[8:])), sectors: uint64(binary.LittleEndian.Uint32(e[12:]))}
	}
	return out
}

func (e mbrEntry) empty() bool { return e.typ == 0 || e.sectors == 0 }

func isExtendedType(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// isMBR reports whether sector 0 is a partition table: the signature is
// present, it is not a file system's boot record, and every status byte
// is 0x00 or 0x80.
func isMBR(s []byte) bool {
	if s[510] != 0x55 || s[511] != 0xAA || isBootRecord(s) {
		return false
	}
	for _, e := range mbrEntries(s) {
		if e.status != 0 && e.status != 0x80 {
			return false
		}
	}
	return true
}

// isBootRecord reports whether s looks like an NTFS, FAT or exFAT boot
// sector: a partition imaged on its own, or a disk formatted without a table.
func isBootRecord(s []byte) bool {
	if string(s[3:11]) == "NTFS    " || string(s[3:11]) == "EXFAT   " {
		return true
	}
	if s[0] != 0xEB && s[0] != 0xE9 {
		return false
	}
	bps := binary.LittleEndian.Uint16(s[11:])
	spc := s[13]
	return bps >= 256 && bps <= 4096 && bps&(bps-1) == 0 && spc != 0 && spc&(spc-1) == 0 &&
		binary.LittleEndian.Uint16(s[14:]) != 0 && (s[16] == 1 || s[16] == 2)
}

// readMBR reads the four primary entries and, for the first extended
// partition, its chain of EBRs.
func readMBR(r io.ReaderAt, size int64, mbr []byte, t *Table) error {
	t.Scheme = MBR
	t.DiskID = binary.LittleEndian.Uint32(mbr[mbrDiskIDOff:])
	ss := int64(t.SectorSize)
	var ext Partition // the first extended partition, if any
	for i, e := range mbrEntries(mbr) {
		if e.empty() {
			continue
		}
		p := Partition{Number: i + 1, Start: int64(e.lba) * ss, Length: int64(e.sectors) * ss,
			MBRType: e.typ, Scheme: MBR, Bootable: e.status == 0x80}
		if e.lba == 0 {
			t.Warnings = append(t.Warnings, fmt.Sprintf("partition %d starts at sector 0, over the MBR", p.Number))
		}
		t.Partitions = append(t.Partitions, p)
		if p.IsExtended() {
			if ext.Number != 0 {
				t.Warnings = append(t.Warnings, fmt.Sprintf("partition %d is a second extended partition; its logical partitions are not read", p.Number))
				continue
			}
			ext = p
		}
	}
	if ext.Number == 0 {
		return nil
	}
	return readEBRs(r, size, ext, t)
}

// readEBRs follows the chain of extended boot records. Each EBR's first
// data entry is a logical partition relative to the EBR itself; its
// extended entry points at the next EBR, relative to the container start.
func readEBRs(r io.ReaderAt, size int64, ext Partition, t *Table) error {
	ss := int64(t.SectorSize)
	base := uint64(ext.Start / ss)
	end := uint64(ext.End() / ss)
	cur := base
	seen := map[uint64]bool{}
	num := firstLogical
	sec := make([]byte, 512)
	for steps := 0; ; steps++ {
		off := int64(cur) * ss
		if steps >= maxEBRs {
			return formatErr("EBR", off, "the chain of extended boot records is longer than %d", maxEBRs)
		}
		if seen[cur] {
			return formatErr("EBR", off, "the chain of extended boot records loops back to sector %d", cur)
		}
		seen[cur] = true
		if off+512 > size {
			return formatErr("EBR", off, "extended boot record lies past the end of the disk (%d bytes)", size)
		}
		if err := readFull(r, sec, off); err != nil {
			return fmt.Errorf("disk: EBR: %w", err)
		}
		if sec[510] != 0x55 || sec[511] != 0xAA {
			if steps == 0 {
				t.Warnings = append(t.Warnings, fmt.Sprintf("extended partition %d has no valid boot record: no logical partitions", ext.Number))
				return nil
			}
			return formatErr("EBR", off, "no 0x55AA signature")
		}
		next, haveNext := uint64(0), false
		for _, e := range mbrEntries(sec) {
			if e.empty() {
				continue
			}
			if isExtendedType(e.typ) {
				if !haveNext {
					next, haveNext = base+e.lba, true
				}
				continue
			}
			if num-firstLogical >= maxLogicals {
				return formatErr("EBR", off, "more than %d logical partitions", maxLogicals)
			}
			p := Partition{Number: num, Start: int64(cur+e.lba) * ss, Length: int64(e.sectors) * ss,
				MBRType: e.typ, Scheme: MBR, Bootable: e.status == 0x80}
			num++
			if e.lba == 0 {
				t.Warnings = append(t.Warnings, fmt.Sprintf("partition %d starts on its own extended boot record", p.Number))
			}
			if p.Start < ext.Start || p.End() > ext.End() {
				t.Warnings = append(t.Warnings, fmt.Sprintf("logical partition %d (bytes %d-%d) lies outside extended partition %d", p.Number, p.Start, p.End(), ext.Number))
			}
			t.Partitions = append(t.Partitions, p)
		}
		if !haveNext {
			return nil
		}
		if next <= base || next >= end {
			return formatErr("EBR", off, "next extended boot record at sector %d is outside extended partition %d (sectors %d-%d)", next, ext.Number, base, end)
		}
		cur = next
	}
}
