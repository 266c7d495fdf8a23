package restorecore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// journal records how much of a restore is safely on the target, so that
// an interrupted restore can continue (Options.Resume) instead of starting
// over.
//
// What it vouches for and when: the target is synced first, then the
// journal is written to a temporary file, synced, renamed over the old one,
// and the directory synced. After a power cut the journal is therefore
// either the old one or the new one, and both claim only bytes that were on
// stable storage before they were written. A checksum binds the claim to
// the image digest and the target's identity, so a torn, edited or foreign
// journal is refused. A resume still reads the claimed range back from the
// target and compares it with the image (restore.go): a device that lied
// about a flush, or a target changed since, makes the resume continue from
// the first byte that differs, never past it.
type journal struct {
	path     string
	Version  int    `json:"version"`
	Image    string `json:"image"`
	Digest   string `json:"digest"` // the image digest: the journal is for this image only
	Target   string `json:"target"`
	TargetID string `json:"target_id"` // device and file identity of the target (targetID)
	Done     int64  `json:"done"`      // logical bytes written and synced
	Sum      string `json:"sum"`       // journalSum of the fields above
}

const (
	journalVersion = 1
	journalMaxSize = 64 << 10
)

var journalKeys = []string{"version", "image", "digest", "target", "target_id", "done", "sum"}

// ErrJournal means a resume was asked for but the journal does not fit.
var ErrJournal = errors.New("restorecore: no usable resume journal")

func newJournal(path, img, target string, digest [32]byte) *journal {
	abs, _ := filepath.Abs(target)
	return &journal{path: path, Version: journalVersion, Image: img, Digest: hex.EncodeToString(digest[:]), Target: abs}
}

// sum is SHA-256 over every field that carries meaning, each length-framed
// so that no two journals share an input.
func (j *journal) sum() string {
	h := sha256.New()
	put := func(s string) {
		binary.Write(h, binary.LittleEndian, uint32(len(s)))
		io.WriteString(h, s)
	}
	put("cbimg resume journal")
	binary.Write(h, binary.LittleEndian, int64(j.Version))
	put(j.Image)
	put(j.Digest)
	put(j.Target)
	put(j.TargetID)
	binary.Write(h, binary.LittleEndian, j.Done)
	return hex.EncodeToString(h.Sum(nil))
}

// load reads the journal at j.path and checks its checksum and that it
// belongs to the same image and target (the target must exist).
func (j *journal) load() error {
	f, err := os.Open(j.path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, journalMaxSize+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s; restore again without resuming", ErrJournal, j.path, fmt.Sprintf(format, args...))
	}
	if len(b) > journalMaxSize {
		return bad("larger than %d bytes", journalMaxSize)
	}
	// Exactly the fields save writes, spelled as it spells them (Go's
	// decoder alone would accept any letter case and unknown keys).
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&fields); err != nil {
		return bad("damaged (%v)", err)
	}
	if dec.More() {
		return bad("damaged (data after the journal)")
	}
	for _, k := range journalKeys {
		if _, ok := fields[k]; !ok {
			return bad("damaged (no %q)", k)
		}
	}
	if len(fields) != len(journalKeys) {
		return bad("damaged (%d fields, want %d)", len(fields), len(journalKeys))
	}
	var old journal
	if err := json.Unmarshal(b, &old); err != nil {
		return bad("damaged (%v)", err)
	}
	if old.Version != journalVersion {
		return bad("version %d, this cbimg writes %d", old.Version, journalVersion)
	}
	if old.Sum != old.sum() {
		return bad("checksum mismatch: torn or edited")
	}
	if old.Digest != j.Digest || old.Target != j.Target {
		return fmt.Errorf("%w: %s is for image %s → %s, not this image → %s", ErrJournal, j.path, old.Image, old.Target, j.Target)
	}
	id, err := targetID(j.Target)
	if err != nil {
		return bad("target: %v", err)
	}
	if old.TargetID != id {
		return bad("the target %s is not the one the journal was written for (identity %s, now %s)", j.Target, old.TargetID, id)
	}
	if old.Done < 0 {
		return bad("negative progress %d", old.Done)
	}
	j.TargetID, j.Done = id, old.Done
	return nil
}

// save writes the journal atomically and durably. The caller has synced
// the target first.
func (j *journal) save() error {
	if j.TargetID == "" {
		id, err := targetID(j.Target)
		if err != nil {
			return err
		}
		j.TargetID = id
	}
	j.Sum = j.sum()
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, j.path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(j.path))
	return nil
}

func (j *journal) remove() {
	os.Remove(j.path)
	syncDir(filepath.Dir(j.path))
}
