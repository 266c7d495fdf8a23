//go:build windows || (cgofuse && cgo)

package mount

import (
	"errors"
	"io"
	iofs "io/fs"
	"log"
	"strings"
	"sync"

	"github.com/winfsp/cgofuse/fuse"
)

// treeFS serves a file tree (mount --files) through cgofuse: WinFsp on
// Windows, libfuse elsewhere. Every request is answered from one io/fs.FS.
type treeFS struct {
	fuse.FileSystemBase
	fsys   iofs.FS
	logger *log.Logger
	ready  chan struct{}
	once   sync.Once

	mu      sync.Mutex
	handles map[uint64]treeOpen
	next    uint64
}

type treeOpen struct {
	f    iofs.File
	ra   io.ReaderAt
	size int64
}

var _ fuse.FileSystemInterface = (*treeFS)(nil)

func (w *treeFS) Init() { w.once.Do(func() { close(w.ready) }) }

// fsPath turns a FUSE path ("/a/b") into an fs.FS path ("a/b").
func fsPath(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return "."
	}
	return p
}

func (w *treeFS) errno(op, p string, err error) int {
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return -fuse.ENOENT
	case errors.Is(err, iofs.ErrInvalid):
		return -fuse.EINVAL
	}
	w.logger.Printf("cbimg mount: EIO for %s %s: %v", op, p, err)
	return -fuse.EIO
}

func fillStat(info iofs.FileInfo, st *fuse.Stat_t) {
	t := fuse.NewTimespec(info.ModTime())
	st.Mtim, st.Ctim, st.Atim, st.Birthtim = t, t, t, t
	if info.IsDir() {
		st.Mode = fuse.S_IFDIR | 0o555
		st.Nlink = 2
		return
	}
	st.Mode = fuse.S_IFREG | 0o444
	st.Nlink = 1
	st.Size = info.Size()
	st.Blksize = 1 << 20
	st.Blocks = (info.Size() + 511) / 512
}

func (w *treeFS) Getattr(path string, st *fuse.Stat_t, fh uint64) int {
	p := fsPath(path)
	if !iofs.ValidPath(p) {
		return -fuse.ENOENT
	}
	info, err := iofs.Stat(w.fsys, p)
	if err != nil {
		return w.errno("stat", p, err)
	}
	fillStat(info, st)
	return 0
}

func (w *treeFS) Opendir(path string) (int, uint64) {
	p := fsPath(path)
	info, err := iofs.Stat(w.fsys, p)
	if err != nil {
		return w.errno("opendir", p, err), ^uint64(0)
	}
	if !info.IsDir() {
		return -fuse.ENOTDIR, ^uint64(0)
	}
	return 0, 0
}

func (w *treeFS) Readdir(path string, fill func(name string, stat *fuse.Stat_t, ofst int64) bool, ofst int64, fh uint64) int {
	p := fsPath(path)
	ents, err := iofs.ReadDir(w.fsys, p)
	if err != nil {
		return w.errno("readdir", p, err)
	}
	fill(".", nil, 0)
	fill("..", nil, 0)
	for _, e := range ents {
		var st fuse.Stat_t
		if info, err := e.Info(); err == nil {
			fillStat(info, &st)
			if !fill(e.Name(), &st, 0) {
				break
			}
		} else if !fill(e.Name(), nil, 0) {
			break
		}
	}
	return 0
}

func (w *treeFS) Open(path string, flags int) (int, uint64) {
	if flags&fuse.O_ACCMODE != fuse.O_RDONLY || flags&fuse.O_TRUNC != 0 {
		return -fuse.EROFS, ^uint64(0)
	}
	p := fsPath(path)
	f, err := w.fsys.Open(p)
	if err != nil {
		return w.errno("open", p, err), ^uint64(0)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return w.errno("open", p, err), ^uint64(0)
	}
	if info.IsDir() {
		f.Close()
		return -fuse.EISDIR, ^uint64(0)
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return w.errno("open", p, errors.New("the tree's files have no ReadAt")), ^uint64(0)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	w.handles[w.next] = treeOpen{f, ra, info.Size()}
	return 0, w.next
}

func (w *treeFS) Read(path string, buff []byte, ofst int64, fh uint64) int {
	w.mu.Lock()
	h, ok := w.handles[fh]
	w.mu.Unlock()
	if !ok {
		return -fuse.EBADF
	}
	if ofst >= h.size {
		return 0
	}
	buff = buff[:min(int64(len(buff)), h.size-ofst)]
	n, err := h.ra.ReadAt(buff, ofst)
	if n < len(buff) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return w.errno("read", fsPath(path), err)
	}
	return n
}

func (w *treeFS) Release(path string, fh uint64) int {
	w.mu.Lock()
	h, ok := w.handles[fh]
	delete(w.handles, fh)
	w.mu.Unlock()
	if ok {
		h.f.Close()
	}
	return 0
}

func (w *treeFS) Statfs(path string, st *fuse.Statfs_t) int {
	st.Bsize = 4096
	st.Frsize = 4096
	st.Namemax = 255
	return 0
}

// MountFiles serves the file tree fsys read-only at mountpoint (a drive
// letter such as "X:" or a directory that does not exist yet on Windows)
// and returns once the file system is up. Files must implement
// io.ReaderAt; irregular entries are shown as plain files.
func MountFiles(mountpoint string, fsys iofs.FS, opts *Options) (*Mounted, error) {
	o, err := prepare(mountpoint, opts)
	if err != nil {
		return nil, err
	}
	w := &treeFS{fsys: fsys, logger: o.Logger, ready: make(chan struct{}), handles: map[uint64]treeOpen{}}
	return startHost(mountpoint, w, w.ready, &o)
}
