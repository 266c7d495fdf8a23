package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/catalog"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/sysdev"
	"github.com/cbimg/cbimg/volume"
)

// Disk is a scanned disk, disk image, or partition/volume file.
type Disk struct {
	Path   string
	Size   int64
	Scheme disk.Scheme
	Model  string
	Parts  []Part
	Err    error
}

// Part is one partition (or a whole volume file).
type Part struct {
	Spec        string // what backup and restore take: a path or DISK@N
	Number      int    // 0 for a disk without a partition table
	Size        int64
	FS          volume.Type
	FSOK        bool
	Label       string
	ClusterSize uint32
	Used        int64  // bytes in used clusters; -1 when unknown
	Problem     string // why no file system was recognized
	Mounted     string // mount point, "" when not mounted
	MountedRW   bool
}

// Dir is an image directory given with --images.
type Dir struct {
	Path  string
	Free  int64 // -1 when unknown
	IsFAT bool  // the directory lies on a FAT file system (4 GiB file limit)
	Err   error
}

// Img is an image found by catalog.Scan, on a partition or in a directory.
type Img struct {
	catalog.Found
	Dir string // the --images directory it was found in, "" when on a partition
}

// Name is a short name for menus.
func (i *Img) Name() string {
	if i.Partition != "" {
		return i.Location
	}
	return i.Path
}

// Inventory is everything a scan found.
type Inventory struct {
	Disks    []Disk
	Dirs     []Dir
	Images   []Img
	Problems []string
}

// parts lists every partition of the inventory.
func (inv *Inventory) parts() []*Part {
	var out []*Part
	for i := range inv.Disks {
		for j := range inv.Disks[i].Parts {
			out = append(out, &inv.Disks[i].Parts[j])
		}
	}
	return out
}

func (inv *Inventory) part(spec string) *Part {
	for _, p := range inv.parts() {
		if p.Spec == spec {
			return p
		}
	}
	return nil
}

// Scan looks at the disks (all of disk.ListDisks when specs is empty) and
// image directories of cfg.
func Scan(ctx context.Context, cfg Config) *Inventory {
	inv := &Inventory{}
	specs := cfg.Disks
	models := map[string]string{}
	if len(specs) == 0 {
		list, err := disk.ListDisks()
		if err != nil {
			inv.Problems = append(inv.Problems, err.Error())
		}
		for _, d := range list {
			if d.ReadOnly && d.Removable && strings.HasPrefix(d.Name, "sr") {
				continue // CD/DVD drives: the live medium
			}
			specs = append(specs, d.Path)
			m := d.Model
			if d.BackingFile != "" {
				m = "loop: " + d.BackingFile
			}
			models[d.Path] = m
		}
	}
	for _, a := range cfg.added {
		if !slices.Contains(specs, a) {
			specs = append(specs, a)
		}
	}
	for _, spec := range specs {
		if ctx.Err() != nil {
			return inv
		}
		d := scanDisk(spec)
		d.Model = models[spec]
		inv.Disks = append(inv.Disks, d)
		if d.Err != nil {
			continue
		}
		found, err := catalog.Scan(ctx, spec)
		if err != nil && !errors.Is(err, context.Canceled) {
			inv.Problems = append(inv.Problems, fmt.Sprintf("looking for images on %s: %v", spec, err))
		}
		for _, f := range found {
			inv.Images = append(inv.Images, Img{Found: f})
		}
	}
	for _, dir := range cfg.ImageDirs {
		dr := Dir{Path: dir, Free: -1}
		if st, err := os.Stat(dir); err != nil {
			dr.Err = err
		} else if !st.IsDir() {
			dr.Err = fmt.Errorf("%s is not a directory", dir)
		} else {
			dr.Free, dr.IsFAT = freeSpace(dir)
			found, err := catalog.Scan(ctx, dir)
			if err != nil && !errors.Is(err, context.Canceled) {
				inv.Problems = append(inv.Problems, fmt.Sprintf("looking for images in %s: %v", dir, err))
			}
			sort.Slice(found, func(a, b int) bool { return found[a].Path < found[b].Path })
			for _, f := range found {
				img := Img{Found: f, Dir: dir}
				// catalog names targets only for images on a scanned disk;
				// an image in a directory fits every partition big enough.
				if f.Header != nil {
					for _, p := range inv.parts() {
						if p.Size >= f.Header.FSSize {
							img.Targets = append(img.Targets, p.Spec)
						}
					}
				}
				inv.Images = append(inv.Images, img)
			}
		}
		inv.Dirs = append(inv.Dirs, dr)
	}
	return inv
}

func scanDisk(spec string) Disk {
	if _, _, ok := disk.ParseTarget(spec); ok {
		s, err := disk.OpenPartition(spec, false)
		if err != nil {
			return Disk{Path: spec, Err: err}
		}
		defer s.Close()
		d := Disk{Path: spec, Size: s.Size(), Scheme: disk.None}
		d.Parts = []Part{describePart(spec, s.Partition.Number, s, s.Size())}
		return d
	}
	dk, err := disk.OpenDisk(spec)
	if err != nil {
		return Disk{Path: spec, Err: err}
	}
	defer dk.Close()
	d := Disk{Path: spec, Size: dk.Size, Scheme: dk.Table.Scheme}
	if dk.Table.Scheme == disk.None {
		d.Parts = []Part{describePart(spec, 0, dk, dk.Size)}
		return d
	}
	for _, p := range dk.Table.Partitions {
		if p.IsExtended() {
			continue
		}
		d.Parts = append(d.Parts, describePart(fmt.Sprintf("%s@%d", spec, p.Number), p.Number, dk.Section(p), p.Length))
	}
	return d
}

// describePart reads what the menu shows of a partition: file system,
// label and used space.
func describePart(spec string, n int, r io.ReaderAt, size int64) Part {
	p := Part{Spec: spec, Number: n, Size: size, Used: -1}
	if v, err := volume.Open(r, size); err != nil {
		p.Problem = err.Error()
		var fe *volume.FormatError
		if errors.As(err, &fe) {
			p.Problem = fe.Msg
		}
	} else {
		p.FSOK, p.FS, p.Label, p.ClusterSize = true, v.Info.Type, v.Info.Label, v.Info.ClusterSize
		if bm, err := v.Bitmap(); err == nil {
			// What a backup copies: used clusters and the system areas.
			p.Used = int64(popcount(bm)) * int64(v.Info.ClusterSize)
			for _, e := range v.SystemExtents() {
				p.Used += e.Length
			}
		}
	}
	if s, err := disk.OpenPartition(spec, false); err == nil {
		for _, dev := range s.Devices {
			if ms, err := sysdev.MountsOf(dev); err == nil && len(ms) > 0 {
				p.Mounted, p.MountedRW = ms[0].Point, !ms[0].ReadOnly
				break
			}
		}
		s.Close()
	}
	return p
}

func popcount(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n += uint64(bits.OnesCount8(c))
	}
	return n
}

// openImage opens an image for reading: a file (also split), or a file
// inside a partition's file system, read raw. The returned func closes it.
func openImage(img *Img) (anyimage.Image, func(), error) {
	name := img.Path
	if img.Partition != "" {
		name = img.Location
	}
	r, err := anyimage.Open(name, nil)
	if err != nil {
		return nil, nil, err
	}
	return r, func() { r.Close() }, nil
}

// baseName is the short name of a partition or file: "sdb1", "disk.img@2".
func baseName(spec string) string {
	return filepath.Base(spec)
}
