//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/cbimg/cbimg/volume"
)

type fixture struct {
	name string
	path string
}

func builtVolumes(t *testing.T) []fixture {
	fs := []fixture{
		{"ntfs-full", testvol.NTFS(t, testvol.NTFSSpec{Content: "full"})},
		{"ntfs-64k", testvol.NTFS(t, testvol.NTFSSpec{Content: "basic", ClusterSize: 65536})},
		{"fat32-512", testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 64, ClusterSize: 512, Content: "full"})},
		{"fat32-4k", testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 300, ClusterSize: 4096, Content: "basic"})},
		{"fat32-32k", testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 2100, ClusterSize: 32768, Content: "basic"})},
		{"fat16", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "full"})},
		{"fat12", testvol.FAT(t, testvol.FATSpec{Bits: 12, SizeMiB: 4, Content: "basic"})},
	}
	return fs
}

func realVolumes(t *testing.T) []fixture {
	var fs []fixture
	for _, rel := range testvol.RealList(t) {
		fs = append(fs, fixture{"real-" + filepath.Base(rel), testvol.Real(t, rel)})
	}
	return fs
}

func backup(t *testing.T, src, img string, noDefault bool) *backupcore.Result {
	t.Helper()
	res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: src, Image: img, Codec: image.CodecZstd, NoDefaultExcludes: noDefault})
	if err != nil {
		t.Fatalf("backup %s: %v", src, err)
	}
	return res
}

func restore(t *testing.T, img, target string) {
	t.Helper()
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: target}); err != nil {
		t.Fatalf("restore %s: %v", img, err)
	}
}

// sameUsedBytes compares the system areas and every allocated cluster.
func sameUsedBytes(t *testing.T, src, dst string) {
	t.Helper()
	a, _ := os.Open(src)
	defer a.Close()
	b, _ := os.Open(dst)
	defer b.Close()
	st, _ := a.Stat()
	v, err := volume.Open(a, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	bm, err := v.Bitmap()
	if err != nil {
		t.Fatal(err)
	}
	cmp := func(off, n int64) {
		p, q := make([]byte, n), make([]byte, n)
		if _, err := a.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ReadAt(q, off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(p, q) {
			t.Fatalf("bytes at %d (+%d) differ after restore", off, n)
		}
	}
	for _, e := range v.SystemExtents() {
		cmp(e.Offset, e.Length)
	}
	cs := int64(v.Info.ClusterSize)
	for c := uint64(0); ; {
		s, e, ok := image.NextRun(bm, v.Info.ClusterCount, c)
		if !ok {
			break
		}
		for x := s; x < e; x += 256 {
			n := min(e-x, 256)
			cmp(v.Info.ClusterOffset(x), int64(n)*cs)
		}
		c = e
	}
}

func isNTFS(path string) bool {
	f, _ := os.Open(path)
	defer f.Close()
	b := make([]byte, 16)
	f.ReadAt(b, 0)
	return string(b[3:11]) == "NTFS    "
}

// Without exclusions the restored volume equals the source in everything
// the file system uses.
func TestRoundTripNoExcludes(t *testing.T) {
	testvol.Need(t, "ntfsclone", "fsck.fat", "fls", "icat")
	for _, f := range append(builtVolumes(t), realVolumes(t)...) {
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			img, out := filepath.Join(dir, "i.cbi"), filepath.Join(dir, "restored")
			backup(t, f.path, img, true)
			restore(t, img, out)
			sameUsedBytes(t, f.path, out)
			if isNTFS(f.path) {
				if a, b := oracle.NTFSCloneHash(t, f.path), oracle.NTFSCloneHash(t, out); a != b {
					t.Fatalf("ntfsclone images differ: %s vs %s", a, b)
				}
			} else if !strings.Contains(f.name, "2048") { // fsck.fat and sleuthkit do not read 2048-byte sectors
				// The restored volume is as clean as the source: the
				// Windows XP image has a label only fsck.fat minds.
				a, b := oracle.Fsck(t, f.path), oracle.Fsck(t, out)
				if a != b {
					t.Fatalf("fsck.fat -n differs:\n%s\nrestored:\n%s", a, b)
				}
			}
		})
	}
}

// With the default exclusions sleuthkit sees the same tree; excluded files
// keep their size and read as zeros; the image shrinks by their clusters.
func TestRoundTripDefaultExcludes(t *testing.T) {
	testvol.Need(t, "fls", "icat")
	for _, f := range append(builtVolumes(t), realVolumes(t)...) {
		if strings.Contains(f.name, "2048") {
			continue // sleuthkit cannot read 2048-byte sectors; covered above
		}
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			img, out := filepath.Join(dir, "i.cbi"), filepath.Join(dir, "restored")
			all := backup(t, f.path, filepath.Join(dir, "all.cbi"), true)
			res := backup(t, f.path, img, false)
			restore(t, img, out)
			// Deleted entries whose directory lay in free clusters are not
			// imaged: compare what is allocated.
			a, b := oracle.Live(oracle.FLS(t, f.path)), oracle.Live(oracle.FLS(t, out))
			if strings.Join(a, "\n") != strings.Join(b, "\n") {
				t.Fatalf("fls listings differ (%d vs %d lines)", len(a), len(b))
			}
			excluded := map[string]bool{}
			var exClusters uint64
			for _, x := range res.Header.Exclusions {
				excluded[strings.ToLower(strings.TrimPrefix(x.Path, "/"))] = true
				exClusters += x.Clusters
			}
			if got, want := res.Header.ImageClusters, all.Header.ImageClusters-exClusters; got != want {
				t.Errorf("image stores %d clusters, want %d (all %d minus excluded %d)", got, want, all.Header.ImageClusters, exClusters)
			}
			files := oracle.Files(t, f.path)
			checked, zeroed := 0, 0
			for i, fl := range files {
				ex := excluded[strings.ToLower(fl.Path)]
				// Thousands of small files: every file with data that is
				// excluded or large, and a spread of the rest.
				if !ex && len(files) > 400 && i%50 != 0 {
					continue
				}
				src, dst := oracle.ICat(t, f.path, fl.Addr), oracle.ICat(t, out, fl.Addr)
				if ex {
					if len(dst) != len(src) || !oracle.IsZero(dst) {
						t.Errorf("excluded %s: %d bytes, zero=%v; want %d zero bytes", fl.Path, len(dst), oracle.IsZero(dst), len(src))
					}
					zeroed++
					continue
				}
				if !bytes.Equal(src, dst) {
					t.Errorf("%s (%s) differs after restore", fl.Path, fl.Addr)
				}
				checked++
			}
			if len(res.Header.Exclusions) > 0 && zeroed == 0 {
				t.Errorf("exclusions %v not seen in the fls listing", res.Header.Exclusions)
			}
			t.Logf("%d files compared, %d excluded files read as zeros, %d clusters excluded", checked, zeroed, exClusters)
		})
	}
}

// The built NTFS and FAT fixtures hold pagefile.sys, hiberfil.sys and an
// old image: all must be found.
func TestDefaultExclusionsFound(t *testing.T) {
	dir := t.TempDir()
	res := backup(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "full"}), filepath.Join(dir, "n.cbi"), false)
	want := map[string]string{"/pagefile.sys": "/pagefile.sys", "/hiberfil.sys": "/hiberfil.sys", "/swapfile.sys": "/swapfile.sys", "/Backups/old.cbi": backupcore.ImageRule}
	for _, x := range res.Header.Exclusions {
		if r, ok := want[x.Path]; ok && r == x.Reason && x.Clusters > 0 {
			delete(want, x.Path)
		}
	}
	if len(want) > 0 {
		t.Errorf("not excluded: %v (got %+v)", want, res.Header.Exclusions)
	}
}

// A damaged or truncated image is refused before the target is touched.
func TestRestoreRefusesDamagedImage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "i.cbi")
	backup(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}), img, false)
	orig, _ := os.ReadFile(img)
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	hl := r.Header.Len
	table := r.Footer.TableOffset
	r.Close()
	cases := map[string][]byte{}
	for name, off := range map[string]int64{"header": 30, "bitmap": hl + 2, "chunk": hl + 300, "table": table + 30, "footer": int64(len(orig)) - 20} {
		b := bytes.Clone(orig)
		b[off] ^= 1
		cases[name] = b
	}
	cases["truncated"] = orig[:len(orig)*2/3]
	for name, b := range cases {
		bad := filepath.Join(dir, name+".cbi")
		os.WriteFile(bad, b, 0o600)
		target := filepath.Join(dir, name+".target")
		_, err := restorecore.Restore(context.Background(), restorecore.Options{Image: bad, Target: target})
		var fe *image.FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: restore gave %v, want a FormatError", name, err)
		}
		if _, err := os.Stat(target); err == nil {
			t.Errorf("%s: target was created", name)
		}
	}
}
