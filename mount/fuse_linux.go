//go:build linux && !(cgofuse && cgo)

package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// cacheTimeout is how long the kernel may trust attributes and names: the
// content never changes while mounted.
const cacheTimeout = time.Hour

// rootNode is the mount's directory, holding only volume.raw.
type rootNode struct {
	fs.Inode
	file *fileNode
}

var (
	_ fs.NodeOnAdder   = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*rootNode)(nil)
	_ fs.NodeStatfser  = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeReader    = (*fileNode)(nil)
	_ fs.NodeStatfser  = (*fileNode)(nil)
	_ server           = (*linuxServer)(nil)
)

func (r *rootNode) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, r.file, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
	r.AddChild(FileName, ch, false)
}

func (r *rootNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	setOwner(&out.Attr)
	out.SetTimes(nil, &r.file.f.mtime, &r.file.f.mtime)
	return 0
}

func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return r.file.Statfs(ctx, out)
}

// fileNode is volume.raw.
type fileNode struct {
	fs.Inode
	f *file
}

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	out.Size = uint64(n.f.size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20 // makes cp, cat and friends read 1 MiB at a time
	setOwner(&out.Attr)
	out.SetTimes(nil, &n.f.mtime, &n.f.mtime)
	return 0
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	if n.f.directIO {
		return nil, fuse.FOPEN_DIRECT_IO, 0
	}
	// The content never changes: keep the page cache across opens.
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

// Read reads straight into the reply buffer go-fuse hands us.
func (n *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	k, err := n.f.read(dest, off)
	if err != nil {
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = uint64((n.f.size + 4095) / 4096)
	out.Files = 2
	out.NameLen = 255
	return 0
}

func setOwner(a *fuse.Attr) {
	a.Uid = uint32(os.Getuid())
	a.Gid = uint32(os.Getgid())
}

type linuxServer struct {
	srv *fuse.Server
}

func (s *linuxServer) wait()          { s.srv.Wait() }
func (s *linuxServer) unmount() error { return s.srv.Unmount() }

// Mount serves src as volume.raw at mountpoint and returns once the kernel
// has the mount: reads from other processes work at once. The mountpoint
// must be an empty directory that is not itself a mount.
func Mount(mountpoint string, src Source, opts *Options) (*Mounted, error) {
	o, err := prepare(mountpoint, opts)
	if err != nil {
		return nil, err
	}
	f := newFile(src, &o)
	root := &rootNode{file: &fileNode{f: f}}
	fo := fuseOptions(&o)
	srv, err := fs.Mount(mountpoint, root, fo)
	if err != nil {
		return nil, mountError(mountpoint, err)
	}
	ra := o.ReadAheadKB
	if ra == 0 {
		ra = 4096
	}
	if ra > 0 {
		if err := setReadAhead(mountpoint, ra); err != nil && o.Debug && o.Logger != nil {
			o.Logger.Printf("cbimg mount: %v", err)
		}
	}
	return &Mounted{Mountpoint: mountpoint, impl: &linuxServer{srv: srv}}, nil
}

// mountError explains a failed mount.
func mountError(mountpoint string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("mount %s: permission denied (%w); for --allow-other as a non-root user, /etc/fuse.conf needs user_allow_other", mountpoint, err)
	}
	return fmt.Errorf("mount %s: %w", mountpoint, err)
}

// fuseOptions are the go-fuse settings of both views (the volume file and
// the file tree).
func fuseOptions(o *Options) *fs.Options {
	timeout := cacheTimeout
	fsName := o.FsName
	if fsName == "" {
		fsName = "cbimg"
	}
	return &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		Logger:          o.Logger,
		MountOptions: fuse.MountOptions{
			AllowOther: o.AllowOther,
			// "ro" makes the kernel refuse writes (EROFS) before they reach us.
			Options: []string{"ro", "default_permissions"},
			FsName:  fsName,
			Name:    "cbimg",
			// 1 MiB replies from memory: splicing them costs more than it saves.
			MaxWrite:      1 << 20,
			DisableSplice: true,
			MaxReadAhead:  1 << 20,
			DisableXAttrs: true,
			Debug:         o.Debug,
			Logger:        o.Logger,
		},
	}
}
