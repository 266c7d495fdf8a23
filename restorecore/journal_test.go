package restorecore

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A journal torn at any byte, or with any byte changed, is refused; the
// same fields in another order are the same journal.
func TestJournalTornOrTampered(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	var digest [32]byte
	copy(digest[:], "an image digest of thirty-two b.")
	path := filepath.Join(dir, "j")
	j := newJournal(path, "i.cbi", target, digest)
	j.Done = 123456789
	if err := j.save(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() *journal { return newJournal(path, "i.cbi", target, digest) }
	if f := fresh(); f.load() != nil || f.Done != 123456789 {
		t.Fatalf("intact journal: %v", fresh().load())
	}
	refused := func(what string, b []byte) {
		t.Helper()
		os.WriteFile(path, b, 0o600)
		f := fresh()
		if err := f.load(); !errors.Is(err, ErrJournal) {
			t.Fatalf("%s: loaded (done %d), want ErrJournal", what, f.Done)
		}
	}
	for n := 0; n < len(good); n++ {
		refused("torn at byte "+strconv.Itoa(n), good[:n])
	}
	for i := range good {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			b := append([]byte(nil), good...)
			b[i] ^= x
			os.WriteFile(path, b, 0o600)
			f := fresh()
			// A change outside any value (whitespace that stays
			// whitespace) may leave the same journal; nothing else may load.
			if err := f.load(); err == nil && (f.Done != 123456789 || strings.TrimSpace(string(b)) != strings.TrimSpace(string(good))) {
				t.Fatalf("byte %d ^ %#x: loaded with done %d", i, x, f.Done)
			}
		}
	}
	refused("appended data", append(append([]byte(nil), good...), `{"done":1}`...))
	refused("unknown field", []byte(strings.Replace(string(good), `"done"`, `"done2":1,"done"`, 1)))

	// The same fields in reverse order: the same claim.
	s := strings.TrimSuffix(strings.TrimPrefix(string(good), "{"), "}")
	parts := strings.Split(s, ",")
	for i, k := 0, len(parts)-1; i < k; i, k = i+1, k-1 {
		parts[i], parts[k] = parts[k], parts[i]
	}
	os.WriteFile(path, []byte("{"+strings.Join(parts, ",")+"}"), 0o600)
	if f := fresh(); f.load() != nil || f.Done != 123456789 {
		t.Fatalf("reordered fields: %v", f.load())
	}

	// Another target (same path, another file) or image is refused. (A
	// file that reuses the inode is the same target to this check; the
	// read-back of the claimed range on resume covers that case.)
	os.WriteFile(path, good, 0o600)
	os.Rename(target, target+".old")
	os.WriteFile(target, make([]byte, 4096), 0o600)
	if err := fresh().load(); !errors.Is(err, ErrJournal) || !strings.Contains(err.Error(), "not the one") {
		t.Fatalf("replaced target: %v", err)
	}
	digest[0] ^= 1
	if err := newJournal(path, "i.cbi", target, digest).load(); !errors.Is(err, ErrJournal) {
		t.Fatalf("other image: %v", err)
	}
}
