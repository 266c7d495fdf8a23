//go:build linux

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/internal/tmuxtest"
	"github.com/cbimg/cbimg/mount"
)

// tmuxUI drives "cbimg ui" in a detached 80x25 tmux window.
type tmuxUI struct{ *tmuxtest.Window }

func startUI(t *testing.T, args ...string) *tmuxUI {
	t.Helper()
	return startTmux(t, append([]string{bin, "ui"}, args...)...)
}

// startTmux runs a command in the window; the shell stays after it exits
// so that its exit status can be read ("EXITED n").
func startTmux(t *testing.T, command ...string) *tmuxUI {
	t.Helper()
	q := []string{"env", "TERM=xterm", "NO_COLOR=1"}
	for _, a := range command {
		q = append(q, tmuxtest.Quote(a))
	}
	return &tmuxUI{tmuxtest.Start(t, "sh", "-c", strings.Join(q, " ")+`; echo "EXITED $?"; sleep 600`)}
}

// noWiderThan checks the 80-column promise on a screen capture.
func noWiderThan(t *testing.T, s string, w int) {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if n := len([]rune(l)); n > w {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}
}

// From the menu: back up a FAT32 volume, then restore the image into
// another file, and check the result with fsck.fat and sleuthkit.
func TestUIBackupThenRestore(t *testing.T) {
	testvol.Need(t, "fsck.fat", "fls")
	dir := t.TempDir()
	src := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	st, _ := os.Stat(src)
	target := filepath.Join(dir, "target.img")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(target, st.Size())
	imgs := filepath.Join(dir, "imgs")
	os.Mkdir(imgs, 0o755)
	srcName := filepath.Base(src)

	u := startUI(t, "--images", imgs, src, target)
	s := u.WaitFor(20*time.Second, "choose an action", "fat32", "used", "Back up "+srcName, "no NTFS/FAT file system", "Images in "+imgs, "no images yet")
	noWiderThan(t, s, 80)
	if strings.Contains(s, "Back up target.img") {
		t.Errorf("a blank file is offered for backup:\n%s", s)
	}

	// The backup form: defaults shown, the image name typed over.
	u.PressUntil("b", "Back up "+srcName)
	u.Keys("Enter")
	s = u.WaitFor(10*time.Second, "Image file", "free there", "Compression", "zstd:3 (default)", "Split size", "Default excl.", "Also exclude")
	if !strings.Contains(s, "/imgs/CBIMGTEST-") {
		t.Errorf("the image is not proposed in %s, named after the label:\n%s", imgs, s)
	}
	img := filepath.Join(imgs, "vol.cbi")
	u.Keys("C-u")
	u.Type(img)
	u.Keys("Tab", "Tab", "Tab", "Tab", "Tab")
	u.WaitFor(5*time.Second, "> [ Continue ]")
	u.Keys("Enter")
	s = u.WaitFor(10*time.Second, "summary: nothing has been done yet", "(new file)", "Same from a script", "backup")
	noWiderThan(t, s, 80)
	u.Keys("Enter")
	s = u.WaitFor(30*time.Second, "Backup: OK", "Verify: OK", "digest matches", "Same from a script", "verify")
	noWiderThan(t, s, 80)
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("no image after the backup: %v", err)
	}

	// Back on the menu the new image is offered for a restore.
	u.Keys("Enter")
	u.WaitFor(20*time.Second, "image vol.cbi", "Restore target.img from vol.cbi", "Verify vol.cbi", "Mount vol.cbi", "Browse files in vol.cbi")
	u.PressUntil("r", "Restore target.img from vol.cbi")
	u.Keys("Enter")
	s = u.WaitFor(10*time.Second, "RESTORE: everything on the target is overwritten", "ALL OF IT WILL BE OVERWRITTEN", "target.img", "restore --yes")
	noWiderThan(t, s, 80)
	// A wrong name does nothing.
	u.Type("nope")
	u.Keys("Enter")
	u.WaitFor(5*time.Second, "type target.img exactly")
	if b, _ := os.ReadFile(target); !oracle.IsZero(b) {
		t.Fatal("target written before the confirmation")
	}
	u.Keys("C-u")
	u.Type("target.img")
	u.Keys("Enter")
	s = u.WaitFor(30*time.Second, "Restore: OK", "The target now holds fat32", "Same from a script")
	noWiderThan(t, s, 80)

	oracle.FsckFAT(t, target)
	if a, b := oracle.Live(oracle.FLS(t, src)), oracle.Live(oracle.FLS(t, target)); !slices.Equal(a, b) {
		t.Fatalf("fls differs:\n%v\n%v", a, b)
	}
	for _, f := range oracle.Files(t, src) {
		if oracle.ICatHash(t, src, f.Addr) != oracle.ICatHash(t, target, f.Addr) {
			t.Errorf("%s differs after the restore", f.Path)
		}
	}

	// The file browser shows the volume's files.
	u.Keys("Enter")
	u.WaitFor(20*time.Second, "Browse files in vol.cbi")
	u.PressUntil("f", "Browse files in vol.cbi")
	u.Keys("Enter")
	s = u.WaitFor(10*time.Second, "files in vol.cbi", "NAME", "SIZE")
	noWiderThan(t, s, 80)
	u.Keys("Escape")
	u.WaitFor(5*time.Second, "choose an action")
	u.Keys("q")
	u.WaitFor(10*time.Second, "EXITED 0")
}

// Cancelling a backup from the live view leaves no image behind.
func TestUICancelBackup(t *testing.T) {
	testvol.Need(t, "fusermount")
	dir := t.TempDir()
	vol := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	mnt := filepath.Join(dir, "slow")
	os.Mkdir(mnt, 0o755)
	m, err := mount.Mount(mnt, testvol.OpenSlow(t, vol, 30*time.Millisecond), &mount.Options{ReadAheadKB: -1})
	if err != nil {
		t.Fatalf("mount the slow source: %v", err)
	}
	defer func() {
		if err := m.Unmount(); err != nil {
			mount.UnmountLazy(mnt)
		}
	}()
	src := filepath.Join(mnt, mount.FileName)
	imgs := filepath.Join(dir, "imgs")
	os.Mkdir(imgs, 0o755)

	u := startUI(t, "--images", imgs, src)
	u.WaitFor(30*time.Second, "choose an action", "ntfs", "Back up volume.raw")
	u.PressUntil("b", "Back up volume.raw")
	u.Keys("Enter")
	u.WaitFor(10*time.Second, "Image file")
	u.Keys("Tab", "Tab", "Tab", "Tab", "Tab", "Enter")
	u.WaitFor(10*time.Second, "summary: nothing has been done yet")
	u.Keys("Enter")
	s := u.WaitFor(30*time.Second, "Phase     copy", "ETA")
	noWiderThan(t, s, 80)
	u.Keys("Escape")
	u.WaitFor(30*time.Second, "Backup: CANCELLED", "No image was left behind")
	ents, _ := os.ReadDir(imgs)
	if len(ents) != 0 {
		t.Fatalf("left in the image directory after a cancel: %v", ents)
	}
	u.Keys("q")
	u.WaitFor(10*time.Second, "EXITED 0")
}

// An image made inside the partition it backs up is offered for a restore
// in place, which brings the files back and keeps the image intact.
func TestUIRestoreInPlace(t *testing.T) {
	testvol.Need(t, "fsck.fat", "mdel", "mdir")
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	name := filepath.Base(vol)
	if _, stderr, code := cbimg(t, nil, "backup", vol, vol+":/self.cbi"); code != 0 {
		t.Fatalf("backup in place: %d %s", code, stderr)
	}
	before := oracle.Live(oracle.FLS(t, vol))
	testvol.Run(t, "mdel", "-i", vol, "::/Data/1MiB.bin")

	u := startUI(t, vol)
	u.WaitFor(20*time.Second, "image "+name+":/self.cbi", "Restore "+name+" in place from /self.cbi (on it)")
	u.PressUntil("i", "in place")
	u.Keys("Enter")
	u.WaitFor(10*time.Second, "RESTORE: everything on the target is overwritten", "The image lies on the target")
	u.Type(name)
	u.Keys("Enter")
	u.WaitFor(30*time.Second, "Restore: OK")
	oracle.FsckFAT(t, vol)
	if after := oracle.Live(oracle.FLS(t, vol)); !slices.Equal(before, after) {
		t.Fatalf("fls after the restore in place:\n%v\nwant\n%v", after, before)
	}
	if _, stderr, code := cbimg(t, nil, "verify", vol+":/self.cbi"); code != 0 {
		t.Fatalf("the image after its restore in place: %d %s", code, stderr)
	}
	u.Keys("q")
	u.WaitFor(10*time.Second, "EXITED 0")
}

// Plain "cbimg" on a terminal points to the menu; piped, it prints only
// the usage. "cbimg ui" without a terminal is a usage error.
func TestRootHint(t *testing.T) {
	out, _, code := cbimg(t, nil)
	if code != 0 || !strings.Contains(out, "Usage:") || strings.Contains(out, "At a console") {
		t.Fatalf("cbimg piped: exit %d\n%s", code, out)
	}
	if _, stderr, code := cbimg(t, nil, "ui"); code != exitUsage || !strings.Contains(stderr, "terminal") {
		t.Fatalf("cbimg ui without a terminal: exit %d %s", code, stderr)
	}
	u := startTmux(t, bin)
	u.WaitFor(10*time.Second, `Run "cbimg ui"`, "EXITED 0")
}
