//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
)

// A restore from a stream writes the same target as one from the file, and
// a truncated or damaged stream ends in an error, never in a finished
// restore.
func TestRestoreFromStream(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "i.cbi")
	backup(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 64, Content: "full"}), img, true)
	fromFile := filepath.Join(dir, "file.target")
	restore(t, img, fromFile)
	orig, _ := os.ReadFile(img)
	stream := func(b []byte, target string) error {
		_, err := restorecore.Restore(context.Background(), restorecore.Options{Image: "-", Input: bytes.NewReader(b), Target: target})
		return err
	}
	fromStream := filepath.Join(dir, "stream.target")
	if err := stream(orig, fromStream); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(fromFile)
	b, _ := os.ReadFile(fromStream)
	if !bytes.Equal(a, b) {
		t.Fatal("restores from the file and from a stream differ")
	}
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	table := r.Footer.TableOffset
	r.Close()
	damaged := bytes.Clone(orig)
	damaged[table-100] ^= 1 // in the last chunk's stored bytes
	for name, b := range map[string][]byte{"truncated": orig[:len(orig)-200], "damaged": damaged} {
		err := stream(b, filepath.Join(dir, name+".target"))
		var we *restorecore.WriteError
		var fe *image.FormatError
		if !errors.As(err, &we) || !errors.As(err, &fe) {
			t.Errorf("%s stream: %v, want a WriteError with a FormatError", name, err)
		}
	}
}
