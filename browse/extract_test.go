//go:build linux

package browse

import (
	"context"
	"errors"
	"github.com/cbimg/cbimg/browse/browsetest"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/volume"
)

// TestExtractTree extracts whole images and compares the result with a
// read-only ntfs-3g mount (NTFS) or the tree itself (FAT): the same paths,
// contents and modification times; hard links stay links; reparse points
// and ntfs-3g's symbolic links are skipped, named streams written beside
// their files.
func TestExtractTree(t *testing.T) {
	for _, v := range []struct {
		Name string
		vol  string
		NTFS bool
	}{
		{"ntfs-full", testvol.NTFS(t, testvol.NTFSSpec{Content: "full"}), true},
		{"fat32-full", testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "full"}), false},
		{"real-win10-test-ntfs", testvol.Real(t, "ntfs/win10-test-ntfs.dd"), true},
	} {
		t.Run(v.Name, func(t *testing.T) {
			fsys, _ := openImage(t, backup(t, v.vol))
			dest := t.TempDir()
			var events []ExtractEvent
			res, err := fsys.Extract(context.Background(), []string{"."}, dest, &ExtractOptions{Streams: true, Event: func(e ExtractEvent) { events = append(events, e) }})
			if err != nil {
				t.Fatalf("extract: %v (%+v)", err, res)
			}
			tree := treeOf(t, fsys)
			checked, reparse := 0, 0
			for p, e := range tree {
				host := filepath.Join(dest, p)
				fi, err := os.Lstat(host)
				if e.Reparse {
					reparse++
					if err == nil {
						t.Errorf("%s: reparse point extracted", p)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: not extracted: %v", p, err)
					continue
				}
				st, _ := fsys.Stat(p[1:])
				if fi.IsDir() != st.IsDir() {
					t.Errorf("%s: dir %v, extracted %v", p, st.IsDir(), fi.IsDir())
					continue
				}
				if !st.ModTime().IsZero() && !fi.ModTime().Equal(st.ModTime()) {
					t.Errorf("%s: mtime %v, extracted %v", p, st.ModTime(), fi.ModTime())
				}
				if fi.IsDir() {
					continue
				}
				got := browsetest.FileHash(t, host)
				want, _ := hashFile(t, fsys, p[1:], "")
				if got != want || fi.Size() != st.Size() {
					t.Errorf("%s: extracted content differs", p)
				}
				ss, _ := fsys.Streams(p[1:])
				for _, s := range ss {
					w, _ := hashFile(t, fsys, p[1:], s.Name)
					if g := browsetest.FileHash(t, host+":"+s.Name); g != w {
						t.Errorf("%s:%s: extracted stream differs", p, s.Name)
					}
				}
				checked++
			}
			// Nothing more than the tree (and the streams) was written.
			extra := 0
			filepath.WalkDir(dest, func(h string, d fs.DirEntry, err error) error {
				rel := "/" + filepath.ToSlash(strings.TrimPrefix(h, dest+"/"))
				if h == dest {
					return nil
				}
				if _, ok := tree[rel]; !ok && !strings.Contains(filepath.Base(h), ":") {
					extra++
					t.Errorf("extracted %s, not in the tree", rel)
				}
				return nil
			})
			if v.NTFS {
				// Against ntfs-3g: every path it shows, except its links,
				// exists with its mtime.
				ref, mnt := browsetest.NTFS3GList(t, v.vol)
				for p, r := range ref {
					if r.Link {
						continue
					}
					fi, err := os.Lstat(filepath.Join(dest, p))
					mi, err2 := os.Lstat(filepath.Join(mnt, p))
					if err != nil || err2 != nil {
						t.Errorf("%s: %v / %v", p, err, err2)
						continue
					}
					if !fi.ModTime().Equal(mi.ModTime()) {
						t.Errorf("%s: extracted mtime %v, ntfs-3g %v", p, fi.ModTime(), mi.ModTime())
					}
				}
			}
			if v.Name == "ntfs-full" {
				a, _ := os.Stat(filepath.Join(dest, "Links/target.txt"))
				b, _ := os.Stat(filepath.Join(dest, "Links/hardlink.txt"))
				if a == nil || b == nil || !os.SameFile(a, b) {
					t.Error("Links/target.txt and hardlink.txt are not one file")
				}
				if res.Links == 0 || res.Excluded == 0 || res.Skipped == 0 || res.Streams < 2 {
					t.Errorf("result %+v", res)
				}
				// Excluded files are sparse zeros of the right size.
				fi, _ := os.Stat(filepath.Join(dest, "pagefile.sys"))
				if fi == nil || fi.Size() != 8<<20 || fi.Sys().(*syscall.Stat_t).Blocks != 0 {
					t.Errorf("pagefile.sys: %v", fi)
				}
			}
			t.Logf("%+v; %d files compared, %d reparse points skipped, %d events", *res, checked, reparse, len(events))
		})
	}
}

// failingReader fails reads that touch [off, end).
type failingReader struct {
	r        io.ReaderAt
	off, end int64
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off < f.end && off+int64(len(p)) > f.off {
		return 0, &image.FormatError{Offset: off, Msg: "test: damaged chunk"}
	}
	return f.r.ReadAt(p, off)
}

// TestExtractDamaged: a file whose clusters cannot be read is reported and
// left out; everything else is extracted and the error says so.
func TestExtractDamaged(t *testing.T) {
	for _, v := range []struct{ Name, vol, bad string }{
		{"ntfs", testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), "Data/1MiB.bin"},
		{"fat", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}), "Data/1MiB.bin"},
	} {
		t.Run(v.Name, func(t *testing.T) {
			_, r := openImage(t, backup(t, v.vol))
			good, err := New(r, r.Header)
			if err != nil {
				t.Fatal(err)
			}
			var runs []volume.Run
			var inf volume.Info
			if good.ntfs != nil {
				nf, err := good.ntfs.Open("/" + v.bad)
				if err != nil {
					t.Fatal(err)
				}
				runs, inf = nf.Runs(), *good.ntfs.Info()
			} else {
				ff, err := good.fat.Open("/" + v.bad)
				if err != nil {
					t.Fatal(err)
				}
				runs, inf = ff.Runs(), good.fat.Info()
			}
			// Damage the middle of the file's second half.
			last := runs[len(runs)-1]
			off := inf.ClusterOffset(last.Start + last.Count - 1)
			bad, err := New(failingReader{r, off, off + 1}, r.Header)
			if err != nil {
				t.Fatal(err)
			}
			dest := t.TempDir()
			var failed []string
			res, err := bad.Extract(context.Background(), []string{"."}, dest, &ExtractOptions{Event: func(e ExtractEvent) {
				if e.Kind == "failed" {
					failed = append(failed, e.Path)
				}
			}})
			var fe *image.FormatError
			if !errors.Is(err, ErrExtract) || !errors.As(err, &fe) {
				t.Fatalf("error %v, want ErrExtract wrapping the image error", err)
			}
			if res.Failed != 1 || len(failed) != 1 || failed[0] != "/"+v.bad {
				t.Fatalf("failed %v, result %+v", failed, res)
			}
			if _, err := os.Lstat(filepath.Join(dest, v.bad)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("partial %s left behind: %v", v.bad, err)
			}
			all := treeOf(t, good)
			n := 0
			for p, e := range all {
				if e.Mode().IsRegular() && p != "/"+v.bad {
					if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
						t.Errorf("%s not extracted: %v", p, err)
					}
					n++
				}
			}
			t.Logf("%d other files extracted; error: %v", n, err)
		})
	}
}

// TestExtractNoEscape: links already in the destination are never
// followed out of it.
func TestExtractNoEscape(t *testing.T) {
	fsys, _ := openImage(t, backup(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})))
	dest, outside := t.TempDir(), t.TempDir()
	os.Symlink(outside, filepath.Join(dest, "Data"))
	os.MkdirAll(filepath.Join(dest, "Documents"), 0o755)
	os.Symlink(filepath.Join(outside, "one"), filepath.Join(dest, "Documents", "one.txt"))
	res, err := fsys.Extract(context.Background(), []string{"Data", "Documents"}, dest, nil)
	t.Logf("result %+v, error %v", res, err)
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Fatalf("wrote outside the destination: %v", ents)
	}
	b, err2 := os.ReadFile(filepath.Join(dest, "Documents", "one.txt"))
	if err2 != nil || len(b) != 1 {
		t.Errorf("Documents/one.txt: %q %v (the link should be replaced by the file)", b, err2)
	}
	if err == nil || res.Failed == 0 {
		t.Error("extracting into a directory that is a link out of the destination did not fail")
	}
}

func TestSafeName(t *testing.T) {
	long := strings.Repeat("日", 100) + ".txt" // 304 bytes, 104 UTF-16 units
	for _, c := range []struct {
		in      string
		windows bool
		want    string
	}{
		{"plain.txt", false, "plain.txt"},
		{"a:b", false, "a:b"},
		{"a:b", true, "a_b"},
		{`q?"<>|*.x`, true, "q______.x"},
		{"CON", true, "_CON"},
		{"com1.txt", true, "_com1.txt"},
		{"LPT¹", true, "_LPT¹"},
		{"CONSOLE", true, "CONSOLE"},
		{"trail. ", true, "trail__"},
		{"tab\tname", true, "tab_name"},
		{"tab\tname", false, "tab\tname"},
		{long, true, long},
	} {
		got, changed := SafeName(c.in, c.windows)
		if got != c.want || changed != (c.in != c.want) {
			t.Errorf("SafeName(%q, %v) = %q, %v; want %q", c.in, c.windows, got, changed, c.want)
		}
	}
	got, changed := SafeName(long, false)
	if !changed || len(got) > 255 || !strings.HasSuffix(got, ".txt") || !strings.Contains(got, "~") {
		t.Errorf("SafeName(long) = %q (%d bytes)", got, len(got))
	}
	if again, _ := SafeName(long, false); again != got {
		t.Error("SafeName is not stable")
	}
}
