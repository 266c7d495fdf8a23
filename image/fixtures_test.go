package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fixtureSum is the SHA-256 of the partition every image in
// testdata/images holds (testdata/images/MANIFEST.md).
const fixtureSum = "1d8e0cdab2de2de2e1c24fde85421e595331339e2aa381bc91bbfa981c059873"

// TestFormatFixtures reads every format variant an earlier cbimg wrote.
func TestFormatFixtures(t *testing.T) {
	names, err := filepath.Glob("../testdata/images/*.cbi")
	if err != nil || len(names) < 5 {
		t.Fatalf("fixtures: %v %v", names, err)
	}
	flags := map[uint16]bool{}
	for _, name := range names {
		t.Run(filepath.Base(name), func(t *testing.T) {
			r, err := Open(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			flags[r.Header.RequiredFlags] = true
			if _, err := r.Verify(context.Background(), nil); err != nil {
				t.Fatalf("verify: %v", err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(r, 0, r.Size())); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != fixtureSum {
				t.Fatalf("partition sha256 %s, want %s", got, fixtureSum)
			}
			f, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, err := NewStreamReader(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, s); err != nil {
				t.Fatalf("stream: %v", err)
			}
		})
	}
	for _, want := range []uint16{RequireBlockCRC, RequireBlockCRC | RequireSubFrames, RequireBlockCRC | RequireXXH3, RequireBlockCRC | RequireSubFrames | RequireXXH3} {
		if !flags[want] {
			t.Errorf("no fixture with required flags %#x", want)
		}
	}
}
