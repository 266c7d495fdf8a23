package image

import (
	"bytes"
	"fmt"
	"io"
)

// An image written into a file that was allocated before the image was
// made (an image stored inside the partition it backs up) is shorter than
// its file. Such a file holds the image in its first L bytes, then padding,
// and in its last FooterLen bytes a copy of the image's footer, whose image
// length field says L. See FORMAT.md, "Padded files".

// unpad accepts a padded file: the footer found at the end of the file (fb,
// decoded as f) must be repeated byte for byte at the end of the image it
// announces. The reader then sees only the image.
func (r *Reader) unpad(fb []byte, f *Footer, minLen int64) error {
	if f.ImageLen < minLen {
		return &FormatError{Region: "footer", Offset: r.size - FooterLen, Msg: fmt.Sprintf("footer says the image is %d bytes; its header needs at least %d", f.ImageLen, minLen), Err: ErrFormat}
	}
	copyAt := f.ImageLen - FooterLen
	b := make([]byte, FooterLen)
	if err := r.readAt(b, copyAt, "footer"); err != nil {
		return err
	}
	if !bytes.Equal(b, fb) {
		return &FormatError{Region: "footer", Offset: copyAt, Msg: fmt.Sprintf("the file is %d bytes and ends with a footer for an image of %d bytes, but that image does not end with the same footer", r.size, f.ImageLen), Err: ErrTruncated}
	}
	r.size = f.ImageLen
	return nil
}

// NewReaderCloser is NewReader for a source that Close should close too.
func NewReaderCloser(src io.ReaderAt, size int64, c io.Closer, opts *Options) (*Reader, error) {
	r, err := NewReader(src, size, opts)
	if err != nil {
		return nil, err
	}
	r.closer = c
	return r, nil
}
