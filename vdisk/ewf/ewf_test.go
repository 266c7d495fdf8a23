package ewf

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func TestSegmentName(t *testing.T) {
	for n, want := range map[int]string{1: "x.E01", 2: "x.E02", 99: "x.E99", 100: "x.EAA", 101: "x.EAB", 126: "x.EBA", 775: "x.EZZ", 776: "x.FAA"} {
		if got := SegmentName("x.E01", n); got != want {
			t.Errorf("segment %d: %s, want %s", n, got, want)
		}
	}
	if got := SegmentName("x.e01", 100); got != "x.eaa" {
		t.Errorf("lower case: %s", got)
	}
}

// TestSegmentsAndDamage: an image in several segments reads whole and its
// MD5 verifies; a missing segment, a damaged chunk and a wrong MD5 are
// errors.
func TestSegmentsAndDamage(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "media.raw")
	data := make([]byte, 3<<20)
	rand.Read(data[:2<<20]) // incompressible, so that it needs segments
	os.WriteFile(raw, data, 0o600)
	run(t, "ewfacquire", "-u", "-t", filepath.Join(dir, "ev"), "-c", "deflate:fast", "-S", "1MiB", "-f", "encase6", "-q", raw)
	first := filepath.Join(dir, "ev.E01")
	d, err := Open(first)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.segs) < 3 {
		t.Fatalf("%d segments, want 3 or more", len(d.segs))
	}
	got := make([]byte, d.Size())
	if n, err := d.ReadAt(got, 0); n != len(data) || string(got) != string(data) {
		t.Fatalf("read %d bytes (%v), not the media", n, err)
	}
	if sum, err := d.Verify(context.Background()); err != nil || sum != d.StoredMD5() || sum == "" {
		t.Fatalf("Verify = %s, %v; stored %s", sum, err, d.StoredMD5())
	}
	d.md5[0] ^= 1
	if _, err := d.Verify(context.Background()); !errors.Is(err, vdio.ErrFormat) {
		t.Errorf("wrong MD5: %v", err)
	}
	d.Close()

	// A flipped byte in the middle of the first segment's chunks.
	b, _ := os.ReadFile(first)
	b[len(b)/2] ^= 0x40
	os.WriteFile(first, b, 0o600)
	if d, err := Open(first); err == nil {
		_, err = d.Verify(context.Background())
		d.Close()
		if !errors.Is(err, vdio.ErrFormat) {
			t.Errorf("damaged chunk: %v, want ErrFormat", err)
		}
	} else if !errors.Is(err, vdio.ErrFormat) {
		t.Errorf("damaged segment: %v, want ErrFormat", err)
	}

	os.Remove(filepath.Join(dir, "ev.E02"))
	if _, err := Open(first); !errors.Is(err, vdio.ErrMissing) {
		t.Errorf("missing segment: %v, want ErrMissing", err)
	}
}

// TestChunkBomb: a compressed chunk that inflates past the chunk size is
// an error, not a larger buffer.
func TestChunkBomb(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "media.raw")
	data := make([]byte, 256<<10)
	rand.Read(data)
	hex.Encode(data, data[:len(data)/2]) // compressible, but not to nothing
	os.WriteFile(raw, data, 0o600)
	run(t, "ewfacquire", "-u", "-t", filepath.Join(dir, "ev"), "-c", "deflate:fast", "-f", "encase6", "-q", raw)
	first := filepath.Join(dir, "ev.E01")
	d, err := Open(first)
	if err != nil {
		t.Fatal(err)
	}
	tb := d.tables[0]
	e0, e1 := tb.entries[0], tb.entries[1]
	d.Close()
	if e0&compressedBit == 0 {
		t.Fatal("chunk 0 is stored uncompressed")
	}
	off := tb.base + int64(e0&^compressedBit)
	room := int64(e1&^compressedBit) - int64(e0&^compressedBit)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 4*d.chunkSize))
	zw.Close()
	if int64(z.Len()) > room {
		t.Fatalf("a bomb of %d bytes does not fit the chunk's %d", z.Len(), room)
	}
	f, _ := os.OpenFile(first, os.O_WRONLY, 0)
	f.WriteAt(z.Bytes(), off)
	f.Close()
	d, err = Open(first)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.ReadAt(make([]byte, 512), 0); !errors.Is(err, vdio.ErrFormat) {
		t.Fatalf("bomb chunk: %v, want ErrFormat", err)
	}
}
