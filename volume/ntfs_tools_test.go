//go:build linux

package volume

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers that build NTFS volumes with mkntfs and ntfs-3g and ask
// independent readers (ntfs-3g, sleuthkit, ntfsinfo) about them.

func ntfsNeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install the Debian packages ntfs-3g, sleuthkit and fuse3 (%v)", tool, err)
		}
	}
}

func ntfsExec(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// ntfsMount mounts img with ntfs-3g in the foreground and returns the mount
// point; the returned function unmounts and waits until ntfs-3g has closed
// the image.
func ntfsMount(t testing.TB, img string, opts string) (string, func()) {
	t.Helper()
	mnt, err := os.MkdirTemp(t.TempDir(), "mnt")
	if err != nil {
		t.Fatal(err)
	}
	o := "no_detach"
	if opts != "" {
		o += "," + opts
	}
	cmd := exec.Command("ntfs-3g", "-o", o, img, mnt)
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatalf("ntfs-3g: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !ntfsIsMounted(mnt) {
		select {
		case err := <-done:
			t.Fatalf("ntfs-3g exited before mounting %s: %v\n%s", img, err, logb.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("ntfs-3g did not mount %s within 20s", img)
		}
		time.Sleep(10 * time.Millisecond)
	}
	unmounted := false
	unmount := func() {
		if unmounted {
			return
		}
		unmounted = true
		var err error
		for i := 0; i < 50; i++ {
			if err = exec.Command("umount", mnt).Run(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("umount %s: %v", mnt, err)
			cmd.Process.Kill()
		}
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Errorf("ntfs-3g did not exit after unmount")
			cmd.Process.Kill()
		}
	}
	t.Cleanup(unmount)
	return mnt, unmount
}

func ntfsIsMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// ntfsMkfs makes a sparse image of sizeMiB and formats it.
func ntfsMkfs(t testing.TB, path string, sizeMiB int, clusterSize int, label string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ntfsExec(t, "mkntfs", "-F", "-f", "-q", "-c", strconv.Itoa(clusterSize), "-L", label, path)
}

// findEntry is what a read-only ntfs-3g mount shows of one path.
type findEntry struct {
	inode uint64
	dir   bool
	link  bool // symbolic link or reparse point shown as one
	size  int64
	links int
}

// ntfsFind lists a mounted tree: path (absolute in the volume) -> entry.
func ntfsFind(t testing.TB, mnt string) map[string]findEntry {
	t.Helper()
	out := ntfsExec(t, "find", mnt, "-mindepth", "1", "-printf", "%i\t%y\t%s\t%n\t%P\\0")
	m := map[string]findEntry{}
	for _, rec := range strings.Split(out, "\x00") {
		if rec == "" {
			continue
		}
		f := strings.SplitN(rec, "\t", 5)
		if len(f) != 5 {
			t.Fatalf("find output %q", rec)
		}
		ino, _ := strconv.ParseUint(f[0], 10, 64)
		size, _ := strconv.ParseInt(f[2], 10, 64)
		links, _ := strconv.Atoi(f[3])
		m["/"+f[4]] = findEntry{inode: ino, dir: f[1] == "d", link: f[1] == "l", size: size, links: links}
	}
	return m
}

// ntfsInfoM runs ntfsinfo -f -m and returns its "Key: value" lines.
func ntfsInfoM(t testing.TB, img string) map[string]string {
	t.Helper()
	out := ntfsExec(t, "ntfsinfo", "-f", "-m", img)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			if _, dup := m[k]; !dup {
				m[k] = strings.TrimSpace(v)
			}
		}
	}
	return m
}

func ntfsInfoInt(t testing.TB, m map[string]string, key string) uint64 {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Fatalf("ntfsinfo printed no %q", key)
	}
	f := strings.Fields(v)
	n, err := strconv.ParseUint(f[0], 0, 64)
	if err != nil {
		t.Fatalf("ntfsinfo %q = %q: %v", key, v, err)
	}
	return n
}

// ntfsBlkls returns sleuthkit's allocated-cluster list as a bitmap.
func ntfsBlkls(t testing.TB, img string, clusters uint64) []byte {
	t.Helper()
	out := ntfsExec(t, "blkls", "-l", "-a", img)
	bm := make([]byte, (clusters+7)/8)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		a, flag, ok := strings.Cut(sc.Text(), "|")
		if !ok || flag != "a" {
			continue
		}
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			continue
		}
		if n >= clusters {
			t.Fatalf("blkls reports cluster %d of %d", n, clusters)
		}
		bm[n/8] |= 1 << (n % 8)
	}
	return bm
}

var fsstatClusters = regexp.MustCompile(`(?m)^Total Cluster Range: 0 - (\d+)$`)
var fsstatClusterSize = regexp.MustCompile(`(?m)^Cluster Size: (\d+)$`)

// ntfsFsstat returns fsstat's cluster count and cluster size.
func ntfsFsstat(t testing.TB, img string) (clusters, clusterSize uint64) {
	t.Helper()
	out := ntfsExec(t, "fsstat", img)
	m := fsstatClusters.FindStringSubmatch(out)
	c := fsstatClusterSize.FindStringSubmatch(out)
	if m == nil || c == nil {
		t.Fatalf("fsstat output without cluster range or size:\n%s", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	cs, _ := strconv.ParseUint(c[1], 10, 64)
	return n + 1, cs
}

// ntfsFls lists allocated names with sleuthkit: "path[:stream]" -> "inode-type-id".
func ntfsFls(t testing.TB, img string) map[string]string {
	t.Helper()
	out := ntfsExec(t, "fls", "-r", "-p", "-u", img)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		typ, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(typ, "r/") {
			continue
		}
		addr, name, ok := strings.Cut(rest, ":\t")
		if !ok || strings.HasPrefix(addr, "*") {
			continue
		}
		m["/"+name] = addr
	}
	return m
}

// ntfsRecover extracts every allocated file's main data with tsk_recover.
func ntfsRecover(t testing.TB, img string) string {
	t.Helper()
	dir := t.TempDir()
	ntfsExec(t, "tsk_recover", "-a", img, dir)
	return dir
}

// readRunsSHA hashes the first size bytes of the clusters in runs, read
// straight from the image file.
func readRunsSHA(t testing.TB, r io.ReaderAt, runs []Run, clusterSize int64, size int64) string {
	t.Helper()
	h := sha256.New()
	left := size
	for _, run := range runs {
		if left <= 0 {
			break
		}
		n := int64(run.Count) * clusterSize
		if n > left {
			n = left
		}
		if _, err := io.Copy(h, io.NewSectionReader(r, int64(run.Start)*clusterSize, n)); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	if left > 0 {
		t.Fatalf("runs hold %d bytes fewer than size %d", left, size)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func runsClusters(runs []Run) uint64 {
	var n uint64
	for _, r := range runs {
		n += r.Count
	}
	return n
}

func popcount(bm []byte) uint64 {
	var n uint64
	for _, b := range bm {
		for ; b != 0; b &= b - 1 {
			n++
		}
	}
	return n
}

func ntfsWriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// ntfsPattern is deterministic, poorly compressible data.
func ntfsPattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// ntfsText is compressible data.
func ntfsText(seed, n int) []byte {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, "line %d of file %d: the quick brown fox\n", i, seed)
	}
	return []byte(sb.String()[:n])
}
