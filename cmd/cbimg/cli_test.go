//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/disk"

	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cbimg-cli")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "cbimg")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cbimg runs the binary and returns stdout, stderr and the exit code.
func cbimg(t *testing.T, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	return cbimgIn(t, "", stdin, args...)
}

// cbimgIn is cbimg run in the directory dir.
func cbimgIn(t *testing.T, dir string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// A backup to stdout piped into a restore from stdin gives the same volume.
func TestPipeBackupRestore(t *testing.T) {
	src := testvol.Real(t, "ntfs/win10-test-ntfs.dd")
	stream, stderr, code := cbimg(t, nil, "backup", "--no-default-excludes", src, "-")
	if code != 0 {
		t.Fatalf("backup to stdout: %d %s", code, stderr)
	}
	target := filepath.Join(t.TempDir(), "restored")
	if _, stderr, code := cbimg(t, []byte(stream), "restore", "-", target); code != 0 {
		t.Fatalf("restore from stdin: %d %s", code, stderr)
	}
	if a, b := oracle.NTFSCloneHash(t, src), oracle.NTFSCloneHash(t, target); a != b {
		t.Fatalf("ntfsclone hashes differ")
	}
	// A truncated stream is refused, and the target's boot sector is left
	// invalid.
	target2 := filepath.Join(t.TempDir(), "partial")
	_, stderr, code = cbimg(t, []byte(stream[:len(stream)*3/4]), "restore", "-", target2)
	if code != exitDamaged || !strings.Contains(stderr, "written") {
		t.Fatalf("truncated stream: exit %d, %s", code, stderr)
	}
	b := make([]byte, 512)
	f, _ := os.Open(target2)
	f.ReadAt(b, 0)
	f.Close()
	if !oracle.IsZero(b) {
		t.Fatal("boot sector written although the restore failed")
	}
}

func TestInfoVerifyJSONAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	img := filepath.Join(dir, "b.cbi")
	out, stderr, code := cbimg(t, nil, "backup", "--json", "--split", "5M", src, img)
	if code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if _, err := os.Stat(img + ".002"); err != nil {
		t.Fatal("no split volume .002")
	}
	for _, p := range []string{img, img + ".002"} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode())
		}
	}
	out, _, code = cbimg(t, nil, "info", "--json", img)
	if code != 0 {
		t.Fatal("info failed")
	}
	j = map[string]any{}
	json.Unmarshal([]byte(out), &j)
	for _, k := range []string{"file_system", "partition_bytes", "cluster_size", "clusters_stored", "compression_ratio", "exclusions", "dirty", "hibernated", "created", "tool_version", "chunks"} {
		if _, ok := j[k]; !ok {
			t.Errorf("info --json lacks %q", k)
		}
	}
	if j["file_system"] != "ntfs" || len(j["exclusions"].([]any)) < 3 {
		t.Errorf("info --json: %v", j)
	}
	if _, _, code := cbimg(t, nil, "verify", img); code != 0 {
		t.Fatal("verify of a good image failed")
	}
	// Damage a chunk in the second volume.
	b, _ := os.ReadFile(img + ".002")
	b[1000] ^= 0xff
	os.WriteFile(img+".002", b, 0o600)
	out, _, code = cbimg(t, nil, "verify", "--json", img)
	var v verifyJSON
	json.Unmarshal([]byte(out), &v)
	if code != exitDamaged || v.OK || len(v.Problems) == 0 || v.Problems[0].Region != "chunk" {
		t.Fatalf("verify of a damaged image: exit %d %s", code, out)
	}
	if _, stderr, code := cbimg(t, nil, "restore", img, filepath.Join(dir, "t")); code != exitDamaged {
		t.Fatalf("restore of a damaged image: exit %d %s", code, stderr)
	}
	// Not a file system.
	zero := filepath.Join(dir, "zero")
	os.WriteFile(zero, make([]byte, 1<<20), 0o600)
	if _, stderr, code := cbimg(t, nil, "backup", zero, filepath.Join(dir, "z.cbi")); code != exitFS || !strings.Contains(stderr, "all zeros") {
		t.Fatalf("backup of zeros: exit %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "z.cbi.partial")); err == nil {
		t.Fatal("partial image left behind")
	}
	if _, _, code := cbimg(t, nil, "backup", "--compress", "lz4", src, filepath.Join(dir, "x.cbi")); code != exitUsage {
		t.Fatalf("bad --compress: exit %d", code)
	}
}

// Mounted sources and targets are refused.
func TestMountedRefused(t *testing.T) {
	testvol.Need(t, "ntfs-3g", "fusermount")
	dir := t.TempDir()
	vol := testvol.Copy(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}))
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testvol.Run(t, "ntfs-3g", vol, mnt)
	defer exec.Command("fusermount", "-u", mnt).Run()
	img := filepath.Join(dir, "m.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", vol, img); code != exitRefused || !strings.Contains(stderr, "read-write") {
		t.Fatalf("backup of a rw-mounted source: exit %d %s", code, stderr)
	}
	if _, stderr, code := cbimg(t, nil, "backup", "--force", vol, img); code != 0 || !strings.Contains(stderr, "warning") {
		t.Fatalf("backup --force: exit %d %s", code, stderr)
	}
	if _, stderr, code := cbimg(t, nil, "restore", "--yes", img, vol); code != exitRefused || !strings.Contains(stderr, "mounted") {
		t.Fatalf("restore over a mounted target: exit %d %s", code, stderr)
	}
}

// A block device smaller than the file system is refused with the size
// needed.
func TestTargetTooSmall(t *testing.T) {
	testvol.Need(t, "losetup")
	dir := t.TempDir()
	img := filepath.Join(dir, "s.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", testvol.Real(t, "fat/mkfs-fat16-lfn.img"), img); code != 0 {
		t.Fatal(stderr)
	}
	small := filepath.Join(dir, "small")
	os.WriteFile(small, make([]byte, 1<<20), 0o600)
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", small))
	defer exec.Command("losetup", "-d", loop).Run()
	_, stderr, code := cbimg(t, nil, "restore", "--yes", img, loop)
	if code != exitRefused || !strings.Contains(stderr, "2560000") {
		t.Fatalf("restore to a 1 MiB device: exit %d %s", code, stderr)
	}
}

// A BitLocker volume is refused with a clear message; --sector-by-sector
// copies it whole and restores it byte for byte.
func TestBitLockerAndSectorBySector(t *testing.T) {
	dir := t.TempDir()
	vol := testvol.Copy(t, testvol.Real(t, "ntfs/win10-test-ntfs.dd"))
	f, _ := os.OpenFile(vol, os.O_RDWR, 0)
	f.WriteAt([]byte("-FVE-FS-"), 3)
	f.Close()
	img := filepath.Join(dir, "b.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", vol, img); code != exitFS || !strings.Contains(stderr, "BitLocker") {
		t.Fatalf("backup of a BitLocker volume: exit %d %s", code, stderr)
	}
	if _, stderr, code := cbimg(t, nil, "backup", "--sector-by-sector", vol, img); code != 0 {
		t.Fatalf("--sector-by-sector: exit %d %s", code, stderr)
	}
	out := filepath.Join(dir, "r")
	if _, stderr, code := cbimg(t, nil, "restore", "--yes", img, out); code != 0 {
		t.Fatalf("restore: %d %s", code, stderr)
	}
	a, _ := os.ReadFile(vol)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Fatal("sector-by-sector restore differs")
	}
	info, _, _ := cbimg(t, nil, "info", "--json", img)
	if !strings.Contains(info, `"file_system": "raw"`) {
		t.Fatalf("info: %s", info)
	}
}

// FAT copies that disagree are reported, and the backup keeps both.
func TestFATCopiesDisagree(t *testing.T) {
	dir := t.TempDir()
	vol := testvol.Copy(t, testvol.Real(t, "fat/mkfs-fat16-lfn.img"))
	f, _ := os.OpenFile(vol, os.O_RDWR, 0)
	b := make([]byte, 512)
	f.ReadAt(b, 0)
	reserved := int64(b[14]) | int64(b[15])<<8
	fatSz := int64(b[22]) | int64(b[23])<<8
	// Entry 100 of the second FAT copy.
	f.WriteAt([]byte{0x34, 0x12}, (reserved+fatSz)*512+200)
	f.Close()
	_, stderr, code := cbimg(t, nil, "backup", vol, filepath.Join(dir, "f.cbi"))
	if code != 0 || !strings.Contains(stderr, "FAT copy 2 differs") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// A FAT volume mounted by fusefat (which names itself, not the file, in the
// mount table) is still seen as mounted.
func TestFusefatMountSeen(t *testing.T) {
	testvol.Need(t, "fusefat", "fusermount")
	dir := t.TempDir()
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testvol.Run(t, "fusefat", "-o", "rw+", vol, mnt)
	defer exec.Command("fusermount", "-u", mnt).Run()
	img := filepath.Join(dir, "f.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", vol, img); code != exitRefused {
		t.Fatalf("backup of a fusefat-mounted source: exit %d %s", code, stderr)
	}
	if _, stderr, code := cbimg(t, nil, "backup", "--force", vol, img); code != 0 {
		t.Fatalf("backup --force: %d %s", code, stderr)
	}
	if _, stderr, code := cbimg(t, nil, "restore", "--yes", img, vol); code != exitRefused {
		t.Fatalf("restore over a fusefat mount: exit %d %s", code, stderr)
	}
}

// An image written to a FAT file system is split below 4 GiB on its own.
func TestAutoSplitOnFAT(t *testing.T) {
	testvol.Need(t, "fusefat", "fusermount")
	dir := t.TempDir()
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 300, Content: "empty"}))
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testvol.Run(t, "fusefat", "-o", "rw+", vol, mnt)
	defer exec.Command("fusermount", "-u", mnt).Run()
	img := filepath.Join(mnt, "b.cbi")
	_, stderr, code := cbimg(t, nil, "backup", testvol.Real(t, "ntfs/win10-test-ntfs.dd"), img)
	if code != 0 || !strings.Contains(stderr, "split into volumes of 4095 MiB") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out, _, _ := cbimg(t, nil, "info", "--json", img)
	if !strings.Contains(out, `"split_size": 4293918720`) {
		t.Fatalf("info: %s", out)
	}
}

// --chunk-size sets the logical chunk size; out-of-range sizes are usage errors.
func TestChunkSize(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "c.cbi")
	src := testvol.Real(t, "fat/mkfs-fat16-lfn.img")
	if _, stderr, code := cbimg(t, nil, "backup", "--chunk-size", "64K", src, img); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out, _, _ := cbimg(t, nil, "info", "--json", img)
	if !strings.Contains(out, `"chunk_size": 65536`) {
		t.Fatalf("info: %s", out)
	}
	if _, _, code := cbimg(t, nil, "verify", img); code != 0 {
		t.Fatal("verify failed")
	}
	if _, _, code := cbimg(t, nil, "backup", "--chunk-size", "1K", src, filepath.Join(dir, "x.cbi")); code != exitUsage {
		t.Fatalf("--chunk-size 1K: exit %d", code)
	}
}

// --zstd-frame sets the zstd frame size of compressed chunks (32K by
// default, 0 for one frame per chunk); both images restore to the same
// bytes, and impossible sizes are usage errors.
func TestZstdFrame(t *testing.T) {
	dir := t.TempDir()
	src := testvol.Real(t, "fat/mkfs-fat16-lfn.img")
	var restored [][]byte
	for _, tc := range []struct{ flag, want string }{
		{"", `"zstd_frame_size": 32768`},
		{"16K", `"zstd_frame_size": 16384`},
		{"0", `"chunk_size"`},
	} {
		img := filepath.Join(dir, "f"+tc.flag+".cbi")
		args := []string{"backup", src, img}
		if tc.flag != "" {
			args = []string{"backup", "--zstd-frame", tc.flag, src, img}
		}
		if _, stderr, code := cbimg(t, nil, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		out, _, _ := cbimg(t, nil, "info", "--json", img)
		if !strings.Contains(out, tc.want) || (tc.flag == "0") == strings.Contains(out, "zstd_frame_size") {
			t.Fatalf("--zstd-frame %q: info: %s", tc.flag, out)
		}
		raw := filepath.Join(dir, "r"+tc.flag+".raw")
		if _, stderr, code := cbimg(t, nil, "restore", "-y", img, raw); code != 0 {
			t.Fatalf("restore: exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(raw)
		if err != nil {
			t.Fatal(err)
		}
		restored = append(restored, b)
	}
	for i := 1; i < len(restored); i++ {
		if !bytes.Equal(restored[0], restored[i]) {
			t.Fatalf("image %d restores to other bytes", i)
		}
	}
	for _, bad := range []string{"1K", "48K", "2M", "x"} {
		if _, _, code := cbimg(t, nil, "backup", "--zstd-frame", bad, src, filepath.Join(dir, "x.cbi")); code != exitUsage {
			t.Fatalf("--zstd-frame %s: exit %d", bad, code)
		}
	}
}

// A disk image one of whose partitions is mounted (through a loop device
// on the same file) is refused as a restore target.
func TestWholeDiskWithMountedPartition(t *testing.T) {
	testvol.Need(t, "losetup", "ntfs-3g", "fusermount")
	dir := t.TempDir()
	d := disktest.MBR(t)
	s, err := disk.OpenPartition(d+"@1", false)
	if err != nil {
		t.Fatal(err)
	}
	start, size := s.Start(), s.Size()
	s.Close()
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "--show", "-f", "-o", strconv.FormatInt(start, 10), "--sizelimit", strconv.FormatInt(size, 10), d))
	defer exec.Command("losetup", "-d", loop).Run()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testvol.Run(t, "ntfs-3g", loop, mnt)
	defer exec.Command("fusermount", "-u", mnt).Run()
	img := filepath.Join(dir, "f.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", testvol.Real(t, "fat/mkfs-fat16-lfn.img"), img); code != 0 {
		t.Fatal(stderr)
	}
	for _, target := range []string{d, d + "@1"} {
		if _, stderr, code := cbimg(t, nil, "restore", "--yes", img, target); code != exitRefused || !strings.Contains(stderr, "mounted") {
			t.Errorf("restore over %s with a mounted partition: exit %d %s", target, code, stderr)
		}
	}
}

// mount --direct-io serves the same bytes as a restore.
func TestMountDirectIO(t *testing.T) {
	testvol.Need(t, "fusermount")
	dir := t.TempDir()
	img, out, mnt := filepath.Join(dir, "d.cbi"), filepath.Join(dir, "restored"), filepath.Join(dir, "mnt")
	src := testvol.Real(t, "ntfs/win10-test-ntfs.dd")
	for _, args := range [][]string{{"backup", src, img}, {"restore", "--yes", img, out}} {
		if _, stderr, code := cbimg(t, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	os.Mkdir(mnt, 0o755)
	if _, stderr, code := cbimg(t, nil, "mount", "--direct-io", img, mnt); code != 0 {
		t.Fatalf("mount: %s", stderr)
	}
	defer cbimg(t, nil, "umount", mnt)
	a, err := os.ReadFile(filepath.Join(mnt, "volume.raw"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Fatal("volume.raw with --direct-io differs from the restored volume")
	}
}
