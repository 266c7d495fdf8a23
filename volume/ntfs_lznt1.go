package volume

import (
	"encoding/binary"
	"fmt"
)

// LZNT1, the NTFS compression format: a compression unit is a sequence of
// chunks, each holding at most 4096 bytes of output. A chunk starts with a
// 16-bit header: bits 0-11 are the chunk's byte count minus 3 (header
// included), bit 15 set means compressed. A compressed chunk is groups of a
// flag byte and eight tokens: a clear bit is a literal byte, a set bit a
// 16-bit back-reference whose split between offset and length bits depends
// on how much of the chunk has been produced.
const lznt1ChunkSize = 4096

// lznt1Decompress decodes src into dst and returns the bytes written. A zero
// header or the end of src ends the data.
func lznt1Decompress(dst, src []byte) (int, error) {
	out := 0
	for p := 0; p+2 <= len(src); {
		if out >= len(dst) {
			break // the unit is full; what follows is slack
		}
		h := binary.LittleEndian.Uint16(src[p:])
		if h == 0 {
			break
		}
		size := int(h&0x0FFF) + 1 // bytes after the header
		if p+2+size > len(src) {
			return out, fmt.Errorf("chunk at byte %d of %d bytes passes the data's %d", p, size, len(src))
		}
		chunk := src[p+2 : p+2+size]
		p += 2 + size
		limit := out + lznt1ChunkSize
		if limit > len(dst) {
			limit = len(dst)
		}
		if h&0x8000 == 0 {
			// Stored chunk: 4096 raw bytes (fewer only at the very end).
			if size > limit-out {
				return out, fmt.Errorf("stored chunk of %d bytes overflows output", size)
			}
			n := copy(dst[out:limit], chunk)
			clear(dst[out+n : limit])
			out = limit
			continue
		}
		n, err := lznt1Chunk(dst[out:limit], chunk)
		if err != nil {
			return out, fmt.Errorf("chunk at byte %d: %w", p-2-size, err)
		}
		// Every chunk stands for 4096 bytes of output; a short one is
		// padded with zeros.
		clear(dst[out+n : limit])
		out = limit
	}
	return out, nil
}

// lznt1Chunk decodes one compressed chunk into dst (at most 4096 bytes).
func lznt1Chunk(dst, src []byte) (int, error) {
	out := 0
	for p := 0; p < len(src); {
		flags := src[p]
		p++
		for bit := 0; bit < 8 && p < len(src); bit++ {
			if flags&(1<<bit) == 0 {
				if out >= len(dst) {
					return out, fmt.Errorf("literal past %d bytes of output", len(dst))
				}
				dst[out] = src[p]
				out++
				p++
				continue
			}
			if p+2 > len(src) {
				return out, fmt.Errorf("truncated back-reference")
			}
			tok := int(binary.LittleEndian.Uint16(src[p:]))
			p += 2
			// Offset bits grow as the output position passes powers of two.
			lenBits := 12
			for i := out - 1; i >= 0x10; i >>= 1 {
				lenBits--
			}
			length := tok&(1<<lenBits-1) + 3
			back := tok>>lenBits + 1
			if back > out {
				return out, fmt.Errorf("back-reference %d before the chunk start (at %d)", back, out)
			}
			if length > len(dst)-out {
				return out, fmt.Errorf("back-reference of %d bytes past %d bytes of output", length, len(dst))
			}
			for i := 0; i < length; i++ {
				dst[out] = dst[out-back]
				out++
			}
		}
	}
	return out, nil
}
