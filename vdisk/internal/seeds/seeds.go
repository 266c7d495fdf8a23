// Package seeds builds small real virtual disks with qemu-img, qemu-io and
// ewfacquire, as fuzz seeds for the readers.
package seeds

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Make runs the commands (each a program and its arguments, with {} for
// the output file) in a temporary directory and returns the bytes of out,
// or nil when a tool is missing (the fuzz target then runs on its other
// seeds).
func Make(t testing.TB, out string, cmds ...[]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for _, c := range cmds {
		if _, err := exec.LookPath(c[0]); err != nil {
			return nil
		}
		args := make([]string, len(c)-1)
		for i, a := range c[1:] {
			if a == "{}" {
				a = filepath.Join(dir, out)
			}
			args[i] = a
		}
		cmd := exec.Command(c[0], args...)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, b)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, out))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// File writes b to a fresh file named name and returns its path.
func File(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
