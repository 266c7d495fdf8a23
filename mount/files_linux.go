//go:build linux && !(cgofuse && cgo)

package mount

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	iofs "io/fs"
	"log"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The file tree of an image (mount --files): every FUSE request is served
// from one io/fs.FS, the same tree `cbimg ls`, `cat` and `extract` read, so
// the mount shows exactly what they show.

// treeNode is one directory or file of the tree.
type treeNode struct {
	fs.Inode
	t    *tree
	name string // fs.FS path, "." for the root
	info iofs.FileInfo
}

var (
	_ fs.NodeGetattrer = (*treeNode)(nil)
	_ fs.NodeLookuper  = (*treeNode)(nil)
	_ fs.NodeReaddirer = (*treeNode)(nil)
	_ fs.NodeOpener    = (*treeNode)(nil)
	_ fs.NodeStatfser  = (*treeNode)(nil)
	_ fs.FileReader    = (*treeHandle)(nil)
	_ fs.FileReleaser  = (*treeHandle)(nil)
)

// tree is what all nodes of one mount share.
type tree struct {
	fsys   iofs.FS
	logger *log.Logger

	mu     sync.Mutex
	logged map[string]bool
}

// errno maps an fs.FS error to a FUSE status, logging what is not a plain
// "no such file" once per path.
func (t *tree) errno(op, name string, err error) syscall.Errno {
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, iofs.ErrInvalid):
		return syscall.EINVAL
	}
	t.mu.Lock()
	seen := t.logged[op+name]
	if !seen && len(t.logged) < maxLogged {
		t.logged[op+name] = true
	}
	t.mu.Unlock()
	if !seen {
		t.logger.Printf("cbimg mount: EIO for %s %s: %v", op, name, err)
	}
	return syscall.EIO
}

func (n *treeNode) child(name string) string {
	if n.name == "." {
		return name
	}
	return n.name + "/" + name
}

func fuseMode(m iofs.FileMode) uint32 {
	if m.IsDir() {
		return syscall.S_IFDIR | 0o555
	}
	// Irregular entries (NTFS reparse points) are shown as the plain
	// files they are on disk, never followed.
	return syscall.S_IFREG | 0o444
}

// inodeOf gives a path a stable inode number, so repeated lookups share
// one node.
func inodeOf(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() | 1<<63 // clear of the root's 1
}

func (n *treeNode) fill(a *fuse.Attr) {
	a.Mode = fuseMode(n.info.Mode())
	a.Nlink = 1
	if n.info.IsDir() {
		a.Nlink = 2
	} else {
		a.Size = uint64(n.info.Size())
		a.Blocks = (a.Size + 511) / 512
		a.Blksize = 1 << 20
	}
	a.Uid, a.Gid = ownerIDs()
	mt := n.info.ModTime()
	if mt.IsZero() {
		mt = time.Unix(0, 0)
	}
	a.SetTimes(&mt, &mt, &mt)
}

func (n *treeNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	out.SetTimeout(cacheTimeout)
	return 0
}

func (n *treeNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.info.IsDir() {
		return nil, syscall.ENOTDIR
	}
	p := n.child(name)
	if !iofs.ValidPath(p) {
		return nil, syscall.ENOENT
	}
	info, err := iofs.Stat(n.t.fsys, p)
	if err != nil {
		return nil, n.t.errno("lookup", p, err)
	}
	c := &treeNode{t: n.t, name: p, info: info}
	c.fill(&out.Attr)
	out.SetEntryTimeout(cacheTimeout)
	out.SetAttrTimeout(cacheTimeout)
	return n.NewInode(ctx, c, fs.StableAttr{Mode: fuseMode(info.Mode()) &^ 0o777, Ino: inodeOf(p)}), 0
}

func (n *treeNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ents, err := iofs.ReadDir(n.t.fsys, n.name)
	if err != nil {
		return nil, n.t.errno("readdir", n.name, err)
	}
	list := make([]fuse.DirEntry, 0, len(ents))
	for _, e := range ents {
		list = append(list, fuse.DirEntry{Name: e.Name(), Mode: fuseMode(e.Type()) &^ 0o777, Ino: inodeOf(n.child(e.Name()))})
	}
	return fs.NewListDirStream(list), 0
}

func (n *treeNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	if n.info.IsDir() {
		return nil, 0, syscall.EISDIR
	}
	f, err := n.t.fsys.Open(n.name)
	if err != nil {
		return nil, 0, n.t.errno("open", n.name, err)
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, 0, n.t.errno("open", n.name, errors.New("the tree's files have no ReadAt"))
	}
	return &treeHandle{n: n, f: f, ra: ra}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *treeNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = 255
	return 0
}

// treeHandle is an open file of the tree.
type treeHandle struct {
	n  *treeNode
	f  iofs.File
	ra io.ReaderAt
}

func (h *treeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := h.n.info.Size()
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), size-off)]
	k, err := h.ra.ReadAt(dest, off)
	if k < len(dest) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, h.n.t.errno("read", h.n.name, err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (h *treeHandle) Release(ctx context.Context) syscall.Errno {
	h.f.Close()
	return 0
}

// MountFiles serves the file tree fsys read-only at mountpoint and returns
// once the kernel has the mount. Files must implement io.ReaderAt (those of
// browse.FS do); irregular entries (NTFS reparse points) are shown as
// plain files with their own data, never followed. ModTime gives all three
// times.
func MountFiles(mountpoint string, fsys iofs.FS, opts *Options) (*Mounted, error) {
	o, err := prepare(mountpoint, opts)
	if err != nil {
		return nil, err
	}
	info, err := iofs.Stat(fsys, ".")
	if err != nil {
		return nil, err
	}
	root := &treeNode{t: &tree{fsys: fsys, logger: o.Logger, logged: map[string]bool{}}, name: ".", info: info}
	fo := fuseOptions(&o)
	srv, err := fs.Mount(mountpoint, root, fo)
	if err != nil {
		return nil, mountError(mountpoint, err)
	}
	return &Mounted{Mountpoint: mountpoint, impl: &linuxServer{srv: srv}}, nil
}

func ownerIDs() (uint32, uint32) {
	var a fuse.Attr
	setOwner(&a)
	return a.Uid, a.Gid
}
