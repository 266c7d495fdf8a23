package restorecore

// Images made by other tools (partclone, ntfsclone, and kinds registered
// with anyimage): the same restore, fed from anyimage.Image's checked stream
// of used bytes. The whole image is checked before the target is touched
// unless opening it already read and checked all of it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/locate"
)

// openForeign opens name when it is an image of a kind other than .cbi.
// ok is false for .cbi images and names the .cbi path handles
// (PARTITION:PATH, with its in-place checks).
func openForeign(name string) (img anyimage.Image, ok bool, err error) {
	head := make([]byte, len(image.Magic))
	if _, _, inPart := locate.Split(name); inPart {
		f, err := locate.Open(name)
		if err != nil {
			return nil, false, nil // the .cbi path reports it
		}
		_, rerr := f.ReadAt(head, 0)
		f.Close()
		if rerr != nil || string(head) == image.Magic {
			return nil, false, nil
		}
	} else if f, err := os.Open(name); err == nil {
		_, rerr := io.ReadFull(f, head)
		f.Close()
		if rerr == nil && string(head) == image.Magic {
			return nil, false, nil
		}
	}
	img, err = anyimage.Open(name, nil)
	if errors.Is(err, fs.ErrNotExist) {
		// The .cbi path reports it, and on Windows finds an image inside
		// the (locked) target volume that no file path reaches.
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	if img.Info().Format == "cbi" {
		img.Close()
		return nil, false, nil
	}
	return img, true, nil
}

// checkForeign reads and checks all of img before anything is written.
func checkForeign(ctx context.Context, img anyimage.Image, report func(Progress)) error {
	inf := img.Info()
	if inf.CheckedAtOpen {
		return nil
	}
	rep, err := img.Verify(ctx, func(d int64) { report(Progress{Phase: "check", Done: d, Total: inf.VerifyBytes}) })
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%s: nothing written: %w", inf.Pieces[0], rep.Problems[0])
	}
	return nil
}

// imageSource reads an anyimage.Image's used bytes front to back.
type imageSource struct {
	bufSource
	img anyimage.Image
	rc  io.ReadCloser
}

func newImageSource(ctx context.Context, img anyimage.Image) (*imageSource, error) {
	rc, err := img.Used(ctx)
	if err != nil {
		return nil, err
	}
	return &imageSource{bufSource: newBufSource(rc), img: img, rc: rc}, nil
}

func (s *imageSource) meta() (*image.Header, []byte) {
	return s.img.Header(), s.img.Bitmap()
}
func (s *imageSource) close() { s.rc.Close() }

// foreignHome is the partition holding a foreign image named
// PARTITION:PATH (nil for a plain path): a restore must not write over it,
// since nothing in such an image marks its own clusters as the .cbi
// in-place restore needs. The caller closes it.
func foreignHome(name string) (*disk.Section, error) {
	if _, _, ok := locate.Split(name); !ok {
		return nil, nil
	}
	f, err := locate.Open(name)
	if err != nil {
		return nil, err
	}
	return f.Part, nil
}

// checkForeignHome refuses a target that shares bytes with the partition
// holding the image.
func checkForeignHome(home, tgt *disk.Section) error {
	if home == nil {
		return nil
	}
	if same, overlap := devguard.Overlap(home, tgt); same || overlap {
		return fmt.Errorf("%w: the image lies inside %s, which the restore would overwrite; copy it elsewhere first", ErrInPlaceUnsafe, home.Spec)
	}
	return nil
}
