//go:build linux

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
)

// TestClonezillaDir: a Clonezilla image directory (an NTFS partition as
// partclone.ntfs | gzip split in pieces, a FAT16 one as partclone.fat16 |
// zstd) through info, verify, ls/cat (against fls/icat), restore (against
// ntfsclone), convert, and the faults: a cut piece, a directory named where
// a partition is needed.
func TestClonezillaDir(t *testing.T) {
	testvol.Need(t, "gzip", "zstd", "split", "fls", "icat")
	ntfs := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	pcNTFS := testvol.Partclone(t, "partclone.ntfs", ntfs, false)
	pcFAT := testvol.Partclone(t, "partclone.fat16", fat, false)
	root := t.TempDir()
	// Commands not given --cache-dir use the user's cache directory: keep
	// it inside the test.
	t.Setenv("XDG_CACHE_HOME", filepath.Join(root, "xdg"))
	dir := filepath.Join(root, "2026-01-01-img")
	cache := filepath.Join(root, "cache")
	os.MkdirAll(dir, 0o700)
	sh := exec.Command("bash", "-c", `set -eo pipefail; cd "$D"
echo "This image was saved by Clonezilla." > clonezilla-img; echo sda1 sda2 > parts
gzip -c "$N" | split -b 4000000 - sda1.ntfs-ptcl-img.gz.
zstd -q -c "$F" | split -b 500000 - sda2.vfat-ptcl-img.zst.`)
	sh.Env = append(os.Environ(), "D="+dir, "N="+pcNTFS, "F="+pcFAT)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	out, stderr, code := cbimg(t, nil, "info", dir)
	if code != 0 || !strings.Contains(out, dir+"@sda1  ntfs via partclone, gz") || !strings.Contains(out, dir+"@sda2  vfat via partclone, zst") {
		t.Fatalf("info DIR: %d %s %s", code, out, stderr)
	}
	for _, c := range []struct{ part, compression, vol string }{{"sda1", "gzip", ntfs}, {"sda2", "zstd", fat}} {
		name := dir + "@" + c.part
		out, stderr, code = cbimg(t, nil, "--cache-dir", cache, "info", "--json", name)
		var info struct {
			Format      string   `json:"format"`
			Compression string   `json:"compression"`
			Pieces      []string `json:"pieces"`
			Notes       []string `json:"notes"`
			Origin      string   `json:"origin"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
			t.Fatalf("info --json: %d %s %s", code, out, stderr)
		}
		access := info.Notes[len(info.Notes)-1]
		if info.Format != "partclone" || info.Compression != c.compression || len(info.Pieces) < 2 ||
			!strings.HasPrefix(access, "random access: ") || !strings.Contains(access, cache) || !strings.Contains(info.Origin, "Clonezilla image 2026-01-01-img, partition "+c.part) {
			t.Fatalf("info: %+v", info)
		}
		out, stderr, code = cbimg(t, nil, "--cache-dir", cache, "verify", name)
		if code != 0 || !strings.HasPrefix(out, "OK: partclone") {
			t.Fatalf("verify: %d %s %s", code, out, stderr)
		}
	}
	// ls -r and cat of the NTFS partition against fls and icat of its source.
	foreignFiles(t, foreignCase{name: "clonezilla", vol: ntfs, img: dir + "@sda1", ntfs: true, partclone: true})
	target := filepath.Join(root, "restored")
	if _, stderr, code := cbimg(t, nil, "restore", "--yes", dir+"@sda1", target); code != 0 {
		t.Fatalf("restore: %d %s", code, stderr)
	}
	if a, b := oracle.NTFSCloneHash(t, target), oracle.NTFSCloneHash(t, ntfs); a != b {
		t.Errorf("ntfsclone --save-image of the restored volume differs from the source's")
	}
	// volume.raw of a mount is what the restore wrote (a fresh sparse file:
	// used clusters, the rebuilt backup boot sector, zeros elsewhere).
	want, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(target)
	mnt := filepath.Join(root, "mnt")
	os.Mkdir(mnt, 0o755)
	if _, stderr, code := cbimg(t, nil, "--cache-dir", cache, "mount", dir+"@sda1", mnt); code != 0 {
		t.Fatalf("mount: %s", stderr)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "volume.raw"))
	if _, stderr, code := cbimg(t, nil, "umount", mnt); code != 0 {
		exec.Command("fusermount", "-u", "-z", mnt).Run()
		t.Errorf("umount: %s", stderr)
	}
	if err != nil || len(got) != len(want) || string(got) != string(want) {
		t.Errorf("volume.raw: %d bytes (%v), the restore wrote %d, or they differ", len(got), err, len(want))
	}
	conv := filepath.Join(root, "sda2.cbi")
	if _, stderr, code := cbimg(t, nil, "convert", dir+"@sda2", conv); code != 0 {
		t.Fatalf("convert: %d %s", code, stderr)
	}
	if out, stderr, code := cbimg(t, nil, "verify", conv); code != 0 {
		t.Fatalf("verify converted: %d %s %s", code, out, stderr)
	}
	// Naming the directory where one partition is needed: exit 2, naming them.
	if _, stderr, code := cbimg(t, nil, "verify", dir); code != 2 || !strings.Contains(stderr, dir+"@sda2") {
		t.Errorf("verify DIR: %d %s", code, stderr)
	}
	// The last piece cut short: exit 3, the index is not trusted.
	pieces, _ := filepath.Glob(filepath.Join(dir, "sda1.ntfs-ptcl-img.gz.*"))
	last := pieces[len(pieces)-1]
	st, _ := os.Stat(last)
	os.Truncate(last, st.Size()-1000)
	if _, stderr, code := cbimg(t, nil, "--cache-dir", cache, "info", dir+"@sda1"); code != 3 || !strings.Contains(stderr, "truncated") {
		t.Errorf("cut piece: %d %s", code, stderr)
	}
}
