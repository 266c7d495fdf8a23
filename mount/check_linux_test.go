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
