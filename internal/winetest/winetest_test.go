//go:build linux

package winetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"golang.org/x/sys/unix"
)

var env *Env

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cbimg-wine")
	if err != nil {
		panic(err)
	}
	start := time.Now()
	root, err := repoRoot()
	if err == nil {
		env, err = Setup(root, dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "winetest: builds and Wine prefix ready in %.1fs (%s)\n", time.Since(start).Seconds(), strings.Join(env.Steps, ", "))
	code := m.Run()
	env.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("winetest: no go.mod above %s", dir)
		}
		dir = filepath.Dir(dir)
	}
}

// A volume from testdata/realimages, and how Windows names it as a device.
type realVol struct {
	rel    string // for testvol.Real
	disk   string // for a partition: the whole disk (testvol.Real name)
	part   int
	ntfs   bool
	noFLS  bool   // sleuthkit cannot read it
	drive  string // drive letter whose raw device (\\.\X:) maps to the volume
	bare   bool   // name the volume "X:" rather than "\\.\X:"
	target string // drive letter for the device restore target
}

var vols = []realVol{
	{rel: "ntfs/win10-test-ntfs.dd", ntfs: true, drive: "D:", target: "E:"},
	{rel: "fat/winxp-fat16-undel.dd", drive: "F:", bare: true, target: "G:"},
	{rel: "fat/mkfs-fat32-2048-byte-sectors.raw", noFLS: true, drive: "H:", target: "I:"},
	{rel: "fat/mkfs-fat12-lfn.img", drive: "J:", target: "K:"},
	{rel: "ntfs/win10-mbr-disk-lastaccess.raw@1", disk: "ntfs/win10-mbr-disk-lastaccess.raw", part: 1, ntfs: true, target: "L:"},
}

// TestInterchange backs each volume up with cbimg.exe under Wine and with
// the Linux cbimg, and checks that info, verify and restore agree across the
// two builds, and that the Windows device paths (\\.\X:,
// \\.\PhysicalDriveN@M, file@M) read and write what the file paths do.
func TestInterchange(t *testing.T) {
	for i, v := range vols {
		t.Run(filepath.Base(v.rel), func(t *testing.T) {
			t.Parallel()
			interchange(t, v, 90+i)
		})
	}
}

func interchange(t *testing.T, v realVol, diskNo int) {
	work := t.TempDir()
	win, lin := filepath.Join(work, "win"), filepath.Join(work, "lin")
	mkdir(t, win, lin)
	vol := testvol.Real(t, v.rel) // the volume alone (read-only, shared)
	size := fileSize(t, vol)
	// The same source name for both builds, so the headers match.
	src, winDev := "src.img", `\\.\`+v.drive
	if v.bare {
		winDev = v.drive
	}
	if v.part > 0 {
		src = fmt.Sprintf("disk.raw@%d", v.part)
		disk := testvol.Real(t, v.disk)
		symlink(t, disk, filepath.Join(win, "disk.raw"))
		symlink(t, disk, filepath.Join(lin, "disk.raw"))
		name := fmt.Sprintf("PhysicalDrive%d", diskNo)
		env.MapDevice(t, name, disk)
		winDev = fmt.Sprintf(`\\.\%s@%d`, name, v.part)
	} else {
		symlink(t, vol, filepath.Join(win, src))
		symlink(t, vol, filepath.Join(lin, src))
		env.MapDevice(t, v.drive, vol)
	}

	// Backups: Windows from the file and from the device, Linux from the file.
	mustOK(t, "wine backup", env.Wine(t, win, nil, "backup", src, "../w.cbi"))
	mustOK(t, "wine backup of "+winDev, env.Wine(t, win, nil, "backup", winDev, "../wd.cbi"))
	mustOK(t, "linux backup", env.Native(t, lin, nil, "backup", src, "../l.cbi"))

	// info --json: each build reads each image the same way, and the images
	// differ only where the time (and, for the device, the source name) does.
	infos := map[string]map[string]any{}
	for _, img := range []string{"w.cbi", "wd.cbi", "l.cbi"} {
		wi := env.Wine(t, work, nil, "info", "--json", img)
		if wi.Code != 0 {
			// Seen once on a fresh Wine prefix, never again in repeated
			// runs: log what Wine said, then ask once more (info writes
			// nothing, so a second try changes nothing it checks).
			t.Logf("wine info %s: exit %d, asking again:\n%s%s", img, wi.Code, wi.Stderr, wi.Stdout)
			wi = env.Wine(t, work, nil, "info", "--json", img)
		}
		a := mustOK(t, "wine info "+img, wi)
		b := mustOK(t, "linux info "+img, env.Native(t, work, nil, "info", "--json", img))
		if a.Stdout != b.Stdout {
			t.Errorf("info --json %s: Windows says\n%s\nLinux says\n%s", img, a.Stdout, b.Stdout)
		}
		infos[img] = parseInfo(t, b.Stdout)
	}
	drop := func(m map[string]any, keys ...string) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		for _, k := range append(keys, "image", "pieces", "created", "tool_version", "digest") {
			delete(c, k)
		}
		return c
	}
	if a, b := drop(infos["w.cbi"]), drop(infos["l.cbi"]); !reflect.DeepEqual(a, b) {
		t.Errorf("images made by cbimg.exe and cbimg differ:\n%v\n%v", a, b)
	}
	if a, b := drop(infos["wd.cbi"], "source", "image_bytes", "compression_ratio"), drop(infos["l.cbi"], "source", "image_bytes", "compression_ratio"); !reflect.DeepEqual(a, b) {
		t.Errorf("image of %s differs from the file's:\n%v\n%v", winDev, a, b)
	}

	// verify across builds.
	mustOK(t, "wine verify", env.Wine(t, work, nil, "verify", "l.cbi"))
	mustOK(t, "linux verify", env.Native(t, work, nil, "verify", "w.cbi"))
	mustOK(t, "linux verify", env.Native(t, work, nil, "verify", "wd.cbi"))

	// Files out of an image: the same listing and bytes from both builds.
	lsW := mustOK(t, "wine ls", env.Wine(t, work, nil, "ls", "-r", "--json", "l.cbi"))
	lsL := mustOK(t, "linux ls", env.Native(t, work, nil, "ls", "-r", "--json", "w.cbi"))
	if lsW.Stdout != lsL.Stdout {
		t.Errorf("ls -r --json differs between builds:\n%s\n%s", lsW.Stdout, lsL.Stdout)
	}
	var entries []struct {
		Path string `json:"path"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(lsL.Stdout), &entries); err != nil {
		t.Fatalf("ls --json: %v", err)
	}
	cats := 0
	for _, e := range entries {
		if e.Type != "file" || cats >= 5 {
			continue
		}
		a := env.Wine(t, work, nil, "cat", "l.cbi", e.Path)
		b := env.Native(t, work, nil, "cat", "w.cbi", e.Path)
		if a.Code != b.Code || a.Stdout != b.Stdout {
			t.Errorf("cat %s differs between builds (exit %d vs %d, %d vs %d bytes)", e.Path, a.Code, b.Code, len(a.Stdout), len(b.Stdout))
		}
		cats++
	}

	// Restores onto identical targets that hold old data: every pairing of
	// image maker and restorer, and cbimg.exe onto a raw device, give the
	// same bytes.
	targets := map[string]string{}
	restore := func(name string, wine bool, img, target string) {
		path := filepath.Join(work, name)
		writeTarget(t, path, size)
		targets[name] = path
		if wine {
			mustOK(t, "wine restore "+img+" to "+target, env.Wine(t, work, nil, "restore", img, target, "--yes"))
		} else {
			mustOK(t, "linux restore "+img, env.Native(t, work, nil, "restore", img, target, "--yes"))
		}
	}
	pairs := []string{"wl", "lw", "ww", "dev"}
	if v.part > 0 {
		pairs = []string{"ww", "dev"} // big: the cross pairs are shown on the others
	}
	restore("ll", false, "l.cbi", "ll")
	for _, p := range pairs[:len(pairs)-1] {
		img := map[byte]string{'l': "l.cbi", 'w': "w.cbi"}[p[0]]
		restore(p, p[1] == 'w', img, p)
	}
	env.MapDevice(t, v.target, filepath.Join(work, "dev"))
	restore("dev", true, "wd.cbi", `\\.\`+v.target)
	want := hashRange(t, targets["ll"], 0, size)
	for _, name := range pairs {
		if got := hashRange(t, targets[name], 0, size); got != want {
			t.Errorf("restore %s differs from the Linux restore of the Linux image", name)
		}
	}
	if v.part > 0 {
		// Into partition N of a copy of the disk, through \\.\PhysicalDriveN@M:
		// the bytes around the partition stay as they were.
		disk := testvol.Copy(t, testvol.Real(t, v.disk))
		p := partitionRange(t, disk, v.part)
		before := [2]string{hashRange(t, disk, 0, p[0]), hashRange(t, disk, p[0]+p[1], fileSize(t, disk)-p[0]-p[1])}
		writeRange(t, disk, p[0], p[1])
		env.MapDevice(t, fmt.Sprintf("PhysicalDrive%d", diskNo+10), disk)
		mustOK(t, "wine restore to a partition", env.Wine(t, work, nil, "restore", "l.cbi", fmt.Sprintf(`\\.\PhysicalDrive%d@%d`, diskNo+10, v.part), "--yes"))
		if hashRange(t, disk, p[0], p[1]) != want {
			t.Errorf("restore to partition %d of a disk differs from the Linux restore", v.part)
		}
		if after := [2]string{hashRange(t, disk, 0, p[0]), hashRange(t, disk, p[0]+p[1], fileSize(t, disk)-p[0]-p[1])}; after != before {
			t.Errorf("restore to partition %d changed bytes outside it", v.part)
		}
	}

	// An independent reader sees the source's files in the volume restored
	// by cbimg.exe from a device backup.
	if !v.noFLS {
		if a, b := oracle.Live(oracle.FLS(t, vol)), oracle.Live(oracle.FLS(t, targets["dev"])); !reflect.DeepEqual(a, b) {
			t.Errorf("fls of the restored volume differs from the source's (%d vs %d entries)", len(b), len(a))
		}
	}
	if v.ntfs {
		if oracle.NTFSCloneHash(t, vol) != oracle.NTFSCloneHash(t, targets["dev"]) {
			t.Errorf("ntfsclone sees different used clusters after the restore")
		}
	} else if a, b := oracle.Fsck(t, vol), oracle.Fsck(t, targets["dev"]); a != b {
		t.Errorf("fsck.fat -n of the restored volume differs from the source's:\n%s\n%s", a, b)
	}
}

// A backup written by cbimg.exe to standard output restores with the Linux
// cbimg from standard input.
func TestPipe(t *testing.T) {
	work := t.TempDir()
	vol := testvol.Real(t, "ntfs/win10-test-ntfs.dd")
	symlink(t, vol, filepath.Join(work, "src.img"))
	r := mustOK(t, "wine backup to stdout", env.Wine(t, work, nil, "backup", "src.img", "-"))
	mustOK(t, "linux restore from stdin", env.Native(t, work, []byte(r.Stdout), "restore", "-", "piped", "--yes"))
	mustOK(t, "linux backup", env.Native(t, work, nil, "backup", "src.img", "l.cbi"))
	mustOK(t, "linux restore", env.Native(t, work, nil, "restore", "l.cbi", "direct", "--yes"))
	a, b := filepath.Join(work, "piped"), filepath.Join(work, "direct")
	if fileSize(t, a) != fileSize(t, b) || hashRange(t, a, 0, fileSize(t, a)) != hashRange(t, b, 0, fileSize(t, b)) {
		t.Error("the restore of cbimg.exe's piped image differs")
	}
}

// Windows-only failures come with a clear message and exit code.
func TestWindowsErrors(t *testing.T) {
	work := t.TempDir()
	vol := testvol.Real(t, "fat/mkfs-fat12-lfn.img")
	symlink(t, vol, filepath.Join(work, "src.img"))
	mustOK(t, "linux backup", env.Native(t, work, nil, "backup", "src.img", "a.cbi"))

	small := filepath.Join(work, "small")
	writeTarget(t, small, 64<<10)
	env.MapDevice(t, "S:", small)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"restore", "a.cbi", `\\.\S:`, "--yes"}, 4, "smaller than the file system"},
		{[]string{"restore", "a.cbi", `\\.\PhysicalDrive77`, "--yes"}, 1, "no such volume or disk"},
		{[]string{"backup", `\\.\PhysicalDrive77@1`, "b.cbi"}, 1, `the disk \\.\PhysicalDrive77 exists`},
		{[]string{"backup", "src.img@1", "b.cbi"}, 1, "no partition table"},
		{[]string{"backup", `\\.\PhysicalDriveX`, "b.cbi"}, 1, "disk number"},
	}
	for _, tt := range tests {
		r := env.Wine(t, work, nil, tt.args...)
		if r.Code != tt.code || !strings.Contains(r.Stderr, tt.msg) {
			t.Errorf("cbimg.exe %s: exit %d, %q; want exit %d and %q", strings.Join(tt.args, " "), r.Code, r.Stderr, tt.code, tt.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "b.cbi")); err == nil {
		t.Error("a failed backup left an image")
	}
}

func mustOK(t *testing.T, what string, r Result) Result {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", what, r.Code, r.Stderr, r.Stdout)
	}
	t.Logf("%s: %.2fs", what, r.Took.Seconds())
	return r
}

func parseInfo(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("info --json: %v\n%s", err, s)
	}
	return m
}

func mkdir(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, old, new string) {
	t.Helper()
	if err := os.Symlink(old, new); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// writeTarget makes a sparse file of size bytes laid out as writeRange
// leaves a range.
func writeTarget(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	writeRange(t, path, 0, size)
}

// writeRange makes [off, off+n) of a file hold old data: a pattern in its
// first 4 MiB, zeros (a hole) after, so restores that skip free clusters
// leave a visible trace.
func writeRange(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		t.Fatal(err)
	}
	k := min(n, 4<<20)
	pat := bytes.Repeat([]byte("old data "), int(k/9+1))
	if _, err := f.WriteAt(pat[:k], off); err != nil {
		t.Fatal(err)
	}
}

func hashRange(t *testing.T, p string, off, n int64) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if k, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil || k != n {
		t.Fatalf("read %s: %d of %d bytes: %v", p, k, n, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// partitionRange asks sfdisk (not cbimg's own table reader) where
// partition n of a disk image lies: start and length in bytes.
func partitionRange(t *testing.T, disk string, n int) [2]int64 {
	t.Helper()
	out := testvol.Run(t, "sfdisk", "-J", disk)
	var j struct {
		PartitionTable struct {
			SectorSize int64
			Partitions []struct {
				Node        string
				Start, Size int64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	for _, p := range j.PartitionTable.Partitions {
		if p.Node == fmt.Sprintf("%s%d", disk, n) {
			ss := j.PartitionTable.SectorSize
			return [2]int64{p.Start * ss, p.Size * ss}
		}
	}
	t.Fatalf("sfdisk: %s has no partition %d", disk, n)
	return [2]int64{}
}
