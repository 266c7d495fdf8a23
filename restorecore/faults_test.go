//go:build linux

package restorecore_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
)

// smallFS mounts a tmpfs of size bytes for the test.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// A full disk during backup fails the backup and leaves no file behind.
func TestBackupDiskFull(t *testing.T) {
	full := smallFS(t, "2m")
	img := filepath.Join(full, "x.cbi")
	_, err := backupcore.Backup(context.Background(), backupcore.Options{
		Source: testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), Image: img, Codec: image.CodecZstd})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("backup to a full disk: %v", err)
	}
	left, _ := os.ReadDir(full)
	if len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// A full disk during restore says how far it got, and the target's boot
// sector is left invalid.
func TestRestoreDiskFull(t *testing.T) {
	img := filepath.Join(t.TempDir(), "x.cbi")
	backup(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), img, true)
	full := smallFS(t, "8m")
	target := filepath.Join(full, "target")
	_, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: target})
	var we *restorecore.WriteError
	if !errors.As(err, &we) || !errors.Is(err, syscall.ENOSPC) || we.Done <= 0 || !strings.Contains(err.Error(), "bytes of image data were written") {
		t.Fatalf("restore to a full disk: %v", err)
	}
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	f.ReadAt(b, 0)
	for _, c := range b {
		if c != 0 {
			t.Fatal("boot sector present after a failed restore")
		}
	}
}
