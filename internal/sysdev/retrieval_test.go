package sysdev

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// rpBuffer builds a RETRIEVAL_POINTERS_BUFFER: start VCN, then pairs of
// (NextVcn, Lcn).
func rpBuffer(start int64, ext ...int64) []byte {
	b := make([]byte, 16+8*len(ext))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(ext)/2))
	binary.LittleEndian.PutUint64(b[8:], uint64(start))
	for i, v := range ext {
		binary.LittleEndian.PutUint64(b[16+8*i:], uint64(v))
	}
	return b
}

func TestParseRetrievalPointers(t *testing.T) {
	runs, next, err := ParseRetrievalPointers(rpBuffer(0, 4, 100, 10, -1, 12, 200), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []ClusterRun{{0, 100, 4}, {4, -1, 6}, {10, 200, 2}}
	if !reflect.DeepEqual(runs, want) || next != 12 {
		t.Fatalf("got %v next %d, want %v next 12", runs, next, want)
	}
	// A continuation after ERROR_MORE_DATA starts where the last one ended.
	runs, next, err = ParseRetrievalPointers(rpBuffer(12, 20, 300), 12)
	if err != nil || !reflect.DeepEqual(runs, []ClusterRun{{12, 300, 8}}) || next != 20 {
		t.Fatalf("continuation: %v %d %v", runs, next, err)
	}
	// A buffer with room for more extents than it holds is fine.
	b := append(rpBuffer(0, 8, 5), make([]byte, 64)...)
	if runs, _, err := ParseRetrievalPointers(b, 0); err != nil || len(runs) != 1 {
		t.Fatalf("padded buffer: %v %v", runs, err)
	}
	if runs, next, err := ParseRetrievalPointers(rpBuffer(0), 0); err != nil || len(runs) != 0 || next != 0 {
		t.Fatalf("no extents: %v %d %v", runs, next, err)
	}
	bad := []struct {
		name string
		buf  []byte
		want int64
		msg  string
	}{
		{"short header", make([]byte, 15), 0, "header"},
		{"count past buffer", rpBuffer(0, 4, 100)[:24], 0, "room for"},
		{"huge count", func() []byte { b := rpBuffer(0, 4, 100); b[3] = 0xFF; return b }(), 0, "room for"},
		{"other start", rpBuffer(4, 8, 100), 0, "start at VCN 4"},
		{"not increasing", rpBuffer(0, 4, 100, 4, 200), 0, "not after"},
		{"backwards", rpBuffer(10, 5, 100), 10, "not after"},
		{"bad lcn", rpBuffer(0, 4, -7), 0, "LCN -7"},
		{"lcn overflow", rpBuffer(0, 4, 1<<62), 0, "LCN"},
	}
	for _, c := range bad {
		_, _, err := ParseRetrievalPointers(c.buf, c.want)
		if !errors.Is(err, ErrRetrieval) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want ErrRetrieval with %q", c.name, err, c.msg)
		}
	}
}

func TestPlaceholderRetrieval(t *testing.T) {
	stub := rpBuffer(1, 0, 0)
	if !IsPlaceholderRetrieval(stub) {
		t.Error("the placeholder answer is not recognized")
	}
	if _, _, err := ParseRetrievalPointers(stub, 0); !errors.Is(err, ErrRetrieval) {
		t.Errorf("the placeholder parses: %v", err)
	}
	for _, b := range [][]byte{rpBuffer(0, 1, 0), rpBuffer(1, 2, 0), rpBuffer(1, 0, 5), rpBuffer(1, 0, 0, 3, 9), stub[:24]} {
		if IsPlaceholderRetrieval(b) {
			t.Errorf("%x taken for the placeholder", b)
		}
	}
}

func TestCompareRuns(t *testing.T) {
	ours := []ClusterRun{{0, 100, 4}, {4, 104, 4}, {8, 50, 2}}
	driver := []ClusterRun{{0, 100, 8}, {8, 50, 2}}
	if err := CompareRuns(driver, ours, 0); err != nil {
		t.Errorf("split and merged runs: %v", err)
	}
	// The driver lists allocation past the file's clusters.
	long := []ClusterRun{{0, 100, 8}, {8, 50, 3}, {11, 70, 5}}
	if err := CompareRuns(long, ours, 10); err != nil {
		t.Errorf("clipped at 10 clusters: %v", err)
	}
	if err := CompareRuns(long, ours, 0); err == nil || !strings.Contains(err.Error(), "from VCN 8") {
		t.Errorf("unclipped: %v", err)
	}
	for _, c := range []struct {
		driver []ClusterRun
		msg    string
	}{
		{[]ClusterRun{{0, 101, 8}, {8, 50, 2}}, "at LCN 101"},
		{[]ClusterRun{{0, 100, 8}}, "driver lists no clusters from VCN 8"},
		{[]ClusterRun{{0, 100, 8}, {8, 50, 2}, {10, 9, 1}}, "metadata lists no clusters from VCN 10"},
		{[]ClusterRun{{0, 100, 4}, {4, -1, 4}, {8, 50, 2}}, "driver lists 4 clusters at LCN 100"},
		{nil, "driver lists no clusters from VCN 0"},
	} {
		if err := CompareRuns(c.driver, ours, 0); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("CompareRuns(%v): %v, want %q", c.driver, err, c.msg)
		}
	}
	if got := MergeRuns([]ClusterRun{{0, -1, 2}, {2, -1, 3}, {5, 7, 1}, {6, 8, 0}, {6, 8, 1}}); !reflect.DeepEqual(got, []ClusterRun{{0, -1, 5}, {5, 7, 2}}) {
		t.Errorf("MergeRuns: %v", got)
	}
}
