//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/catalog"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
)

// loopDevice attaches vol to a loop device until the test ends.
func loopDevice(t *testing.T, vol string) string {
	t.Helper()
	testvol.Need(t, "losetup")
	loop := strings.TrimSpace(testvol.Run(t, "losetup", "-f", "--show", vol))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	return loop
}

// mountExFAT mounts a block device read-write with exfat-fuse.
func mountExFAT(t *testing.T, dev string) (string, func()) {
	t.Helper()
	testvol.Need(t, "mount.exfat-fuse", "fusermount")
	dir := t.TempDir()
	return dir, testvol.MountDriver(t, exec.Command("mount.exfat-fuse", "-d", dev, dir), dir)
}

// exfatChange deletes a file, adds one and rewrites one through exfat-fuse.
func exfatChange(t *testing.T, vol string, round int) {
	t.Helper()
	loop := loopDevice(t, vol)
	m, un := mountExFAT(t, loop)
	defer func() { un(); exec.Command("losetup", "-d", loop).Run() }()
	if err := os.Remove(filepath.Join(m, "Data", "4095.bin")); err != nil && round == 1 {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m, "Documents", fmt.Sprintf("new-%d.txt", round)), bytes.Repeat([]byte("new"), 50000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m, "Documents", "readme.txt"), []byte("changed after the backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exFAT named as SOURCE:/path: cbimg creates the image file through a
// temporary exfat-fuse mount (on a loop device), writes the image into its
// clusters, and the volume is later restored in place from it.
func TestInPlaceExFAT(t *testing.T) {
	testvol.Need(t, "fls", "icat", "fsck.exfat")
	vol := testvol.Copy(t, testvol.ExFAT(t, testvol.ExFATSpec{SizeMiB: 128, Content: "basic"}))
	spec := vol + ":/Data/backup.cbi"
	res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: spec, Codec: image.CodecZstd})
	if err != nil {
		t.Fatalf("backup in place: %v", err)
	}
	if x := res.Header.Exclusions[len(res.Header.Exclusions)-1]; x.Reason != backupcore.InPlaceRule || x.Path != "/Data/backup.cbi" || x.Clusters == 0 {
		t.Fatalf("the image's own file is not excluded: %+v", res.Header.Exclusions)
	}
	verifyImage(t, spec)
	fsckExFAT(t, vol)
	// The catalog finds it, reading the volume raw.
	found, err := catalog.Scan(context.Background(), vol)
	if err != nil || len(found) != 1 || found[0].Path != "/Data/backup.cbi" || found[0].Header == nil {
		t.Errorf("catalog of the exFAT volume: %+v %v", found, err)
	}
	want := stateOf(t, vol)
	if _, ok := want.hashes["Data/backup.cbi"]; !ok {
		t.Fatalf("the image file is not listed: %v", want.fls)
	}
	want = want.expect(res.Header)
	cycle(t, vol, spec, want, func(round int) { exfatChange(t, vol, round) })
	fsckExFAT(t, vol)
}

// exFAT under the user's exfat-fuse mount of a block device: the image is
// written under the mount; a restore in place is refused while mounted.
func TestInPlaceExFATUserMount(t *testing.T) {
	testvol.Need(t, "fls", "icat", "fsck.exfat")
	vol := testvol.Copy(t, testvol.ExFAT(t, testvol.ExFATSpec{SizeMiB: 128, Content: "basic"}))
	loop := loopDevice(t, vol)
	mnt, unmount := mountExFAT(t, loop)
	res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: loop, Image: filepath.Join(mnt, "Data", "c.cbi"), Codec: image.CodecZstd})
	if err != nil {
		t.Fatalf("backup in place under exfat-fuse: %v", err)
	}
	if x := res.Header.Exclusions[len(res.Header.Exclusions)-1]; x.Reason != backupcore.InPlaceRule {
		t.Fatalf("the image was not written in place: %+v", res.Header.Exclusions)
	}
	verifyImage(t, filepath.Join(mnt, "Data", "c.cbi"))
	spec := loop + ":/Data/c.cbi"
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: spec, Target: loop}); !errors.Is(err, restorecore.ErrTargetMounted) {
		t.Fatalf("restore in place under an exfat-fuse mount: want a refusal, got %v", err)
	}
	unmount()
	verifyImage(t, spec)
	want := stateOf(t, vol).expect(res.Header)
	cycle(t, loop, spec, want, func(round int) {
		m, un := mountExFAT(t, loop)
		os.WriteFile(filepath.Join(m, "Documents", fmt.Sprintf("new-%d.txt", round)), bytes.Repeat([]byte{byte(round)}, 70000), 0o644)
		un()
	})
	fsckExFAT(t, vol)
}
