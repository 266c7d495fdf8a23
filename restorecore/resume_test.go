//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
)

// An interrupted restore resumed from its journal equals an uninterrupted
// one, byte for byte.
func TestResume(t *testing.T) {
	restorecore.SetJournalEvery(2 << 20)
	defer restorecore.SetJournalEvery(256 << 20)
	dir := t.TempDir()
	img := filepath.Join(dir, "i.cbi")
	backup(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), img, false)
	whole := filepath.Join(dir, "whole")
	restore(t, img, whole)

	target := filepath.Join(dir, "resumed")
	journal := img + ".resume"
	ctx, cancel := context.WithCancel(context.Background())
	_, err := restorecore.Restore(ctx, restorecore.Options{Image: img, Target: target, Journal: journal,
		Progress: func(p restorecore.Progress) {
			if p.Phase == "write" && p.Done > 8<<20 {
				cancel()
			}
		}})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted restore: %v", err)
	}
	var j struct{ Done int64 }
	b, err := os.ReadFile(journal)
	if err != nil || json.Unmarshal(b, &j) != nil || j.Done < 4<<20 {
		t.Fatalf("journal after interruption: %s %v", b, err)
	}
	head := make([]byte, 512)
	f, _ := os.Open(target)
	f.ReadAt(head, 0)
	f.Close()
	if !bytes.Equal(head, make([]byte, 512)) {
		t.Fatal("boot sector written by an interrupted restore")
	}
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: target, Journal: journal, Resume: true}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	a, _ := os.ReadFile(whole)
	c, _ := os.ReadFile(target)
	if !bytes.Equal(a, c) {
		t.Fatal("resumed restore differs from an uninterrupted one")
	}
	if _, err := os.Stat(journal); err == nil {
		t.Fatal("journal left after a finished restore")
	}
	// A journal for another image is refused.
	os.WriteFile(journal, []byte(`{"digest":"00","target":"x","done":5}`), 0o600)
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: target, Journal: journal, Resume: true}); !errors.Is(err, restorecore.ErrJournal) {
		t.Fatalf("foreign journal: %v", err)
	}
}
