package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
)

// A padded file (image, zeros, copy of the footer) reads as the image; a
// file whose last bytes are a footer its image does not end with is refused.
func TestPaddedFile(t *testing.T) {
	want, path := testImage(t, CodecZstd, 0)
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	foot := img[len(img)-FooterLen:]
	padded := append(append(append([]byte{}, img...), make([]byte, 12345)...), foot...)
	r, err := NewReader(bytes.NewReader(padded), int64(len(padded)), nil)
	if err != nil {
		t.Fatalf("padded file: %v", err)
	}
	if r.ImageSize() != int64(len(img)) {
		t.Fatalf("image size %d, want %d", r.ImageSize(), len(img))
	}
	rep, err := r.Verify(context.Background(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Error())
	}
	got := make([]byte, len(want))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("partition bytes differ (%v)", err)
	}
	// A stream of the padded file stops at the image's footer.
	sr, err := NewStreamReader(bytes.NewReader(padded))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, sr); err != nil {
		t.Fatalf("stream of a padded file: %v", err)
	}

	// The footer copy at the end but not at the image's end: refused.
	bad := append([]byte{}, padded...)
	bad[len(img)-FooterLen+20] ^= 1
	if _, err := NewReader(bytes.NewReader(bad), int64(len(bad)), nil); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrChecksum) {
		t.Fatalf("mismatched footer copy: %v", err)
	}
	// Padding without the footer copy: the file is incomplete.
	short := append(append([]byte{}, img...), make([]byte, 4096)...)
	if _, err := NewReader(bytes.NewReader(short), int64(len(short)), nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("padding without a footer copy: %v", err)
	}
}
