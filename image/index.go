package image

import (
	"encoding/binary"
	"math/bits"
	"sort"
)

// index maps partition offsets to logical-stream offsets: system extents by
// binary search, clusters by rank over the bitmap (one popcount entry per
// 512 clusters), so no read scans the bitmap. It is built when a Reader
// opens, from the header, bitmap and chunk table.
//
// Memory of a Reader's index, for B bytes of bitmap and C chunks: 2B (the
// bitmap and its words) + B/8 (rank table) + 64 bytes per chunk. For a
// 2 TiB partition with 4 KiB clusters (2^29 clusters, B = 64 MiB) that is
// 136 MiB plus 64 MiB per TiB of stored data in 1 MiB chunks: 264 MiB,
// about 4 times the bitmap, when the volume is full. The decoded-chunk LRU
// adds its byte cap (Options).
type index struct {
	bitmap  []byte   // padded to whole words
	rank    []uint64 // set bits before each block of rankBlock words
	count   uint64   // clusters in the grid
	cs      int64
	origin  int64
	sysLen  int64
	extents []sysExtent // sorted by partition offset
}

type sysExtent struct {
	off, length, stream int64
}

const rankBlock = 8 // words per rank entry (512 clusters)

func newIndex(h *Header, bitmap []byte) (*index, uint64) {
	if len(bitmap)%8 != 0 {
		bitmap = append(bitmap[:len(bitmap):len(bitmap)], make([]byte, 8-len(bitmap)%8)...)
	}
	ix := &index{bitmap: bitmap, count: h.ClusterCount, cs: int64(h.ClusterSize), origin: h.ClusterOrigin}
	nw := len(bitmap) / 8
	ix.rank = make([]uint64, nw/rankBlock+1)
	var total uint64
	for i := 0; i < nw; i++ {
		if i%rankBlock == 0 {
			ix.rank[i/rankBlock] = total
		}
		total += uint64(bits.OnesCount64(ix.word(uint64(i))))
	}
	var s int64
	for _, e := range h.SysExtents {
		ix.extents = append(ix.extents, sysExtent{e.Offset, e.Length, s})
		s += e.Length
	}
	ix.sysLen = s
	sort.Slice(ix.extents, func(i, j int) bool { return ix.extents[i].off < ix.extents[j].off })
	return ix, total
}

func (ix *index) word(i uint64) uint64 { return binary.LittleEndian.Uint64(ix.bitmap[i*8:]) }

func (ix *index) bit(c uint64) bool { return ix.bitmap[c/8]>>(c%8)&1 != 0 }

// rankOf returns the number of set bits before cluster c.
func (ix *index) rankOf(c uint64) uint64 {
	wi := c / 64
	r := ix.rank[wi/rankBlock]
	for i := wi - wi%rankBlock; i < wi; i++ {
		r += uint64(bits.OnesCount64(ix.word(i)))
	}
	return r + uint64(bits.OnesCount64(ix.word(wi)&(1<<(c%64)-1)))
}

// sameRun returns how many clusters from c on (at most max) share c's bit.
func (ix *index) sameRun(c, max uint64) uint64 {
	v := ix.bit(c)
	n := uint64(1)
	for n < max && c+n < ix.count && ix.bit(c+n) == v {
		// Skip whole words when possible.
		if (c+n)%64 == 0 && n+64 <= max && c+n+64 <= ix.count {
			w := ix.word((c + n) / 64)
			if v && w == ^uint64(0) || !v && w == 0 {
				n += 64
				continue
			}
		}
		n++
	}
	return n
}

// piece describes the bytes at a partition offset: length bytes either at
// stream offset stream, or zeros when stream < 0.
type piece struct {
	length int64
	stream int64
}

// locate maps partition offset off to a piece no longer than max bytes.
func (ix *index) locate(off, max int64) piece {
	// System extents first: they take precedence over clusters.
	i := sort.Search(len(ix.extents), func(i int) bool { return ix.extents[i].off > off }) - 1
	if i >= 0 {
		if e := ix.extents[i]; off < e.off+e.length {
			return piece{min(max, e.off+e.length-off), e.stream + off - e.off}
		}
	}
	if i+1 < len(ix.extents) {
		max = min(max, ix.extents[i+1].off-off)
	}
	end := ix.origin + int64(ix.count)*ix.cs
	if off < ix.origin {
		return piece{min(max, ix.origin-off), -1}
	}
	if off >= end {
		return piece{max, -1}
	}
	c := uint64((off - ix.origin) / ix.cs)
	within := (off - ix.origin) % ix.cs
	want := uint64((within + max + ix.cs - 1) / ix.cs)
	n := ix.sameRun(c, want)
	length := min(max, int64(n)*ix.cs-within)
	if !ix.bit(c) {
		return piece{length, -1}
	}
	return piece{length, ix.sysLen + int64(ix.rankOf(c))*ix.cs + within}
}
