//go:build windows || (cgofuse && cgo)

package mount

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/winfsp/cgofuse/fuse"
)

// winFS serves volume.raw through cgofuse: WinFsp on Windows, where cgofuse
// loads the WinFsp DLL at run time and so builds without cgo; libfuse
// elsewhere (build tag cgofuse, needs cgo), which lets Linux test this code.
type winFS struct {
	fuse.FileSystemBase
	f     *file
	ready chan struct{}
	once  sync.Once
}

var _ fuse.FileSystemInterface = (*winFS)(nil)

const filePath = "/" + FileName

func (w *winFS) Init() { w.once.Do(func() { close(w.ready) }) }

func (w *winFS) stat(path string, st *fuse.Stat_t) int {
	t := fuse.NewTimespec(w.f.mtime)
	st.Mtim, st.Ctim, st.Atim, st.Birthtim = t, t, t, t
	switch path {
	case "/":
		st.Mode = fuse.S_IFDIR | 0o555
		st.Nlink = 2
	case filePath:
		st.Mode = fuse.S_IFREG | 0o444
		st.Nlink = 1
		st.Size = w.f.size
		st.Blksize = 1 << 20
		st.Blocks = (w.f.size + 511) / 512
	default:
		return -fuse.ENOENT
	}
	return 0
}

func (w *winFS) Getattr(path string, st *fuse.Stat_t, fh uint64) int { return w.stat(path, st) }

func (w *winFS) Open(path string, flags int) (int, uint64) {
	if path != filePath {
		if path == "/" {
			return -fuse.EISDIR, ^uint64(0)
		}
		return -fuse.ENOENT, ^uint64(0)
	}
	if flags&fuse.O_ACCMODE != fuse.O_RDONLY || flags&fuse.O_TRUNC != 0 {
		return -fuse.EROFS, ^uint64(0)
	}
	return 0, 1
}

func (w *winFS) Opendir(path string) (int, uint64) {
	if path != "/" {
		return -fuse.ENOTDIR, ^uint64(0)
	}
	return 0, 2
}

func (w *winFS) Readdir(path string, fill func(name string, stat *fuse.Stat_t, ofst int64) bool, ofst int64, fh uint64) int {
	if path != "/" {
		return -fuse.ENOTDIR
	}
	fill(".", nil, 0)
	fill("..", nil, 0)
	var st fuse.Stat_t
	w.stat(filePath, &st)
	fill(FileName, &st, 0)
	return 0
}

// Read reads straight into the buffer WinFsp hands us.
func (w *winFS) Read(path string, buff []byte, ofst int64, fh uint64) int {
	if path != filePath {
		return -fuse.ENOENT
	}
	n, err := w.f.read(buff, ofst)
	if err != nil {
		return -fuse.EIO
	}
	return n
}

func (w *winFS) Statfs(path string, st *fuse.Statfs_t) int {
	st.Bsize = 4096
	st.Frsize = 4096
	st.Blocks = uint64((w.f.size + 4095) / 4096)
	st.Files = 2
	st.Namemax = 255
	return 0
}

type winServer struct {
	host *fuse.FileSystemHost
	done chan struct{}
}

func (s *winServer) wait() { <-s.done }

func (s *winServer) unmount() error {
	if !s.host.Unmount() {
		return fmt.Errorf("%w: WinFsp refused to unmount", ErrBusy)
	}
	<-s.done
	return nil
}

// Mount serves src as volume.raw at mountpoint (a drive letter such as
// "X:" or a directory that does not exist yet) through WinFsp and returns
// once the file system is up.
func Mount(mountpoint string, src Source, opts *Options) (*Mounted, error) {
	o, err := prepare(mountpoint, opts)
	if err != nil {
		return nil, err
	}
	w := &winFS{f: newFile(src, &o), ready: make(chan struct{})}
	return startHost(mountpoint, w, w.ready, &o)
}

// startHost mounts a cgofuse file system and returns once it is up (ready
// closed by its Init) or has failed.
func startHost(mountpoint string, fsys fuse.FileSystemInterface, ready chan struct{}, o *Options) (*Mounted, error) {
	host := fuse.NewFileSystemHost(fsys)
	args := cgofuseArgs(o)
	if o.Debug {
		args = append(args, "-d")
	}
	done := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				failed <- fmt.Errorf("%w: %v (install WinFsp from https://winfsp.dev)", ErrNoFUSE, r)
			}
		}()
		if !host.Mount(mountpoint, args) {
			failed <- fmt.Errorf("mount %s: could not mount it (is the drive letter taken or the directory present?)", mountpoint)
		}
	}()
	select {
	case <-ready:
		return &Mounted{Mountpoint: mountpoint, impl: &winServer{host: host, done: done}}, nil
	case err := <-failed:
		return nil, err
	case <-done:
		return nil, fmt.Errorf("mount %s: the file system stopped before it came up", mountpoint)
	}
}

func cgofuseArgs(o *Options) []string {
	fsName := "cbimg"
	if o.FsName != "" {
		fsName = strings.ReplaceAll(o.FsName, ",", "_")
	}
	if runtime.GOOS == "windows" {
		return []string{"-o", "ro", "-o", "uid=-1,gid=-1", "-o", "volname=cbimg", "-o", "FileInfoTimeout=-1", "-o", "fsname=" + fsName}
	}
	args := []string{"-o", "ro,default_permissions,subtype=cbimg,fsname=" + fsName}
	if o.AllowOther {
		args = append(args, "-o", "allow_other")
	}
	return args
}
