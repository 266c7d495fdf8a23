//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/browse/browsetest"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
)

type foreignCase struct {
	name, vol, img, ref string // ref: what partclone.restore / ntfsclone -r make of img
	ntfs, partclone     bool
	// lossy: the image itself misses used clusters (partclone 0.3.23's
	// FAT12 images: partclone.restore's own result fails fsck.fat), so the
	// result is compared with partclone.restore's, not with the source.
	lossy bool
}

func foreignCases(t *testing.T) []foreignCase {
	ntfs := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	fat16 := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	fat32 := testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"})
	fat12 := testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"})
	win := testvol.Real(t, "ntfs/win10-test-ntfs.dd")
	lfn := testvol.Real(t, "fat/mkfs-fat16-lfn.img")
	pc := func(name, tool, vol string, stdout bool, ntfs bool) foreignCase {
		img := testvol.Partclone(t, tool, vol, stdout)
		return foreignCase{name, vol, img, testvol.PartcloneRestore(t, img), ntfs, true, tool == "partclone.fat12"}
	}
	nc := func(name, vol string, stdout bool) foreignCase {
		img := testvol.NTFSClone(t, vol, stdout)
		return foreignCase{name, vol, img, testvol.NTFSCloneRestore(t, img), true, false, false}
	}
	return []foreignCase{
		pc("partclone-ntfs", "partclone.ntfs", ntfs, false, true),
		pc("partclone-ntfs-stdout", "partclone.ntfs", ntfs, true, true),
		pc("partclone-fat32", "partclone.fat32", fat32, false, false),
		pc("partclone-fat16-stdout", "partclone.fat16", fat16, true, false),
		pc("partclone-fat12", "partclone.fat12", fat12, false, false),
		pc("partclone-win10-ntfs", "partclone.ntfs", win, false, true),
		pc("partclone-lfn-fat16", "partclone.fat16", lfn, false, false),
		nc("ntfsclone", ntfs, false),
		nc("ntfsclone-stdout-win10", win, true),
	}
}

// TestForeignImages: partclone and ntfsclone images, named as they are:
// info says what they are; verify checks them; ls -r and cat give what
// sleuthkit's fls and icat give for the source volume; restore writes a
// volume ntfsclone (NTFS) or fsck.fat and icat (FAT) find equal to the
// source; convert makes a .cbi that verifies and reads the same.
func TestForeignImages(t *testing.T) {
	testvol.Need(t, "fls", "icat", "fsck.fat")
	for _, c := range foreignCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out, stderr, code := cbimg(t, nil, "info", "--json", c.img)
			var info struct {
				Format      string   `json:"format"`
				FileSystem  string   `json:"file_system"`
				ClusterSize uint32   `json:"cluster_size"`
				Stored      uint64   `json:"clusters_stored"`
				Total       uint64   `json:"clusters_total"`
				Compression string   `json:"compression"`
				Pieces      []string `json:"pieces"`
				Checksums   string   `json:"checksums"`
				Notes       []string `json:"notes"`
				Partition   int64    `json:"partition_bytes"`
			}
			if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
				t.Fatalf("info --json: %d %s %s", code, out, stderr)
			}
			kind := map[bool]string{true: "partclone", false: "ntfsclone"}[c.partclone]
			st, _ := os.Stat(c.vol)
			if info.Format != kind || info.Compression != "none" || len(info.Pieces) != 1 || info.Stored == 0 || info.Stored > info.Total ||
				info.Partition != st.Size() || (info.FileSystem == "ntfs") != c.ntfs || info.Checksums == "" {
				t.Errorf("info: %+v", info)
			}
			if c.partclone && c.ntfs && (len(info.Notes) != 1 || !strings.Contains(info.Notes[0], "backup boot sector")) {
				t.Errorf("info notes: %q", info.Notes)
			}
			out, stderr, code = cbimg(t, nil, "verify", c.img)
			if code != 0 || !strings.HasPrefix(out, "OK: "+kind) || c.partclone == strings.Contains(out, "no checksums") {
				t.Errorf("verify: %d %q %s", code, out, stderr)
			}
			foreignFiles(t, c)
			// restore, then check the result with independent readers.
			target := filepath.Join(dir, "restored")
			_, stderr, code = cbimg(t, nil, "restore", "--yes", c.img, target)
			if code != 0 {
				t.Fatalf("restore: %d %s", code, stderr)
			}
			if c.partclone && c.ntfs && !strings.Contains(stderr, "rebuilds it from the primary boot sector") {
				t.Errorf("restore does not say it rebuilt the backup boot sector: %q", stderr)
			}
			switch {
			case c.ntfs:
				if a, b := oracle.NTFSCloneHash(t, target), oracle.NTFSCloneHash(t, c.vol); a != b {
					t.Errorf("ntfsclone --save-image of the restored volume differs from the source's")
				}
			case c.lossy:
				if a, b := oracle.Fsck(t, target), oracle.Fsck(t, c.ref); a != b {
					t.Errorf("fsck.fat -n: restored %s, partclone.restore's %s", a, b)
				}
			default:
				oracle.FsckFAT(t, target) // fails the test unless clean
				for _, f := range oracle.Files(t, c.vol) {
					if oracle.ICatHash(t, target, f.Addr) != oracle.ICatHash(t, c.vol, f.Addr) {
						t.Errorf("restored %s differs", f.Path)
					}
				}
			}
			// The restored file holds what partclone.restore / ntfsclone -r
			// write, and where partclone leaves the NTFS backup boot sector
			// out, the source's.
			got, _ := os.ReadFile(target)
			want, _ := os.ReadFile(c.ref)
			if c.partclone && c.ntfs {
				src, _ := os.ReadFile(c.vol)
				n := len(want) - 512
				if !bytes.Equal(got[:n], want[:n]) || !bytes.Equal(got[n:], src[n:]) {
					t.Errorf("restored volume differs from partclone.restore's beyond the backup boot sector")
				}
			} else if !bytes.Equal(got, want) {
				t.Errorf("restored volume differs from the other tool's restore")
			}
			// convert: a .cbi that verifies and reads the same.
			cbi := filepath.Join(dir, "x.cbi")
			if _, stderr, code := cbimg(t, nil, "convert", "-q", c.img, cbi); code != 0 {
				t.Fatalf("convert: %d %s", code, stderr)
			}
			if out, stderr, code := cbimg(t, nil, "verify", cbi); code != 0 || !strings.Contains(out, "digest matches") {
				t.Errorf("verify of the converted image: %d %s %s", code, out, stderr)
			}
			out, _, _ = cbimg(t, nil, "info", "--json", cbi)
			var ci struct {
				Format string `json:"format"`
				Origin string `json:"origin"`
			}
			json.Unmarshal([]byte(out), &ci)
			if ci.Format != "cbi" || !strings.HasPrefix(ci.Origin, kind) {
				t.Errorf("converted image: format %q origin %q", ci.Format, ci.Origin)
			}
			back := filepath.Join(dir, "back")
			if _, stderr, code := cbimg(t, nil, "restore", "--yes", cbi, back); code != 0 {
				t.Fatalf("restore of the converted image: %s", stderr)
			}
			if b, _ := os.ReadFile(back); !bytes.Equal(b, got) {
				t.Errorf("the converted image restores to other bytes")
			}
		})
	}
}

// foreignFiles: ls -r lists every allocated file fls lists (without NTFS
// metadata files), and cat gives icat's bytes for each — of the source, or
// for a lossy image of what partclone.restore makes of it.
func foreignFiles(t *testing.T, c foreignCase) {
	t.Helper()
	src := c.vol
	if c.lossy {
		src = c.ref
	}
	fls := browsetest.FLSAddrs(t, src)
	tree := lsTree(t, c.img)
	out, stderr, code := cbimg(t, nil, "ls", "-r", "--json", c.img)
	var list []struct {
		Path    string `json:"path"`
		Type    string `json:"type"`
		Streams []struct {
			Name string `json:"name"`
		} `json:"streams"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("ls -r --json: %d %s", code, stderr)
	}
	listed := map[string]bool{}
	for _, e := range list {
		if e.Type == "file" {
			listed[e.Path] = true
		}
		for _, s := range e.Streams {
			listed[e.Path+":"+s.Name] = true
		}
	}
	catted := 0
	for p, addr := range fls {
		if strings.HasPrefix(p, "/$") || strings.Contains(p, "/$OrphanFiles") || strings.Contains(p, "(Volume Label Entry)") {
			continue
		}
		if !listed[p] {
			if _, ok := tree[p]; !ok {
				t.Errorf("fls lists %s; ls -r does not", p)
			}
			continue
		}
		got, stderr, code := cbimg(t, nil, "cat", c.img, p)
		if code != 0 {
			t.Errorf("cat %s: %s", p, stderr)
			continue
		}
		if hashBytes([]byte(got)) != browsetest.ICatHash(t, src, addr) {
			t.Errorf("cat %s differs from icat", p)
		}
		catted++
	}
	for p := range listed {
		if _, ok := fls[p]; !ok && !strings.HasPrefix(p, "/$") {
			t.Errorf("ls -r lists %s; fls does not", p)
		}
	}
	if catted == 0 {
		t.Errorf("no file compared")
	}
	t.Logf("%d entries, %d files and streams catted equal to icat", len(tree), catted)
}

// TestForeignMount: volume.raw of a mounted partclone image is what
// partclone.restore writes (and the source's backup boot sector, which it
// leaves out); of an ntfsclone image what ntfsclone -r writes; of the .cbi
// converted from either, the same bytes.
func TestForeignMount(t *testing.T) {
	testvol.Need(t, "fusermount")
	cases := foreignCases(t)
	for _, c := range []foreignCase{cases[0], cases[3], cases[7]} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cbi := filepath.Join(dir, "x.cbi")
			if _, stderr, code := cbimg(t, nil, "convert", "-q", "--compress", "none", c.img, cbi); code != 0 {
				t.Fatalf("convert: %s", stderr)
			}
			want, _ := os.ReadFile(c.ref)
			if c.partclone && c.ntfs {
				src, _ := os.ReadFile(c.vol)
				copy(want[len(want)-512:], src[len(src)-512:])
			}
			for _, img := range []string{c.img, cbi} {
				mnt := filepath.Join(dir, "mnt")
				os.Mkdir(mnt, 0o755)
				if _, stderr, code := cbimg(t, nil, "mount", img, mnt); code != 0 {
					t.Fatalf("mount %s: %s", img, stderr)
				}
				got, err := os.ReadFile(filepath.Join(mnt, "volume.raw"))
				if _, stderr, code := cbimg(t, nil, "umount", mnt); code != 0 {
					exec.Command("fusermount", "-u", "-z", mnt).Run()
					t.Errorf("umount: %s", stderr)
				}
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("volume.raw of %s: %d bytes (%v), differs from the reference", filepath.Base(img), len(got), err)
				}
			}
			// --files: a file read through the mount is what cat gives.
			mnt := filepath.Join(dir, "files")
			os.Mkdir(mnt, 0o755)
			if _, stderr, code := cbimg(t, nil, "mount", "--files", c.img, mnt); code != 0 {
				t.Fatalf("mount --files: %s", stderr)
			}
			got, err := os.ReadFile(filepath.Join(mnt, "Data", "4097.bin"))
			if _, stderr, code := cbimg(t, nil, "umount", mnt); code != 0 {
				exec.Command("fusermount", "-u", "-z", mnt).Run()
				t.Errorf("umount: %s", stderr)
			}
			want2, _, _ := cbimg(t, nil, "cat", c.img, "/Data/4097.bin")
			if err != nil || len(got) != 4097 || string(got) != want2 {
				t.Errorf("mount --files: /Data/4097.bin: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestForeignBadInput: a damaged or truncated partclone image, or one whose
// header lies, gets exit 3 and a message naming the problem and where it
// is; a restore from it writes nothing.
func TestForeignBadInput(t *testing.T) {
	good, err := os.ReadFile(testvol.Partclone(t, "partclone.fat16", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}), false))
	if err != nil {
		t.Fatal(err)
	}
	ntfsGood, err := os.ReadFile(testvol.NTFSClone(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), false))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crc := append([]byte(nil), good...)
	crc[len(crc)-3000] ^= 0x40 // in the last checksum group
	// Header fields rewritten, with partclone's header CRC (CRC-32 without
	// the final inversion) made to match.
	header := func(off int, v uint64) []byte {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint64(b[off:], v)
		binary.LittleEndian.PutUint32(b[106:], ^crc32.ChecksumIEEE(b[:106]))
		return b
	}
	huge := header(36+16+8, 1<<40) // totalblock
	used := header(36+16+8+8+8, binary.LittleEndian.Uint64(good[36+16+8+8+8:])+1)
	cases := []struct {
		name, img, says string
	}{
		{"crc", write("crc.img", crc), "CRC32 mismatch over blocks"},
		{"truncated", write("trunc.img", good[:len(good)-777]), "image ends at byte"},
		{"huge", write("huge.img", huge), "1099511627776 blocks"},
		{"used-count", write("used.img", used), "the bitmap marks"},
		{"ntfsclone-truncated", write("nc.img", ntfsGood[:len(ntfsGood)-100]), "ends in the record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := cbimg(t, nil, "verify", c.img)
			if code != exitDamaged || !strings.Contains(out+stderr, c.says) {
				t.Errorf("verify: exit %d, %q %q", code, out, stderr)
			}
			if c.name == "crc" && !strings.Contains(out, "image byte") {
				t.Errorf("verify does not name the image offset: %q", out)
			}
			target := filepath.Join(dir, c.name+".restored")
			pattern := bytes.Repeat([]byte("keep"), 4<<20)
			os.WriteFile(target, pattern, 0o644)
			_, stderr, code = cbimg(t, nil, "restore", "--yes", c.img, target)
			if code != exitDamaged || !strings.Contains(stderr, c.says) {
				t.Errorf("restore: exit %d, %q", code, stderr)
			}
			if b, _ := os.ReadFile(target); !bytes.Equal(b, pattern) {
				t.Errorf("restore of a bad image wrote to the target")
			}
			t.Logf("%s", strings.TrimSpace(stderr))
		})
	}
}

// TestForeignFound: list finds partclone and ntfsclone images by content in
// a directory and inside a FAT volume (read raw), and a PARTITION:PATH name
// of one opens it.
func TestForeignFound(t *testing.T) {
	testvol.Need(t, "mcopy")
	cases := foreignCases(t)
	dir := t.TempDir()
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	for i, c := range []foreignCase{cases[3], cases[7]} {
		name := []string{"pc.bin", "nc.bin"}[i] // names that say nothing
		b, _ := os.ReadFile(c.img)
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
		testvol.Run(t, "mcopy", "-i", vol, c.img, "::/"+name)
	}
	for _, where := range []string{dir, vol} {
		out, stderr, code := cbimg(t, nil, "list", "--json", where)
		var found []struct {
			Location, Format, Error string
			FileSystem              string `json:"file_system"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &found) != nil {
			t.Fatalf("list %s: %d %s", where, code, stderr)
		}
		formats := map[string]string{}
		for _, f := range found {
			formats[filepath.Base(f.Location)] = f.Format + "/" + f.FileSystem + f.Error
		}
		if formats["pc.bin"] != "partclone/fat16" || formats["nc.bin"] != "ntfsclone/ntfs" {
			t.Errorf("list %s: %v", where, formats)
		}
	}
	out, stderr, code := cbimg(t, nil, "info", "--json", vol+":/nc.bin")
	if code != 0 || !strings.Contains(out, `"format": "ntfsclone"`) {
		t.Errorf("info PARTITION:PATH: %d %s %s", code, out, stderr)
	}
	if out, stderr, code := cbimg(t, nil, "cat", vol+":/pc.bin", "/Data/4097.bin"); code != 0 || len(out) != 4097 {
		t.Errorf("cat through PARTITION:PATH: %d %s", code, stderr)
	}
	// Restoring the partition that holds the image is refused, untouched;
	// restoring elsewhere from it works.
	before, _ := os.ReadFile(vol)
	if _, stderr, code := cbimg(t, nil, "restore", "--yes", vol+":/pc.bin", vol); code != exitRefused || !strings.Contains(stderr, "inside") {
		t.Errorf("restore over the image's own partition: exit %d %s", code, stderr)
	}
	if after, _ := os.ReadFile(vol); !bytes.Equal(before, after) {
		t.Errorf("the refused restore changed the partition")
	}
	out2 := filepath.Join(dir, "restored")
	if _, stderr, code := cbimg(t, nil, "restore", "--yes", vol+":/pc.bin", out2); code != 0 {
		t.Errorf("restore from PARTITION:PATH: %d %s", code, stderr)
	}
	if a, b := browsetest.FileHash(t, out2), browsetest.FileHash(t, cases[3].ref); a != b {
		t.Errorf("restore from PARTITION:PATH differs from partclone.restore's")
	}
}

// TestForeignRestoreRefused: restore of a partclone image takes the same
// safety checks as a .cbi: a target too small and a mounted target are
// refused (exit 4) with nothing written.
func TestForeignRestoreRefused(t *testing.T) {
	testvol.Need(t, "losetup", "ntfs-3g")
	dir := t.TempDir()
	img := testvol.Partclone(t, "partclone.fat16", testvol.Real(t, "fat/mkfs-fat16-lfn.img"), false)
	small := filepath.Join(dir, "small")
	os.WriteFile(small, bytes.Repeat([]byte{0xAA}, 1<<20), 0o600)
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", small))
	defer exec.Command("losetup", "-d", loop).Run()
	_, stderr, code := cbimg(t, nil, "restore", "--yes", img, loop)
	if code != exitRefused || !strings.Contains(stderr, "2560000") {
		t.Errorf("restore to a 1 MiB device: exit %d %s", code, stderr)
	}
	// A mounted NTFS target.
	vol := testvol.Copy(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}))
	pc := testvol.Partclone(t, "partclone.ntfs", testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), false)
	loop2 := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", vol))
	defer exec.Command("losetup", "-d", loop2).Run()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testvol.Run(t, "ntfs-3g", "-o", "ro", loop2, mnt)
	defer exec.Command("fusermount", "-u", mnt).Run()
	before, _ := os.ReadFile(vol)
	_, stderr, code = cbimg(t, nil, "restore", "--yes", pc, loop2)
	if code != exitRefused || !strings.Contains(stderr, "mounted") {
		t.Errorf("restore to a mounted device: exit %d %s", code, stderr)
	}
	if after, _ := os.ReadFile(vol); !bytes.Equal(before, after) {
		t.Errorf("a refused restore changed the target")
	}
}
