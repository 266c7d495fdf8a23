//go:build !linux && !windows

package backupcore

import (
	"context"
	"fmt"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/locate"
)

// findInPlace: storing an image inside its own source partition needs
// Linux (a FUSE driver or mtools creates the file) or Windows (the volume
// is locked while the image goes into its file).
func findInPlace(ctx context.Context, opts *Options, src *disk.Section, mounts []devguard.Mount, warn func(string, ...any)) (*inPlace, error) {
	if _, _, ok := locate.Split(opts.Image); ok {
		return nil, fmt.Errorf("%w: writing an image inside the partition it backs up needs Linux or Windows", ErrInPlaceUnsafe)
	}
	return nil, nil
}

func (ip *inPlace) make(context.Context, *disk.Section) error { return nil }
func (ip *inPlace) abort()                                    {}
func (ip *inPlace) close()                                    {}
func (ip *inPlace) dropFileCache()                            {}
