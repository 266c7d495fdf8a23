//go:build linux

package browse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
)

// TestExFAT browses an image of an exFAT volume: the tree (with the
// default exclusions marked and reading as zeros) matches exfat-fuse on
// the source in names, sizes, times (UTC, to the 10 ms) and contents;
// fstest.TestFS passes; Extract writes exfat-fuse's bytes.
func TestExFAT(t *testing.T) {
	vol := testvol.ExFAT(t, testvol.ExFATSpec{ClusterSize: 32768, SectorSize: 4096, Content: "full"})
	fsys, _ := openImage(t, backup(t, vol))
	mnt := testvol.MountExFAT(t, vol)
	tree := treeOf(t, fsys)
	n := 0
	err := filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == mnt {
			return err
		}
		rel := strings.TrimPrefix(p, mnt)
		e, ok := tree[rel]
		if !ok {
			t.Errorf("exfat-fuse shows %s; the tree does not", rel)
			return nil
		}
		delete(tree, rel)
		if e.Dir != fi.IsDir() || !e.Dir && e.Size != fi.Size() {
			t.Errorf("%s: dir %v size %d; exfat-fuse %v %d", rel, e.Dir, e.Size, fi.IsDir(), fi.Size())
		}
		if d := e.Modified.Sub(fi.ModTime()); !e.Dir && (d < 0 || d >= 2*time.Second || e.Modified.Location() != time.UTC) {
			t.Errorf("%s: modified %v; exfat-fuse %v", rel, e.Modified, fi.ModTime().UTC())
		}
		if fi.IsDir() || strings.HasPrefix(rel, "/Many/") && !strings.HasSuffix(rel, "0.txt") {
			return nil
		}
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, size := hashFile(t, fsys, strings.TrimPrefix(rel, "/"), "")
		if e.Excluded != "" {
			s := sha256.Sum256(make([]byte, len(want)))
			want = nil
			if got != hex.EncodeToString(s[:]) || size != fi.Size() {
				t.Errorf("excluded %s does not read as %d zeros", rel, fi.Size())
			}
			n++
			return nil
		}
		if s := sha256.Sum256(want); got != hex.EncodeToString(s[:]) {
			t.Errorf("%s differs from exfat-fuse", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range tree {
		t.Errorf("the tree shows %s; exfat-fuse does not", p)
	}
	if n < 100 {
		t.Errorf("only %d files compared", n)
	}
	// fstest reads every file byte by byte: a small subtree.
	sub, err := fs.Sub(fsys, "Grüße")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(sub, "日本語.txt", "Ελληνικά — ünïcödé 😀.bin"); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	if _, err := fsys.Extract(context.Background(), []string{"Frag", "Grüße"}, dest, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"Frag/fragmented.bin", "Grüße/Ελληνικά — ünïcödé 😀.bin"} {
		a, _ := os.ReadFile(filepath.Join(mnt, p))
		b, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil || string(a) != string(b) {
			t.Errorf("extracted %s differs (%v)", p, err)
		}
	}
}
