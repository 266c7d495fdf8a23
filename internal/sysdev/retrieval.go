package sysdev

// Where Windows says a file's clusters are (FSCTL_GET_RETRIEVAL_POINTERS),
// parsed and compared without system calls so that it is tested on every
// platform. An image written into its own file through the volume handle
// must agree with the file system driver about those clusters; our own
// reader's answer is compared with this one before the first raw write.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ClusterRun is Count clusters of a file starting at virtual cluster VCN,
// stored from logical cluster LCN of the volume (LCN -1: not stored, a
// hole of a sparse or compressed file). LCN 0 is the first cluster of the
// file system's allocation bitmap: the volume's start on NTFS, the data
// area (cluster 2) on FAT.
type ClusterRun struct {
	VCN, LCN, Count int64
}

// ErrRetrieval means a retrieval-pointer buffer is malformed.
var ErrRetrieval = errors.New("sysdev: malformed retrieval pointers")

// Hard caps: a file of the size cbimg allocates has far fewer runs, and a
// driver that answers with more is not trusted.
const (
	MaxRetrievalRuns = 1 << 20
	retrievalHead    = 16 // DWORD ExtentCount, padding, LARGE_INTEGER StartingVcn
	retrievalExtent  = 16 // LARGE_INTEGER NextVcn, Lcn
)

// ParseRetrievalPointers decodes n bytes of a RETRIEVAL_POINTERS_BUFFER
// answered for starting VCN want:
//
//	DWORD ExtentCount; (4 bytes padding) LARGE_INTEGER StartingVcn;
//	ExtentCount × { LARGE_INTEGER NextVcn; LARGE_INTEGER Lcn; }
//
// Extent i covers [previous NextVcn (StartingVcn for the first), NextVcn).
// It returns the runs and the VCN after the last one, where a caller told
// ERROR_MORE_DATA asks again.
func ParseRetrievalPointers(buf []byte, want int64) ([]ClusterRun, int64, error) {
	if len(buf) < retrievalHead {
		return nil, 0, fmt.Errorf("%w: %d bytes, the header needs %d", ErrRetrieval, len(buf), retrievalHead)
	}
	count := int64(binary.LittleEndian.Uint32(buf[0:]))
	vcn := int64(binary.LittleEndian.Uint64(buf[8:]))
	if room := int64(len(buf)-retrievalHead) / retrievalExtent; count > room {
		return nil, 0, fmt.Errorf("%w: %d extents in a buffer with room for %d", ErrRetrieval, count, room)
	}
	if vcn != want {
		return nil, 0, fmt.Errorf("%w: the extents start at VCN %d, asked for %d", ErrRetrieval, vcn, want)
	}
	runs := make([]ClusterRun, 0, count)
	for i := int64(0); i < count; i++ {
		e := buf[retrievalHead+i*retrievalExtent:]
		next := int64(binary.LittleEndian.Uint64(e[0:]))
		lcn := int64(binary.LittleEndian.Uint64(e[8:]))
		if next <= vcn {
			return nil, 0, fmt.Errorf("%w: extent %d ends at VCN %d, not after %d", ErrRetrieval, i, next, vcn)
		}
		if lcn < -1 || lcn >= 0 && lcn > 1<<62-(next-vcn) {
			return nil, 0, fmt.Errorf("%w: extent %d at LCN %d", ErrRetrieval, i, lcn)
		}
		runs = append(runs, ClusterRun{VCN: vcn, LCN: lcn, Count: next - vcn})
		vcn = next
	}
	return runs, vcn, nil
}

// IsPlaceholderRetrieval recognizes the fixed answer of a driver that does
// not implement FSCTL_GET_RETRIEVAL_POINTERS but reports success (Wine):
// one extent that starts at VCN 1 and ends at VCN 0, at LCN 0. No real
// file has it (the extent would end before it starts).
func IsPlaceholderRetrieval(buf []byte) bool {
	return len(buf) >= retrievalHead+retrievalExtent &&
		binary.LittleEndian.Uint32(buf[0:]) == 1 &&
		binary.LittleEndian.Uint64(buf[8:]) == 1 &&
		binary.LittleEndian.Uint64(buf[16:]) == 0 &&
		binary.LittleEndian.Uint64(buf[24:]) == 0
}

// MergeRuns joins runs that continue each other on the volume (a driver may
// split one contiguous extent where ours does not, or the other way round).
func MergeRuns(in []ClusterRun) []ClusterRun {
	var out []ClusterRun
	for _, r := range in {
		if r.Count <= 0 {
			continue
		}
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.VCN+p.Count == r.VCN && (p.LCN == -1 && r.LCN == -1 || p.LCN >= 0 && p.LCN+p.Count == r.LCN) {
				p.Count += r.Count
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// CompareRuns says where two descriptions of one file's clusters disagree
// (nil when they agree, after merging). Only the first clusters clusters of
// the file are compared, so that a description that stops at the file's
// size and one that lists allocation past it can agree; clusters <= 0
// compares all.
func CompareRuns(driver, ours []ClusterRun, clusters int64) error {
	a, b := clip(MergeRuns(driver), clusters), clip(MergeRuns(ours), clusters)
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			return fmt.Errorf("the driver lists no clusters from VCN %d, the file system metadata lists %d at LCN %d", b[i].VCN, b[i].Count, b[i].LCN)
		case i >= len(b):
			return fmt.Errorf("the file system metadata lists no clusters from VCN %d, the driver lists %d at LCN %d", a[i].VCN, a[i].Count, a[i].LCN)
		case a[i] != b[i]:
			return fmt.Errorf("from VCN %d the driver lists %d clusters at LCN %d, the file system metadata %d clusters at VCN %d, LCN %d",
				a[i].VCN, a[i].Count, a[i].LCN, b[i].Count, b[i].VCN, b[i].LCN)
		}
	}
	return nil
}

// clip cuts merged runs at VCN n.
func clip(runs []ClusterRun, n int64) []ClusterRun {
	if n <= 0 {
		return runs
	}
	var out []ClusterRun
	for _, r := range runs {
		if r.VCN >= n {
			break
		}
		r.Count = min(r.Count, n-r.VCN)
		out = append(out, r)
	}
	return out
}
