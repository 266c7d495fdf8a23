package volume

import "fmt"

// FATCopyDiff says how one FAT copy differs from the active one.
type FATCopyDiff struct {
	Copy       int    // FAT copy number (0 is the first)
	Entries    uint64 // entries that differ (cluster entries and the two reserved ones)
	FirstEntry uint32 // lowest differing entry
}

// CompareFATCopies reads every FAT copy and reports those that differ from
// the active one. Differences are not an error: the active copy is what
// the reader uses, and a faithful backup keeps all copies as they are.
// With FAT32 mirroring disabled the copies may differ by design.
func (f *FATFS) CompareFATCopies() ([]FATCopyDiff, error) {
	bs := f.boot
	active := bs.ActiveFAT()
	if bs.NumFATs < 2 {
		return nil, nil
	}
	// Compared piece by piece: memory stays at two pieces.
	var diffs []FATCopyDiff
	for i := 0; i < int(bs.NumFATs); i++ {
		if i == active {
			continue
		}
		d := FATCopyDiff{Copy: i}
		if err := compareFATPieces(f, active, i, &d); err != nil {
			return nil, err
		}
		if d.Entries > 0 {
			diffs = append(diffs, d)
		}
	}
	return diffs, nil
}

// compareFATPieces compares copies a and b piece by piece.
func compareFATPieces(f *FATFS, a, b int, d *FATCopyDiff) error {
	bs := f.boot
	total := fatEntryBytes(bs.Type, uint64(bs.ClusterCount)+2)
	piece := int64(fatPieceSize)
	if bs.Type == FAT12 {
		piece = total
	}
	pa := make([]byte, min(piece, total))
	pb := make([]byte, min(piece, total))
	per := int64(fatEntryBits(bs.Type) / 8)
	for off := int64(0); off < total; off += piece {
		n := min(piece, total-off)
		if err := readFull(f.r, pa[:n], bs.FATOffset(a)+off); err != nil {
			return fmt.Errorf("volume: reading FAT %d: %w", a, err)
		}
		if err := readFull(f.r, pb[:n], bs.FATOffset(b)+off); err != nil {
			return fmt.Errorf("volume: reading FAT %d: %w", b, err)
		}
		if string(pa[:n]) == string(pb[:n]) {
			continue
		}
		first := uint32(0)
		if bs.Type != FAT12 {
			first = uint32(off / per)
		}
		var va []uint32
		decodeFATEntries(bs.Type, pa[:n], first, func(_, v uint32) { va = append(va, v) })
		k := 0
		decodeFATEntries(bs.Type, pb[:n], first, func(c, v uint32) {
			if va[k] != v {
				if d.Entries == 0 {
					d.FirstEntry = c
				}
				d.Entries++
			}
			k++
		})
	}
	return nil
}
