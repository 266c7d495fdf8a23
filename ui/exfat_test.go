//go:build linux

package ui

import (
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/volume"
)

// The menu sees an exFAT volume (a file or a stick without a partition
// table): file system, label, used space.
func TestExFATPartition(t *testing.T) {
	vol := testvol.ExFAT(t, testvol.ExFATSpec{SizeMiB: 32, Content: "basic"})
	d := scanDisk(vol)
	if d.Err != nil || len(d.Parts) != 1 {
		t.Fatalf("scan: %+v", d)
	}
	p := d.Parts[0]
	if !p.FSOK || p.FS != volume.ExFAT || p.Label != "CBIMGTEST" || p.Used <= 1<<20 {
		t.Fatalf("partition %+v", p)
	}
	if l := partLine(&p); !strings.Contains(l, "exfat") || !strings.Contains(l, "CBIMGTEST") {
		t.Errorf("menu line %q", l)
	}
}
