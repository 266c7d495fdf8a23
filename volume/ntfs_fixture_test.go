//go:build linux

package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Built NTFS volumes, made once per test binary with mkntfs and ntfs-3g and
// cached under the system temp directory (keyed by ntfsFixtureVersion) so
// repeated runs are quick.
const ntfsFixtureVersion = "v5"

type ntfsFixture struct {
	name        string
	path        string
	clusterSize int
}

var (
	ntfsFixOnce sync.Once
	ntfsFixList []*ntfsFixture
	ntfsFixErr  error
)

// ntfsFixtures returns the built volumes: "main" (4 KiB clusters, every
// feature), "big64k" (64 KiB clusters) and "dirty" (shrunk by ntfsresize,
// which marks the volume dirty and leaves space after the file system).
func ntfsFixtures(t *testing.T) []*ntfsFixture {
	t.Helper()
	ntfsNeedTools(t, "mkntfs", "ntfs-3g", "ntfsresize", "umount")
	ntfsFixOnce.Do(func() {
		ntfsFixList, ntfsFixErr = ntfsBuildFixtures(t)
	})
	if ntfsFixErr != nil {
		t.Fatal(ntfsFixErr)
	}
	return ntfsFixList
}

func ntfsBuildFixtures(t *testing.T) (list []*ntfsFixture, err error) {
	dir := filepath.Join(os.TempDir(), "cbimg-ntfs-fixtures-"+ntfsFixtureVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	list = []*ntfsFixture{
		{name: "main", clusterSize: 4096},
		{name: "big64k", clusterSize: 65536},
		{name: "dirty", clusterSize: 4096},
	}
	build := map[string]func(t *testing.T, f *ntfsFixture, path string){
		"main":   ntfsBuildMain,
		"big64k": ntfsBuildBig64k,
		"dirty":  ntfsBuildDirty,
	}
	for _, f := range list {
		f.path = filepath.Join(dir, f.name+".img")
		if _, err := os.Stat(f.path); err == nil {
			continue
		}
		tmp := f.path + ".tmp"
		os.Remove(tmp)
		build[f.name](t, f, tmp)
		if t.Failed() {
			return nil, fmt.Errorf("building NTFS fixture %s failed", f.name)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// ntfsManyCount is the size of the large directory in the main fixture; a
// range of it is deleted again so that index blocks are freed.
const (
	ntfsManyCount    = 12500
	ntfsManyDelFirst = 2000
	ntfsManyDelLast  = 4999
)

func ntfsBuildMain(t *testing.T, f *ntfsFixture, path string) {
	ntfsMkfs(t, path, 256, f.clusterSize, "cbimg main")
	mnt, unmount := ntfsMount(t, path, "streams_interface=windows")
	defer unmount()
	w := func(p string, b []byte) { ntfsWriteFile(t, filepath.Join(mnt, p), b) }

	w("/docs/readme.txt", []byte("hello NTFS\n"))
	hib := append([]byte("HIBR"), ntfsPattern(40, 100000)...)
	w("/hiberfil.sys", hib)
	w("/docs/notes.txt", ntfsText(1, 5000))
	w("/data/big.bin", ntfsPattern(2, 3<<20+123))
	w("/data/medium.bin", ntfsPattern(3, 70000))
	w("/empty", nil)
	w("/ünïcødé/日本語のファイル.txt", []byte("unicode\n"))
	w("/with space/"+strings.Repeat("long name ", 20)+".txt", ntfsPattern(4, 9000))
	deep := "/deep"
	for i := 0; i < 30; i++ {
		deep += fmt.Sprintf("/level%02d", i)
	}
	w(deep+"/bottom.txt", []byte("deep\n"))
	if err := os.Link(filepath.Join(mnt, "docs/readme.txt"), filepath.Join(mnt, "docs/hardlink.txt")); err != nil {
		t.Fatal(err)
	}

	// Alternate data streams, on a file and on a directory.
	w("/ads.txt", []byte("main stream\n"))
	w("/ads.txt:alt", []byte("small alternate stream\n"))
	w("/ads.txt:big", ntfsPattern(5, 200000))
	w("/docs:dirstream", []byte("stream on a directory\n"))

	// Fragmented files. The large one needs more runs than fit in one
	// record: an $ATTRIBUTE_LIST and a $DATA in several pieces.
	ntfsWriteFragmented(t, mnt, filepath.Join(mnt, "frag/large.bin"), ntfsPattern(7, 3<<20), 8192)

	// Sparse file.
	sp, err := os.Create(filepath.Join(mnt, "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 5 << 20, 19 << 20} {
		if _, err := sp.WriteAt(ntfsPattern(int(off), 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Truncate(20 << 20); err != nil {
		t.Fatal(err)
	}
	sp.Close()

	// Compressed files: ntfs-3g compresses what is created in a directory
	// that has the compressed attribute (0x800).
	if err := os.Mkdir(filepath.Join(mnt, "comp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setxattr(filepath.Join(mnt, "comp"), "system.ntfs_attrib_be", []byte{0, 0, 0x08, 0}, 0); err != nil {
		t.Fatalf("set compressed attribute: %v", err)
	}
	w("/comp/text.txt", ntfsText(8, 300000))
	w("/comp/random.bin", ntfsPattern(9, 150000))
	w("/comp/zeros.bin", make([]byte, 200000))
	var mixed []byte
	mixed = append(mixed, ntfsText(10, 70000)...)
	mixed = append(mixed, make([]byte, 200000)...)
	mixed = append(mixed, ntfsPattern(11, 70000)...)
	mixed = append(mixed, make([]byte, 65536)...)
	mixed = append(mixed, ntfsText(12, 30000)...)
	w("/comp/mixed.bin", mixed)

	// A large directory, then a deleted range so that index blocks are
	// freed while still holding old names.
	many := filepath.Join(mnt, "many")
	if err := os.Mkdir(many, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ntfsManyCount; i++ {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("f%05d.txt", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := ntfsManyDelFirst; i <= ntfsManyDelLast; i++ {
		if err := os.Remove(filepath.Join(many, fmt.Sprintf("f%05d.txt", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Deleted files elsewhere leave freed MFT records behind.
	w("/deleted/gone.bin", ntfsPattern(13, 50000))
	if err := os.Remove(filepath.Join(mnt, "deleted/gone.bin")); err != nil {
		t.Fatal(err)
	}
}

func ntfsBuildBig64k(t *testing.T, f *ntfsFixture, path string) {
	ntfsMkfs(t, path, 256, f.clusterSize, "big clusters")
	mnt, unmount := ntfsMount(t, path, "streams_interface=windows")
	defer unmount()
	w := func(p string, b []byte) { ntfsWriteFile(t, filepath.Join(mnt, p), b) }
	w("/small.txt", []byte("small\n"))
	w("/hiberfil.sys", make([]byte, 70000))
	w("/data/big.bin", ntfsPattern(20, 5<<20+7))
	w("/data/odd.bin", ntfsPattern(21, 65537))
	w("/data/odd.bin:stream", ntfsPattern(22, 100000))
	ntfsWriteFragmented(t, mnt, filepath.Join(mnt, "frag/large.bin"), ntfsPattern(23, 160*65536), 65536)
	for i := 0; i < 2000; i++ {
		w(fmt.Sprintf("/dir/n%04d", i), ntfsText(i, i%3000))
	}
}

func ntfsBuildDirty(t *testing.T, f *ntfsFixture, path string) {
	ntfsMkfs(t, path, 96, f.clusterSize, "dirty")
	mnt, unmount := ntfsMount(t, path, "")
	w := func(p string, b []byte) { ntfsWriteFile(t, filepath.Join(mnt, p), b) }
	w("/a.txt", []byte("a\n"))
	w("/HIBERFIL.SYS", []byte("wakeup"))
	w("/b/c.bin", ntfsPattern(30, 300000))
	unmount()
	// ntfsresize schedules a check: it sets the volume's dirty flag.
	ntfsExec(t, "ntfsresize", "-f", "-f", "-P", "-s", "80M", path)
}

// ntfsWriteFragmented writes data so that it lands in pieces of holeBytes
// scattered over the disk: it lays down small files, fills the rest of the
// volume, deletes every other small file, writes data into the holes that
// leaves, and then removes the filler again.
func ntfsWriteFragmented(t *testing.T, mnt, path string, data []byte, holeBytes int) {
	tmp := filepath.Join(mnt, "frag-tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	holes := (len(data)+holeBytes-1)/holeBytes + 8
	for i := 0; i < 2*holes; i++ {
		ntfsWriteFile(t, filepath.Join(tmp, fmt.Sprintf("s%05d", i)), ntfsPattern(i, holeBytes))
	}
	filler, err := os.Create(filepath.Join(tmp, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the volume: %v", err)
			}
			break
		}
	}
	// Leave no partly used chunk: shrink to whole chunks written.
	filler.Close()
	for i := 0; i < 2*holes; i += 2 {
		if err := os.Remove(filepath.Join(tmp, fmt.Sprintf("s%05d", i))); err != nil {
			t.Fatal(err)
		}
	}
	ntfsWriteFile(t, path, data)
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
}
