//go:build linux

package volume

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// fatRunTool runs a file-system tool and returns its stdout; a missing tool
// fails the test with the package that provides it.
func fatRunTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := fatRunToolErr(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func fatRunToolErr(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		pkg := map[string]string{"mkfs.fat": "dosfstools", "fsck.fat": "dosfstools", "fsstat": "sleuthkit",
			"fls": "sleuthkit", "icat": "sleuthkit"}[name]
		if pkg == "" {
			pkg = "mtools"
		}
		t.Fatalf("%s not found: install the %s package (tests check results against it)", name, pkg)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// fatGunzip returns a private copy of an unpacked fixture of
// testdata/realimages (src names the .gz file; dir is unused: the copy lives
// in the test's own temporary directory).
func fatGunzip(t testing.TB, src, dir string) string {
	t.Helper()
	rel := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(src), "../testdata/realimages/"), ".gz")
	return testvol.Copy(t, testvol.Real(t, rel))
}

// fatVolumeSpec describes a FAT volume built with mkfs.fat and filled with
// mtools.
type fatVolumeSpec struct {
	name    string
	mkfs    []string // mkfs.fat arguments besides -C
	sizeKiB int
}

// fatBuildVolume formats an image and fills it with long names, deep and
// large directories, empty files and a fragmented file.
func fatBuildVolume(t testing.TB, spec fatVolumeSpec) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, spec.name+".img")
	args := append(append([]string{}, spec.mkfs...), "-C", img, strconv.Itoa(spec.sizeKiB))
	fatRunTool(t, "mkfs.fat", args...)
	var bs [512]byte
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(bs[:], 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cs := int(bs[13]) * (int(bs[11]) | int(bs[12])<<8)

	rng := rand.New(rand.NewPCG(uint64(spec.sizeKiB), 7))
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	src := filepath.Join(dir, "src")
	files := map[string][]byte{
		"README.TXT":    data(100),
		"lower.txt":     data(cs / 2),
		"MixedCase.Txt": data(cs),
		"A long file name with spaces and ünïcödé 名前.data": data(3*cs + 1),
		"empty.txt":  nil,
		"exact.bin":  data(2 * cs),
		"Deep/empty": nil,
		"Deep/Level 1 dir/l2/Level three/l4/l5/l6/l7/l8/The deepest file of all.txt": data(cs + 7),
		"Deep/Level 1 dir/l2/Level three/x.y":                                        data(10),
		".hidden-ish name":                                                           data(33),
	}
	for i := range 300 {
		files[fmt.Sprintf("Many/file%03d.txt", i)] = data(i % 50)
	}
	for i := range 20 {
		files[fmt.Sprintf("Many/A rather long name number %d.bin", i)] = data(i * 17)
	}
	for p, b := range files {
		full := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	mcopy := []string{"-s", "-i", img}
	for _, e := range ents {
		mcopy = append(mcopy, filepath.Join(src, e.Name()))
	}
	fatRunTool(t, "mcopy", append(mcopy, "::/")...)

	// Fragmentation: small files, every other one deleted, then a big file
	// that must fill the holes.
	fatRunTool(t, "mmd", "-i", img, "::/Frag")
	frag := filepath.Join(dir, "frag")
	if err := os.MkdirAll(frag, 0o755); err != nil {
		t.Fatal(err)
	}
	var pieces []string
	for i := range 16 {
		p := filepath.Join(frag, fmt.Sprintf("piece%02d.bin", i))
		if err := os.WriteFile(p, data(2*cs), 0o644); err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, p)
	}
	fatRunTool(t, "mcopy", append(append([]string{"-i", img}, pieces...), "::/Frag/")...)
	for i := 0; i < 16; i += 2 {
		fatRunTool(t, "mdel", "-i", img, fmt.Sprintf("::/Frag/piece%02d.bin", i))
	}
	if bs[22] == 0 && bs[23] == 0 {
		// FAT32: mtools allocates after the FSInfo "next free" hint; point
		// it back at cluster 2 so the holes are filled.
		fsinfo := int64(bs[48]) | int64(bs[49])<<8
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{2, 0, 0, 0}, fsinfo*512+492); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	big := filepath.Join(frag, "big fragmented file.bin")
	if err := os.WriteFile(big, data(40*cs+123), 0o644); err != nil {
		t.Fatal(err)
	}
	fatRunTool(t, "mcopy", "-i", img, big, "::/Frag/")
	return img
}

// fsckFATParams is what `fsck.fat -n -v` reports.
type fsckFATParams struct {
	sectorSize, clusterSize, reserved, fats, bits int64
	dataStart, clusters, hidden, total            int64
	used                                          int64
	files                                         []string // with -l: 8.3 names where there is no long name
	clean                                         bool     // exit status 0
}

func fatFsck(t testing.TB, img string) fsckFATParams {
	t.Helper()
	out, err := fatRunToolErr(t, "fsck.fat", "-n", "-v", "-l", img)
	if err != nil && !strings.Contains(out, " clusters\n") {
		t.Fatalf("fsck.fat -n -v -l %s: %v\n%s", img, err, out)
	}
	num := func(re string) int64 {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("fsck.fat output lacks %q:\n%s", re, out)
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p := fsckFATParams{
		sectorSize:  num(`(\d+) bytes per logical sector`),
		clusterSize: num(`(\d+) bytes per cluster`),
		reserved:    num(`(\d+) reserved sectors?`),
		fats:        num(`(\d+) FATs, \d+ bit entries`),
		bits:        num(`\d+ FATs, (\d+) bit entries`),
		dataStart:   num(`Data area starts at byte (\d+)`),
		clusters:    num(`(\d+) data clusters`),
		hidden:      num(`(\d+) hidden sectors`),
		total:       num(`(\d+) sectors total`),
		used:        num(`files, (\d+)/\d+ clusters`),
		clean:       err == nil,
	}
	for _, m := range regexp.MustCompile(`(?m)^Checking file (/.*?)(?: \(.*\))?$`).FindAllStringSubmatch(out, -1) {
		if m[1] != "/" {
			p.files = append(p.files, m[1])
		}
	}
	return p
}

// fatMdirPaths lists every path mtools sees, directories with a trailing "/".
func fatMdirPaths(t testing.TB, img string) map[string]bool {
	t.Helper()
	paths := map[string]bool{}
	out, err := fatRunToolErr(t, "mdir", "-/", "-b", "-a", "-i", img, "::")
	if err != nil {
		if strings.Contains(out, `File "::" not found`) {
			return paths // an empty root directory
		}
		t.Fatalf("mdir %s: %v\n%s", img, err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimRight(l, "\r"); l == "" {
			continue
		}
		p, ok := strings.CutPrefix(l, "::")
		if !ok {
			t.Fatalf("unexpected mdir line %q", l)
		}
		paths[p] = true
	}
	return paths
}
