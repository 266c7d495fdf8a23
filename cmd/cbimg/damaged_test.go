//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/damage"
	"github.com/cbimg/cbimg/internal/testvol"
)

// noPanic fails when a command's standard error shows a Go panic.
func noPanic(t *testing.T, what, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
		t.Fatalf("%s panicked:\n%s", what, stderr)
	}
}

// Every browsing command on images of damaged NTFS and FAT volumes, through
// the binary: the damaged entry is listed and marked, named on standard error,
// never followed, the rest is listed and extracted, and every command exits
// 5 at the end (README "Damaged directory entries").
func TestDamagedEntriesCLI(t *testing.T) {
	testvol.Need(t, "mkntfs", "mkfs.fat", "mcopy")
	vol := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", vol, clean); code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	all, stderr, code := cbimg(t, nil, "ls", "-r", clean)
	if code != 0 {
		t.Fatalf("ls -r of the undamaged image: %d %s", code, stderr)
	}
	// An index node that is its own child changes nothing for the reader:
	// everything is listed and the exit code is 0.
	loop := testvol.Copy(t, vol)
	if err := damage.NTFSNodeLoop().Apply(loop); err != nil {
		t.Fatal(err)
	}
	loopImg := filepath.Join(dir, "loop.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", loop, loopImg); code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	if out, stderr, code := cbimg(t, nil, "ls", "-r", loopImg); code != 0 || out != all {
		t.Errorf("ls -r with an index node loop: exit %d, %s\n%s", code, stderr, out)
	}
	for _, s := range damage.NTFSShapes() {
		t.Run(s.Name, func(t *testing.T) { damagedCLI(t, dir, vol, all, s) })
	}
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	fatClean := filepath.Join(dir, "fat.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", fat, fatClean); code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	fatAll, stderr, code := cbimg(t, nil, "ls", "-r", fatClean)
	if code != 0 {
		t.Fatalf("ls -r of the undamaged image: %d %s", code, stderr)
	}
	for _, s := range damage.FATShapes() {
		t.Run(s.Name, func(t *testing.T) { damagedCLI(t, dir, fat, fatAll, s) })
	}
}

// damagedCLI damages a copy of vol, backs it up and runs ls (plain, -r,
// --long, --json), cat and extract on the image; all is the plain ls -r of
// the undamaged volume.
func damagedCLI(t *testing.T, dir, vol, all string, s damage.Shape) {
	c := testvol.Copy(t, vol)
	if err := s.Apply(c); err != nil {
		t.Fatalf("damage: %v", err)
	}
	img := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(s.Name)+".cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", c, img); code != 0 {
		// Backing up a damaged volume is judged elsewhere; here it
		// must only refuse cleanly (exit 5), and nothing is browsed.
		noPanic(t, "backup", stderr)
		if code != exitFS {
			t.Fatalf("backup of the damaged volume: %d %s", code, stderr)
		}
		t.Logf("backup refuses the damaged volume: %s", strings.TrimSpace(stderr))
		return
	}
	hides := s.Hides
	if hides == "" {
		hides = s.Entry
	}
	parent := path.Dir(hides)
	mark := s.Entry + "\t[damaged]"

	out, stderr, code := cbimg(t, nil, "ls", img, parent)
	noPanic(t, "ls", stderr)
	if code != exitFS || !strings.Contains(out, mark+"\n") || !strings.Contains(stderr, "damaged entry") {
		t.Errorf("ls %s: exit %d, stdout:\n%s\nstderr: %s", parent, code, out, stderr)
	}

	out, stderr, code = cbimg(t, nil, "ls", "-r", img)
	noPanic(t, "ls -r", stderr)
	if code != exitFS || !strings.Contains(out, mark+"\n") {
		t.Errorf("ls -r: exit %d, stdout:\n%s\nstderr: %s", code, out, stderr)
	}
	listed := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		listed[strings.Split(l, "\t")[0]] = true
	}
	for _, l := range strings.Split(strings.TrimSpace(all), "\n") {
		p := strings.Split(l, "\t")[0]
		if p != hides && !strings.HasPrefix(p, hides+"/") && !listed[p] {
			t.Errorf("ls -r: %s lost", p)
		}
	}

	out, stderr, code = cbimg(t, nil, "ls", "-r", "--long", img)
	noPanic(t, "ls -r --long", stderr)
	if code != exitFS || !strings.Contains(out, s.Entry+"  [damaged: ") {
		t.Errorf("ls -r --long: exit %d, stdout:\n%s\nstderr: %s", code, out, stderr)
	}

	out, stderr, code = cbimg(t, nil, "ls", "-r", "--json", img)
	noPanic(t, "ls --json", stderr)
	var list []lsJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != exitFS {
		t.Errorf("ls --json: exit %d, %v\n%s", code, err, stderr)
	}
	found := false
	for _, j := range list {
		found = found || j.Path == s.Entry && j.Type == "damaged" && j.Damaged != ""
	}
	if !found {
		t.Errorf("ls --json: %s not listed as damaged", s.Entry)
	}

	if !strings.Contains(s.Name, "slash") {
		out, stderr, code = cbimg(t, nil, "cat", img, s.Entry)
		noPanic(t, "cat", stderr)
		if code != exitFS || out != "" {
			t.Errorf("cat %s: exit %d, %d bytes out, stderr: %s", s.Entry, code, len(out), stderr)
		}
	}
	if _, stderr, code := cbimg(t, nil, "cat", img, "/Data/4097.bin"); code != 0 && s.Entry != "/Data/4097.bin" {
		t.Errorf("cat of a sound file: %d %s", code, stderr)
	}

	dest := filepath.Join(t.TempDir(), "out")
	_, stderr, code = cbimg(t, nil, "extract", img, "/", "-C", dest)
	noPanic(t, "extract", stderr)
	if code != exitFS || !strings.Contains(stderr, "failed "+s.Entry+":") {
		t.Errorf("extract: exit %d, stderr: %s", code, stderr)
	}
}

// A FAT boot sector past the bounds (more FATs than any tool makes, a root
// directory that does not fill whole sectors) is refused with exit 5.
func TestFATBootBoundsCLI(t *testing.T) {
	testvol.Need(t, "mkfs.fat", "mcopy")
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	for _, c := range []struct {
		name string
		off  int64
		b    []byte
		want string
	}{
		{"255 FATs", 16, []byte{255}, "number of FATs is 255"},
		{"0xffff root entries", 17, []byte{0xff, 0xff}, "65535 root directory entries"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := testvol.Copy(t, vol)
			f, err := os.OpenFile(v, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteAt(c.b, c.off)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "i.cbi")
			_, stderr, code := cbimg(t, nil, "backup", v, img)
			noPanic(t, "backup", stderr)
			if code != exitFS || !strings.Contains(stderr, c.want) {
				t.Errorf("backup: exit %d, stderr: %s", code, stderr)
			}
			if _, err := os.Stat(img); err == nil {
				t.Error("an image was left")
			}
		})
	}
}
