//go:build linux

package mount_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/mount"
)

// exfatTree reads a directory tree: file hashes and modification times.
func exfatTree(t *testing.T, dir string) (map[string]string, map[string]time.Time) {
	t.Helper()
	sums, times := map[string]string{}, map[string]time.Time{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		rel := strings.TrimPrefix(p, dir)
		sums[rel], times[rel] = hex.EncodeToString(s[:]), fi.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums, times
}

// TestExFATMount: volume.raw of an exFAT image equals the restored target
// and is clean for fsck.exfat; the file view (mount --files) gives every
// file with the bytes and modification time exfat-fuse gives on the
// source.
func TestExFATMount(t *testing.T) {
	testvol.Need(t, "fusermount3", "fsck.exfat", "mount.exfat-fuse", "losetup")
	src := testvol.ExFAT(t, testvol.ExFATSpec{Content: "full"})
	img := makeImage(t, src, imageOpts{codec: image.CodecZstd, noExclude: true})
	want := restored(t, img)
	raw, logs := mountImage(t, img, 0)
	if got, w := testvol.FileSHA256(t, raw), testvol.FileSHA256(t, want); got != w {
		t.Fatalf("sha256 of volume.raw %s, of the restored target %s", got, w)
	}
	if out, err := exec.Command("fsck.exfat", "-n", raw).CombinedOutput(); err != nil {
		t.Errorf("fsck.exfat -n volume.raw: %v\n%s", err, out)
	}
	if l := logs.String(); l != "" {
		t.Errorf("unexpected server log:\n%s", l)
	}

	// The source through exfat-fuse (read-only, on a loop device).
	fuseDir := testvol.MountExFAT(t, src)
	wantSums, wantTimes := exfatTree(t, fuseDir)

	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fsys, err := browse.New(r, r.Header)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := mount.MountFiles(dir, fsys, &mount.Options{FsName: img})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmount() })
	sums, times := exfatTree(t, dir)
	if len(sums) != len(wantSums) || len(sums) < 1000 {
		t.Fatalf("%d files in the file view, exfat-fuse %d", len(sums), len(wantSums))
	}
	for p, s := range wantSums {
		if sums[p] != s {
			t.Errorf("%s: differs from exfat-fuse", p)
		}
		// exfat-fuse drops the 10 ms field: equal to the second.
		if d := times[p].Sub(wantTimes[p]); d < 0 || d >= 2*time.Second {
			t.Errorf("%s: modified %v, exfat-fuse %v", p, times[p].UTC(), wantTimes[p].UTC())
		}
	}
}
