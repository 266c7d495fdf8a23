//go:build linux

package winetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/internal/tmuxtest"
	"github.com/cbimg/cbimg/mount"
)

// wineUI drives "cbimg.exe ui" under Wine in a detached 80x25 tmux window,
// the way a technician's keys reach a Windows console.
type wineUI struct {
	*tmuxtest.Window
	t   *testing.T
	raw string // all the terminal received (tmux pipe-pane)
}

// uiWinPath is how Windows programs under Wine name a Linux path.
func uiWinPath(p string) string { return "Z:" + strings.ReplaceAll(p, "/", `\`) }

// startWineUI runs cbimg.exe with args in dir. The shell stays after it
// exits so that its status can be read ("EXITED n"). Wine's own notices
// (such as that Z:'s volume label is unreadable) go to standard error,
// which would write over the menu, so that goes to a file.
func startWineUI(t *testing.T, dir string, args ...string) *wineUI {
	t.Helper()
	u := &wineUI{t: t, raw: filepath.Join(dir, "terminal.raw")}
	var sh strings.Builder
	fmt.Fprintf(&sh, "cd %s\n", tmuxtest.Quote(dir))
	for _, kv := range env.env {
		if strings.HasPrefix(kv, "WINE") {
			fmt.Fprintf(&sh, "export %s\n", tmuxtest.Quote(kv))
		}
	}
	sh.WriteString("unset DISPLAY WAYLAND_DISPLAY\n")
	go1 := filepath.Join(dir, "terminal.go")
	fmt.Fprintf(&sh, "while [ ! -e %s ]; do sleep 0.05; done\n", tmuxtest.Quote(go1))
	cmd := []string{"wine", tmuxtest.Quote(env.Exe)}
	for _, a := range args {
		cmd = append(cmd, tmuxtest.Quote(a))
	}
	fmt.Fprintf(&sh, "%s 2>%s\necho \"EXITED $?\"\nsleep 600\n", strings.Join(cmd, " "), tmuxtest.Quote(filepath.Join(dir, "wine-stderr.txt")))
	script := filepath.Join(dir, "ui.sh")
	if err := os.WriteFile(script, []byte(sh.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	u.Window = tmuxtest.Start(t, "sh", script)
	u.Tmux("pipe-pane", "-t", "ui", "cat > "+tmuxtest.Quote(u.raw))
	if err := os.WriteFile(go1, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return u
}

// whole checks that a capture is one whole screen: 25 lines of at most 80
// columns, the title on the first, the keys on the last. A console that
// mistakes escape sequences for text wraps and scrolls, losing the title.
func (u *wineUI) whole(s, title, keys string) {
	u.t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 25 {
		u.t.Errorf("%d lines on a 25-line screen:\n%s", len(lines), s)
	}
	for _, l := range lines {
		if len([]rune(l)) > 80 || strings.ContainsRune(l, 0x1b) {
			u.t.Errorf("line of %d columns or with an escape: %q", len([]rune(l)), l)
		}
	}
	if !strings.HasPrefix(lines[0], "cbimg | "+title) || len(lines) < 2 || !strings.HasPrefix(lines[1], "-----") {
		u.t.Errorf("title line %q, want \"cbimg | %s\" above a rule:\n%s", lines[0], title, s)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, keys) {
		u.t.Errorf("last line %q, want the keys %q:\n%s", last, keys, s)
	}
}

// checkRaw checks that bubbletea's own sequences were applied with the
// console API, not printed: the terminal never receives them, and is never
// asked to report the mouse (Wine's console would read the reports as keys).
func (u *wineUI) checkRaw() {
	u.t.Helper()
	b, err := os.ReadFile(u.raw)
	if err != nil {
		u.t.Fatal(err)
	}
	for _, seq := range []string{"\x1b[?1049h", "\x1b[?1002h", "\x1b[?1006h", "\x1b[?2004h", "\x1b[2J"} {
		if strings.Contains(string(b), seq) {
			u.t.Errorf("the terminal received %q", seq)
		}
	}
}

// uiFATFiles copies every file out of a FAT volume with mtools and returns
// their hashes by path.
func uiFATFiles(t *testing.T, img string) map[string]string {
	t.Helper()
	out := t.TempDir()
	testvol.Run(t, "mcopy", "-s", "-n", "-i", img, "::*", out)
	files := map[string]string{}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(out, p)
		files[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// uiFlat joins a screen's words, and command lines continued with "^".
func uiFlat(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), " ^ ", " ")
}

func uiOK(t *testing.T, what string, r Result) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", what, r.Code, r.Stdout, r.Stderr)
	}
}

// The menu of the Windows build, in Wine's console: the volume file is
// named in the menu (Windows lists no disks by itself), backed up and
// verified from it; every screen is whole. The Linux build then verifies
// the image and restores it, and fsck.fat and mtools find the source's
// files on the target.
func TestUIUnderWine(t *testing.T) {
	testvol.Need(t, "fsck.fat", "mcopy")
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol.img")
	if err := os.Rename(testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"})), vol); err != nil {
		t.Fatal(err)
	}
	imgs := filepath.Join(dir, "imgs")
	if err := os.Mkdir(imgs, 0o755); err != nil {
		t.Fatal(err)
	}
	menuKeys := "Enter choose  b/r/v/m/f backup/restore/verify/mount/files  a add  s scan  q quit"
	u := startWineUI(t, dir, "ui", "--images", uiWinPath(imgs))
	s := u.WaitSteady(60*time.Second, "choose an action", "Images in "+uiWinPath(imgs), "no images yet", "Press a to name a disk")
	u.whole(s, "choose an action", menuKeys)

	u.Keys("a")
	s = u.WaitSteady(10*time.Second, "Add a disk, partition or file", "Disk or file", `\\.\PhysicalDrive1`)
	u.whole(s, "Add a disk, partition or file", "Up/Down field")
	u.Type(uiWinPath(vol))
	u.Keys("Enter", "Enter")
	s = u.WaitSteady(30*time.Second, "Volume "+uiWinPath(vol), "fat32", `"CBIMGTEST"`, "used", "Back up vol.img to "+uiWinPath(imgs))
	u.whole(s, "choose an action", menuKeys)

	u.PressUntil("b", "Back up vol.img")
	u.Keys("Enter")
	s = u.WaitSteady(10*time.Second, "Image file", "free there", "Compression", "zstd:3 (default)", "Split size", "Default excl.", "Also exclude")
	u.whole(s, "Back up "+uiWinPath(vol), "Up/Down field")
	u.Keys("Tab", "Tab", "Tab", "Tab", "Tab")
	u.WaitSteady(5*time.Second, "> [ Continue ]")
	u.Keys("Enter")
	s = u.WaitSteady(10*time.Second, "(new file)", "Same from a script", "cbimg backup "+uiWinPath(vol))
	u.whole(s, "summary: nothing has been done yet", "Enter start")
	u.Keys("Enter")
	s = u.WaitSteady(60*time.Second, "Verify: OK", "digest matches", "Same from a script", "cbimg verify")
	u.whole(s, "Backup: OK", "Enter back to the menu")
	t.Logf("result screen under Wine:\n%s", s)
	ents, err := os.ReadDir(imgs)
	if err != nil || len(ents) != 1 || !strings.HasSuffix(ents[0].Name(), ".cbi") {
		t.Fatalf("image directory after the backup: %v %v", ents, err)
	}
	name := ents[0].Name()
	img := filepath.Join(imgs, name)
	if want := "cbimg backup " + uiWinPath(vol) + " " + uiWinPath(img) + " && cbimg verify " + uiWinPath(img); !strings.Contains(uiFlat(s), want) {
		t.Errorf("the result does not give the command line %s:\n%s", want, s)
	}

	u.Keys("Enter")
	s = u.WaitSteady(30*time.Second, "image "+name, "Restore vol.img from "+name, "Verify "+name, "Mount "+name, "Browse files in "+name)
	u.whole(s, "choose an action", menuKeys)
	u.PressUntil("v", "Verify "+name)
	u.Keys("Enter")
	s = u.WaitSteady(30*time.Second, "Verify: OK", "cbimg verify ")
	if !strings.Contains(uiFlat(s), "cbimg verify "+uiWinPath(img)) {
		t.Errorf("the verify result does not give the command line:\n%s", s)
	}
	u.whole(s, "Verify: OK", "Enter back to the menu")
	u.Keys("Enter")
	u.WaitSteady(10*time.Second, "choose an action")
	u.Keys("q")
	u.WaitSteady(10*time.Second, "EXITED 0")
	u.checkRaw()

	uiOK(t, "cbimg verify (Linux) of the image made under Wine", env.Native(t, dir, nil, "verify", img))
	target := filepath.Join(dir, "target.img")
	st, err := os.Stat(vol)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(target, st.Size()); err != nil {
		t.Fatal(err)
	}
	uiOK(t, "cbimg restore (Linux)", env.Native(t, dir, nil, "restore", "--yes", img, target))
	oracle.FsckFAT(t, target)
	want, got := uiFATFiles(t, vol), uiFATFiles(t, target)
	if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("files after the restore differ:\nsource %v\ntarget %v", want, got)
	}
}

// Esc in the live view of a backup (the source, named on the command line,
// is served slowly through FUSE) cancels it and leaves no image behind.
func TestUICancelUnderWine(t *testing.T) {
	testvol.Need(t, "fusermount", "mcopy")
	dir := t.TempDir()
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	// Enough used clusters for a few seconds of slow reading.
	data := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(data, []byte(strings.Repeat("cbimg under Wine\n", 20<<20/17)), 0o644); err != nil {
		t.Fatal(err)
	}
	testvol.Run(t, "mcopy", "-i", vol, data, "::/DATA.BIN")
	mnt := filepath.Join(dir, "slow")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := mount.Mount(mnt, testvol.OpenSlow(t, vol, 30*time.Millisecond), &mount.Options{ReadAheadKB: -1})
	if err != nil {
		t.Fatalf("mount the slow source: %v", err)
	}
	defer func() {
		if err := m.Unmount(); err != nil {
			mount.UnmountLazy(mnt)
		}
	}()
	src := uiWinPath(filepath.Join(mnt, mount.FileName))
	imgs := filepath.Join(dir, "imgs")
	if err := os.Mkdir(imgs, 0o755); err != nil {
		t.Fatal(err)
	}

	u := startWineUI(t, dir, "ui", "--images", uiWinPath(imgs), src)
	u.WaitSteady(60*time.Second, "choose an action", "Volume "+src, "fat32", "Back up "+mount.FileName)
	u.PressUntil("b", "Back up "+mount.FileName)
	u.Keys("Enter")
	u.WaitSteady(10*time.Second, "Image file")
	u.Keys("Tab", "Tab", "Tab", "Tab", "Tab", "Enter")
	u.WaitSteady(10*time.Second, "summary: nothing has been done yet")
	u.Keys("Enter")
	s := u.WaitSteady(60*time.Second, "Phase     copy", "ETA")
	u.whole(s, "Backing up "+mount.FileName, "Esc or c cancel")
	t.Logf("live view under Wine:\n%s", s)
	u.Keys("Escape")
	s = u.WaitSteady(60*time.Second, "No image was left behind")
	u.whole(s, "Backup: CANCELLED", "Enter back to the menu")
	if ents, _ := os.ReadDir(imgs); len(ents) != 0 {
		t.Fatalf("left in the image directory after a cancel: %v", ents)
	}
	u.Keys("q")
	u.WaitSteady(10*time.Second, "EXITED 0")
	u.checkRaw()
}
