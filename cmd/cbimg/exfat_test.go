//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
)

// TestExFATFilesCLI: `ls -r --json` of an exFAT image lists what exfat-fuse
// shows on the source, with its sizes and modification times (UTC);
// `cat` and `extract` give exfat-fuse's bytes; the excluded files are
// marked. A damaged source exits 5, a damaged image 3.
func TestExFATFilesCLI(t *testing.T) {
	testvol.Need(t, "mount.exfat-fuse", "losetup", "fusermount")
	vol := testvol.ExFAT(t, testvol.ExFATSpec{Content: "full"})
	img := filesImage(t, vol)

	mnt := testvol.MountExFAT(t, vol)
	type ref struct {
		dir   bool
		size  int64
		mtime time.Time
	}
	want := map[string]ref{}
	filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != mnt {
			want[strings.TrimPrefix(p, mnt)] = ref{fi.IsDir(), fi.Size(), fi.ModTime()}
		}
		return err
	})

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
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != len(want) {
		t.Errorf("ls lists %d entries, exfat-fuse %d", len(list), len(want))
	}
	excluded := 0
	for _, e := range list {
		w, ok := want[e.Path]
		if !ok {
			t.Errorf("ls lists %s; exfat-fuse does not", e.Path)
			continue
		}
		if (e.Type == "dir") != w.dir || !w.dir && e.Size != w.size {
			t.Errorf("%s: %s of %d bytes; exfat-fuse dir=%v %d bytes", e.Path, e.Type, e.Size, w.dir, w.size)
		}
		mt, err := time.Parse(time.RFC3339Nano, e.MTime)
		if !w.dir && (err != nil || !strings.HasSuffix(e.MTime, "Z") || mt.Sub(w.mtime) < 0 || mt.Sub(w.mtime) >= 2*time.Second) {
			t.Errorf("%s: mtime %s; exfat-fuse %v", e.Path, e.MTime, w.mtime.UTC())
		}
		if e.Excluded {
			excluded++
		}
	}
	if excluded != 2 { // pagefile.sys and Backups/old.cbi
		t.Errorf("%d entries marked excluded, want 2", excluded)
	}
	for _, p := range []string{"/Data/8MiB.bin", "/Frag/fragmented.bin", "/Grüße/Ελληνικά — ünïcödé 😀.bin", "/Data/" + strings.Repeat("L", 251) + ".txt"} {
		got, stderr, code := cbimg(t, nil, "cat", img, p)
		b, err := os.ReadFile(filepath.Join(mnt, p))
		if code != 0 || err != nil || got != string(b) {
			t.Errorf("cat %s: exit %d %s; %d bytes, exfat-fuse %d (%v)", p, code, stderr, len(got), len(b), err)
		}
	}
	dest := t.TempDir()
	if _, stderr, code := cbimg(t, nil, "extract", img, "/Grüße", "/Frag", "-C", dest); code != 0 {
		t.Fatalf("extract: %d %s", code, stderr)
	}
	n := 0
	filepath.Walk(filepath.Join(mnt, "Frag"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(dest, strings.TrimPrefix(p, mnt)))
		if err != nil || string(a) != string(b) {
			t.Errorf("extracted %s differs (%v)", p, err)
		}
		n++
		return nil
	})
	if n < 60 {
		t.Errorf("only %d extracted files compared", n)
	}

	// Damage: a bad boot checksum in the source (5), a damaged image (3).
	bad := testvol.Copy(t, vol)
	f, _ := os.OpenFile(bad, os.O_RDWR, 0)
	f.WriteAt([]byte{0x42}, 100) // the serial number, under the boot checksum
	f.Close()
	if _, stderr, code := cbimg(t, nil, "backup", "-q", bad, filepath.Join(t.TempDir(), "b.cbi")); code != exitFS || !strings.Contains(stderr, "boot checksum") {
		t.Errorf("backup of a bad boot checksum: exit %d %s", code, stderr)
	}
	dmg := filepath.Join(t.TempDir(), "d.cbi")
	b, _ := os.ReadFile(img)
	st, _ := os.Stat(img)
	b[st.Size()/2] ^= 0xff
	os.WriteFile(dmg, b, 0o644)
	if _, stderr, code := cbimg(t, nil, "verify", dmg); code != exitDamaged {
		t.Errorf("verify of a damaged exFAT image: exit %d %s", code, stderr)
	}
}
