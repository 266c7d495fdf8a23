//go:build linux

package disk_test

import (
	"testing"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/testvol"
)

// An exFAT volume without a partition table (a partition imaged on its
// own, or a stick formatted whole) is one volume, not an empty MBR disk,
// although its boot sector ends in 55 AA.
func TestExFATVolumeIsNoTable(t *testing.T) {
	f, size := testvol.OpenFile(t, testvol.ExFAT(t, testvol.ExFATSpec{SizeMiB: 32}))
	tb, err := disk.ReadTable(f, size, 512)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Scheme != disk.None {
		t.Errorf("scheme %v with %d partitions, want none", tb.Scheme, len(tb.Partitions))
	}
}
