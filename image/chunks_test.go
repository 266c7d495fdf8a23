package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// drain returns everything Chunks hands out.
func drain(c *Chunks) ([]byte, error) {
	var out []byte
	for {
		p, err := c.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, p...)
	}
}

func TestChunksMatchStream(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		_, path := testImage(t, codec, 0)
		raw, _ := os.ReadFile(path)
		s, err := NewStreamReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CheckDigest(); err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		c := r.Chunks(context.Background())
		got, err := drain(c)
		c.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%v: %d bytes, want %d (%v)", codec, len(got), len(want), err)
		}
		r.Footer.Digest[0] ^= 1
		if err := r.CheckDigest(); !errors.Is(err, ErrChecksum) {
			t.Errorf("%v: changed digest: %v", codec, err)
		}
		r.Close()
	}
}

func TestChunksFindDamage(t *testing.T) {
	_, path := testImage(t, CodecZstd, 0)
	orig, _ := os.ReadFile(path)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	off := r.frames[3].Offset + frameHeaderLen + 7
	r.Close()
	bad := bytes.Clone(orig)
	bad[off] ^= 0x10
	p := filepath.Join(t.TempDir(), "bad.cbi")
	os.WriteFile(p, bad, 0o600)
	r, err = Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := r.Chunks(context.Background())
	defer c.Close()
	got, err := drain(c)
	var fe *FormatError
	if !errors.As(err, &fe) || !errors.Is(err, ErrChecksum) {
		t.Fatalf("damaged chunk 3: %v", err)
	}
	if want := 3 * int(r.Header.ChunkSize); len(got) != want {
		t.Errorf("%d bytes before the error, want %d", len(got), want)
	}
	if _, err2 := c.Next(); err2 != err {
		t.Errorf("second Next: %v, want the same error", err2)
	}
}
