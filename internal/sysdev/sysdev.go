// Package sysdev opens sources and targets (block devices or files), learns
// their size, and on Windows opens, locks and maps volumes and physical
// drives. Who holds a device (mounts, FUSE drivers) is internal/devguard's
// question.
package sysdev

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrMounted means a device or file is mounted where that is unsafe.
var ErrMounted = errors.New("mounted")

// Source is a device or file opened read-only.
type Source struct {
	*os.File
	Size int64
}

// OpenSource opens path read-only and learns its size (block devices
// report 0 from Stat, so the size comes from seeking to the end).
func OpenSource(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	size, err := sizeOf(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Source{File: f, Size: size}, nil
}

func sizeOf(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Mode().IsRegular() {
		return st.Size(), nil
	}
	if st.IsDir() {
		return 0, fmt.Errorf("%s is a directory", f.Name())
	}
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return n, nil
}

// Target is a device or file opened for writing.
type Target struct {
	*os.File
	Size    int64 // current size (0 for a new file)
	Regular bool  // a regular file, which may grow and have holes
}

// OpenTarget opens path for writing; a missing path is created as a regular
// file (mode 0600).
func OpenTarget(path string) (*Target, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size, err := sizeOf(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Target{File: f, Size: size, Regular: st.Mode().IsRegular()}, nil
}
