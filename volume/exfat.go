package volume

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// ExFATFS is an opened exFAT file system (Microsoft's "exFAT file system
// specification"). Volume.ExFAT returns it for exFAT volumes; its exported
// methods browse directories and read files.
type ExFATFS struct {
	r    io.ReaderAt
	boot *ExFATBoot
	inf  Info
	fat  *exfatFAT
	up   *exfatUpcase

	// From the root directory.
	bitmapSt exfatStream // the active allocation bitmap
	sysRuns  []Run       // clusters of the bitmaps and the up-case table
	rootRuns []Run
	guid     [16]byte
	hasGUID  bool
	backupOK error // nil when the backup boot region is intact

	once   sync.Once
	bm     []byte
	bmErr  error
	bmUsed uint64

	// Parsed directories for browsing, by first cluster and length.
	dirMu      sync.Mutex
	dirs       map[exfatDirKey]*exfatDirCached
	dirOrder   []exfatDirKey
	dirEntries int // entries held in dirs
}

type exfatDirKey struct {
	cluster uint32
	size    int64
}

type exfatDirCached struct {
	runs []Run
	scan *exfatDirScan
}

// exfatDirCacheEntries bounds the entries of the directories kept parsed
// (tens of MiB).
const exfatDirCacheEntries = 1 << 18

var _ fsImpl = (*ExFATFS)(nil)

// OpenExFATFS opens the exFAT file system at the start of r (size bytes):
// the main boot region with its checksum, the root directory, the
// up-case table (checked against its checksum) and the allocation
// bitmap's entry. The backup boot region is checked too; its damage is
// reported by BackupBootError, not refused, since the main region rules.
func OpenExFATFS(r io.ReaderAt, size int64) (*ExFATFS, error) {
	var b0 [BootSectorSize]byte
	if err := readFull(r, b0[:], 0); err != nil {
		return nil, &FormatError{What: "exFAT boot sector", Offset: 0, Msg: err.Error(), Err: ErrCorrupt}
	}
	bs, err := ParseExFATBoot(b0[:])
	if err != nil {
		return nil, err
	}
	ss := int(bs.SectorSize())
	region := make([]byte, exfatBootRegionSecs*ss)
	if err := readFull(r, region, 0); err != nil {
		return nil, &FormatError{What: "exFAT boot region", Offset: 0, Msg: err.Error(), Err: ErrCorrupt}
	}
	if bs, err = checkExFATBootRegion(region, ss, 0, "main"); err != nil {
		return nil, err
	}
	x := &ExFATFS{r: r, boot: bs}
	backup := make([]byte, len(region))
	if err := readFull(r, backup, int64(len(region))); err != nil {
		x.backupOK = err
	} else if _, err := checkExFATBootRegion(backup, ss, int64(len(region)), "backup"); err != nil {
		x.backupOK = err
	}
	fsSize := bs.Size()
	if size < fsSize {
		// Sectors past the heap hold nothing; a partition that lacks only
		// those is usable, and Info.Missing says so.
		if size < bs.HeapEnd() {
			return nil, &FormatError{What: "exFAT volume", Offset: size,
				Msg: fmt.Sprintf("truncated: the boot sector says %d sectors of %d bytes (%d bytes), the partition has %d bytes",
					bs.VolumeLength, ss, bs.Size(), size), Err: ErrCorrupt}
		}
		fsSize = size
	}
	x.fat = &exfatFAT{r: r, off: bs.FATOffsetBytes(bs.ActiveFAT()), last: bs.ClusterCount + 1, pages: map[int64][]byte{}}
	x.inf = Info{
		Type:          ExFAT,
		SectorSize:    bs.SectorSize(),
		ClusterSize:   bs.ClusterSize(),
		TotalSectors:  bs.VolumeLength,
		Size:          fsSize,
		Missing:       bs.Size() - fsSize,
		ClusterCount:  uint64(bs.ClusterCount),
		ClusterOrigin: bs.HeapOffsetBytes(),
		HiddenSectors: bs.PartitionOffset,
		Serial:        uint64(bs.Serial),
		OEMName:       "EXFAT",
		Dirty:         bs.Dirty(),
	}
	if err := x.openRoot(); err != nil {
		return nil, err
	}
	return x, nil
}

// openRoot reads the root directory for the bitmap, up-case table, label
// and GUID, then loads the up-case table.
func (x *ExFATFS) openRoot() error {
	bs := x.boot
	runs, err := x.chain("the root directory", exfatStream{cluster: bs.RootCluster}, -1, exfatMaxDirBytes)
	if err != nil {
		return err
	}
	x.rootRuns = runs
	buf, offsetOf, err := x.readRunsUntil("/", runs, exfatRunsBytes(runs, bs.ClusterSize()), true)
	if err != nil {
		return err
	}
	scan, err := parseExFATDir("/", buf, true, offsetOf, nil)
	if err != nil {
		return err
	}
	rootOff := x.inf.ClusterOffset(uint64(bs.RootCluster) - 2)
	bad := func(format string, args ...any) error {
		return &FormatError{What: "exFAT root directory", Offset: rootOff, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if len(scan.bitmaps) != int(bs.NumFATs) {
		return bad("%d allocation bitmaps for %d FATs", len(scan.bitmaps), bs.NumFATs)
	}
	if scan.upcase == nil {
		return bad("no up-case table")
	}
	need := (uint64(bs.ClusterCount) + 7) / 8
	found := false
	for _, bm := range scan.bitmaps {
		which := int(bm.flags & 1)
		if len(scan.bitmaps) == 2 && scan.bitmaps[0].flags&1 == scan.bitmaps[1].flags&1 {
			return bad("both allocation bitmaps claim FAT %d", which)
		}
		if bm.size < need {
			return &FormatError{What: "exFAT allocation bitmap", Offset: rootOff,
				Msg: fmt.Sprintf("%d bytes, the heap's %d clusters need %d", bm.size, bs.ClusterCount, need), Err: ErrCorrupt}
		}
		if bm.size > need+uint64(bs.ClusterSize()) {
			return &FormatError{What: "exFAT allocation bitmap", Offset: rootOff,
				Msg: fmt.Sprintf("%d bytes, far more than the %d the heap needs", bm.size, need), Err: ErrCorrupt}
		}
		r, err := x.chain("the allocation bitmap", bm.exfatStream, int64(bm.size), 0)
		if err != nil {
			return err
		}
		x.sysRuns = append(x.sysRuns, r...)
		if which == bs.ActiveFAT() {
			x.bitmapSt, found = bm.exfatStream, true
		}
	}
	if !found {
		return bad("no allocation bitmap for the active FAT %d", bs.ActiveFAT())
	}
	u := scan.upcase
	if u.size == 0 || u.size > exfatMaxUpcaseBytes {
		return &FormatError{What: "exFAT up-case table", Offset: rootOff, Msg: fmt.Sprintf("%d bytes, want 2..%d", u.size, exfatMaxUpcaseBytes), Err: ErrCorrupt}
	}
	uruns, err := x.chain("the up-case table", u.exfatStream, int64(u.size), 0)
	if err != nil {
		return err
	}
	x.sysRuns = append(x.sysRuns, uruns...)
	ub, _, err := x.readRuns("the up-case table", uruns, int64(u.size))
	if err != nil {
		return err
	}
	if x.up, err = parseExFATUpcase(ub, u.checksum, x.inf.ClusterOffset(uruns[0].Start)); err != nil {
		return err
	}
	// Now the names can be checked against their hashes.
	if _, err := parseExFATDir("/", buf, true, offsetOf, x.up); err != nil {
		return err
	}
	x.inf.Label = scan.label
	x.guid, x.hasGUID = scan.guid, scan.hasGUID
	return nil
}

// openExFAT is the fsImpl constructor used by Open.
func openExFAT(r io.ReaderAt, size int64) (fsImpl, error) { return OpenExFATFS(r, size) }

// ExFAT returns the exFAT file system of v, or nil when v is not exFAT.
func (v *Volume) ExFAT() *ExFATFS {
	x, _ := v.impl.(*ExFATFS)
	return x
}

// Boot returns the parsed main boot sector.
func (x *ExFATFS) Boot() *ExFATBoot { return x.boot }

// Info returns the volume parameters.
func (x *ExFATFS) Info() Info { return x.inf }

// GUID returns the volume GUID, when the root directory has one.
func (x *ExFATFS) GUID() ([16]byte, bool) { return x.guid, x.hasGUID }

// BackupBootError returns why the backup boot region is not intact, or nil.
func (x *ExFATFS) BackupBootError() error { return x.backupOK }

func (x *ExFATFS) info() *Info { return &x.inf }

func (x *ExFATFS) hibernated() (bool, error) { return false, nil }

// systemExtents: the boot regions, the FATs and anything up to the heap;
// and the sectors past the heap.
func (x *ExFATFS) systemExtents() []Extent {
	heap := x.boot.HeapOffsetBytes()
	ext := []Extent{{Offset: 0, Length: heap}}
	if end := x.boot.HeapEnd(); end < x.inf.Size {
		ext = append(ext, Extent{Offset: end, Length: x.inf.Size - end})
	}
	return ext
}

// loadBitmap reads the active allocation bitmap once. Bits past the
// cluster count are cleared. The bitmap's own clusters, the up-case
// table's and the root directory's must be marked in use.
func (x *ExFATFS) loadBitmap() ([]byte, error) {
	x.once.Do(func() {
		cc := uint64(x.boot.ClusterCount)
		n := (cc + 7) / 8
		runs, err := x.chain("the allocation bitmap", x.bitmapSt, int64(x.bitmapSt.size), 0)
		if err != nil {
			x.bmErr = err
			return
		}
		bm, _, err := x.readRuns("the allocation bitmap", runs, int64(n))
		if err != nil {
			x.bmErr = err
			return
		}
		if cc%8 != 0 {
			bm[n-1] &= byte(1)<<(cc%8) - 1
		}
		for _, set := range [][]Run{x.sysRuns, x.rootRuns} {
			for _, r := range set {
				for c := r.Start; c < r.Start+r.Count; c++ {
					if bm[c>>3]&(1<<(c&7)) == 0 {
						x.bmErr = &FormatError{What: "exFAT allocation bitmap", Offset: x.inf.ClusterOffset(runs[0].Start) + int64(c>>3),
							Msg: fmt.Sprintf("cluster %d of a system structure is marked free", c+2), Err: ErrCorrupt}
						return
					}
				}
			}
		}
		for _, c := range bm {
			x.bmUsed += uint64(popcount8(c))
		}
		x.bm = bm
	})
	return x.bm, x.bmErr
}

func popcount8(c byte) int {
	n := 0
	for ; c != 0; c &= c - 1 {
		n++
	}
	return n
}

func (x *ExFATFS) bitmap() ([]byte, error) {
	bm, err := x.loadBitmap()
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), bm...), nil
}

// UsedClusters returns how many clusters the allocation bitmap marks in use.
func (x *ExFATFS) UsedClusters() (uint64, error) {
	_, err := x.loadBitmap()
	return x.bmUsed, err
}

func exfatRunsBytes(runs []Run, cs uint32) int64 {
	var n int64
	for _, r := range runs {
		n += int64(r.Count) * int64(cs)
	}
	return n
}

// readRuns reads the first n bytes of the clusters in runs and returns
// them with a map from byte index to partition offset.
func (x *ExFATFS) readRuns(name string, runs []Run, n int64) ([]byte, func(int) int64, error) {
	return x.readRunsUntil(name, runs, n, false)
}

// exfatDirPiece is how much of a directory is read at once: reading stops
// after the piece that holds the end-of-directory entry (a directory of
// 32 MiB clusters is mostly never-used entries).
const exfatDirPiece = 64 << 10

// readRunsUntil is readRuns; with dir it stops after the piece that holds
// an end-of-directory entry and returns only the bytes read.
func (x *ExFATFS) readRunsUntil(name string, runs []Run, n int64, dir bool) ([]byte, func(int) int64, error) {
	cs := int64(x.boot.ClusterSize())
	if n > exfatRunsBytes(runs, x.boot.ClusterSize()) {
		return nil, nil, fmt.Errorf("volume: reading %s: %d bytes from %d clusters: %w", name, n, n/cs, ErrCorrupt)
	}
	piece := n
	if dir {
		piece = exfatDirPiece
	}
	var buf []byte
	if !dir {
		buf = make([]byte, n)
	}
	pos := int64(0)
read:
	for _, r := range runs {
		for in := int64(0); in < int64(r.Count)*cs && pos < n; {
			l := min(int64(r.Count)*cs-in, n-pos, piece)
			off := x.inf.ClusterOffset(r.Start) + in
			if dir {
				buf = append(buf, make([]byte, l)...)
			}
			p := buf[pos : pos+l]
			if err := readFull(x.r, p, off); err != nil {
				return nil, nil, &FormatError{What: "exFAT " + name, Offset: off, Msg: err.Error(), Err: ErrCorrupt}
			}
			pos += l
			in += l
			if dir {
				for i := 0; i < len(p); i += exfatEntrySize {
					if p[i] == exfatTypeEnd {
						break read
					}
				}
			}
		}
	}
	offsetOf := func(i int) int64 {
		k := int64(i)
		for _, r := range runs {
			if l := int64(r.Count) * cs; k >= l {
				k -= l
				continue
			}
			return x.inf.ClusterOffset(r.Start) + k
		}
		return -1
	}
	return buf, offsetOf, nil
}

// exfatDirRef names a directory: its path and stream (the root has no
// length: its chain ends at the end mark).
type exfatDirRef struct {
	path string
	st   exfatStream
	size int64 // -1 for the root
}

func (x *ExFATFS) rootRef() exfatDirRef {
	return exfatDirRef{path: "/", st: exfatStream{cluster: x.boot.RootCluster}, size: -1}
}

// cachedDir is readDir through a small cache, for browsing (lookups read
// every directory on a path).
func (x *ExFATFS) cachedDir(d exfatDirRef) ([]Run, *exfatDirScan, error) {
	k := exfatDirKey{d.st.cluster, d.size}
	x.dirMu.Lock()
	c, ok := x.dirs[k]
	x.dirMu.Unlock()
	if ok {
		return c.runs, c.scan, nil
	}
	runs, scan, err := x.readDir(d)
	if err != nil {
		return nil, nil, err
	}
	x.dirMu.Lock()
	defer x.dirMu.Unlock()
	if x.dirs == nil {
		x.dirs = map[exfatDirKey]*exfatDirCached{}
	}
	n := len(scan.entries) + 1
	if _, ok := x.dirs[k]; !ok && n <= exfatDirCacheEntries {
		for x.dirEntries+n > exfatDirCacheEntries {
			old := x.dirOrder[0]
			x.dirEntries -= len(x.dirs[old].scan.entries) + 1
			delete(x.dirs, old)
			x.dirOrder = x.dirOrder[1:]
		}
		x.dirs[k] = &exfatDirCached{runs, scan}
		x.dirOrder = append(x.dirOrder, k)
		x.dirEntries += n
	}
	return runs, scan, nil
}

// readDir reads and parses directory d.
func (x *ExFATFS) readDir(d exfatDirRef) ([]Run, *exfatDirScan, error) {
	if d.size > exfatMaxDirBytes {
		return nil, nil, &FormatError{What: "exFAT directory " + d.path, Offset: -1,
			Msg: fmt.Sprintf("%d bytes, more than the 256 MiB a directory may have", d.size), Err: ErrCorrupt}
	}
	var runs []Run
	var err error
	if d.size < 0 {
		runs = x.rootRuns
	} else if runs, err = x.chain("directory "+d.path, d.st, d.size, 0); err != nil {
		return nil, nil, err
	}
	n := exfatRunsBytes(runs, x.boot.ClusterSize())
	if d.size >= 0 {
		n = d.size
	}
	buf, offsetOf, err := x.readRunsUntil("directory "+d.path, runs, n, true)
	if err != nil {
		return nil, nil, err
	}
	scan, err := parseExFATDir(d.path, buf, d.size < 0, offsetOf, x.up)
	if err != nil {
		return nil, nil, err
	}
	return runs, scan, nil
}

// walk lists every file and directory, root first as "/". Every cluster
// is claimed once, so loops and cross-linked chains are errors, and every
// claimed cluster must be marked in use in the allocation bitmap.
func (x *ExFATFS) walk(ctx context.Context, fn func(File) error) error {
	bm, err := x.loadBitmap()
	if err != nil {
		return err
	}
	cl := make(fatClaims, len(bm))
	claim := func(name string, runs []Run) error {
		for _, r := range runs {
			for c := r.Start; c < r.Start+r.Count; c++ {
				if bm[c>>3]&(1<<(c&7)) == 0 {
					return &FormatError{What: "exFAT " + name, Offset: x.inf.ClusterOffset(c),
						Msg: fmt.Sprintf("cluster %d is marked free in the allocation bitmap", c+2), Err: ErrCorrupt}
				}
				if !cl.claim(c) {
					return &FormatError{What: "exFAT " + name, Offset: x.inf.ClusterOffset(c),
						Msg: fmt.Sprintf("cluster %d also belongs to another file or directory (cross-linked)", c+2), Err: ErrCorrupt}
				}
			}
		}
		return nil
	}
	if err := claim("system files", x.sysRuns); err != nil {
		return err
	}
	stack := []exfatDirRef{x.rootRef()}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		runs, scan, err := x.readDir(d)
		if err != nil {
			return err
		}
		if err := claim("directory "+d.path, runs); err != nil {
			return err
		}
		if err := fn(File{Path: d.path, Dir: true, Size: exfatRunsBytes(runs, x.boot.ClusterSize()), Runs: runs}); err != nil {
			return err
		}
		for _, s := range scan.extra {
			r, err := x.chain("a vendor allocation in "+d.path, s, int64(s.size), 0)
			if err != nil {
				return err
			}
			if err := claim("vendor allocation in "+d.path, r); err != nil {
				return err
			}
		}
		var subdirs []exfatDirRef
		for i := range scan.entries {
			e := &scan.entries[i]
			p := joinFATPath(d.path, e.Name)
			st := exfatStream{cluster: e.Cluster, size: uint64(e.Size), noFatChain: e.NoFatChain}
			if e.IsDir() {
				subdirs = append(subdirs, exfatDirRef{path: p, st: st, size: e.Size})
				continue
			}
			r, err := x.chain(p, st, e.Size, 0)
			if err != nil {
				return err
			}
			if err := claim(p, r); err != nil {
				return err
			}
			if err := fn(File{Path: p, Size: e.Size, Runs: r}); err != nil {
				return err
			}
		}
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	return nil
}
