//go:build linux

package backupcore

import (
	"context"
	"errors"

	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
)

// A cancelled backup leaves neither the image nor its partial file.
func TestInterruptedBackupLeavesNothing(t *testing.T) {
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	img := filepath.Join(t.TempDir(), "x.cbi")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Backup(ctx, Options{Source: src, Image: img, Codec: image.CodecZstd, Split: 4 << 20,
		Progress: func(p Progress) {
			if p.Done > 10<<20 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	left, _ := filepath.Glob(img + "*")
	if len(left) > 0 {
		t.Fatalf("files left behind: %v", left)
	}
}

// Dirty and hibernated volumes are warned about and recorded.
func TestDirtyHibernatedRecorded(t *testing.T) {
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic", Dirty: true, Hibernated: true})
	img := filepath.Join(t.TempDir(), "d.cbi")
	res, err := Backup(context.Background(), Options{Source: src, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Flags&image.FlagDirty == 0 || res.Header.Flags&image.FlagHibernated == 0 {
		t.Fatalf("flags %#x", res.Header.Flags)
	}
	w := strings.Join(res.Warnings, "\n")
	if !strings.Contains(w, "dirty") || !strings.Contains(w, "hibernated") {
		t.Fatalf("warnings: %s", w)
	}
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Header.Flags != res.Header.Flags {
		t.Fatal("flags not stored")
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pat, path string
		want      bool
	}{
		{"/pagefile.sys", "/PAGEFILE.SYS", true},
		{"/pagefile.sys", "/Windows/pagefile.sys", false},
		{"*.tmp", "/a/b/C.TMP", true},
		{"Users/*/Temp/*", "/Users/bob/Temp/x", true},
		{"Users/*/Temp/*", "/Users/bob/Temp/x/y", false},
	} {
		if got := Match(c.pat, c.path); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.pat, c.path, got)
		}
	}
}
