//go:build linux

package testvol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Partclone returns a partclone image of vol made by tool ("partclone.ntfs",
// "partclone.fat16", ...) with `-c` and the extra arguments given (such as
// "-a0" or "-k", "7"), written to a file, or with stdout to standard output
// (`-o -`). Cached like the volumes; callers must not modify it.
func Partclone(t testing.TB, tool, vol string, stdout bool, extra ...string) string {
	t.Helper()
	Need(t, tool)
	mode := "file"
	if stdout {
		mode = "stdout"
	}
	label := fmt.Sprintf("%s-%s-%s-%s.pc", tool, safeName(strings.Join(extra, "")), mode, shortSum(vol))
	return cached(t, label, foreignSum(t, vol, tool, mode, extra), func(out string) error {
		args := append([]string{"-c", "-s", vol, "-L", "/dev/null", "-q"}, extra...)
		if stdout {
			return runTo(out, tool, append(args, "-o", "-")...)
		}
		return runQuiet(tool, append(args, "-o", out)...)
	})
}

// PartcloneRestore returns what `partclone.restore` makes of img, written
// to a new file (--restore_raw_file).
func PartcloneRestore(t testing.TB, img string) string {
	t.Helper()
	Need(t, "partclone.restore")
	return cached(t, "restored-"+shortSum(img)+".raw", foreignSum(t, img, "partclone.restore"), func(out string) error {
		return runQuiet("partclone.restore", "-s", img, "-o", out, "-C", "--restore_raw_file", "-L", "/dev/null", "-q")
	})
}

// NTFSClone returns an ntfsclone --save-image of vol, to a file or with
// stdout to standard output (-o -).
func NTFSClone(t testing.TB, vol string, stdout bool) string {
	t.Helper()
	Need(t, "ntfsclone")
	mode := "file"
	if stdout {
		mode = "stdout"
	}
	return cached(t, "ntfsclone-"+mode+"-"+shortSum(vol)+".img", foreignSum(t, vol, "ntfsclone", mode), func(out string) error {
		if stdout {
			return runTo(out, "ntfsclone", "-s", "-o", "-", vol)
		}
		return runQuiet("ntfsclone", "-s", "-O", out, vol)
	})
}

// NTFSCloneRestore returns what `ntfsclone -r` makes of img.
func NTFSCloneRestore(t testing.TB, img string) string {
	t.Helper()
	Need(t, "ntfsclone")
	return cached(t, "ntfsclone-restored-"+shortSum(img)+".raw", foreignSum(t, img, "ntfsclone -r"), func(out string) error {
		return runQuiet("ntfsclone", "-r", "-O", out, img)
	})
}

// foreignSum keys a derived file by its input's identity and the command.
func foreignSum(t testing.TB, in string, what ...any) []byte {
	st, err := os.Stat(in)
	if err != nil {
		t.Fatalf("testvol: %v", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%v", in, st.Size(), st.ModTime().UnixNano(), what)
	return h.Sum(nil)
}

func shortSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x", h[:6])
}

func runQuiet(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func runTo(path, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return f.Close()
}
