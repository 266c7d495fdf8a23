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

	"github.com/cbimg/cbimg/image"
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
	interrupted(t, img, target, journal)
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

// interrupted starts a restore of img to target with a journal and cancels
// it after 8 MiB; it returns the journal's claim.
func interrupted(t *testing.T, img, target, journal string) int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := restorecore.Restore(ctx, restorecore.Options{Image: img, Target: target, Journal: journal,
		Progress: func(p restorecore.Progress) {
			if p.Phase == "write" && p.Done > 8<<20 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted restore: %v", err)
	}
	var j struct{ Done int64 }
	b, err := os.ReadFile(journal)
	if err != nil || json.Unmarshal(b, &j) != nil || j.Done < 4<<20 {
		t.Fatalf("journal after interruption: %s %v", b, err)
	}
	return j.Done
}

// A journal that claims more than the target holds — forged ahead, or
// durable while the data it vouches for was lost (written out of order),
// or an older one — never makes a resume skip a byte: the claimed range
// is read back and compared, and the result equals an uninterrupted
// restore. A torn or edited journal is refused before the target is
// touched.
func TestResumeJournalLies(t *testing.T) {
	restorecore.SetJournalEvery(2 << 20)
	defer restorecore.SetJournalEvery(256 << 20)
	dir := t.TempDir()
	img := filepath.Join(dir, "i.cbi")
	backup(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), img, false)
	whole := filepath.Join(dir, "whole")
	restore(t, img, whole)
	want, _ := os.ReadFile(whole)
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	logical := r.Header.LogicalLen
	r.Close()

	resume := func(t *testing.T, target, journal string) ([]string, error) {
		var warns []string
		_, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: target, Journal: journal, Resume: true,
			Warn: func(s string) { warns = append(warns, s) }})
		return warns, err
	}
	exact := func(t *testing.T, target string) {
		t.Helper()
		if got, _ := os.ReadFile(target); !bytes.Equal(got, want) {
			t.Fatal("resumed restore differs from an uninterrupted one")
		}
	}
	for _, c := range []struct {
		name   string
		change func(t *testing.T, target, journal string, done int64)
		warned bool
	}{
		{"forged ahead", func(t *testing.T, target, journal string, done int64) {
			if err := restorecore.ForgeJournal(journal, logical-(1<<20)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"data lost under the journal", func(t *testing.T, target, journal string, done int64) {
			f, err := os.OpenFile(target, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Zero everything past the first MiB: whatever the journal
			// covers there was "never written".
			_, err = f.WriteAt(make([]byte, 32<<20), 1<<20)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}, true},
		{"older journal", func(t *testing.T, target, journal string, done int64) {
			if err := restorecore.ForgeJournal(journal, done/2); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "target")
			journal := target + ".resume"
			done := interrupted(t, img, target, journal)
			c.change(t, target, journal, done)
			warns, err := resume(t, target, journal)
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			exact(t, target)
			if c.warned != (len(warns) > 0) {
				t.Errorf("warnings %q", warns)
			}
		})
	}

	t.Run("torn, edited or past the end", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "target")
		journal := target + ".resume"
		interrupted(t, img, target, journal)
		good, _ := os.ReadFile(journal)
		// A mark where a restore writes first (the boot sector is zeroed
		// before any data): a refused resume must leave it.
		if f, err := os.OpenFile(target, os.O_WRONLY, 0); err == nil {
			f.WriteAt([]byte("untouched"), 0)
			f.Close()
		}
		before, _ := os.ReadFile(target)
		bad := [][]byte{nil, good[:1], good[:len(good)/2], good[:len(good)-1],
			bytes.Replace(good, []byte(`"done":`), []byte(`"done":9`), 1)}
		for i, b := range bad {
			os.WriteFile(journal, b, 0o600)
			if _, err := resume(t, target, journal); !errors.Is(err, restorecore.ErrJournal) {
				t.Fatalf("journal %d (%q): %v, want ErrJournal", i, b, err)
			}
		}
		if err := restorecore.ForgeJournal(journal, 0); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(journal, good, 0o600)
		if err := restorecore.ForgeJournal(journal, logical+1); err != nil {
			t.Fatal(err)
		}
		if _, err := resume(t, target, journal); !errors.Is(err, restorecore.ErrJournal) {
			t.Fatalf("claim past the image: %v", err)
		}
		if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
			t.Fatal("a refused resume changed the target")
		}
		// The intact journal still resumes exactly.
		os.WriteFile(journal, good, 0o600)
		if _, err := resume(t, target, journal); err != nil {
			t.Fatalf("resume: %v", err)
		}
		exact(t, target)
	})
}
