package nbd

import "sort"

// Allocation maps an allocation bitmap onto an export for block status:
// Bits units of Unit bytes start at Origin, in use where their bit is set
// (LSB first). Bytes outside that grid and inside Always are data.
type Allocation struct {
	Bitmap []byte
	Bits   uint64
	Unit   int64
	Origin int64
	Always []Range // sorted by Off, not overlapping
}

// Range is a byte range of an export.
type Range struct{ Off, Len int64 }

func (a *Allocation) bit(c uint64) bool { return a.Bitmap[c/8]>>(c%8)&1 != 0 }

// runEnd returns the end of the run of units equal to c's state.
func (a *Allocation) runEnd(c, bits uint64, set bool) uint64 {
	skip := byte(0)
	if set {
		skip = 0xff
	}
	for c < bits {
		if c%8 == 0 && c+8 <= bits && a.Bitmap[c/8] == skip {
			c += 8
			continue
		}
		if a.bit(c) != set {
			return c
		}
		c++
	}
	return bits
}

// Extents describes [off, off+n) as runs, merging neighbours of one kind;
// at most maxDescriptors runs, the last may end before off+n.
func (a *Allocation) Extents(off, n int64) []Extent {
	bits := min(a.Bits, uint64(len(a.Bitmap))*8)
	end := off + n
	var out []Extent
	add := func(l int64, hole bool) { out = appendExtent(out, l, hole) }
	gridEnd := a.Origin + int64(bits)*a.Unit
	for pos := off; pos < end && len(out) < maxDescriptors; {
		if a.Unit <= 0 || pos < a.Origin || pos >= gridEnd {
			next := end
			if pos < a.Origin {
				next = min(end, a.Origin)
			}
			add(next-pos, false)
			pos = next
			continue
		}
		c := uint64((pos - a.Origin) / a.Unit)
		set := a.bit(c)
		next := min(end, a.Origin+int64(a.runEnd(c, bits, set))*a.Unit)
		if !set {
			// A hole stops where an always-stored range starts.
			i := sort.Search(len(a.Always), func(i int) bool { return a.Always[i].Off+a.Always[i].Len > pos })
			if i < len(a.Always) && a.Always[i].Off < next {
				if a.Always[i].Off <= pos {
					next = min(next, a.Always[i].Off+a.Always[i].Len)
					set = true
				} else {
					next = a.Always[i].Off
				}
			}
		}
		add(next-pos, !set)
		pos = next
	}
	return out
}

// appendExtent appends a run, merging it into a last run of its kind.
func appendExtent(out []Extent, l int64, hole bool) []Extent {
	if k := len(out); k > 0 && out[k-1].Hole == hole {
		out[k-1].Length += l
		return out
	}
	return append(out, Extent{l, hole})
}
