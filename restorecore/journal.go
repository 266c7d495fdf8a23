package restorecore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// journal records how much of a restore is safely on the target, so that
// an interrupted restore can continue (Options.Resume) instead of starting
// over. It is rewritten atomically after each sync of the target.
type journal struct {
	path   string
	Image  string `json:"image"`
	Digest string `json:"digest"` // the image digest: the journal is for this image only
	Target string `json:"target"`
	Done   int64  `json:"done"` // logical bytes written and synced
}

// ErrJournal means a resume was asked for but the journal does not fit.
var ErrJournal = errors.New("restorecore: no usable resume journal")

func newJournal(path, img, target string, digest [32]byte) *journal {
	abs, _ := filepath.Abs(target)
	return &journal{path: path, Image: img, Digest: hex.EncodeToString(digest[:]), Target: abs}
}

// load reads the journal at j.path and checks it belongs to the same image
// and target.
func (j *journal) load() error {
	b, err := os.ReadFile(j.path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	var old journal
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrJournal, j.path, err)
	}
	if old.Digest != j.Digest || old.Target != j.Target {
		return fmt.Errorf("%w: %s is for image %s → %s, not this image → %s", ErrJournal, j.path, old.Image, old.Target, j.Target)
	}
	j.Done = old.Done
	return nil
}

func (j *journal) save() error {
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
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, j.path)
}

func (j *journal) remove() { os.Remove(j.path) }
