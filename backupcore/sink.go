package backupcore

import (
	"errors"
	"fmt"
	"io"

	"github.com/cbimg/cbimg/image"
)

// sink is where a backup's image bytes go: a stream, image files, or the
// clusters of an image file inside the source (inplace.go).
type sink interface {
	// start takes the finished header before the first byte; it may still
	// set the header's split size.
	start(h *image.Header) error
	io.Writer
	// commit makes a complete image visible; abort removes what was
	// written. abort is a no-op after commit.
	commit() error
	abort()
}

// chooseSink picks the sink for opts.Image.
func chooseSink(b *backupRun, ip *inPlace) (sink, error) {
	opts := &b.opts
	switch {
	case opts.Image == "-" || opts.Image == "":
		if opts.Output == nil {
			return nil, errors.New("backupcore: no image path and no output writer")
		}
		if opts.Split > 0 {
			return nil, errors.New("backupcore: split volumes need an image path, not a stream")
		}
		return streamSink{opts.Output}, nil
	case ip != nil:
		return inPlaceSink{ip}, nil
	}
	return &fileSink{path: opts.Image, split: opts.Split, warn: b.warn}, nil
}

// streamSink writes to a pipe; nothing can be taken back.
type streamSink struct{ io.Writer }

func (streamSink) start(*image.Header) error { return nil }
func (streamSink) commit() error             { return nil }
func (streamSink) abort()                    {}

// inPlaceSink writes into the image file inside the source.
type inPlaceSink struct{ *inPlace }

func (s inPlaceSink) commit() error {
	if err := s.inPlace.commit(); err != nil {
		return err
	}
	s.close()
	return nil
}

// fileSink writes image files (image.Create), split into volumes when
// asked, or when they go to a FAT file system.
type fileSink struct {
	path  string
	split int64
	warn  func(string, ...any)
	out   *image.Output
}

func (s *fileSink) start(h *image.Header) error {
	if s.split == 0 && onFAT(s.path) {
		// FAT cannot hold a file of 4 GiB or more.
		h.SplitSize = FATSplit
		h.Finish()
		s.split = FATSplit
		s.warn("the image goes to a FAT file system: split into volumes of %d MiB", FATSplit>>20)
	}
	var err error
	if s.out, err = image.Create(s.path, s.split); err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	return nil
}

func (s *fileSink) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s *fileSink) commit() error               { return s.out.Commit() }

func (s *fileSink) abort() {
	if s.out != nil {
		s.out.Abort()
	}
}
