package volume

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sort"
)

// FAT entry values (FAT32 entries are masked to 28 bits first).
const (
	fat32Mask      = 0x0FFFFFFF
	fatPieceSize   = 4 << 20 // bytes of FAT read at once
	fat16CleanBit  = 0x8000
	fat32CleanBit  = 0x08000000
	fatMaxDirBytes = 65536 * 32 // the specification's limit on directory size
)

// fatMarkers returns the bad-cluster marker and the smallest end-of-chain
// value of a FAT type.
func fatMarkers(t Type) (bad, eoc uint32) {
	switch t {
	case FAT12:
		return 0xFF7, 0xFF8
	case FAT16:
		return 0xFFF7, 0xFFF8
	}
	return 0x0FFFFFF7, 0x0FFFFFF8
}

// fatTable is a FAT in compact form. Most entries either point at the next
// cluster or are free, so two bit sets cover them; end-of-chain marks are a
// third, and everything else (jumps, bad marks, invalid values) is kept in
// a sorted exception list. Bit sets are indexed by bitmap number (cluster-2).
type fatTable struct {
	n    uint32   // clusters (ClusterCount)
	used []byte   // the allocation bitmap: non-zero and not bad
	seq  []uint64 // entry c == c+1
	eoc  []uint64 // entry c is an end-of-chain mark
	excC []uint32 // clusters with any other non-zero value, ascending
	excV []uint32
	bad  uint32
	eocV uint32
}

// get returns the (masked) FAT entry of cluster c, 2 <= c < n+2.
func (t *fatTable) get(c uint32) uint32 {
	i := c - 2
	if t.seq[i>>6]&(1<<(i&63)) != 0 {
		return c + 1
	}
	if t.eoc[i>>6]&(1<<(i&63)) != 0 {
		return t.eocV
	}
	k := sort.Search(len(t.excC), func(k int) bool { return t.excC[k] >= c })
	if k < len(t.excC) && t.excC[k] == c {
		return t.excV[k]
	}
	return 0
}

// usedCount returns the number of set bits of the bitmap.
func (t *fatTable) usedCount() uint64 {
	var n uint64
	for _, b := range t.used {
		n += uint64(bits.OnesCount8(b))
	}
	return n
}

// fatEntryBytes returns how many bytes hold entries 0..n-1.
func fatEntryBytes(t Type, n uint64) int64 {
	switch t {
	case FAT12:
		return int64((n*3 + 1) / 2)
	case FAT16:
		return int64(n * 2)
	}
	return int64(n * 4)
}

// loadFATTable reads FAT copy `copy` of the volume once, in pieces, and
// returns it in compact form together with entry 1 (the clean-shutdown bits).
func loadFATTable(r io.ReaderAt, bs *FATBoot, copy int) (*fatTable, uint32, error) {
	n := bs.ClusterCount
	bad, eoc := fatMarkers(bs.Type)
	t := &fatTable{
		n:    n,
		used: make([]byte, (uint64(n)+7)/8),
		seq:  make([]uint64, (uint64(n)+63)/64),
		eoc:  make([]uint64, (uint64(n)+63)/64),
		bad:  bad,
		eocV: eoc | 0x7, // the canonical end-of-chain value get returns
	}
	var fat1 uint32
	set := func(c, v uint32) {
		if c < 2 {
			if c == 1 {
				fat1 = v
			}
			return
		}
		i := c - 2
		switch {
		case v == 0:
			return
		case v == c+1 && v < n+2:
			t.seq[i>>6] |= 1 << (i & 63)
		case v >= eoc:
			t.eoc[i>>6] |= 1 << (i & 63)
		default:
			t.excC = append(t.excC, c)
			t.excV = append(t.excV, v)
		}
		if v != bad {
			t.used[i>>3] |= 1 << (i & 7)
		}
	}

	err := readFATPieces(r, bs, copy, func(first uint32, p []byte) {
		decodeFATEntries(bs.Type, p, first, set)
	})
	if err != nil {
		return nil, 0, err
	}
	if len(t.excC) == 0 {
		t.excC = nil
	}
	return t, fat1, nil
}

// readFATPieces reads entries 0..ClusterCount+1 of FAT copy `copy` in
// large pieces and hands each to fn with the number of its first entry.
// Pieces hold whole entries (FAT12: the whole table, at most about 6 KiB).
func readFATPieces(r io.ReaderAt, bs *FATBoot, copy int, fn func(first uint32, p []byte)) error {
	base := bs.FATOffset(copy)
	total := fatEntryBytes(bs.Type, uint64(bs.ClusterCount)+2)
	piece := int64(fatPieceSize)
	if bs.Type == FAT12 {
		piece = total
	}
	buf := make([]byte, min(piece, total))
	per := int64(fatEntryBits(bs.Type) / 8)
	for off := int64(0); off < total; off += piece {
		p := buf[:min(piece, total-off)]
		if err := readFull(r, p, base+off); err != nil {
			return fmt.Errorf("volume: reading FAT %d: %w", copy, err)
		}
		first := uint32(0)
		if bs.Type != FAT12 {
			first = uint32(off / per)
		}
		fn(first, p)
	}
	return nil
}

// decodeFATEntries calls fn for every whole entry in p, numbered from first.
func decodeFATEntries(t Type, p []byte, first uint32, fn func(c, v uint32)) {
	switch t {
	case FAT12:
		// (n*3+1)/2 bytes hold n entries; entry c uses bytes c*3/2 and the next.
		n := uint32(len(p) * 2 / 3)
		for c := uint32(0); c < n; c++ {
			j := int(c) * 3 / 2
			v := uint32(p[j]) | uint32(p[j+1])<<8
			if c&1 == 1 {
				v >>= 4
			}
			fn(first+c, v&0xFFF)
		}
	case FAT16:
		for j := 0; j+2 <= len(p); j += 2 {
			fn(first+uint32(j/2), uint32(binary.LittleEndian.Uint16(p[j:])))
		}
	default:
		for j := 0; j+4 <= len(p); j += 4 {
			fn(first+uint32(j/4), binary.LittleEndian.Uint32(p[j:])&fat32Mask)
		}
	}
}

// readFATEntry reads one entry of FAT copy `copy` straight from disk, for
// the few lookups needed before the whole table is loaded.
func readFATEntry(r io.ReaderAt, bs *FATBoot, copy int, c uint32) (uint32, error) {
	base := bs.FATOffset(copy)
	var b [4]byte
	switch bs.Type {
	case FAT12:
		off := int64(c) * 3 / 2
		if err := readFull(r, b[:2], base+off); err != nil {
			return 0, err
		}
		v := uint32(binary.LittleEndian.Uint16(b[:2]))
		if c&1 == 1 {
			v >>= 4
		}
		return v & 0xFFF, nil
	case FAT16:
		if err := readFull(r, b[:2], base+int64(c)*2); err != nil {
			return 0, err
		}
		return uint32(binary.LittleEndian.Uint16(b[:2])), nil
	}
	if err := readFull(r, b[:], base+int64(c)*4); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[:]) & fat32Mask, nil
}
