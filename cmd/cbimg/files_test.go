//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cbimg/cbimg/browse/browsetest"
	"github.com/cbimg/cbimg/internal/testvol"
)

var (
	filesImgMu sync.Mutex
	filesImgs  = map[string]string{}
)

// filesImage backs up vol through the binary once per test run.
func filesImage(t *testing.T, vol string) string {
	t.Helper()
	filesImgMu.Lock()
	defer filesImgMu.Unlock()
	if img, ok := filesImgs[vol]; ok {
		return img
	}
	img := filepath.Join(filepath.Dir(bin), "files-"+sha(vol)[:12]+".cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", vol, img); code != 0 {
		t.Fatalf("backup %s: %d %s", vol, code, stderr)
	}
	filesImgs[vol] = img
	return img
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func hashBytes(b []byte) string { return sha(string(b)) }

// lsTree runs `cbimg ls -r` and returns path -> marks.
func lsTree(t *testing.T, img string) map[string]string {
	t.Helper()
	out, stderr, code := cbimg(t, nil, "ls", "-r", img)
	if code != 0 {
		t.Fatalf("ls -r: %d %s", code, stderr)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		p, marks, _ := strings.Cut(l, "\t")
		// Directories end in "/"; the references name them without.
		if p != "/" {
			p = strings.TrimSuffix(p, "/")
		}
		if _, dup := m[p]; dup {
			t.Errorf("ls -r lists %s twice", p)
		}
		m[p] = marks
	}
	return m
}

// reference lists the original volume with an independent reader.
func reference(t *testing.T, v browsetest.Volume) (map[string]browsetest.Ref, string, string) {
	if v.NTFS {
		ref, mnt := browsetest.NTFS3GList(t, v.Path)
		return ref, "ntfs-3g", mnt
	}
	ref, name := browsetest.FATList(t, v.Path)
	return ref, name, ""
}

// TestLsCatMatchReferences: for every test volume, `ls -r` of its image
// lists exactly what ntfs-3g (find) or mtools show for the original, with
// the excluded files marked; `ls -r --json` agrees; and `cat` of a sample
// of files and every named stream gives icat's bytes (through ntfs-3g where
// sleuthkit cannot read the volume).
func TestLsCatMatchReferences(t *testing.T) {
	for _, v := range browsetest.AllVolumes(t) {
		t.Run(v.Name, func(t *testing.T) {
			start := time.Now()
			img := filesImage(t, v.Path)
			tree := lsTree(t, img)
			ref, refName, mnt := reference(t, v)
			for _, p := range browsetest.SortedKeys(ref) {
				if _, ok := tree[p]; !ok {
					t.Errorf("%s shows %s; ls -r does not", refName, p)
				}
			}
			for _, p := range browsetest.SortedKeys(tree) {
				if _, ok := ref[p]; !ok {
					t.Errorf("ls -r lists %s; %s does not", p, refName)
				}
			}
			// Marks: exactly the header's exclusions are [excluded].
			out, _, _ := cbimg(t, nil, "info", "--json", img)
			var info struct {
				Exclusions []struct{ Path string } `json:"exclusions"`
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				t.Fatal(err)
			}
			excl := map[string]bool{}
			for _, x := range info.Exclusions {
				if !strings.Contains(x.Path[1:], ":") {
					excl[strings.ToLower(x.Path)] = true
				}
			}
			for p, m := range tree {
				if strings.Contains(m, "[excluded]") != excl[strings.ToLower(p)] {
					t.Errorf("%s: marks %q, header exclusions %v", p, m, excl[strings.ToLower(p)])
				}
				if strings.Contains(m, "[reparse]") != (ref[p].Link && !isFileLink(t, img, p)) {
					t.Errorf("%s: marks %q, ntfs-3g link %v", p, m, ref[p].Link)
				}
			}
			// --json: the same paths and types.
			out, stderr, code := cbimg(t, nil, "ls", "-r", "--json", img)
			if code != 0 {
				t.Fatalf("ls -r --json: %d %s", code, stderr)
			}
			var list []struct {
				Path     string `json:"path"`
				Type     string `json:"type"`
				Size     int64  `json:"size"`
				MTime    string `json:"mtime"`
				Excluded bool   `json:"excluded"`
				Streams  []struct {
					Name string `json:"name"`
					Size int64  `json:"size"`
				} `json:"streams"`
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("ls --json: %v", err)
			}
			if len(list) != len(tree) {
				t.Errorf("ls --json has %d entries, ls -r %d", len(list), len(tree))
			}
			// cat: a sample of files (every file of small volumes, about
			// 40 of large ones, and the hard cases) and all named streams.
			fls := browsetest.FLSAddrs(t, v.Path)
			var files []string
			streams := map[string]int64{}
			for _, e := range list {
				if e.Type == "dir" && ref[e.Path].Dir != true {
					t.Errorf("%s: dir in --json, not in %s", e.Path, refName)
				}
				if e.Type == "file" {
					files = append(files, e.Path)
				}
				for _, s := range e.Streams {
					streams[e.Path+":"+s.Name] = s.Size
				}
			}
			sort.Strings(files)
			step := max(1, len(files)/40)
			var sample []string
			for i, p := range files {
				if i%step == 0 || strings.Contains(p, "attrlist") || strings.Contains(p, "Compressed/") || strings.Contains(p, "Sparse/") || strings.Contains(p, "Frag") || strings.Contains(p, "Unicode/") || strings.Contains(p, "Links/") {
					sample = append(sample, p)
				}
			}
			sample = append(sample, browsetest.SortedKeys(streams)...)
			catted := 0
			for _, p := range sample {
				out, stderr, code := cbimg(t, nil, "cat", img, p)
				if code != 0 {
					t.Errorf("cat %s: %d %s", p, code, stderr)
					continue
				}
				var want string
				switch {
				case excl[strings.ToLower(p)]:
					if !strings.Contains(stderr, "excluded") {
						t.Errorf("cat %s: no note that it was excluded", p)
					}
					want = browsetest.ZeroHash(int64(len(out)))
				case fls != nil && fls[p] != "":
					want = browsetest.ICatHash(t, v.Path, fls[p])
				case mnt != "":
					want = browsetest.FileHash(t, filepath.Join(mnt, p))
				case fls == nil:
					continue // no independent reader of contents (FAT with 2048-byte sectors)
				case len(out) == 0:
					want = hashBytes(nil)
				default:
					t.Errorf("%s: sleuthkit does not list it", p)
					continue
				}
				if got := hashBytes([]byte(out)); got != want {
					t.Errorf("cat %s: sha256 %s, reference %s", p, got[:12], want[:12])
				}
				catted++
			}
			t.Logf("%d paths (%s agrees), %d exclusions, %d of %d files and %d named streams catted equal to the reference; %v",
				len(tree), refName, len(excl), catted-len(streams), len(files), len(streams), time.Since(start).Round(time.Millisecond))
		})
	}
}

// isFileLink tells ntfs-3g's own symbolic links (Interix: system files
// holding "IntxLNK") from reparse points; ls shows them as the files they
// are.
func isFileLink(t *testing.T, img, p string) bool {
	out, _, code := cbimg(t, nil, "cat", img, p)
	return code == 0 && strings.HasPrefix(out, "IntxLNK")
}

// TestMountFiles: mount --files shows what ls -r lists, and every file
// read through the mount equals sleuthkit's (tsk_recover) or ntfs-3g's copy.
func TestMountFiles(t *testing.T) {
	testvol.Need(t, "fusermount3")
	for _, v := range browsetest.AllVolumes(t) {
		switch v.Name {
		case "ntfs-full", "ntfs-2m", "fat16-full", "real-ntfs-win10-test-ntfs.dd", "real-fat-mkfs-fat12-lfn.img":
		default:
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			img := filesImage(t, v.Path)
			tree := lsTree(t, img)
			mnt := filepath.Join(t.TempDir(), "mnt")
			os.Mkdir(mnt, 0o755)
			if _, stderr, code := cbimg(t, nil, "mount", "--files", img, mnt); code != 0 {
				t.Fatalf("mount --files: %d %s", code, stderr)
			}
			t.Cleanup(func() {
				if _, stderr, code := cbimg(t, nil, "umount", mnt); code != 0 {
					t.Errorf("umount: %s", stderr)
					exec.Command("fusermount3", "-u", "-z", mnt).Run()
				}
			})
			_, _, refMnt := reference(t, v)
			rec := browsetest.TSKRecover(t, v.Path)
			seen, hashed := 0, 0
			err := filepath.WalkDir(mnt, func(h string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Errorf("walk %s: %v", h, err)
					return nil
				}
				if h == mnt {
					return nil
				}
				p := "/" + filepath.ToSlash(strings.TrimPrefix(h, mnt+"/"))
				marks, ok := tree[p]
				if !ok {
					t.Errorf("the mount shows %s; ls -r does not", p)
					return nil
				}
				seen++
				if d.IsDir() || strings.Contains(marks, "[reparse]") {
					return nil
				}
				got := browsetest.FileHash(t, h)
				fi, _ := d.Info()
				var want string
				switch {
				case strings.Contains(marks, "[excluded]"):
					want = browsetest.ZeroHash(fi.Size())
				case fi.Size() == 0:
					want = hashBytes(nil)
				case rec != "" && fileExists(filepath.Join(rec, p)):
					want = browsetest.FileHash(t, filepath.Join(rec, p))
				case refMnt != "":
					want = browsetest.FileHash(t, filepath.Join(refMnt, p))
				default:
					t.Errorf("%s: no reference copy", p)
					return nil
				}
				if got != want {
					t.Errorf("%s: read through the mount differs", p)
				}
				hashed++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if seen != len(tree) {
				t.Errorf("the mount shows %d entries, ls -r %d", seen, len(tree))
			}
			t.Logf("%d entries, %d files hashed equal to the reference", seen, hashed)
		})
	}
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// TestExtractCLI: extract reproduces the tree that ntfs-3g shows (links
// aside) with its contents and modification times; a damaged file is
// reported and skipped, the rest is extracted, and the exit code says so.
func TestExtractCLI(t *testing.T) {
	vol := testvol.NTFS(t, testvol.NTFSSpec{Content: "full"})
	img := filesImage(t, vol)
	ref, mnt := browsetest.NTFS3GList(t, vol)
	dest := filepath.Join(t.TempDir(), "out")
	out, stderr, code := cbimg(t, nil, "extract", "--json", img, "/", "-C", dest)
	if code != 0 {
		t.Fatalf("extract: %d %s", code, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("extract --json: %v\n%s", err, out)
	}
	n := 0
	for p, r := range ref {
		h := filepath.Join(dest, p)
		if r.Link {
			continue // reparse points skipped; Interix links extracted as their files
		}
		fi, err := os.Lstat(h)
		mi, _ := os.Lstat(filepath.Join(mnt, p))
		if err != nil {
			t.Errorf("%s not extracted: %v", p, err)
			continue
		}
		if fi.IsDir() != r.Dir || !fi.ModTime().Equal(mi.ModTime()) {
			t.Errorf("%s: dir %v mtime %v; ntfs-3g %v %v", p, fi.IsDir(), fi.ModTime(), r.Dir, mi.ModTime())
		}
		if !fi.IsDir() && !strings.HasSuffix(p, ".sys") && p != "/Backups/old.cbi" {
			if browsetest.FileHash(t, h) != browsetest.FileHash(t, filepath.Join(mnt, p)) {
				t.Errorf("%s: extracted content differs from ntfs-3g's", p)
			}
		}
		n++
	}
	t.Logf("extract: %d paths equal to ntfs-3g's; summary %v", n, res)

	// A single file, a path given in another case, into a new directory.
	dest2 := filepath.Join(t.TempDir(), "one")
	if _, stderr, code := cbimg(t, nil, "extract", img, "DATA/4097.BIN", "-C", dest2); code != 0 {
		t.Fatalf("extract one file: %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dest2, "Data", "4097.bin")); err != nil {
		t.Error(err)
	}

	// Damage: an uncompressed image with one byte of Data/10MiB.bin flipped.
	basic := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	raw := filepath.Join(t.TempDir(), "raw.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", "--compress", "none", basic, raw); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}
	want, _, _ := cbimg(t, nil, "cat", raw, "Data/10MiB.bin")
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(want[5<<20:5<<20+64]))
	if i < 0 {
		t.Fatal("file data not found in the uncompressed image")
	}
	b[i+10] ^= 0xff
	if err := os.WriteFile(raw, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dest3 := filepath.Join(t.TempDir(), "dmg")
	_, stderr, code = cbimg(t, nil, "extract", raw, "/", "-C", dest3)
	if code != exitDamaged || !strings.Contains(stderr, "failed /Data/10MiB.bin") {
		t.Fatalf("damaged extract: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dest3, "Data", "10MiB.bin")); err == nil {
		t.Error("the damaged file was left behind")
	}
	for _, p := range []string{"Data/1MiB.bin", "Documents/readme.txt", "Data/Nested/a/b/c/d/deep.txt"} {
		if _, err := os.Stat(filepath.Join(dest3, p)); err != nil {
			t.Errorf("%s not extracted: %v", p, err)
		}
	}
	if _, stderr, code := cbimg(t, nil, "cat", raw, "Data/10MiB.bin"); code != exitDamaged {
		t.Errorf("cat of the damaged file: exit %d %s", code, stderr)
	}
}

// TestFilesErrors: exit codes and messages for the common mistakes.
func TestFilesErrors(t *testing.T) {
	img := filesImage(t, testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "full"}))
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ls", img, "/no/such"}, exitError, "/no/such: no such file or directory in the image"},
		{[]string{"ls", img, "../x"}, exitUsage, "bad path"},
		{[]string{"cat", img, "/Data"}, exitError, "is a directory"},
		{[]string{"cat", img, "/nope.txt"}, exitError, "/nope.txt: no such file or directory in the image"},
		{[]string{"ls", "/no/such/image.cbi"}, exitError, "no such file"},
	} {
		_, stderr, code := cbimg(t, nil, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d %q; want %d %q", c.args, code, stderr, c.code, c.msg)
		}
	}
	// Names match case-insensitively and by 8.3 alias; --long shows the
	// exclusion.
	out, _, code := cbimg(t, nil, "ls", "-l", img, "/")
	if code != 0 || !strings.Contains(out, "/pagefile.sys  [excluded at backup") {
		t.Errorf("ls -l: %s", out)
	}
	out, _, _ = cbimg(t, nil, "ls", img)
	if !strings.Contains(out, "\n/Data/\n") || strings.Contains(out, "/pagefile.sys/") {
		t.Errorf("ls: directories not marked with a trailing /:\n%s", out)
	}
	out, _, _ = cbimg(t, nil, "ls", "-r", img, "data")
	if !strings.HasPrefix(out, "/Data/") || strings.Contains(out, "/data") {
		t.Errorf("ls -r data: paths not as stored:\n%s", out)
	}
	a, _, _ := cbimg(t, nil, "cat", img, "data/a long file name with spaces.txt")
	b, _, _ := cbimg(t, nil, "cat", img, "DATA/ALONGF~1.TXT")
	if a == "" || a != b {
		t.Errorf("case-insensitive and 8.3 lookups differ: %d / %d bytes", len(a), len(b))
	}
}
