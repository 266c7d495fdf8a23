package image

// NextRun returns the next run [start, end) of set bits at or after from,
// in a bitmap of total bits (LSB first). ok is false when none is left.
func NextRun(bitmap []byte, total, from uint64) (start, end uint64, ok bool) {
	return nextRun(bitmap, total, from, true)
}

// NextClear is NextRun for clear bits.
func NextClear(bitmap []byte, total, from uint64) (start, end uint64, ok bool) {
	return nextRun(bitmap, total, from, false)
}

// nextRun finds the next run of bits equal to set, skipping whole bytes
// where it can.
func nextRun(bitmap []byte, total, from uint64, set bool) (start, end uint64, ok bool) {
	same, other := byte(0xff), byte(0)
	if !set {
		same, other = 0, 0xff
	}
	is := func(c uint64) bool { return bitmap[c/8]&(1<<(c%8)) != 0 == set }
	c := from
	for c < total {
		if c%8 == 0 && bitmap[c/8] == other {
			c += 8
			continue
		}
		if is(c) {
			break
		}
		c++
	}
	if c >= total {
		return total, total, false
	}
	e := c
	for e < total {
		if e%8 == 0 && e+8 <= total && bitmap[e/8] == same {
			e += 8
			continue
		}
		if !is(e) {
			break
		}
		e++
	}
	return c, e, true
}
