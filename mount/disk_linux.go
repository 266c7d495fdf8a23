//go:build linux && !(cgofuse && cgo)

package mount

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// diskRoot is a disk mount's directory: disk.raw and one file per
// partition, each read like volume.raw.
type diskRoot struct {
	fs.Inode
	files []Named
	nodes []*fileNode
}

var (
	_ fs.NodeOnAdder   = (*diskRoot)(nil)
	_ fs.NodeGetattrer = (*diskRoot)(nil)
)

func (r *diskRoot) OnAdd(ctx context.Context) {
	for i, f := range r.files {
		ch := r.NewPersistentInode(ctx, r.nodes[i], fs.StableAttr{Mode: syscall.S_IFREG, Ino: uint64(i + 2)})
		r.AddChild(f.Name, ch, false)
	}
}

func (r *diskRoot) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	setOwner(&out.Attr)
	if len(r.nodes) > 0 {
		out.SetTimes(nil, &r.nodes[0].f.mtime, &r.nodes[0].f.mtime)
	}
	return 0
}

// MountDisk serves files (a whole disk as disk.raw and its partitions as
// partN.raw) read-only at mountpoint, like Mount does one volume.
func MountDisk(mountpoint string, files []Named, opts *Options) (*Mounted, error) {
	o, err := prepare(mountpoint, opts)
	if err != nil {
		return nil, err
	}
	root := &diskRoot{files: files}
	for _, f := range files {
		root.nodes = append(root.nodes, &fileNode{f: newFile(f.Src, &o)})
	}
	srv, err := fs.Mount(mountpoint, root, fuseOptions(&o))
	if err != nil {
		return nil, mountError(mountpoint, err)
	}
	if ra := o.ReadAheadKB; ra >= 0 {
		if ra == 0 {
			ra = 4096
		}
		if err := setReadAhead(mountpoint, ra); err != nil && o.Debug && o.Logger != nil {
			o.Logger.Printf("cbimg mount: %v", err)
		}
	}
	return &Mounted{Mountpoint: mountpoint, impl: &linuxServer{srv: srv}}, nil
}
