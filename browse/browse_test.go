//go:build linux

package browse

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/cbimg/cbimg/browse/browsetest"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
)

// treeOf walks the whole tree: "/path" -> entry (from the record, as Stat
// gives it).
func treeOf(t *testing.T, f *FS) map[string]*Entry {
	t.Helper()
	out := map[string]*Entry{}
	err := f.Walk(".", func(name string, e *Entry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", name, err)
			return nil
		}
		if name == "." {
			return nil
		}
		if _, dup := out["/"+name]; dup {
			t.Errorf("%s listed twice", name)
		}
		out["/"+name] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hashFile(t *testing.T, fsys *FS, name, stream string) (string, int64) {
	t.Helper()
	f, err := fsys.OpenStream(name, stream)
	if err != nil {
		t.Errorf("open %s:%s: %v", name, stream, err)
		return "", 0
	}
	defer f.Close()
	h := sha256.New()
	// An odd buffer size crosses cluster and compression-unit boundaries.
	n, err := io.CopyBuffer(h, f, make([]byte, 100003))
	if err != nil {
		t.Errorf("read %s:%s: %v", name, stream, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// TestTree browses an image of every test volume and compares the listing
// with a read-only ntfs-3g mount (find) or mtools, and every allocated
// file's and named stream's content with sleuthkit on the original volume.
// Files excluded at backup must be marked and read as zeros.
func TestTree(t *testing.T) {
	for _, v := range browsetest.AllVolumes(t) {
		t.Run(v.Name, func(t *testing.T) {
			start := time.Now()
			img := backup(t, v.Path)
			fsys, r := openImage(t, img)
			excluded := map[string]bool{}
			for _, x := range r.Header.Exclusions {
				excluded[strings.ToLower(x.Path)] = true
			}
			tree := treeOf(t, fsys)

			var ref map[string]browsetest.Ref
			refName, mnt := "ntfs-3g", ""
			if v.NTFS {
				ref, mnt = browsetest.NTFS3GList(t, v.Path)
			} else {
				ref, refName = browsetest.FATList(t, v.Path)
			}
			for _, p := range browsetest.SortedKeys(ref) {
				e, ok := tree[p]
				switch {
				case !ok:
					t.Errorf("%s shows %s; the tree does not", refName, p)
				case ref[p].Link:
					// ntfs-3g: reparse point or Interix symlink (a system file).
					if e.Dir && !e.Reparse {
						t.Errorf("%s: a link in ntfs-3g, a directory here", p)
					}
				case e.Mode().IsDir() != ref[p].Dir:
					t.Errorf("%s: dir %v, %s says %v", p, e.Mode().IsDir(), refName, ref[p].Dir)
				}
			}
			for _, p := range browsetest.SortedKeys(tree) {
				if _, ok := ref[p]; !ok {
					t.Errorf("the tree lists %s; %s does not", p, refName)
				}
			}

			rec := browsetest.TSKRecover(t, v.Path)
			fls := browsetest.FLSAddrs(t, v.Path)
			files, zeroed, viaIcat, viaMount, unverified, streams := 0, 0, 0, 0, 0, 0
			for _, p := range browsetest.SortedKeys(tree) {
				name := p[1:]
				st, err := fsys.Stat(name)
				if err != nil {
					t.Errorf("stat %s: %v", p, err)
					continue
				}
				e := st.Sys().(*Entry)
				if e.Excluded != "" != excluded[strings.ToLower(p)] {
					t.Errorf("%s: excluded %q, header exclusions %v", p, e.Excluded, excluded[strings.ToLower(p)])
				}
				if !st.Mode().IsRegular() {
					continue
				}
				got, n := hashFile(t, fsys, name, "")
				if n != st.Size() {
					t.Errorf("%s: read %d bytes, size %d", p, n, st.Size())
				}
				if r, ok := ref[p]; ok && r.Size >= 0 && !r.Link && r.Size != st.Size() {
					t.Errorf("%s: size %d, %s says %d", p, st.Size(), refName, ref[p].Size)
				}
				var want string
				switch {
				case e.Excluded != "":
					want = browsetest.ZeroHash(st.Size())
					zeroed++
				case st.Size() == 0:
					want = browsetest.ZeroHash(0) // tsk_recover writes no empty files
				case rec != "" && fileExists(filepath.Join(rec, p)):
					want = browsetest.FileHash(t, filepath.Join(rec, p))
				case fls[p] != "":
					want = browsetest.ICatHash(t, v.Path, fls[p])
					viaIcat++
				case mnt != "":
					want = browsetest.FileHash(t, filepath.Join(mnt, p))
					viaMount++
				case rec == "" && fls == nil:
					unverified++
					continue
				default:
					t.Errorf("%s: sleuthkit has no such file", p)
					continue
				}
				if got != want {
					t.Errorf("%s: content differs from sleuthkit (size %d, excluded %q)", p, st.Size(), e.Excluded)
				}
				files++
				if !v.NTFS {
					continue
				}
				// Named streams, read as icat (or ntfs-3g) reads them.
				ss, err := fsys.Streams(name)
				if err != nil {
					t.Errorf("streams %s: %v", p, err)
					continue
				}
				for _, s := range ss {
					k := p + ":" + s.Name
					got, n := hashFile(t, fsys, name, s.Name)
					switch {
					case n != s.Size:
						t.Errorf("%s: read %d bytes, size %d", k, n, s.Size)
					case s.Excluded != "":
						want = browsetest.ZeroHash(s.Size)
					case fls[k] != "":
						want = browsetest.ICatHash(t, v.Path, fls[k])
					default:
						want = browsetest.FileHash(t, filepath.Join(mnt, k))
					}
					if got != want {
						t.Errorf("%s: stream content differs", k)
					}
					streams++
				}
			}
			// Every stream fls names on a listed file is there.
			for k := range fls {
				p, s, ok := strings.Cut(k[1:], ":")
				if !ok {
					continue
				}
				p = "/" + p
				if _, listed := tree[p]; !listed {
					continue
				}
				ss, err := fsys.Streams(p[1:])
				if err != nil {
					t.Errorf("streams %s: %v", p, err)
					continue
				}
				found := false
				for _, x := range ss {
					found = found || x.Name == s
				}
				if !found {
					t.Errorf("fls lists %s, Streams(%s) = %v", k, p, ss)
				}
			}
			t.Logf("%d entries (%s agrees); %d files hashed equal (%d via icat, %d through ntfs-3g, %d excluded read as zeros, %d without an independent reader); %d named streams; %v",
				len(tree), refName, files, viaIcat, viaMount, zeroed, unverified, streams, time.Since(start).Round(time.Millisecond))
		})
	}
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// TestFSTest runs testing/fstest.TestFS over images of each kind of volume.
func TestFSTest(t *testing.T) {
	for _, v := range browsetest.AllVolumes(t) {
		t.Run(v.Name, func(t *testing.T) {
			start := time.Now()
			fsys, _ := openImage(t, backup(t, v.Path))
			var expect []string
			fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
				if err == nil && p != "." && len(expect) < 5 && d.Type().IsRegular() {
					expect = append(expect, p)
				}
				return nil
			})
			if err := fstest.TestFS(fsys, expect...); err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestConcurrentReads: the tree serves many readers at once (as a FUSE
// mount does) with the same bytes as one reader.
func TestConcurrentReads(t *testing.T) {
	for _, vol := range []string{
		testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}),
		testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}),
	} {
		fsys, _ := openImage(t, backup(t, vol))
		tree := treeOf(t, fsys)
		want := map[string]string{}
		for p, e := range tree {
			if e.Mode().IsRegular() {
				want[p], _ = hashFile(t, fsys, p[1:], "")
			}
		}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p, w := range want {
					f, err := fsys.Open(p[1:])
					if err != nil {
						t.Error(err)
						return
					}
					h := sha256.New()
					io.Copy(h, f)
					f.Close()
					if hex.EncodeToString(h.Sum(nil)) != w {
						t.Errorf("%s: concurrent read differs", p)
					}
				}
			}()
		}
		wg.Wait()
	}
}
