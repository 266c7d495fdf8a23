//go:build windows

package restorecore

// Windows names an image inside the volume to restore by its path
// (cbimg restore C:\Backups\c.cbi C:). The file system cannot serve that
// path while the volume is restored under it, and a locked volume answers
// only the handle that locked it, so the target is opened and locked
// first and the image is read through the same handle, from the clusters
// our own reader finds for it; the in-place checks then keep those
// clusters out of the restore.

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
)

// openOnTarget opens an image that lies on the drive-letter volume target
// names; it returns a nil target for any other image.
func openOnTarget(name, target string) (*image.Reader, *locate.File, *disk.Section, error) {
	if name == "" || name == "-" {
		return nil, nil, nil, nil
	}
	abs, err := filepath.Abs(name)
	abs = strings.TrimPrefix(abs, `\\?\`)
	if err != nil || !devguard.OnDriveVolume(target, abs) {
		return nil, nil, nil, nil
	}
	volPath, ok := devguard.DrivePath(abs)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: %s is not a file path on %s", ErrInPlaceUnsafe, name, abs[:2])
	}
	tgt, err := disk.OpenPartition(target, true)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open target: %w", err)
	}
	fail := func(err error) (*image.Reader, *locate.File, *disk.Section, error) {
		tgt.Close()
		return nil, nil, nil, err
	}
	if err := tgt.Lock(); err != nil {
		return fail(fmt.Errorf("%w: %w: the image %s is read from the volume it restores, which must be locked first: close the programs and Explorer windows using %s (the volume Windows runs from can only be restored from WinPE)",
			ErrTargetMounted, err, name, abs[:2]))
	}
	vol, err := volume.Open(tgt, tgt.Size())
	if err != nil {
		return fail(fmt.Errorf("%s: %w", target, err))
	}
	f, err := locate.Lookup(vol, tgt, volPath)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	f.Spec = name
	r, err := image.NewReaderCloser(f, f.Size, f, nil)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	return r, f, tgt, nil
}
