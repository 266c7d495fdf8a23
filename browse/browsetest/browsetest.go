//go:build linux

// Package browsetest gives the tests of browse and of the cbimg command the
// volumes to browse and independent readers to check them with: a
// read-only ntfs-3g mount (find), mtools (or fsck.fat -l where mtools
// cannot read a volume), and sleuthkit (fls, icat, tsk_recover).
package browsetest

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// Volume is one volume the tests browse: a name, the volume file, its
// file system family.
type Volume struct {
	Name string
	Path string
	NTFS bool
}

// AllVolumes returns the built fixtures (NTFS full, NTFS basic with 64 KiB
// clusters, NTFS with 128 KiB and 2 MiB clusters, FAT12/16/32 full) and
// every real image.
func AllVolumes(t *testing.T) []Volume {
	t.Helper()
	vols := []Volume{
		{"ntfs-full", testvol.NTFS(t, testvol.NTFSSpec{Content: "full"}), true},
		{"ntfs-basic-64k", testvol.NTFS(t, testvol.NTFSSpec{Content: "basic", ClusterSize: 65536}), true},
		{"ntfs-128k", BigClusterNTFS(t, 131072), true},
		{"ntfs-2m", BigClusterNTFS(t, 2097152), true},
		{"fat12-full", testvol.FAT(t, testvol.FATSpec{Bits: 12, SizeMiB: 32, Content: "full"}), false},
		{"fat16-full", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "full"}), false},
		{"fat32-full", testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "full"}), false},
	}
	for _, rel := range testvol.RealList(t) {
		vols = append(vols, Volume{"real-" + strings.NewReplacer("/", "-", "@", "-").Replace(rel), testvol.Real(t, rel), strings.HasPrefix(rel, "ntfs/")})
	}
	return vols
}

const fixtureVersion = "v1"

var bigMu sync.Mutex

// BigClusterNTFS builds (once, cached in the temp directory) an NTFS volume
// with the given cluster size made by mkntfs and filled through ntfs-3g:
// a multi-cluster file with a partial last cluster, a resident file, a named
// stream, a sparse file and a directory of 300 files.
func BigClusterNTFS(t *testing.T, cluster int) string {
	t.Helper()
	testvol.Need(t, "mkntfs", "ntfs-3g", "fusermount")
	bigMu.Lock()
	defer bigMu.Unlock()
	dir := filepath.Join(os.TempDir(), "cbimg-browse-fixtures-"+fixtureVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, fmt.Sprintf("ntfs-%d.img", cluster))
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	tmp := out + ".tmp"
	os.Remove(tmp)
	size := int64(256 << 20)
	if cluster >= 1<<20 {
		size = 768 << 20
	}
	if err := os.WriteFile(tmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(tmp, size); err != nil {
		t.Fatal(err)
	}
	testvol.Run(t, "mkntfs", "-q", "-F", "-f", "-c", strconv.Itoa(cluster), "-L", "big clusters", tmp)
	mnt := t.TempDir()
	testvol.Run(t, "ntfs-3g", "-o", "streams_interface=windows", tmp, mnt)
	unmounted := false
	unmount := func() {
		if !unmounted {
			unmounted = true
			testvol.Run(t, "fusermount", "-u", mnt)
		}
	}
	defer unmount()
	rng := rand.New(rand.NewSource(int64(cluster)))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	w := func(p string, b []byte) {
		p = filepath.Join(mnt, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("big.bin", rnd(3*cluster+12345))
	w("small.txt", []byte("small and resident\n"))
	w("docs/readme.txt:summary", rnd(cluster+1))
	w("docs/readme.txt", bytes.Repeat([]byte("a line of text\n"), 5000))
	for i := 0; i < 300; i++ {
		w(fmt.Sprintf("many/file-%03d.dat", i), rnd(i*97))
	}
	// Sparse: data, a hole of several clusters, data.
	f, err := os.Create(filepath.Join(mnt, "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(rnd(1000))
	f.WriteAt(rnd(5000), int64(6*cluster)+77)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	unmount()
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Ref is what an independent reader says about one path.
type Ref struct {
	Dir  bool
	Link bool  // ntfs-3g shows a symbolic link (reparse point or Interix link)
	Size int64 // -1 when the reader does not say
}

// NTFS3GList lists a read-only ntfs-3g mount of vol with find: "/path" ->
// entry. The mount (with Windows-style stream names, "file:stream") stays
// up until the test ends, for reading contents sleuthkit cannot.
func NTFS3GList(t testing.TB, vol string) (map[string]Ref, string) {
	t.Helper()
	testvol.Need(t, "ntfs-3g", "fusermount", "find")
	mnt := t.TempDir()
	testvol.Run(t, "ntfs-3g", "-o", "ro,streams_interface=windows", vol, mnt)
	t.Cleanup(func() { exec.Command("fusermount", "-u", mnt).Run() })
	out := testvol.Run(t, "find", mnt, "-mindepth", "1", "-printf", `%y %s %P\0`)
	m := map[string]Ref{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\x00"), "\x00") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, " ", 3)
		size, _ := strconv.ParseInt(f[1], 10, 64)
		m["/"+f[2]] = Ref{Dir: f[0] == "d", Link: f[0] == "l", Size: size}
	}
	return m, mnt
}

// FATList lists a FAT volume with mtools (`mdir -/ -b`), or, where mtools
// cannot read it (2048-byte sectors), with `fsck.fat -n -l`.
func FATList(t testing.TB, vol string) (map[string]Ref, string) {
	t.Helper()
	testvol.Need(t, "mdir", "fsck.fat")
	cmd := exec.Command("mdir", "-/", "-b", "-i", vol, "::")
	out, err := cmd.Output()
	m := map[string]Ref{}
	if err != nil {
		// mdir -/ -b fails on a volume without files; plain mdir says so.
		c := exec.Command("mdir", "-i", vol, "::")
		var stderr bytes.Buffer
		c.Stderr = &stderr
		if o, err2 := c.Output(); err2 == nil && stderr.Len() == 0 && strings.Contains(string(o), "No files") {
			return m, "mdir"
		}
	}
	if err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			p, ok := strings.CutPrefix(l, "::")
			if !ok || p == "/" {
				continue
			}
			dir := strings.HasSuffix(p, "/")
			m[strings.TrimSuffix(p, "/")] = Ref{Dir: dir, Size: -1}
		}
		return m, "mdir"
	}
	// fsck.fat -l prints "Checking file /path (SHORT)" for every entry;
	// directories are the prefixes of others.
	c := exec.Command("fsck.fat", "-n", "-l", vol)
	o, _ := c.Output()
	for _, l := range strings.Split(string(o), "\n") {
		p, ok := strings.CutPrefix(l, "Checking file ")
		if !ok || p == "/" {
			continue
		}
		if i := strings.LastIndex(p, " ("); i > 0 && strings.HasSuffix(p, ")") {
			p = p[:i]
		}
		m[p] = Ref{Size: -1}
	}
	for p := range m {
		for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
			if e, ok := m[d]; ok {
				e.Dir = true
				m[d] = e
			}
		}
	}
	if len(m) == 0 {
		t.Fatalf("neither mdir nor fsck.fat -l lists %s: %v", vol, err)
	}
	return m, "fsck.fat -l"
}

// TSKRecover writes every allocated file of vol into a new directory with
// sleuthkit's tsk_recover (one process for thousands of files); "" when
// sleuthkit cannot read the volume.
func TSKRecover(t testing.TB, vol string) string {
	t.Helper()
	testvol.Need(t, "tsk_recover", "fls", "icat")
	dir := t.TempDir()
	if err := exec.Command("tsk_recover", "-a", vol, dir).Run(); err != nil {
		t.Logf("tsk_recover cannot read %s: %v", filepath.Base(vol), err)
		return ""
	}
	return dir
}

// FLSAddrs maps "/path" and "/path:stream" of allocated entries to their
// sleuthkit addresses; nil when sleuthkit cannot read the volume.
func FLSAddrs(t testing.TB, vol string) map[string]string {
	t.Helper()
	out, err := exec.Command("fls", "-r", "-p", vol).Output()
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		typ, rest, ok := strings.Cut(l, " ")
		if !ok || strings.HasPrefix(rest, "*") || !strings.HasPrefix(typ, "r/") {
			continue
		}
		addr, p, ok := strings.Cut(rest, ":\t")
		if !ok || strings.Contains(addr, "realloc") {
			continue
		}
		m["/"+p] = addr
	}
	return m
}

// ICatHash, HexSum, FileHash and ZeroHash are testvol's ICat, SHA256,
// FileSHA256 and ZeroSHA256.
func ICatHash(t testing.TB, vol, addr string) string { t.Helper(); return testvol.ICat(t, vol, addr) }
func HexSum(b []byte) string                         { return testvol.SHA256(b) }
func FileHash(t testing.TB, p string) string         { t.Helper(); return testvol.FileSHA256(t, p) }
func ZeroHash(n int64) string                        { return testvol.ZeroSHA256(n) }

func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
