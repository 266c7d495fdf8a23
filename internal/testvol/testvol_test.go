//go:build linux

package testvol

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// inode returns the sleuthkit address of path in img.
func inode(t *testing.T, img, path string) string {
	t.Helper()
	return strings.TrimSpace(Run(t, "ifind", "-n", path, img))
}

func mustContain(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: %q not found in:\n%s", what, w, out)
		}
	}
}

func TestNTFSBasic(t *testing.T) {
	img := NTFS(t, NTFSSpec{Content: "basic"})
	mustContain(t, "fsstat", Run(t, "fsstat", img), "Cluster Size: 4096")
	Run(t, "ntfsfix", "-n", img)
	mustContain(t, "ntfsinfo -i 3", Run(t, "ntfsinfo", "-f", "-i", "3", img), "Volume Flags:\t\t none set")
	ls := Run(t, "fls", "-r", "-p", img)
	mustContain(t, "fls", ls, "Documents/empty.txt", "Documents/one.txt", "Documents/resident-600.bin",
		"Documents/readme.txt", "Data/4095.bin", "Data/4097.bin", "Data/1MiB.bin", "Data/10MiB.bin",
		"Data/Nested/a/b/c/d/deep.txt", "pagefile.sys", "hiberfil.sys", "swapfile.sys")
	sizes := map[string]int{"/Documents/empty.txt": 0, "/Documents/one.txt": 1, "/Documents/resident-600.bin": 600,
		"/Data/4095.bin": 4095, "/Data/4097.bin": 4097, "/Data/10MiB.bin": 10 << 20, "/pagefile.sys": 8 << 20}
	for p, n := range sizes {
		if got := len(Run(t, "icat", img, inode(t, img, p))); got != n {
			t.Errorf("%s: %d bytes, want %d", p, got, n)
		}
	}
	mustContain(t, "istat resident-600.bin", Run(t, "istat", img, inode(t, img, "/Documents/resident-600.bin")), "$DATA (128-2)   Name: N/A   Resident   size: 600")
	if h := Run(t, "icat", img, inode(t, img, "/hiberfil.sys")); strings.HasPrefix(h, "hibr") {
		t.Errorf("hiberfil.sys begins with hibr on a volume that is not hibernated")
	}
}

func TestNTFSClusterDirtyHibernated(t *testing.T) {
	for _, cs := range []int{512, 65536} {
		img := NTFS(t, NTFSSpec{SizeMiB: 32, ClusterSize: cs})
		mustContain(t, "fsstat", Run(t, "fsstat", img), "Cluster Size: "+strconv.Itoa(cs))
	}
	img := NTFS(t, NTFSSpec{SizeMiB: 64, Content: "basic", Dirty: true, Hibernated: true})
	mustContain(t, "ntfsinfo -i 3", Run(t, "ntfsinfo", "-f", "-i", "3", img), "Volume Flags:\t\t DIRTY")
	if h := Run(t, "icat", img, inode(t, img, "/hiberfil.sys")); !strings.HasPrefix(h, "hibr") {
		t.Errorf("hiberfil.sys begins with %q, want hibr", h[:4])
	}
}

func TestFATBasic(t *testing.T) {
	for _, tc := range []struct {
		spec   FATSpec
		fsType string
		cs     int
	}{
		{FATSpec{Bits: 12, SizeMiB: 4, Content: "basic"}, "FAT12", 0},
		{FATSpec{Bits: 16, SizeMiB: 16, ClusterSize: 4096, Content: "basic"}, "FAT16", 4096},
		{FATSpec{Bits: 32, SizeMiB: 64, Content: "basic"}, "FAT32", 0},
		{FATSpec{Bits: 32, SizeMiB: 300, SectorSize: 4096, ClusterSize: 4096, Content: "basic"}, "FAT32", 4096},
		{FATSpec{Bits: 16, SizeMiB: 16}, "FAT16", 0},
	} {
		img := FAT(t, tc.spec)
		Run(t, "fsck.fat", "-n", img)
		st := Run(t, "fsstat", img)
		mustContain(t, "fsstat", st, "File System Type: "+tc.fsType)
		if tc.cs != 0 {
			mustContain(t, "fsstat", st, "Cluster Size: "+strconv.Itoa(tc.cs))
		}
		if tc.spec.SectorSize != 0 {
			mustContain(t, "fsstat", st, "Sector Size: "+strconv.Itoa(tc.spec.SectorSize))
		}
		if tc.spec.Content == "" {
			continue
		}
		t.Setenv("MTOOLS_SKIP_CHECK", "1")
		ls := Run(t, "mdir", "-i", img, "-/", "::/")
		mustContain(t, "mdir", ls, "A Long File Name With Spaces.txt", "deep file.txt", "README", "4097     bin")
		if got := Run(t, "mtype", "-i", img, "::/DOCS/README.TXT"); !strings.HasPrefix(got, "000001 the quick") {
			t.Errorf("README.TXT begins %q", got[:min(len(got), 20)])
		}
	}
}

func TestReal(t *testing.T) {
	list := RealList(t)
	want := []string{"fat/mkfs-fat12-lfn.img", "fat/mkfs-fat16-lfn.img", "fat/mkfs-fat32-2048-byte-sectors.raw",
		"fat/winxp-fat16-undel.dd", "ntfs/win10-dissect-ntfs.bin", "ntfs/win10-mbr-disk-lastaccess.raw@1",
		"ntfs/win10-test-ntfs.dd", "ntfs/winxp-ntfs-undel.dd"}
	if strings.Join(list, " ") != strings.Join(want, " ") {
		t.Errorf("RealList = %q, want %q", list, want)
	}
	sizes := map[string]int64{"ntfs/win10-test-ntfs.dd": 10485760, "fat/mkfs-fat12-lfn.img": 1024000,
		"ntfs/win10-mbr-disk-lastaccess.raw": 268435456}
	for rel, n := range sizes {
		fi, err := os.Stat(Real(t, rel))
		if err != nil || fi.Size() != n {
			t.Errorf("Real(%s): %v, size %d, want %d", rel, err, fi.Size(), n)
		}
	}
	part := Real(t, "ntfs/win10-mbr-disk-lastaccess.raw@1")
	mustContain(t, "fsstat partition", Run(t, "fsstat", part), "File System Type: NTFS")
	disk := Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
	mustContain(t, "mmls", Run(t, "mmls", disk), "0000000128")
	for _, rel := range list {
		if strings.Contains(rel, "2048-byte-sectors") {
			// fsstat cannot read FAT with 2048-byte sectors.
			Run(t, "fsck.fat", "-n", Real(t, rel))
			continue
		}
		if !regexp.MustCompile(`File System Type: (NTFS|FAT12|FAT16|FAT32)`).MatchString(Run(t, "fsstat", Real(t, rel))) {
			t.Errorf("%s: fsstat does not see a file system", rel)
		}
	}
}

func TestCopy(t *testing.T) {
	src := Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
	dst := Copy(t, src)
	a, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("copy differs from %s", src)
	}
	if err := os.WriteFile(dst, []byte("writable"), 0o644); err != nil {
		t.Errorf("copy is not writable: %v", err)
	}
	if du := diskUsage(t, src); du >= int64(len(a)) {
		t.Errorf("%s is not sparse: %d bytes on disk", src, du)
	}
}

func diskUsage(t *testing.T, path string) int64 {
	t.Helper()
	out := Run(t, "du", "-B1", path)
	n, _ := strconv.ParseInt(strings.Fields(out)[0], 10, 64)
	return n
}

func TestNeed(t *testing.T) {
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		Need(ft, "sh", "no-such-tool-xyz", "mkntfs-missing")
	}()
	if !strings.Contains(ft.msg, "no-such-tool-xyz") {
		t.Errorf("Need message %q", ft.msg)
	}
}

type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func TestNTFSFull(t *testing.T) {
	img := NTFS(t, NTFSSpec{SizeMiB: 256, Content: "full"})
	Run(t, "ntfsfix", "-n", img)
	ls := Run(t, "fls", "-r", "-p", img)
	mustContain(t, "fls", ls, "Documents/readme.txt:summary", "Data/4097.bin:big stream",
		"Unicode/Grüße/日本語.txt", "Unicode/Ελληνικά — ünïcödé.bin", "Backups/old.cbi",
		"Compressed/text.txt", "Links/winsymlink.txt", "Links/junction")
	if n := strings.Count(ls, "\tBigDir/entry-"); n != 12500 {
		t.Errorf("BigDir has %d entries, want 12500", n)
	}
	if n := strings.Count(ls, "\tMany/d"); n != 3000+30 {
		t.Errorf("Many has %d entries, want 3030", n)
	}
	// Both names of the hard link have the same MFT entry.
	if a, b := inode(t, img, "/Links/target.txt"), inode(t, img, "/Links/hardlink.txt"); a != b {
		t.Errorf("hard link: inodes %s and %s", a, b)
	}
	istat := func(p string) string { return Run(t, "istat", "-r", img, inode(t, img, p)) }
	al := istat("/Fragmented/attrlist.bin")
	mustContain(t, "attrlist.bin", al, "$ATTRIBUTE_LIST (32-")
	if n := strings.Count(al, "Starting address:"); n < 500 {
		t.Errorf("attrlist.bin has %d runs, want 500 or more", n)
	}
	if n := strings.Count(istat("/Fragmented/fragmented.bin"), "Starting address:"); n < 50 {
		t.Errorf("fragmented.bin has %d runs, want 50 or more", n)
	}
	mustContain(t, "text.txt", istat("/Compressed/text.txt"), "Flags: Archive, Compressed", "Non-Resident, Compressed")
	sc := istat("/Compressed/sparse-compressed.txt")
	mustContain(t, "sparse-compressed.txt", sc, "Non-Resident, Compressed", "length: 751  Sparse")
	mustContain(t, "sparse.bin", istat("/Sparse/sparse.bin"), "Non-Resident, Sparse")
	mustContain(t, "winsymlink", Run(t, "ntfsinfo", "-f", "-F", "/Links/winsymlink.txt", img), "Reparse tag:\t\t 0xa000000c")
	mustContain(t, "junction", Run(t, "ntfsinfo", "-f", "-F", "/Links/junction", img), "Reparse tag:\t\t 0xa0000003")
	if got := Run(t, "icat", img, inode(t, img, "/Backups/old.cbi")); !strings.HasPrefix(got, Magic) || len(got) != 1<<20 {
		t.Errorf("old.cbi: %d bytes beginning %q", len(got), got[:min(len(got), 8)])
	}
	if got := Run(t, "icat", img, inode(t, img, "/Compressed/text.txt")); !strings.HasPrefix(got, "000001 the quick") || len(got) != 1840000 {
		t.Errorf("text.txt: %d bytes beginning %q", len(got), got[:min(len(got), 16)])
	}
}

func TestFATFull(t *testing.T) {
	for _, spec := range []FATSpec{
		{Bits: 12, SizeMiB: 32, Content: "full"},
		{Bits: 16, SizeMiB: 32, Content: "full"},
		{Bits: 32, SizeMiB: 64, Content: "full"},
	} {
		img := FAT(t, spec)
		Run(t, "fsck.fat", "-n", img)
		ls := Run(t, "fls", "-r", "-p", img)
		mustContain(t, "fls", ls, "Grüße/日本語.txt", "Grüße/Ελληνικά — ünïcödé.bin", "Backups/old.cbi",
			"pagefile.sys", "Frag/fragmented.bin", "Data/A Long File Name With Spaces.txt")
		if n := strings.Count(ls, "\tMany/d"); n != 1500+15 {
			t.Errorf("FAT%d: Many has %d entries, want 1515", spec.Bits, n)
		}
		t.Setenv("MTOOLS_SKIP_CHECK", "1")
		if got := Run(t, "mtype", "-i", img, "::/Backups/old.cbi"); !strings.HasPrefix(got, Magic) {
			t.Errorf("FAT%d: old.cbi begins %q", spec.Bits, got[:min(len(got), 8)])
		}
		// The sectors of fragmented.bin are not one run.
		out := Run(t, "istat", img, inode(t, img, "/Frag/fragmented.bin"))
		secs := strings.Fields(out[strings.Index(out, "Sectors:")+len("Sectors:"):])
		gaps := 0
		for i := 1; i < len(secs); i++ {
			a, _ := strconv.Atoi(secs[i-1])
			b, _ := strconv.Atoi(secs[i])
			if b != a+1 {
				gaps++
			}
		}
		if gaps < 10 {
			t.Errorf("FAT%d: fragmented.bin has %d gaps, want many", spec.Bits, gaps)
		}
	}
}

// TestConcurrentBuild has several goroutines ask for the same new volume:
// one builds it, the others wait on the lock and get the same file.
func TestConcurrentBuild(t *testing.T) {
	spec := FATSpec{Bits: 12, SizeMiB: 3, Content: "basic"}
	os.Remove(FAT(t, spec))
	paths := make([]string, 4)
	t.Run("group", func(t *testing.T) {
		for i := range paths {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				paths[i] = FAT(t, spec)
			})
		}
	})
	for _, p := range paths {
		if p != paths[0] {
			t.Errorf("paths differ: %q", paths)
		}
	}
	Run(t, "fsck.fat", "-n", paths[0])
}
