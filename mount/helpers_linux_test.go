//go:build linux

package mount_test

import (
	"context"
	"log"
	"path/filepath"
	"testing"
	"time"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/mount"
	"github.com/cbimg/cbimg/restorecore"
)

type imageOpts struct {
	codec     image.Codec
	split     int64
	noExclude bool // keep hiberfil.sys & co. so files compare with the source
}

// makeImage backs up src into a new image in t.TempDir().
func makeImage(t testing.TB, src string, o imageOpts) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "vol.cbi")
	opts := backupcore.Options{Source: src, Image: img, Codec: o.codec, Split: o.split, NoDefaultExcludes: o.noExclude}
	if o.codec == image.CodecZstd {
		opts.Level = 3
	}
	if _, err := backupcore.Backup(context.Background(), opts); err != nil {
		t.Fatalf("backup %s: %v", src, err)
	}
	return img
}

// restored restores img into a new file and returns its path.
func restored(t testing.TB, img string) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "restored.raw")
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: target}); err != nil {
		t.Fatalf("restore %s: %v", img, err)
	}
	return target
}

// mountImage mounts img in t.TempDir() and unmounts it in t.Cleanup; it
// returns the path of volume.raw and the server's log.
func mountImage(t testing.TB, img string, cacheBytes int64) (string, *testvol.SyncBuffer) {
	t.Helper()
	r, err := image.Open(img, &image.Options{CacheBytes: cacheBytes})
	if err != nil {
		t.Fatalf("open %s: %v", img, err)
	}
	dir := t.TempDir()
	logs := &testvol.SyncBuffer{}
	m, err := mount.Mount(dir, r, &mount.Options{FsName: img, ModTime: r.Header.Created, Logger: log.New(logs, "", 0)})
	if err != nil {
		r.Close()
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			mount.UnmountLazy(dir)
		}
		r.Close()
	})
	return filepath.Join(dir, mount.FileName), logs
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// mounted says whether dir is a mount point.
func mounted(t testing.TB, dir string) bool {
	t.Helper()
	_, ok := devguard.MountAt(dir)
	return ok
}
