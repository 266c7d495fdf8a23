//go:build linux

// Package testvol gives tests real NTFS, FAT and exFAT volume files.
// Volumes are built by the scripts in testdata/mkvol with the real tools
// (mkntfs and an ntfs-3g mount, mkfs.fat and mtools, mkfs.exfat and an
// exfat-fuse mount), so readers are tested against what those tools write
// rather than against bytes we made up. Built volumes are
// cached under os.TempDir() by a hash of the spec and the scripts, shared by
// all test processes, and must be treated as read-only: use Copy to get a
// private, writable copy.
package testvol

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NTFSSpec describes an NTFS volume to build.
type NTFSSpec struct {
	SizeMiB     int    // volume size; 0 = 64 (256 for "full")
	ClusterSize int    // bytes; 0 = mkntfs default (4096 for these sizes)
	Content     string // "empty" (also ""), "basic" or "full"; see testdata/mkvol/README.md
	Dirty       bool   // set the dirty flag in $Volume after building
	Hibernated  bool   // hiberfil.sys begins with "hibr" (ntfs-3g then refuses to mount it)
}

// FATSpec describes a FAT volume to build.
type FATSpec struct {
	Bits        int    // 12, 16 or 32
	SizeMiB     int    // volume size; 0 = 16 (64 for FAT32)
	ClusterSize int    // bytes; 0 = mkfs.fat default
	SectorSize  int    // logical sector size in bytes; 0 = 512
	Content     string // "empty" (also ""), "basic" or "full"; see testdata/mkvol/README.md
}

// ExFATSpec describes an exFAT volume to build (mkfs.exfat, filled
// through exfat-fuse on a loop device: needs root).
type ExFATSpec struct {
	SizeMiB     int    // volume size; 0 = 64
	ClusterSize int    // bytes; 0 = mkfs.exfat default
	SectorSize  int    // 512 or 4096; 0 = 512
	Content     string // "empty" (also ""), "basic" or "full"; see testdata/mkvol/README.md
	Align       int    // boundary alignment of the FAT and heap in bytes; 0 = mkfs.exfat default
}

// Magic is the start of a .cbi image; the "old.cbi" fixtures begin with it.
const Magic = "CBIMG\x1a\n\x00"

// buildTimeout bounds one fixture build; a full 256 MiB NTFS takes ~20 s.
const buildTimeout = 5 * time.Minute

// NTFS returns the path of an NTFS volume file built to spec. The file is
// shared and cached: callers must not modify it (use Copy).
func NTFS(t testing.TB, spec NTFSSpec) string {
	t.Helper()
	content := normContent(t, spec.Content)
	size := spec.SizeMiB
	if size == 0 {
		size = 64
		if content == "full" {
			size = 256
		}
	}
	tools := []string{"mkntfs", "ntfs-3g", "fusermount", "openssl", "perl", "awk", "bash"}
	if content == "full" {
		tools = append(tools, "python3", "fallocate")
	}
	Need(t, tools...)
	args := []string{strconv.Itoa(size), strconv.Itoa(spec.ClusterSize), content}
	if spec.Dirty {
		args = append(args, "dirty")
	}
	if spec.Hibernated {
		args = append(args, "hibernated")
	}
	return script(t, "ntfs.sh", args)
}

// FAT returns the path of a FAT volume file built to spec. The file is shared
// and cached: callers must not modify it (use Copy).
func FAT(t testing.TB, spec FATSpec) string {
	t.Helper()
	content := normContent(t, spec.Content)
	if spec.Bits != 12 && spec.Bits != 16 && spec.Bits != 32 {
		t.Fatalf("testvol: FAT bits must be 12, 16 or 32, not %d", spec.Bits)
	}
	size := spec.SizeMiB
	if size == 0 {
		size = 16
		if spec.Bits == 32 {
			size = 64
		}
	}
	Need(t, "mkfs.fat", "mcopy", "mmd", "mdel", "openssl", "perl", "awk", "bash")
	args := []string{strconv.Itoa(spec.Bits), strconv.Itoa(size), strconv.Itoa(spec.ClusterSize),
		strconv.Itoa(spec.SectorSize), content}
	return script(t, "fat.sh", args)
}

// ExFAT returns the path of an exFAT volume file built to spec. The file
// is shared and cached: callers must not modify it (use Copy).
func ExFAT(t testing.TB, spec ExFATSpec) string {
	t.Helper()
	content := normContent(t, spec.Content)
	size := spec.SizeMiB
	if size == 0 {
		size = 64
	}
	Need(t, "mkfs.exfat", "mount.exfat-fuse", "fusermount", "losetup", "openssl", "awk", "bash")
	if os.Geteuid() != 0 {
		t.Skip("testvol: exFAT volumes are filled through a loop device: needs root")
	}
	args := []string{strconv.Itoa(size), strconv.Itoa(spec.ClusterSize), strconv.Itoa(spec.SectorSize), content}
	if spec.Align != 0 {
		args = append(args, strconv.Itoa(spec.Align))
	}
	return script(t, "exfat.sh", args)
}

// MountExFAT mounts a copy of the exFAT volume file img read-only through
// exfat-fuse (on a loop device, which exfat-fuse wants when run as root)
// and returns the mount point; it is unmounted at cleanup.
func MountExFAT(t testing.TB, img string) string {
	t.Helper()
	Need(t, "mount.exfat-fuse", "losetup", "fusermount")
	loop := strings.TrimSpace(Run(t, "losetup", "-f", "--show", "-r", Copy(t, img)))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	dir := t.TempDir()
	MountDriver(t, exec.Command("mount.exfat-fuse", "-d", "-o", "ro", loop, dir), dir)
	return dir
}

// Gunzip unpacks the gzip file src into a new file and returns its path.
func Gunzip(t testing.TB, src string) string {
	t.Helper()
	zf, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	if err != nil {
		t.Fatalf("testvol: %s: %v", src, err)
	}
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".gz"))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, zr); err != nil {
		t.Fatalf("testvol: unpack %s: %v", src, err)
	}
	return out
}

func normContent(t testing.TB, c string) string {
	t.Helper()
	switch c {
	case "":
		return "empty"
	case "empty", "basic", "full":
		return c
	}
	t.Fatalf("testvol: unknown content %q (want empty, basic or full)", c)
	return ""
}

// script builds (or finds in the cache) the output of testdata/mkvol/name
// run with args.
func script(t testing.TB, name string, args []string) string {
	t.Helper()
	dir := filepath.Join(Root(t), "testdata", "mkvol")
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", name, strings.Join(args, "\x00"))
	// Any change to the scripts gives new volumes.
	scripts, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
	sort.Strings(scripts)
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatalf("testvol: %v", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(s), len(b))
		h.Write(b)
	}
	key := strings.TrimSuffix(name, ".sh") + "-" + strings.Join(args, "-") + ".img"
	return cached(t, key, h.Sum(nil), func(out string) error {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(dir, name), out}, args...)...)
		var stderr bytes.Buffer
		cmd.Stdout = &stderr
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
		}
		t.Logf("testvol: built %s %s in %v", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// cached returns the cache file for (label, sum), calling build to make it
// when it does not exist yet. A lock file serializes builders across
// processes; build writes to a temporary name that is renamed into place, so
// a reader never sees a half-built file.
func cached(t testing.TB, label string, sum []byte, build func(out string) error) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), cachePrefix+hex.EncodeToString(sum)[:20])
	final := filepath.Join(dir, safeName(label))
	if _, err := os.Stat(final); err == nil {
		// The directory's time records the last use, for pruning.
		now := time.Now()
		os.Chtimes(dir, now, now)
		return final
	}
	pruneOnce.Do(prune)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testvol: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("testvol: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("testvol: lock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(final); err == nil {
		return final // built by another process while we waited
	}
	tmp := fmt.Sprintf("%s.tmp%d", final, os.Getpid())
	os.Remove(tmp)
	if err := build(tmp); err != nil {
		os.Remove(tmp)
		t.Fatalf("testvol: building %s: %v", label, err)
	}
	// Read-only as a reminder that the cached file is shared.
	if err := os.Chmod(tmp, 0o444); err != nil {
		t.Fatalf("testvol: %v", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatalf("testvol: %v", err)
	}
	return final
}

const (
	cachePrefix = "cbimg-testvol-"
	// cacheMaxAge is how long an unused cache entry is kept.
	cacheMaxAge = 3 * 24 * time.Hour
)

var pruneOnce sync.Once

// prune removes cache entries not used for cacheMaxAge, left behind by
// older versions of the scripts.
func prune() {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), cachePrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > cacheMaxAge {
			os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// Real unpacks testdata/realimages/<rel>.gz (e.g. "ntfs/win10-test-ntfs.dd")
// into the cache, keeping it sparse, and returns its path. A rel of the form
// "<disk>@N" returns a file holding just partition N (1-4) of that MBR disk.
// The file is shared: callers must not modify it (use Copy).
func Real(t testing.TB, rel string) string {
	t.Helper()
	if base, part, ok := strings.Cut(rel, "@"); ok {
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 || n > 4 {
			t.Fatalf("testvol: bad partition number in %q", rel)
		}
		disk := Real(t, base)
		sum := sha256.Sum256([]byte(disk + "\x00" + part))
		return cached(t, rel, sum[:], func(out string) error {
			start, length, err := mbrPartition(disk, n)
			if err != nil {
				return err
			}
			return sparseCopy(out, disk, start, length)
		})
	}
	src := filepath.Join(Root(t), "testdata", "realimages", filepath.FromSlash(rel)+".gz")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testvol: real image %q: %v", rel, err)
	}
	sum := sha256.Sum256(append([]byte(rel+"\x00"), data...))
	return cached(t, rel, sum[:], func(out string) error {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		if err := writeSparse(f, zr, 0); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", src, err)
		}
		return f.Close()
	})
}

// RealList lists the rel names (for Real) of all volumes in
// testdata/realimages; an MBR disk is listed as one "<disk>@N" entry per
// partition. Boot-sector-only files (.vbr) are not listed.
func RealList(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join(Root(t), "testdata", "realimages")
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".gz") {
			return err
		}
		r, err := filepath.Rel(dir, strings.TrimSuffix(p, ".gz"))
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(r)
		sector, err := gzipHead(p, 512)
		if err != nil {
			return err
		}
		parts := mbrEntries(sector)
		if len(parts) == 0 {
			out = append(out, rel)
		}
		for _, n := range parts {
			out = append(out, fmt.Sprintf("%s@%d", rel, n))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testvol: listing real images: %v", err)
	}
	sort.Strings(out)
	return out
}

func gzipHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(zr, b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// mbrEntries returns the numbers (1-4) of the used partition entries when
// sector is an MBR, and nil when it is a volume boot record (NTFS or FAT)
// or has no partitions.
func mbrEntries(sector []byte) []int {
	if len(sector) < 512 || sector[510] != 0x55 || sector[511] != 0xAA {
		return nil
	}
	if string(sector[3:11]) == "NTFS    " || looksFAT(sector) {
		return nil
	}
	var parts []int
	for i := 0; i < 4; i++ {
		e := sector[446+16*i:]
		if e[4] != 0 && binary.LittleEndian.Uint32(e[8:]) != 0 && binary.LittleEndian.Uint32(e[12:]) != 0 {
			parts = append(parts, i+1)
		}
	}
	return parts
}

func looksFAT(b []byte) bool {
	if b[0] != 0xEB && b[0] != 0xE9 {
		return false
	}
	bps := binary.LittleEndian.Uint16(b[11:])
	spc := b[13]
	return bps >= 512 && bps <= 4096 && bps&(bps-1) == 0 && spc != 0 && spc&(spc-1) == 0 &&
		binary.LittleEndian.Uint16(b[14:]) != 0 && (b[16] == 1 || b[16] == 2)
}

// mbrPartition returns the byte range of partition n (1-4) of an MBR disk
// with 512-byte sectors.
func mbrPartition(disk string, n int) (start, length int64, err error) {
	f, err := os.Open(disk)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sector := make([]byte, 512)
	if _, err := io.ReadFull(f, sector); err != nil {
		return 0, 0, fmt.Errorf("%s: MBR: %w", disk, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	found := false
	for _, p := range mbrEntries(sector) {
		found = found || p == n
	}
	if !found {
		return 0, 0, fmt.Errorf("%s: no MBR partition %d", disk, n)
	}
	e := sector[446+16*(n-1):]
	start = int64(binary.LittleEndian.Uint32(e[8:])) * 512
	length = int64(binary.LittleEndian.Uint32(e[12:])) * 512
	if start+length > fi.Size() {
		return 0, 0, fmt.Errorf("%s: partition %d (bytes %d+%d) runs past the end of the disk (%d)", disk, n, start, length, fi.Size())
	}
	return start, length, nil
}

// Copy makes a sparse, writable copy of src in t.TempDir() and returns its path.
func Copy(t testing.TB, src string) string {
	t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatalf("testvol: %v", err)
	}
	dst := filepath.Join(t.TempDir(), safeName(filepath.Base(src)))
	if err := sparseCopy(dst, src, 0, fi.Size()); err != nil {
		t.Fatalf("testvol: copy %s: %v", src, err)
	}
	return dst
}

// Seek whence values for finding data and holes (Linux lseek(2)).
const (
	seekData = 3
	seekHole = 4
)

// sparseCopy copies length bytes of src from offset start into a new file
// dst, skipping holes and zero blocks.
func sparseCopy(dst, src string, start, length int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	end := start + length
	for off := start; off < end; {
		data, err := in.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // only a hole is left
			}
			out.Close()
			return err
		}
		if data >= end {
			break
		}
		hole, err := in.Seek(data, seekHole)
		if err != nil {
			out.Close()
			return err
		}
		hole = min(hole, end)
		if err := writeSparse(out, io.NewSectionReader(in, data, hole-data), data-start); err != nil {
			out.Close()
			return err
		}
		off = hole
	}
	if err := out.Truncate(length); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeSparse copies r to f at offset off, leaving all-zero 4 KiB blocks as
// holes, and extends f to cover everything written.
func writeSparse(f *os.File, r io.Reader, off int64) error {
	const block = 4096
	buf := make([]byte, 1<<20)
	zero := make([]byte, block)
	for {
		n, err := io.ReadFull(r, buf)
		for i := 0; i < n; i += block {
			b := buf[i:min(i+block, n)]
			if !bytes.Equal(b, zero[:len(b)]) {
				if _, werr := f.WriteAt(b, off+int64(i)); werr != nil {
					return werr
				}
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < off {
		return f.Truncate(off)
	}
	return nil
}

// toolPackages names the Debian package that provides each tool.
var toolPackages = map[string]string{
	"qemu-img": "qemu-utils", "qemu-io": "qemu-utils", "ewfacquire": "ewf-tools", "ewfverify": "ewf-tools",
	"mkntfs": "ntfs-3g", "ntfs-3g": "ntfs-3g", "ntfsinfo": "ntfs-3g", "ntfsfix": "ntfs-3g",
	"ntfsls": "ntfs-3g", "ntfscat": "ntfs-3g", "ntfsclone": "ntfs-3g", "ntfscp": "ntfs-3g",
	"ntfsresize": "ntfs-3g", "ntfslabel": "ntfs-3g", "lowntfs-3g": "ntfs-3g",
	"mkfs.fat": "dosfstools", "fsck.fat": "dosfstools", "mkfs.vfat": "dosfstools",
	"fsck.vfat": "dosfstools", "fatlabel": "dosfstools",
	"mcopy": "mtools", "mdir": "mtools", "mmd": "mtools", "mdel": "mtools", "mtype": "mtools",
	"minfo": "mtools", "mrd": "mtools", "mattrib": "mtools", "mdeltree": "mtools",
	"fls": "sleuthkit", "icat": "sleuthkit", "istat": "sleuthkit", "fsstat": "sleuthkit",
	"ifind": "sleuthkit", "ils": "sleuthkit", "blkls": "sleuthkit", "blkcat": "sleuthkit",
	"mmls":       "sleuthkit",
	"fusermount": "fuse3", "fusermount3": "fuse3",
	"openssl": "openssl", "perl": "perl", "python3": "python3", "awk": "mawk",
	"bash": "bash", "setfattr": "attr", "getfattr": "attr",
	"mkfs.exfat": "exfatprogs", "fsck.exfat": "exfatprogs", "dump.exfat": "exfatprogs",
	"mount.exfat-fuse": "exfat-fuse", "losetup": "mount", "partclone.exfat": "partclone",
	"fallocate": "util-linux", "mountpoint": "util-linux", "truncate": "coreutils",
}

// Need fails the test, naming the package to install, when a tool is missing.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err == nil {
			continue
		}
		pkg := toolPackages[tool]
		if pkg == "" && strings.HasPrefix(tool, "partclone.") {
			pkg = "partclone"
		}
		if pkg == "" {
			missing = append(missing, tool)
		} else {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", tool, pkg))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("testvol: missing tools: %s", strings.Join(missing, ", "))
	}
}

// Run runs a command and returns its standard output; the test fails with
// the command's standard error when it does not succeed.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	Need(t, name)
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testvol: %s %s: %v\n%s%s", name, strings.Join(args, " "), err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.String()
}

var root struct {
	once sync.Once
	dir  string
	err  error
}

// Root returns the repository root: the nearest directory upward from the
// working directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	root.once.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			root.err = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root.dir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				root.err = errors.New("no go.mod above the working directory")
				return
			}
			dir = parent
		}
	})
	if root.err != nil {
		t.Fatalf("testvol: repository root: %v", root.err)
	}
	return root.dir
}

// SlowFile reads a file with a pause before every read: a source that a
// test can cancel mid-copy. It satisfies mount.Source.
type SlowFile struct {
	F     *os.File
	Bytes int64
	Pause time.Duration
}

func (s SlowFile) ReadAt(p []byte, off int64) (int, error) {
	time.Sleep(s.Pause)
	return s.F.ReadAt(p, off)
}

// Size is the file's length.
func (s SlowFile) Size() int64 { return s.Bytes }

// OpenSlow opens the file at path as a SlowFile pausing pause before every
// read; the file is closed at cleanup.
func OpenSlow(t testing.TB, path string, pause time.Duration) SlowFile {
	t.Helper()
	f, size := OpenFile(t, path)
	return SlowFile{F: f, Bytes: size, Pause: pause}
}

// OpenFile opens the file at path read-only and returns it with its size;
// it is closed at cleanup.
func OpenFile(t testing.TB, path string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

// MountDriver starts cmd, a FUSE driver running in the foreground that
// mounts at dir, waits until dir is a mount, and returns the function that
// unmounts it (fusermount -u) and waits for the driver to write everything
// and exit; it also runs at cleanup.
func MountDriver(t testing.TB, cmd *exec.Cmd, dir string) func() {
	t.Helper()
	out := &SyncBuffer{Max: 64 << 10} // fusefat traces every call
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	devOf := func(fi os.FileInfo) uint64 { return uint64(fi.Sys().(*syscall.Stat_t).Dev) }
	parent, err := os.Stat(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if st, err := os.Stat(dir); err == nil && devOf(st) != devOf(parent) {
			break
		}
		select {
		case <-exited:
			t.Fatalf("%s: mount at %s failed: %s", cmd.Path, dir, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%s: mount at %s timed out", cmd.Path, dir)
		}
	}
	done := false
	unmount := func() {
		if done {
			return
		}
		done = true
		if err := exec.Command("fusermount", "-u", dir).Run(); err != nil {
			cmd.Process.Kill()
			t.Errorf("unmount %s: %v", dir, err)
		}
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			t.Errorf("the driver for %s did not exit", dir)
		}
	}
	t.Cleanup(unmount)
	return unmount
}
