package main

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/browse"
	"github.com/cbimg/cbimg/mount"
)

// ls, cat and extract (ls.go, cat.go, extract.go): single files out of an
// image without restoring. What they share: opening the tree, paths, mounts.

func init() {
	extraCommands = append(extraCommands, newLsCommand, newCatCommand, newExtractCommand)
}

// openTree opens an image and the file tree inside it.
func openTree(imagePath string) (*browse.FS, anyimage.Image, error) {
	r, err := anyimage.Open(imagePath, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", imagePath, err)
	}
	t, err := browse.New(r, r.Header())
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("%s: %w", imagePath, err)
	}
	return t, r, nil
}

// treePath turns a command-line path ("/", "Data/a.txt", "\Data\a.txt")
// into an fs.FS path.
func treePath(p string) (string, error) {
	p = strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if p == "" {
		return ".", nil
	}
	if !fs.ValidPath(p) {
		return "", usageError{fmt.Errorf("bad path %q: no \".\" or \"..\" components", p)}
	}
	return p, nil
}

func cmpErr(first, err error) error {
	if first == nil {
		return err
	}
	return first
}

func pathJoin(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// mountImage serves volume.raw, or with files the tree inside the image.
func mountImage(mountpoint string, r anyimage.Image, files bool, o *mount.Options) (*mount.Mounted, error) {
	if !files {
		return mount.Mount(mountpoint, r, o)
	}
	t, err := browse.New(r, r.Header())
	if err != nil {
		return nil, err
	}
	return mount.MountFiles(mountpoint, t, o)
}

// mountedFile is what a mount shows: volume.raw, or the tree's root.
func mountedFile(mountpoint string, files bool) string {
	if files {
		return mountpoint
	}
	return filepath.Join(mountpoint, mount.FileName)
}
