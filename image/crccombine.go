package image

// CRC32C of a concatenation from the CRCs of its parts, so a raw chunk's
// stored CRC follows from its block checksums without a second pass over
// the bytes. The arithmetic is polynomial multiplication modulo the
// Castagnoli polynomial in the reflected bit order CRC-32C uses (bit 31 is
// x^0); appending n zero bytes to a message multiplies its CRC register by
// x^(8n), which is where the pre- and post-conditioning cancel out.

const castagnoliReflected = 0x82f63b78

// mulModP returns a·b mod P.
func mulModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
	return p
}

// x2n[k] is x^(2^k) mod P.
var x2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = mulModP(p, p)
	}
	return t
}()

// shiftOp returns x^(8n) mod P: the operator for appending n bytes.
func shiftOp(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = mulModP(x2n[k&31], p)
		}
	}
	return p
}

// blockShift is shiftOp(BlockSize), the common case.
var blockShift = shiftOp(BlockSize)

// crcCombine returns the CRC32C of A‖B from crcA = CRC32C(A), crcB =
// CRC32C(B) and op = shiftOp(len(B)).
func crcCombine(crcA, crcB, op uint32) uint32 { return mulModP(op, crcA) ^ crcB }
