package image

import (
	"github.com/zeebo/xxh3"
)

// logicalSum is a chunk's checksum of its logical bytes: XXH3-128 in images
// with RequireXXH3 (the 16 bytes big-endian as XXH3 canonical form, then 16
// zero bytes), BLAKE3-256 in earlier ones.
func (f *frame) logicalSum(p []byte) [32]byte {
	if !f.xxh {
		return blake3Sum(p)
	}
	var s [32]byte
	b := xxh3.Hash128(p).Bytes()
	copy(s[:], b[:])
	return s
}

// sumName names the chunk checksum in messages.
func (f *frame) sumName() string {
	if f.xxh {
		return "XXH3-128"
	}
	return "BLAKE3"
}
