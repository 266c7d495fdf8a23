//go:build linux

package testvol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// SHA256 is the hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// FileSHA256 is the hex sha256 of the file at path; a read error fails
// the test.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ZeroSHA256 is the hex sha256 of n zero bytes.
func ZeroSHA256(n int64) string {
	h := sha256.New()
	io.CopyBuffer(h, io.LimitReader(zeros{}, n), make([]byte, 1<<20))
	return hex.EncodeToString(h.Sum(nil))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// ICat is the hex sha256 of the content sleuthkit's icat reads at address
// addr of vol; an icat failure fails the test.
func ICat(t testing.TB, vol, addr string) string {
	t.Helper()
	h, err := TryICat(vol, addr)
	if err != nil {
		t.Fatalf("icat %s %s: %v", vol, addr, err)
	}
	return h
}

// TryICat is ICat for goroutines, which must not fail a test: it returns
// icat's error with what icat printed.
func TryICat(vol, addr string) (string, error) {
	cmd := exec.Command("icat", vol, addr)
	h := sha256.New()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = h, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SyncBuffer collects what a server or driver logs while a test reads it;
// with Max > 0 it keeps only the first Max bytes.
type SyncBuffer struct {
	Max int
	mu  sync.Mutex
	b   bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Max <= 0 {
		return s.b.Write(p)
	}
	if room := s.Max - s.b.Len(); room > 0 {
		s.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
