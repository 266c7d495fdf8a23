//go:build linux

// Package faultdev serves a file through FUSE that fails reads at chosen
// byte ranges with EIO, the way a disk with bad sectors does, so tests can
// feed real read errors to the cbimg binary and its packages.
package faultdev

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Range is a byte range [Off, Off+Len) that fails to read.
type Range struct{ Off, Len int64 }

type root struct {
	fs.Inode
	file *file
}

type file struct {
	fs.Inode
	f    *os.File
	size int64
	mu   sync.Mutex
	bad  []Range
}

var (
	_ fs.NodeOnAdder   = (*root)(nil)
	_ fs.NodeGetattrer = (*file)(nil)
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeReader    = (*file)(nil)
)

func (r *root) OnAdd(ctx context.Context) {
	r.AddChild("disk", r.NewPersistentInode(ctx, r.file, fs.StableAttr{Mode: syscall.S_IFREG}), false)
}

func (n *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = 0o444 | syscall.S_IFREG
	out.Size = uint64(n.size)
	return 0
}

func (n *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	// No page cache: every read reaches us, so errors are not masked.
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (n *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	end := off + int64(len(dest))
	n.mu.Lock()
	for _, b := range n.bad {
		if off < b.Off+b.Len && b.Off < end {
			n.mu.Unlock()
			return nil, syscall.EIO
		}
	}
	n.mu.Unlock()
	if end > n.size {
		end = n.size
	}
	if off >= end {
		return fuse.ReadResultData(nil), 0
	}
	k, err := n.f.ReadAt(dest[:end-off], off)
	if err != nil && k < int(end-off) {
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// Serve mounts a read-only view of backing in a temporary directory and
// returns the path of the faulty device file; reads touching any bad range
// fail with EIO. It is unmounted when the test ends.
func Serve(t testing.TB, backing string, bad ...Range) string {
	t.Helper()
	f, err := os.Open(backing)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	dir := t.TempDir()
	r := &root{file: &file{f: f, size: st.Size(), bad: bad}}
	srv, err := fs.Mount(dir, r, &fs.Options{MountOptions: fuse.MountOptions{FsName: "faultdev", DisableXAttrs: true}})
	if err != nil {
		f.Close()
		t.Fatalf("faultdev: mount: %v", err)
	}
	t.Cleanup(func() {
		if srv.Unmount() != nil {
			exec.Command("fusermount", "-uz", dir).Run()
		}
		f.Close()
	})
	return filepath.Join(dir, "disk")
}
