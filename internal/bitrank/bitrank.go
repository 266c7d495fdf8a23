// Package bitrank answers "how many set bits come before bit i" over a
// bitmap in constant time, for readers that find a used block's place in an
// image by its rank among the used blocks.
//
// Memory: the bitmap itself (B bytes, LSB first, shared with the caller,
// padded to whole 8-byte words) plus one uint64 per 512 bits, B/8 bytes:
// 9/8 B in all. For 2 TiB in 4 KiB blocks (2^29 bits, B = 64 MiB) that is
// 72 MiB.
package bitrank

import (
	"encoding/binary"
	"math/bits"
)

// wordsPerEntry is how many 64-bit words one rank entry covers (512 bits):
// a rank costs at most 8 popcounts.
const wordsPerEntry = 8

// Index is a rank index over a bitmap of n bits.
type Index struct {
	bm    []byte // whole words
	n     uint64
	rank  []uint64
	total uint64
}

// New builds the index over the first n bits of bm (LSB first). bm must
// hold at least ceil(n/8) bytes; bits at or past n must be zero. bm is
// used in place when its length is a multiple of 8 bytes (else copied once).
func New(bm []byte, n uint64) *Index {
	need := (n + 63) / 64 * 8
	if uint64(len(bm)) < need || len(bm)%8 != 0 {
		b := make([]byte, need)
		copy(b, bm)
		bm = b
	}
	ix := &Index{bm: bm, n: n}
	nw := uint64(len(bm) / 8)
	ix.rank = make([]uint64, nw/wordsPerEntry+1)
	var t uint64
	for i := uint64(0); i < nw; i++ {
		if i%wordsPerEntry == 0 {
			ix.rank[i/wordsPerEntry] = t
		}
		t += uint64(bits.OnesCount64(ix.word(i)))
	}
	if nw%wordsPerEntry == 0 {
		ix.rank[nw/wordsPerEntry] = t // the entry just past the last word
	}
	ix.total = t
	return ix
}

func (ix *Index) word(i uint64) uint64 { return binary.LittleEndian.Uint64(ix.bm[i*8:]) }

// Len is the number of bits.
func (ix *Index) Len() uint64 { return ix.n }

// Count is the number of set bits.
func (ix *Index) Count() uint64 { return ix.total }

// Bit reports bit i.
func (ix *Index) Bit(i uint64) bool { return ix.bm[i/8]>>(i%8)&1 != 0 }

// Rank returns the number of set bits before bit i (i ≤ Len).
func (ix *Index) Rank(i uint64) uint64 {
	wi := i / 64
	r := ix.rank[wi/wordsPerEntry]
	for w := wi - wi%wordsPerEntry; w < wi; w++ {
		r += uint64(bits.OnesCount64(ix.word(w)))
	}
	if i%64 != 0 {
		r += uint64(bits.OnesCount64(ix.word(wi) & (1<<(i%64) - 1)))
	}
	return r
}

// Run returns how many bits from i on (at most max, not past Len) equal
// bit i.
func (ix *Index) Run(i, max uint64) uint64 {
	max = min(max, ix.n-i)
	v := ix.Bit(i)
	n := uint64(1)
	for n < max {
		c := i + n
		if c%64 == 0 && n+64 <= max {
			w := ix.word(c / 64)
			if v && w == ^uint64(0) || !v && w == 0 {
				n += 64
				continue
			}
		}
		if ix.Bit(c) != v {
			break
		}
		n++
	}
	return n
}

// Select returns the position of the set bit of rank k (the (k+1)-th set
// bit); ok is false when there are not that many.
func (ix *Index) Select(k uint64) (uint64, bool) {
	if k >= ix.total {
		return 0, false
	}
	// The last entry whose rank is ≤ k.
	lo, hi := 0, len(ix.rank)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if ix.rank[mid] <= k {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	r := ix.rank[lo]
	for w := uint64(lo) * wordsPerEntry; w < uint64(len(ix.bm)/8); w++ {
		v := ix.word(w)
		c := uint64(bits.OnesCount64(v))
		if r+c > k {
			for ; ; v &= v - 1 {
				if r == k {
					return w*64 + uint64(bits.TrailingZeros64(v)), true
				}
				r++
			}
		}
		r += c
	}
	return 0, false
}
