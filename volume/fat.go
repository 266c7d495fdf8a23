package volume

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// FATFS is an opened FAT12/16/32 file system. Volume.FAT returns it for
// FAT volumes; its exported methods browse directories and read files.
type FATFS struct {
	r    io.ReaderAt
	boot *FATBoot
	inf  Info

	once   sync.Once
	tbl    *fatTable
	tblErr error

	opened []Damage // damage Open tolerated
}

var _ fsImpl = (*FATFS)(nil)

// OpenFATFS opens the FAT file system at the start of r (size bytes).
func OpenFATFS(r io.ReaderAt, size int64) (*FATFS, error) {
	var b [BootSectorSize]byte
	if err := readFull(r, b[:], 0); err != nil {
		return nil, &FormatError{What: "FAT boot sector", Offset: 0, Msg: err.Error(), Err: ErrCorrupt}
	}
	bs, err := ParseFATBoot(b[:])
	if err != nil {
		return nil, err
	}
	fsSize := bs.Size()
	if size < fsSize {
		// Sectors past the last cluster hold nothing; a partition (or a
		// dd image) that lacks only those is usable, and Info.Missing says so.
		if end := bs.DataOffset() + int64(bs.ClusterCount)*int64(bs.ClusterSize()); size < end {
			return nil, &FormatError{What: "FAT volume", Offset: size,
				Msg: fmt.Sprintf("truncated: the boot sector says %d sectors of %d bytes (%d bytes), the partition has %d bytes",
					bs.TotalSectors, bs.BytesPerSector, bs.Size(), size), Err: ErrCorrupt}
		}
		fsSize = size
	}
	f := &FATFS{r: r, boot: bs}
	f.inf = Info{
		Type:          bs.Type,
		SectorSize:    bs.SectorSize(),
		ClusterSize:   bs.ClusterSize(),
		TotalSectors:  bs.TotalSectors,
		Size:          fsSize,
		Missing:       bs.Size() - fsSize,
		ClusterCount:  uint64(bs.ClusterCount),
		ClusterOrigin: bs.DataOffset(),
		HiddenSectors: uint64(bs.HiddenSectors),
		Label:         bs.VolumeLabel,
		Serial:        uint64(bs.VolumeID),
		OEMName:       bs.OEMName,
		Dirty:         bs.Dirty(),
	}
	fat1, err := readFATEntry(r, bs, bs.ActiveFAT(), 1)
	if err != nil {
		return nil, fmt.Errorf("volume: reading FAT entry 1: %w", err)
	}
	switch bs.Type {
	case FAT16:
		f.inf.Dirty = f.inf.Dirty || fat1&fat16CleanBit == 0
	case FAT32:
		f.inf.Dirty = f.inf.Dirty || fat1&fat32CleanBit == 0
	}
	// The root directory's volume-label entry is what Windows shows; the
	// boot sector copy is often stale ("NO NAME").
	// A damaged root directory is no reason to refuse the volume: the
	// boot sector's label stands, and walks report the damage.
	root, err := f.readDir(f.rootRef(), func(c uint32) (uint32, error) {
		return readFATEntry(r, bs, bs.ActiveFAT(), c)
	}, nil)
	switch {
	case err != nil && (root == nil || root.scan.err != err):
		f.opened = append(f.opened, damageOf(DamageVolume, "/", err))
	case root.scan.hasLbl: // a bad entry elsewhere in the root is the walk's to report
		f.inf.Label = root.scan.label
	}
	return f, nil
}

func (f *FATFS) damageAtOpen() []Damage { return f.opened }

// openFAT is the fsImpl constructor used by Open.
func openFAT(r io.ReaderAt, size int64) (fsImpl, error) { return OpenFATFS(r, size) }

// FAT returns the FAT file system of v, or nil when v is not FAT.
func (v *Volume) FAT() *FATFS {
	f, _ := v.impl.(*FATFS)
	return f
}

// Boot returns the parsed boot sector.
func (f *FATFS) Boot() *FATBoot { return f.boot }

// Info returns the volume parameters.
func (f *FATFS) Info() Info { return f.inf }

func (f *FATFS) info() *Info { return &f.inf }

func (f *FATFS) hibernated() (bool, error) { return false, nil }

// table loads the active FAT once.
func (f *FATFS) table() (*fatTable, error) {
	f.once.Do(func() {
		f.tbl, _, f.tblErr = loadFATTable(f.r, f.boot, f.boot.ActiveFAT())
	})
	return f.tbl, f.tblErr
}

func (f *FATFS) bitmap() ([]byte, error) {
	t, err := f.table()
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), t.used...), nil
}

// UsedClusters returns how many clusters the FAT marks in use.
func (f *FATFS) UsedClusters() (uint64, error) {
	t, err := f.table()
	if err != nil {
		return 0, err
	}
	return t.usedCount(), nil
}

func (f *FATFS) systemExtents() []Extent {
	data := f.boot.DataOffset()
	ext := []Extent{{Offset: 0, Length: data}}
	end := data + int64(f.boot.ClusterCount)*int64(f.boot.ClusterSize())
	if end < f.inf.Size {
		ext = append(ext, Extent{Offset: end, Length: f.inf.Size - end})
	}
	return ext
}

// fatDirRef names a directory: the FAT12/16 fixed root, or a cluster chain.
type fatDirRef struct {
	path      string
	cluster   uint32
	fixedRoot bool
}

func (f *FATFS) rootRef() fatDirRef {
	if f.boot.Type == FAT32 {
		return fatDirRef{path: "/", cluster: f.boot.RootCluster}
	}
	return fatDirRef{path: "/", fixedRoot: true}
}

// fatOwnClaimsAfter is the chain length from which a chain followed on its
// own (browsing) tracks its clusters to catch loops early.
const fatOwnClaimsAfter = 4096

// fatClaims records which clusters belong to a chain already seen, so loops
// and chains shared by two files (cross-links) are found.
type fatClaims []byte

func (c fatClaims) claim(b uint64) bool {
	if c[b>>3]&(1<<(b&7)) != 0 {
		return false
	}
	c[b>>3] |= 1 << (b & 7)
	return true
}

// fatDirData is one directory read into memory.
type fatDirData struct {
	runs []Run
	size int64
	scan fatDirScan
}

// readDir reads and parses directory d. get returns FAT entries.
func (f *FATFS) readDir(d fatDirRef, get func(uint32) (uint32, error), cl fatClaims) (*fatDirData, error) {
	bs := f.boot
	if d.fixedRoot {
		off := bs.RootDirOffset()
		buf := make([]byte, int(bs.RootEntries)*fatDirEntrySize)
		if err := readFull(f.r, buf, off); err != nil {
			return nil, fmt.Errorf("volume: reading FAT root directory: %w", err)
		}
		scan := parseFATDir(d.path, buf, false, func(i int) int64 { return off + int64(i) })
		// With a bad entry the others are returned too, for tolerant walks.
		return &fatDirData{size: int64(len(buf)), scan: scan}, scan.err
	}
	runs, n, err := f.chain(d.path, d.cluster, 0, true, get, cl)
	if err != nil {
		return &fatDirData{runs: runs}, err // the runs followed, for tolerant walks
	}
	cs := int64(bs.ClusterSize())
	buf := make([]byte, int64(n)*cs)
	pos := int64(0)
	for _, r := range runs {
		l := int64(r.Count) * cs
		if err := readFull(f.r, buf[pos:pos+l], f.inf.ClusterOffset(r.Start)); err != nil {
			return nil, fmt.Errorf("volume: reading directory %s: %w", d.path, err)
		}
		pos += l
	}
	offsetOf := func(i int) int64 {
		k := int64(i)
		for _, r := range runs {
			if l := int64(r.Count) * cs; k >= l {
				k -= l
				continue
			}
			return f.inf.ClusterOffset(r.Start) + k
		}
		return -1
	}
	scan := parseFATDir(d.path, buf, bs.Type == FAT32, offsetOf)
	return &fatDirData{runs: runs, size: int64(len(buf)), scan: scan}, scan.err
}

// chain follows the cluster chain of name from start. A file (dir false)
// must have exactly ceil(size/cluster size) clusters; a directory ends at
// the first end-of-chain mark and may not exceed the specification's
// 65536 entries. cl, when not nil, records the clusters and catches
// cross-links. It returns the chain as bitmap runs and its cluster count;
// on damage, the runs followed before it.
func (f *FATFS) chain(name string, start uint32, size uint32, dir bool, get func(uint32) (uint32, error), cl fatClaims) ([]Run, uint64, error) {
	bs := f.boot
	cs := uint64(bs.ClusterSize())
	need := (uint64(size) + cs - 1) / cs
	limit := need
	if dir {
		limit = max(1, fatMaxDirBytes/cs)
	}
	last := bs.ClusterCount + 1
	bad, eoc := fatMarkers(bs.Type)
	fail := func(c uint32, format string, args ...any) error {
		off := int64(-1)
		if c <= last {
			off = bs.FATOffset(bs.ActiveFAT()) + fatEntryBytes(bs.Type, uint64(c))
		}
		return &FormatError{What: "cluster chain of " + name, Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if start == 0 {
		if dir {
			return nil, 0, fail(0, "directory has no first cluster")
		}
		if need != 0 {
			return nil, 0, fail(0, "file of %d bytes has no first cluster", size)
		}
		return nil, 0, nil
	}
	if !dir && need == 0 {
		return nil, 0, fail(start, "empty file has a cluster chain starting at cluster %d", start)
	}
	if start < 2 || start > last {
		return nil, 0, fail(start, "first cluster %d is outside clusters 2..%d", start, last)
	}
	var runs []Run
	inRuns := func(c uint32) bool {
		b := uint64(c - 2)
		for _, r := range runs {
			if b >= r.Start && b < r.Start+r.Count {
				return true
			}
		}
		return false
	}
	if need > uint64(bs.ClusterCount) {
		return nil, 0, fail(start, "file of %d bytes needs %d clusters, the volume has %d", size, need, bs.ClusterCount)
	}
	// Without shared claims, long chains get their own set so a loop is
	// found at its first repeat rather than after ClusterCount steps.
	var own fatClaims
	c := start
	for n := uint64(1); ; n++ {
		b := uint64(c - 2)
		if cl != nil && !cl.claim(b) {
			if inRuns(c) {
				return runs, n, fail(c, "chain loops back to cluster %d after %d clusters", c, n-1)
			}
			return runs, n, fail(c, "cluster %d is also part of another file's or directory's chain (cross-linked)", c)
		}
		if cl == nil && n == fatOwnClaimsAfter {
			own = make(fatClaims, (uint64(bs.ClusterCount)+7)/8)
			for _, r := range runs {
				for x := r.Start; x < r.Start+r.Count; x++ {
					own.claim(x)
				}
			}
		}
		if own != nil && !own.claim(b) {
			return runs, n, fail(c, "chain loops back to cluster %d after %d clusters", c, n-1)
		}
		if k := len(runs); k > 0 && runs[k-1].Start+runs[k-1].Count == b {
			runs[k-1].Count++
		} else {
			runs = append(runs, Run{Start: b, Count: 1})
		}
		v, err := get(c)
		if err != nil {
			return runs, n, fmt.Errorf("volume: reading FAT entry %d of %s: %w", c, name, err)
		}
		switch {
		case v >= eoc:
			if !dir && n < need {
				return runs, n, fail(c, "chain ends after %d clusters at cluster %d, but the size %d needs %d", n, c, size, need)
			}
			return runs, n, nil
		case v == 0:
			return runs, n, fail(c, "cluster %d (number %d of the chain) is marked free in the FAT", c, n)
		case v == bad:
			return runs, n, fail(c, "cluster %d (number %d of the chain) is marked bad in the FAT", c, n)
		case v < 2 || v > last:
			return runs, n, fail(c, "cluster %d points to %#x, outside clusters 2..%d", c, v, last)
		}
		if n >= limit {
			if inRuns(v) {
				return runs, n, fail(c, "chain loops: cluster %d points back to cluster %d", c, v)
			}
			if dir {
				return runs, n, fail(c, "directory is longer than %d clusters (%d entries)", limit, fatMaxDirBytes/fatDirEntrySize)
			}
			return runs, n, fail(c, "chain continues past the %d clusters the size %d needs (cluster %d points to %d)", need, size, c, v)
		}
		c = v
	}
}

// walk lists every file and directory. The root comes first as "/" (with
// its chain on FAT32; no runs for the FAT12/16 fixed root). A directory is
// reported when it is read, after its parent's files; its Size is the
// bytes of its chain. Every cluster is claimed once, so loops and
// cross-linked chains are errors.
func (f *FATFS) walk(ctx context.Context, fn func(File) error) error {
	t, err := f.table()
	if err != nil {
		return err
	}
	get := func(c uint32) (uint32, error) { return t.get(c), nil }
	cl := make(fatClaims, len(t.used))
	stack := []fatDirRef{f.rootRef()}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		dd, err := f.readDir(d, get, cl)
		if err != nil {
			return err
		}
		if err := fn(File{Path: d.path, Dir: true, Size: dd.size, Runs: dd.runs}); err != nil {
			return err
		}
		var subdirs []fatDirRef
		for i := range dd.scan.entries {
			e := &dd.scan.entries[i]
			p := joinFATPath(d.path, e.Name)
			if e.IsDir() {
				// The directory's chain is claimed when it is read.
				subdirs = append(subdirs, fatDirRef{path: p, cluster: e.Cluster})
				continue
			}
			runs, _, err := f.chain(p, e.Cluster, e.Size, false, get, cl)
			if err != nil {
				return err
			}
			if err := fn(File{Path: p, Size: int64(e.Size), Runs: runs}); err != nil {
				return err
			}
		}
		// Directories are reported when they are read, so their Runs are known.
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	return nil
}

func joinFATPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// splitFATPath splits a slash-separated path into its elements; "", "/"
// and "." name the root.
func splitFATPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			out = append(out, s)
		}
	}
	return out
}
