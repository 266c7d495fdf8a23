package volume

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
)

// The exFAT FAT (specification section 4): 32-bit entries, entry c the
// successor of cluster c. It describes chains only; allocation is the
// bitmap's. Streams flagged NoFatChain do not use it.
const (
	exfatBadCluster = 0xFFFFFFF7
	exfatEndOfChain = 0xFFFFFFFF
	exfatFATPage    = 64 << 10 // bytes read at once
	exfatFATPages   = 64       // pages kept (4 MiB)
)

// exfatFAT reads FAT entries on demand through a small page cache.
type exfatFAT struct {
	r     io.ReaderAt
	off   int64 // partition offset of the active FAT
	last  uint32
	mu    sync.Mutex
	pages map[int64][]byte
	order []int64
}

func (f *exfatFAT) get(c uint32) (uint32, error) {
	pos := int64(c) * 4
	page := pos / exfatFATPage
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.pages[page]
	if !ok {
		// The FAT covers entries 0..last+1; read no further than its end.
		n := min(int64(exfatFATPage), (int64(f.last)+1)*4-page*exfatFATPage)
		b = make([]byte, n)
		if err := readFull(f.r, b, f.off+page*exfatFATPage); err != nil {
			return 0, fmt.Errorf("volume: reading the exFAT FAT: %w", err)
		}
		if len(f.order) == exfatFATPages {
			delete(f.pages, f.order[0])
			f.order = f.order[1:]
		}
		f.pages[page] = b
		f.order = append(f.order, page)
	}
	return binary.LittleEndian.Uint32(b[pos-page*exfatFATPage:]), nil
}

// chain returns the clusters of a stream (first cluster, byte length) as
// bitmap runs, checked: inside the heap, exactly as many clusters as the
// length needs, a FAT chain that ends there and never revisits a cluster.
// A stream of unknown length (the root directory) passes size -1 and ends
// at the end-of-chain mark, at most maxBytes long.
func (x *ExFATFS) chain(name string, st exfatStream, size int64, maxBytes int64) ([]Run, error) {
	bs := x.boot
	cs := int64(bs.ClusterSize())
	last := uint64(bs.ClusterCount) + 1
	fail := func(c uint32, format string, args ...any) error {
		off := int64(-1)
		if uint64(c) <= last {
			off = x.fat.off + int64(c)*4
		}
		return &FormatError{What: "cluster chain of " + name, Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if st.cluster == 0 {
		if size != 0 {
			return nil, fail(0, "%d bytes but no first cluster", size)
		}
		return nil, nil
	}
	if size == 0 {
		return nil, fail(st.cluster, "empty, yet its first cluster is %d", st.cluster)
	}
	if st.cluster < 2 || uint64(st.cluster) > last {
		return nil, fail(st.cluster, "first cluster %d outside the heap's clusters 2..%d", st.cluster, last)
	}
	var need uint64
	if size > 0 {
		need = uint64((size + cs - 1) / cs)
		if need > uint64(bs.ClusterCount) {
			return nil, fail(st.cluster, "%d bytes need %d clusters, the heap has %d", size, need, bs.ClusterCount)
		}
	} else {
		need = uint64(max(1, maxBytes/cs))
	}
	if st.noFatChain {
		if size < 0 {
			return nil, fail(st.cluster, "a stream without a length cannot be contiguous")
		}
		if uint64(st.cluster)+need-1 > last {
			return nil, fail(st.cluster, "%d contiguous clusters from cluster %d leave the heap (last cluster %d)", need, st.cluster, last)
		}
		return []Run{{Start: uint64(st.cluster) - 2, Count: need}}, nil
	}
	var runs []Run
	c := st.cluster
	for n := uint64(1); ; n++ {
		b := uint64(c) - 2
		if k := len(runs); k > 0 && runs[k-1].Start+runs[k-1].Count == b {
			runs[k-1].Count++
		} else {
			runs = append(runs, Run{Start: b, Count: 1})
		}
		v, err := x.fat.get(c)
		if err != nil {
			return nil, err
		}
		if v == exfatEndOfChain {
			if size > 0 && n < need {
				return nil, fail(c, "chain ends after %d clusters, the length %d needs %d", n, size, need)
			}
			break
		}
		switch {
		case v == exfatBadCluster:
			return nil, fail(c, "cluster %d (number %d of the chain) is marked bad", c, n)
		case v < 2 || uint64(v) > last:
			return nil, fail(c, "cluster %d points to %#x, outside the heap's clusters 2..%d", c, v, last)
		}
		if n >= need {
			if size < 0 {
				return nil, fail(c, "chain longer than %d clusters (%d bytes)", need, maxBytes)
			}
			if size > 0 && n == need {
				// Windows ends a chain at its length; anything but the
				// end mark there is a chain that goes on, or loops.
				if exfatRunsHold(runs, uint64(v)-2) {
					return nil, fail(c, "chain loops: cluster %d points back to cluster %d", c, v)
				}
				return nil, fail(c, "chain continues past the %d clusters the length %d needs (cluster %d points to %d)", need, size, c, v)
			}
		}
		c = v
	}
	if err := exfatCheckOverlap(runs); err != nil {
		return nil, fail(st.cluster, "chain loops: %v", err)
	}
	return runs, nil
}

func exfatRunsHold(runs []Run, b uint64) bool {
	for _, r := range runs {
		if b >= r.Start && b < r.Start+r.Count {
			return true
		}
	}
	return false
}

// exfatCheckOverlap reports a cluster that appears twice in runs.
func exfatCheckOverlap(runs []Run) error {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b Run) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	for i := 1; i < len(s); i++ {
		if s[i].Start < s[i-1].Start+s[i-1].Count {
			return fmt.Errorf("cluster %d appears twice", s[i].Start+2)
		}
	}
	return nil
}
