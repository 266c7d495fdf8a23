//go:build linux

package locate_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/locate"
)

func TestSplit(t *testing.T) {
	dir := t.TempDir()
	part := filepath.Join(dir, "part.img")
	os.WriteFile(part, []byte("x"), 0o644)
	colon := filepath.Join(dir, "a:b.cbi")
	os.WriteFile(colon, []byte("x"), 0o644)
	for _, tc := range []struct {
		spec, part, path string
		ok               bool
	}{
		{part + ":/Backups/c.cbi", part, "/Backups/c.cbi", true},
		{part + `:Backups\c.cbi`, part, "/Backups/c.cbi", true},
		{colon, "", "", false},                           // an existing file is a path
		{filepath.Join(dir, "new:x.cbi"), "", "", false}, // prefix does not exist
		{dir + ":/x", "", "", false},                     // a directory is no partition
		{part + "@1:/x", part + "@1", "/x", true},        // DISK@N of an existing disk
		{part + ":", "", "", false},
		{"c.cbi", "", "", false},
	} {
		p, q, ok := locate.Split(tc.spec)
		if ok != tc.ok || p != tc.part || q != tc.path {
			t.Errorf("Split(%q) = %q, %q, %v; want %q, %q, %v", tc.spec, p, q, ok, tc.part, tc.path, tc.ok)
		}
	}
}

// An image copied into a FAT volume opens as PARTITION:PATH and reads the
// same as the file outside; a file that is no image gives the image error.
func TestOpenImageInPartition(t *testing.T) {
	testvol.Need(t, "mcopy")
	src := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	img := filepath.Join(t.TempDir(), "x.cbi")
	if _, err := backupcore.Backup(context.Background(), backupcore.Options{Source: src, Image: img, Codec: image.CodecZstd}); err != nil {
		t.Fatal(err)
	}
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 64, Content: "basic"}))
	cmd := exec.Command("mcopy", "-i", vol, img, "::/DOCS/X.CBI")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, out)
	}
	a, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := locate.OpenImage(vol + ":/docs/x.cbi")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Footer.Digest != b.Footer.Digest || a.ImageSize() != b.ImageSize() {
		t.Fatal("the image inside the partition differs from the file")
	}
	rep, err := b.Verify(context.Background(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Error())
	}
	pa, pb := make([]byte, a.Size()), make([]byte, b.Size())
	a.ReadAt(pa, 0)
	b.ReadAt(pb, 0)
	if !bytes.Equal(pa, pb) {
		t.Fatal("partition bytes differ")
	}
	if _, err := locate.OpenImage(vol + ":/DOCS/README.TXT"); err == nil {
		t.Fatal("a text file opened as an image")
	}
	if _, err := locate.OpenImage(vol + ":/DOCS/NONE.CBI"); err == nil {
		t.Fatal("a missing file opened")
	}
}
