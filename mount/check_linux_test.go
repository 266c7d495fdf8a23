//go:build linux

package mount

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckNoFUSE(t *testing.T) {
	old := devFuse
	defer func() { devFuse = old }()
	devFuse = "/nonexistent/fuse"
	err := Check(t.TempDir())
	if !errors.Is(err, ErrNoFUSE) || !strings.Contains(err.Error(), "modprobe fuse") {
		t.Fatalf("Check without /dev/fuse: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/t\011`: "/t\t"} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
