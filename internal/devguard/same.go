package devguard

import (
	"os"

	"github.com/cbimg/cbimg/disk"
)

// span is a byte range of one file or device.
type span struct {
	fi    os.FileInfo
	start int64
	size  int64
}

func spans(s *disk.Section) []span {
	var out []span
	if fi, err := s.Stat(); err == nil {
		out = append(out, span{fi, s.Start(), s.Size()})
	}
	if s.Partition.Number > 0 {
		// The kernel's device for the partition shows the same bytes from 0.
		for _, d := range s.Devices {
			if fi, err := os.Stat(d); err == nil {
				out = append(out, span{fi, 0, s.Size()})
			}
		}
	}
	return out
}

// Overlap compares two opened partitions: same when they are the same bytes
// (one file or device, same start and length, possibly named differently,
// e.g. DISK@2 and its kernel device), overlap when they share any byte.
func Overlap(a, b *disk.Section) (same, overlap bool) {
	for _, x := range spans(a) {
		for _, y := range spans(b) {
			if !os.SameFile(x.fi, y.fi) {
				continue
			}
			if x.start == y.start && x.size == y.size {
				return true, true
			}
			if x.start < y.start+y.size && y.start < x.start+x.size {
				overlap = true
			}
		}
	}
	return false, overlap
}
