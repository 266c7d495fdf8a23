package image

import (
	"errors"
	"fmt"
)

// Errors; test with errors.Is.
var (
	ErrFormat    = errors.New("image: not a valid cbimg image")
	ErrChecksum  = errors.New("image: checksum mismatch")
	ErrTruncated = errors.New("image: truncated")
	ErrVersion   = errors.New("image: unsupported format version or feature")
)

// FormatError names the region of the image that is wrong and the byte
// offset (in the image, across split volumes) where it was found.
type FormatError struct {
	Region string // header, bitmap, chunk, table, footer, split
	Offset int64
	Msg    string
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("image %s at byte %d: %s", e.Region, e.Offset, e.Msg)
}

func (e *FormatError) Unwrap() error { return e.Err }
