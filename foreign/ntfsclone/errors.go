package ntfsclone

import (
	"fmt"

	"github.com/cbimg/cbimg/image"
)

// Errors are *image.FormatError values wrapping image.ErrFormat,
// image.ErrTruncated or image.ErrVersion, with the byte offset in the
// ntfsclone image where the problem is.

func fe(region string, off int64, err error, format string, args ...any) error {
	return &image.FormatError{Region: "ntfsclone " + region, Offset: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

func errFormat(off int64, format string, args ...any) error {
	return fe("header", off, image.ErrFormat, format, args...)
}

func errVersion(off int64, format string, args ...any) error {
	return fe("header", off, image.ErrVersion, format, args...)
}

func errTrunc(off int64, format string, args ...any) error {
	return fe("image", off, image.ErrTruncated, format, args...)
}
