//go:build !linux

package backupcore

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/sysdev"
	"github.com/cbimg/cbimg/locate"
)

// prepareInPlace: storing an image inside its own source partition needs
// Linux (a FUSE driver or mtools creates the file).
func prepareInPlace(ctx context.Context, opts *Options, src *disk.Section, mounts []sysdev.Mount, warn func(string, ...any)) (*inPlace, error) {
	if _, _, ok := locate.Split(opts.Image); ok {
		return nil, fmt.Errorf("%w: writing an image inside the partition it backs up needs Linux", ErrInPlaceUnsafe)
	}
	if runtime.GOOS == "windows" && opts.Image != "-" && opts.Image != "" {
		if abs, err := filepath.Abs(opts.Image); err == nil && winSameVolume(opts.Source, abs) {
			return nil, fmt.Errorf("%w: %s lies on the volume being backed up; write the image to another volume (an image inside its own volume needs the Linux build)", ErrInPlaceUnsafe, opts.Image)
		}
	}
	return nil, nil
}

func (ip *inPlace) abort()         {}
func (ip *inPlace) close()         {}
func (ip *inPlace) dropFileCache() {}
