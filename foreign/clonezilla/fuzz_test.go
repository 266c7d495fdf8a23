package clonezilla

import (
	"strings"
	"testing"
)

// FuzzNames: any file name and any sfdisk dump parse without a panic, and a
// recognized image name keeps its parts.
func FuzzNames(f *testing.F) {
	f.Add("sda1.ntfs-ptcl-img.gz.aa", "label: dos\n/dev/sda1 : start= 2048, size= 204800, type=7, bootable\n")
	f.Add("nvme0n1p2.ext4-ptcl-img.zst", "label: gpt\n/dev/nvme0n1p2 : start=1, size=2, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=X, name=\"a,b\"\n")
	f.Add("sda1.ntfs-img.aaa", " : \n/dev/ : ,,,=")
	f.Fuzz(func(t *testing.T, name, table string) {
		if n, ok := parseImageName(name); ok {
			if n.part == "" || n.fs == "" || !strings.HasPrefix(name, n.stem) || !strings.HasPrefix(n.stem, n.part+".") {
				t.Fatalf("%q: %+v", name, n)
			}
		}
		diskOf(name, []string{"sda"})
		_, entries := parseSfdisk(table)
		if len(entries) > strings.Count(table, "\n")+1 {
			t.Fatalf("%d entries from %d lines", len(entries), strings.Count(table, "\n")+1)
		}
	})
}
