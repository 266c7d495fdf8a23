//go:build linux

package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/creack/pty"
)

// ptyRun runs the binary with standard input, output and error on a new
// terminal. When prompt appears in what it writes, answer is typed. It
// returns everything written to the terminal and the exit code.
func ptyRun(t *testing.T, prompt, answer string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 25, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				close(copied)
				return
			}
		}
	}()
	if prompt != "" {
		// A guard against a hang, not a timing assertion.
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			seen := strings.Contains(out.String(), prompt)
			mu.Unlock()
			if seen {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("%v: no %q on the terminal; got %q", args, prompt, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		io.WriteString(f, answer+"\n")
	}
	err = cmd.Wait()
	<-copied
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return out.String(), code
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return hashBytes(b)
}

// Restore onto something that holds data: refused without a terminal and
// without --yes (exit 4, the target untouched, the message names --yes);
// on a terminal the target's name must be typed back. A new or empty file
// needs no question; a file smaller than the partition grows with a note.
func TestRestoreOverwriteAsks(t *testing.T) {
	dir := t.TempDir()
	src := testvol.Real(t, "fat/mkfs-fat16-lfn.img")
	img := filepath.Join(dir, "r.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", src, img); code != 0 {
		t.Fatal(stderr)
	}
	ref := filepath.Join(dir, "ref")
	if _, stderr, code := cbimg(t, nil, "restore", img, ref); code != 0 {
		t.Fatalf("restore to a new file: %d %s", code, stderr)
	}
	want := fileSum(t, ref)
	target := filepath.Join(dir, "target")
	old := bytes.Repeat([]byte("old data"), 1<<10)
	os.WriteFile(target, old, 0o600)
	oldSum := hashBytes(old)

	_, stderr, code := cbimg(t, nil, "restore", img, target)
	if code != exitRefused || !strings.Contains(stderr, "add --yes") || fileSum(t, target) != oldSum {
		t.Fatalf("restore over a file without a terminal: exit %d %q", code, stderr)
	}
	out, code := ptyRun(t, "Type "+target, "not-the-name", "restore", img, target)
	if code != exitRefused || fileSum(t, target) != oldSum {
		t.Fatalf("restore with a wrong name typed: exit %d %q", code, out)
	}
	out, code = ptyRun(t, "Type "+target, target, "restore", img, target)
	if code != 0 || !strings.Contains(out, "grows to") || fileSum(t, target) != want {
		t.Fatalf("restore with the name typed: exit %d %q", code, out)
	}
	// Again over the restored (now full-size) file, from a script.
	_, stderr, code = cbimg(t, nil, "restore", "--yes", img, target)
	if code != 0 || strings.Contains(stderr, "grows") || fileSum(t, target) != want {
		t.Fatalf("restore --yes: exit %d %q", code, stderr)
	}
	// An empty file and a new file: no question.
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, p := range []string{empty, filepath.Join(dir, "new")} {
		if _, stderr, code := cbimg(t, nil, "restore", img, p); code != 0 || fileSum(t, p) != want {
			t.Fatalf("restore to %s: exit %d %q", p, code, stderr)
		}
	}
	// A stream on standard input cannot be asked on: refused unless --yes.
	stream, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(target, old, 0o600)
	if _, stderr, code := cbimg(t, stream, "restore", "-", target); code != exitRefused || !strings.Contains(stderr, "--yes") || fileSum(t, target) != oldSum {
		t.Fatalf("restore - over a file: exit %d %q", code, stderr)
	}
	if _, stderr, code := cbimg(t, stream, "restore", "--yes", "-", target); code != 0 || fileSum(t, target) != want {
		t.Fatalf("restore --yes -: exit %d %q", code, stderr)
	}
}

// restore IMAGE - writes the partition to standard output as one raw
// stream, the same bytes as a restore to a file; to a terminal, or from a
// stream, it is a usage error.
func TestRestoreToStdout(t *testing.T) {
	dir := t.TempDir()
	src := testvol.Real(t, "ntfs/win10-test-ntfs.dd")
	img := filepath.Join(dir, "s.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", "--no-default-excludes", src, img); code != 0 {
		t.Fatal(stderr)
	}
	raw, stderr, code := cbimg(t, nil, "restore", img, "-")
	if code != 0 {
		t.Fatalf("restore to stdout: exit %d %s", code, stderr)
	}
	ref := filepath.Join(dir, "ref")
	if _, stderr, code := cbimg(t, nil, "restore", img, ref); code != 0 {
		t.Fatalf("restore to a new file: %d %s", code, stderr)
	}
	if hashBytes([]byte(raw)) != fileSum(t, ref) {
		t.Fatal("restore to stdout differs from a restore to a file")
	}
	if _, err := os.Stat("-"); err == nil {
		t.Fatal(`a file named "-" was written`)
	}
	if _, stderr, code := cbimg(t, []byte("x"), "restore", "-", "-"); code != exitUsage {
		t.Fatalf("restore - -: exit %d %s", code, stderr)
	}
	out, code := ptyRun(t, "", "", "restore", img, "-")
	if code != exitUsage || !strings.Contains(out, "terminal") {
		t.Fatalf("restore to a terminal: exit %d %q", code, out)
	}
}

// Backup over an existing image: refused without a terminal unless
// --overwrite, asked on one; the old image stays whole until then. A stale
// IMAGE.partial is replaced without a question.
func TestBackupOverwriteAsks(t *testing.T) {
	dir := t.TempDir()
	src := testvol.Real(t, "fat/mkfs-fat16-lfn.img")
	img := filepath.Join(dir, "b.cbi")
	os.WriteFile(img+".partial", []byte("left over"), 0o600)
	if _, stderr, code := cbimg(t, nil, "backup", "-q", src, img); code != 0 {
		t.Fatalf("backup over a stale .partial: exit %d %s", code, stderr)
	}
	// Stands for last week's image: any content must survive a refusal.
	os.WriteFile(img, []byte("last week's image"), 0o600)
	sum := fileSum(t, img)
	_, stderr, code := cbimg(t, nil, "backup", src, img)
	if code != exitRefused || !strings.Contains(stderr, "add --overwrite") || fileSum(t, img) != sum {
		t.Fatalf("backup over an image without a terminal: exit %d %q", code, stderr)
	}
	out, code := ptyRun(t, "[y/N]", "n", "backup", src, img)
	if code != exitRefused || fileSum(t, img) != sum {
		t.Fatalf("backup answered no: exit %d %q", code, out)
	}
	out, code = ptyRun(t, "[y/N]", "y", "backup", src, img)
	if code != 0 || fileSum(t, img) == sum {
		t.Fatalf("backup answered yes: exit %d %q", code, out)
	}
	if _, _, code := cbimg(t, nil, "verify", img); code != 0 {
		t.Fatal("the replaced image does not verify")
	}
	os.WriteFile(img, []byte("last week's image"), 0o600)
	if _, stderr, code := cbimg(t, nil, "backup", "-q", "--overwrite", src, img); code != 0 || fileSum(t, img) == sum {
		t.Fatalf("backup --overwrite: exit %d %s", code, stderr)
	}
	if st, err := os.Stat(img); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("image mode: %v %v", st.Mode(), err)
	}
	// --mode opens the finished image and every split volume.
	if _, stderr, code := cbimg(t, nil, "backup", "-q", "--overwrite", "--mode", "0640", "--split", "1M", "--compress", "none", testvol.Real(t, "ntfs/win10-test-ntfs.dd"), img); code != 0 {
		t.Fatalf("backup --mode 0640: exit %d %s", code, stderr)
	}
	for _, p := range []string{img, img + ".002"} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o640 {
			t.Fatalf("%s: %v, want mode 0640", p, st)
		}
	}
	for _, bad := range []string{"0644x", "0400", "1777"} {
		if _, _, code := cbimg(t, nil, "backup", "--overwrite", "--mode", bad, src, img); code != exitUsage {
			t.Fatalf("--mode %s: exit %d", bad, code)
		}
	}
}

// Extract over files that exist in DEST: refused without a terminal unless
// --yes (nothing written), asked on one. -C defaults to the current
// directory.
func TestExtractOverwriteAsks(t *testing.T) {
	img := filesImage(t, testvol.Real(t, "fat/mkfs-fat16-lfn.img"))
	dest := t.TempDir()
	cmd := exec.Command(bin, "extract", img, "/")
	cmd.Dir = dest
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extract into the current directory: %v %s", err, out)
	}
	var victim string
	filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err == nil && victim == "" && d.Type().IsRegular() {
			victim = p
		}
		return nil
	})
	if victim == "" {
		t.Fatal("extract wrote no file into the current directory")
	}
	os.WriteFile(victim, []byte("mine"), 0o644)
	_, stderr, code := cbimg(t, nil, "extract", img, "/", "-C", dest)
	if b, _ := os.ReadFile(victim); code != exitRefused || !strings.Contains(stderr, "add --yes") || string(b) != "mine" {
		t.Fatalf("extract over files without a terminal: exit %d %q", code, stderr)
	}
	out, code := ptyRun(t, "[y/N]", "no", "extract", img, "/", "-C", dest)
	if b, _ := os.ReadFile(victim); code != exitRefused || string(b) != "mine" {
		t.Fatalf("extract answered no: exit %d %q", code, out)
	}
	out, code = ptyRun(t, "[y/N]", "y", "extract", img, "/", "-C", dest)
	if b, _ := os.ReadFile(victim); code != 0 || string(b) == "mine" {
		t.Fatalf("extract answered yes: exit %d %q", code, out)
	}
	os.WriteFile(victim, []byte("mine"), 0o644)
	if _, stderr, code := cbimg(t, nil, "extract", "--yes", img, "/", "-C", dest); code != 0 {
		t.Fatalf("extract --yes: exit %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(victim); string(b) == "mine" {
		t.Fatal("extract --yes left the old file")
	}
}

// A restore in place (the image inside the partition it restores) asks
// like any other: refused without a terminal and without --yes, done when
// the name is typed.
func TestInPlaceRestoreAsks(t *testing.T) {
	testvol.Need(t, "mcopy", "mdel", "mdir")
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	img := vol + ":/self.cbi"
	if _, stderr, code := cbimg(t, nil, "backup", "-q", vol, img); code != 0 {
		t.Fatalf("backup in place: %d %s", code, stderr)
	}
	testvol.Run(t, "mdel", "-i", vol, "::/Data/1MiB.bin")
	sum := fileSum(t, vol)
	_, stderr, code := cbimg(t, nil, "restore", img, vol)
	if code != exitRefused || !strings.Contains(stderr, "add --yes") || fileSum(t, vol) != sum {
		t.Fatalf("restore in place without a terminal: exit %d %q", code, stderr)
	}
	out, code := ptyRun(t, "Type "+vol, vol, "restore", img, vol)
	if code != 0 || fileSum(t, vol) == sum {
		t.Fatalf("restore in place with the name typed: exit %d %q", code, out)
	}
	if _, stderr, code := cbimg(t, nil, "verify", img); code != 0 {
		t.Fatalf("the image after its restore in place: %d %s", code, stderr)
	}
	testvol.Run(t, "mdir", "-i", vol, "::/Data/1MiB.bin")
}

// The progress line on a terminal shows bytes done and total beside the
// percentage, and the bytes written to the terminal hold no query (OSC 11,
// DSR) or any other escape sequence.
func TestProgressOnTerminal(t *testing.T) {
	dir := t.TempDir()
	src := testvol.Real(t, "ntfs/win10-test-ntfs.dd")
	img := filepath.Join(dir, "p.cbi")
	out, code := ptyRun(t, "", "", "backup", src, img)
	if code != 0 {
		t.Fatalf("backup on a terminal: exit %d %q", code, out)
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Fatalf("escape sequence written to the terminal: %q", out)
	}
	if !strings.Contains(out, "%") || !strings.Contains(out, " / ") {
		t.Fatalf("no progress with bytes done / total: %q", out)
	}
	for _, args := range [][]string{{"version"}, {"--help"}, {"info", img}} {
		out, code := ptyRun(t, "", "", args...)
		if code != 0 || strings.ContainsRune(out, 0x1b) {
			t.Fatalf("%v on a terminal: exit %d, %q", args, code, out)
		}
	}
}

// The menu asks the terminal nothing either: no background-colour query
// (OSC 11) and no cursor-position request (DSR) in what it writes.
func TestMenuSendsNoQueries(t *testing.T) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	out, code := ptyRun(t, "fat16", "q", "ui", vol)
	if code != 0 || strings.Contains(out, "\x1b]11;?") || strings.Contains(out, "\x1b[6n") {
		t.Fatalf("cbimg ui: exit %d; queries in %q", code, out)
	}
}
