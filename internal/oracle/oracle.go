//go:build linux

// Package oracle runs independent readers — sleuthkit, ntfs-3g's tools,
// dosfstools — over volume files so tests can compare cbimg's results with
// theirs.
package oracle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// FLS returns `fls -r -p` of a volume file, one line per entry.
func FLS(t testing.TB, img string) []string {
	t.Helper()
	return strings.Split(strings.TrimRight(string(run(t, "fls", "-r", "-p", img)), "\n"), "\n")
}

// File is an allocated regular file (or named stream) that fls lists.
type File struct {
	Addr string // sleuthkit metadata address, e.g. "64-128-2"
	Path string // as fls prints it, with ":stream" for named streams
}

// Files lists the allocated regular files of a volume, skipping deleted
// entries and reallocated names.
func Files(t testing.TB, img string) []File {
	t.Helper()
	var out []File
	for _, l := range FLS(t, img) {
		typ, rest, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(typ, "r/") || strings.HasPrefix(rest, "*") {
			continue
		}
		addr, p, ok := strings.Cut(rest, ":\t")
		if !ok || strings.Contains(addr, "realloc") {
			continue
		}
		out = append(out, File{Addr: addr, Path: p})
	}
	return out
}

// ICat returns the bytes `icat` reads for a metadata address.
func ICat(t testing.TB, img, addr string) []byte {
	t.Helper()
	return run(t, "icat", img, addr)
}

// ICatHash returns the hex SHA-256 of ICat.
func ICatHash(t testing.TB, img, addr string) string {
	t.Helper()
	s := sha256.Sum256(ICat(t, img, addr))
	return hex.EncodeToString(s[:])
}

// NTFSCloneHash is the SHA-256 of `ntfsclone --save-image -o -`: equal for
// two NTFS volumes with the same metadata and used clusters.
func NTFSCloneHash(t testing.TB, img string) string {
	t.Helper()
	s := sha256.Sum256(run(t, "ntfsclone", "--save-image", "--force", "-o", "-", img))
	return hex.EncodeToString(s[:])
}

// FsckFAT runs `fsck.fat -n` and fails the test unless it reports no change.
func FsckFAT(t testing.TB, img string) string {
	t.Helper()
	cmd := exec.Command("fsck.fat", "-n", img)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.fat -n %s: %v\n%s", img, err, out)
	}
	return string(out)
}

// Fsck runs `fsck.fat -n` and returns its verdict (exit code and report,
// with the image path removed) for comparing two volumes.
func Fsck(t testing.TB, img string) string {
	t.Helper()
	out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(out), img, "IMG") + fmt.Sprintf("exit %d", code)
}

// Live drops deleted entries (marked "*") from an fls listing.
func Live(lines []string) []string {
	var out []string
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, " "); ok && strings.HasPrefix(rest, "*") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// IsZero reports whether b holds only zero bytes.
func IsZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Hex returns the hex SHA-256 of b.
func Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
