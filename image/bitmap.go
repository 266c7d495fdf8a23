package image

// NextRun returns the next run [start, end) of set bits at or after from,
// in a bitmap of total bits (LSB first). ok is false when none is left.
func NextRun(bitmap []byte, total, from uint64) (start, end uint64, ok bool) {
	c := from
	for c < total {
		if c%8 == 0 && bitmap[c/8] == 0 {
			c += 8
			continue
		}
		if bitmap[c/8]&(1<<(c%8)) != 0 {
			break
		}
		c++
	}
	if c >= total {
		return total, total, false
	}
	e := c
	for e < total {
		if e%8 == 0 && e+8 <= total && bitmap[e/8] == 0xff {
			e += 8
			continue
		}
		if bitmap[e/8]&(1<<(e%8)) == 0 {
			break
		}
		e++
	}
	return c, e, true
}

// NextClear is NextRun for clear bits.
func NextClear(bitmap []byte, total, from uint64) (start, end uint64, ok bool) {
	c := from
	for c < total {
		if c%8 == 0 && bitmap[c/8] == 0xff {
			c += 8
			continue
		}
		if bitmap[c/8]&(1<<(c%8)) == 0 {
			break
		}
		c++
	}
	if c >= total {
		return total, total, false
	}
	e := c
	for e < total {
		if e%8 == 0 && e+8 <= total && bitmap[e/8] == 0 {
			e += 8
			continue
		}
		if bitmap[e/8]&(1<<(e%8)) != 0 {
			break
		}
		e++
	}
	return c, e, true
}
