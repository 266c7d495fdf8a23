// Package backupcore makes a .cbi image of an NTFS or FAT partition: it
// reads the boot record, takes the file system's allocation bitmap, clears
// the bits of files that must not be imaged, and streams the system areas
// and the remaining used clusters, in ascending order, into an image.Writer.
package backupcore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/volume"
)

// Version is recorded in every image header.
var Version = "0.1.0"

// Options describe one backup.
type Options struct {
	Source string // block device or file holding one partition
	Image  string // image path; "-" writes to Output
	Output io.Writer

	// Codec, Level, ChunkSize and ZstdFrame are as in image.Storage (zero
	// values are its defaults).
	Codec     image.Codec
	Level     int
	ChunkSize uint32
	ZstdFrame int
	Split     int64 // bytes per split volume; 0 = one file

	Excludes          []string // extra globs (see Match)
	NoDefaultExcludes bool     // image hiberfil.sys, pagefile.sys, swapfile.sys and old images too
	Force             bool     // back up a source that is mounted read-write
	SectorBySector    bool     // copy every sector without reading the file system (encrypted or unknown volumes)
	Rescue            bool     // store unreadable clusters as zeros, list them in the image, and go on

	Progress func(Progress) // called often from the backup goroutine
	Warn     func(string)   // warnings (dirty or hibernated file system, ...)
}

// Progress reports how far a backup is.
type Progress struct {
	Phase string // "scan", "copy"
	Done  int64  // logical bytes copied
	Total int64
	Start time.Time
}

// Result describes a finished backup.
type Result struct {
	Header     *image.Header
	ImageBytes int64
	Digest     [32]byte
	Warnings   []string
	Duration   time.Duration
}

// FATSplit is the split size chosen when an image goes to a FAT file
// system and no split size was given: below FAT's 4 GiB file limit.
const FATSplit = 4095 << 20

// ErrSourceMounted means the source is mounted read-write and Force is off.
var ErrSourceMounted = errors.New("backupcore: source is mounted read-write")

// Backup runs a backup: open the source, check it may be read (and an
// image inside it made), plan the image, stream it. On any error no image
// is left under opts.Image.
func Backup(ctx context.Context, opts Options) (*Result, error) {
	b, err := openBackup(opts)
	if err != nil {
		return nil, err
	}
	defer b.src.Close()
	ip, err := checkBackup(ctx, b)
	if err != nil {
		return nil, err
	}
	defer ip.abort() // no-op after commit
	p, err := planBackup(ctx, b, ip)
	if err != nil {
		return nil, err
	}
	defer p.sink.abort() // no-op after commit
	return streamBackup(ctx, b, p)
}

// backupRun is one backup's source and what it reports.
type backupRun struct {
	opts    Options
	start   time.Time
	src     *disk.Section
	storage image.Storage
	res     *Result
}

func (b *backupRun) warn(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	b.res.Warnings = append(b.res.Warnings, s)
	if b.opts.Warn != nil {
		b.opts.Warn(s)
	}
}

func (b *backupRun) report(p Progress) {
	if b.opts.Progress != nil {
		p.Start = b.start
		b.opts.Progress(p)
	}
}

// openBackup checks the storage options and opens the source partition.
func openBackup(opts Options) (*backupRun, error) {
	b := &backupRun{opts: opts, start: time.Now(), res: &Result{}}
	var err error
	if b.storage, err = opts.storage(); err != nil {
		return nil, fmt.Errorf("backupcore: %w", err)
	}
	if b.src, err = disk.OpenPartition(opts.Source, false); err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	return b, nil
}

// checkBackup refuses a source mounted read-write (unless Force), and
// recognizes an image to be stored inside the source, whose file it makes
// now (inplace.go); it returns nil for an image stored elsewhere.
func checkBackup(ctx context.Context, b *backupRun) (*inPlace, error) {
	mounts, err := devguard.Holders(b.src)
	if err != nil {
		b.warn("cannot tell whether %s is mounted: %v", b.opts.Source, err)
	}
	ip, err := findInPlace(ctx, &b.opts, b.src, mounts, b.warn)
	if err != nil {
		return nil, err
	}
	if ip != nil {
		// Made through the source's own driver, so a read-write mount
		// is no reason to refuse: the file system is fingerprinted
		// instead (inplace.go).
		if err := ip.make(ctx, b.src); err != nil {
			return nil, err
		}
		return ip, nil
	}
	for _, m := range mounts {
		if m.ReadOnly {
			continue
		}
		if !b.opts.Force {
			return nil, fmt.Errorf("%w at %s (%s): unmount it, remount it read-only, or use --force", ErrSourceMounted, m.Point, m.FSType)
		}
		b.warn("%s is mounted read-write at %s: the image may be inconsistent", b.opts.Source, m.Point)
	}
	return nil, nil
}

// backupPlan is the image to make: its header and cluster bitmap, the
// source's geometry, and where the image bytes go.
type backupPlan struct {
	h      *image.Header
	bitmap []byte
	info   volume.Info
	sink   sink
}

// planBackup reads the file system (none with SectorBySector), takes the
// clusters to image less the excluded files (and an in-place image's own
// file), builds the header, and opens the sink.
func planBackup(ctx context.Context, b *backupRun, ip *inPlace) (*backupPlan, error) {
	opts, src := &b.opts, b.src
	p := &backupPlan{}
	var vol *volume.Volume
	if opts.SectorBySector {
		p.info = *volume.Raw(src.Size())
	} else {
		var err error
		if vol, err = volume.Open(src, src.Size()); err != nil {
			return nil, unreadableMap(opts.Source, err)
		}
		p.info = vol.Info
	}
	b.report(Progress{Phase: "scan"})
	var excl []image.Exclusion
	var flags uint8
	dmg := &damageLog{warn: b.warn}
	sysExtents := p.info.RawTail()
	if vol == nil {
		p.bitmap = allSet(p.info.ClusterCount)
	} else {
		var err error
		if p.bitmap, err = vol.Bitmap(); err != nil {
			return nil, unreadableMap(opts.Source+": read allocation bitmap", err)
		}
		for _, d := range vol.OpenDamage() {
			dmg.add(d)
		}
		if flags, err = checkState(vol, b.warn, dmg); err != nil {
			return nil, err
		}
		if excl, err = findExclusions(ctx, vol, src, p.bitmap, rules(*opts), !opts.NoDefaultExcludes, dmg); err != nil {
			return nil, err
		}
		dmg.finish()
		if ip != nil {
			excl = ip.exclude(p.bitmap, excl, p.info.ClusterCount)
		}
		sysExtents = vol.SystemExtents()
	}
	h, err := newHeader(b, &p.info, p.bitmap, flags, excl, dmg.list)
	if err != nil {
		return nil, err
	}
	for _, e := range sysExtents {
		h.SysExtents = append(h.SysExtents, image.Extent{Offset: e.Offset, Length: e.Length})
	}
	h.Finish()
	p.h = h
	if p.sink, err = chooseSink(b, ip); err != nil {
		return nil, err
	}
	if err := p.sink.start(h); err != nil {
		return nil, err
	}
	return p, nil
}

// newHeader is the image header for a volume of info, before its system
// extents are added and it is finished.
func newHeader(b *backupRun, info *volume.Info, bitmap []byte, flags uint8, excl []image.Exclusion, dmg []image.Damage) (*image.Header, error) {
	opts, src := &b.opts, b.src
	h := &image.Header{
		FSType: uint8(info.Type), SectorSize: info.SectorSize, ClusterSize: info.ClusterSize,
		FSSectors: info.TotalSectors, FSSize: info.Size, ClusterCount: info.ClusterCount,
		ImageClusters: popcount(bitmap), ClusterOrigin: info.ClusterOrigin, PartLength: src.Size(), HiddenSectors: info.HiddenSectors,
		PartStart: src.Partition.Start, Scheme: uint8(src.Partition.Scheme), MBRType: src.Partition.MBRType,
		GPTType: src.Partition.TypeGUID, GPTGUID: src.Partition.GUID, PartName: src.Partition.Name,
		Serial: info.Serial, Created: time.Now().UTC(), SplitSize: opts.Split, Flags: flags,
		SourceName: opts.Source, ToolVersion: "cbimg " + Version, Label: info.Label, OEMName: info.OEMName,
		Exclusions: excl, Damage: dmg,
	}
	if opts.Rescue {
		h.Flags |= image.FlagRescue
	}
	var err error
	if h.BootCode, err = src.BootCode(); err != nil {
		return nil, err
	}
	if err := h.SetStorage(b.storage); err != nil {
		return nil, err
	}
	return h, nil
}

// streamBackup writes the image: the source's logical stream through an
// image.Writer into the sink, then the sink's commit.
func streamBackup(ctx context.Context, b *backupRun, p *backupPlan) (*Result, error) {
	h := p.h
	w, err := image.NewWriter(p.sink, h, p.bitmap, image.WriterOptions{})
	if err != nil {
		return nil, err
	}
	lr := &logicalReader{ctx: ctx, src: b.src, info: &p.info, h: h, bitmap: p.bitmap, rescue: b.opts.Rescue}
	lr.progress = func(done int64) { b.report(Progress{Phase: "copy", Done: done, Total: h.LogicalLen}) }
	if _, err := w.ReadFrom(lr); err != nil {
		w.Close()
		return nil, err
	}
	if len(lr.unreadable) > 0 {
		var n uint64
		for _, r := range lr.unreadable {
			n += r.Count
		}
		b.warn("%d clusters could not be read and are stored as zeros; their list is in the image (see info)", n)
	}
	w.SetUnreadable(lr.unreadable)
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write image: %w", err)
	}
	h.Unreadable = lr.unreadable
	if err := p.sink.commit(); err != nil {
		return nil, fmt.Errorf("write image: %w", err)
	}
	res := b.res
	res.Header = h
	res.ImageBytes = w.Written()
	res.Digest = w.Digest()
	res.Duration = time.Since(b.start)
	return res, nil
}

// storage is the chunk storage opts ask for, completed and checked by
// image.
func (o *Options) storage() (image.Storage, error) {
	return image.Storage{Codec: o.Codec, Level: o.Level, ChunkSize: o.ChunkSize, ZstdFrame: o.ZstdFrame}.Complete()
}

// checkState warns about (and returns header flags for) a volume that is
// not in a clean state.
func checkState(vol *volume.Volume, warn func(string, ...any), dmg *damageLog) (uint8, error) {
	var flags uint8
	info := vol.Info
	if info.Missing > 0 {
		warn("the partition is %d bytes shorter than its file system says; the missing sectors lie past the last cluster and hold no data", info.Missing)
	}
	if info.Dirty {
		flags |= image.FlagDirty
		warn("the %s file system is marked dirty (not cleanly unmounted): the image copies it as it is; run chkdsk/fsck on the restored volume", info.Type)
	}
	if hib, err := vol.Hibernated(); err != nil {
		warn("cannot read hiberfil.sys: %v", err)
	} else if hib {
		flags |= image.FlagHibernated
		warn("Windows is hibernated or used Fast Startup on this volume: files written after it resumes are not in the image, and the restored hibernation file is zeroed unless --no-default-excludes")
	}
	if fat := vol.FAT(); fat != nil {
		diffs, err := fat.CompareFATCopies()
		if err != nil {
			return 0, fmt.Errorf("compare FAT copies: %w", err)
		}
		for _, d := range diffs {
			dmg.record(fat.CopyDamage(d))
			warn("FAT copy %d differs from the active FAT in %d entries (first: %d); the image keeps both copies as they are and uses the active one — run fsck.fat/chkdsk after restoring", d.Copy+1, d.Entries, d.FirstEntry)
		}
	}
	exfatState(vol, warn)
	return flags, nil
}

// unreadableMap explains a source whose boot record or allocation map
// (FAT, $MFT, $Bitmap) cannot be read: a cluster backup needs it, a
// sector-by-sector copy does not. It is a damaged source (exit 5) even
// when the cause is a read error.
func unreadableMap(what string, err error) error {
	if errors.Is(err, volume.ErrEncrypted) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !errors.Is(err, volume.ErrCorrupt) && !errors.Is(err, volume.ErrUnknownFS) && !errors.Is(err, volume.ErrUnsupported) {
		err = fmt.Errorf("%w: %w", volume.ErrCorrupt, err)
	}
	return fmt.Errorf("%s: %w; a cluster backup needs the boot record and the allocation map: copy every sector with --sector-by-sector", what, err)
}

// Caps on damage reports: warnings shown one by one, and records kept in
// the image header.
const (
	maxDamageWarnings = 100
	maxDamageRecords  = 1000
)

// damageLog collects the file-system damage a backup meets: each is a
// warning (the first maxDamageWarnings one by one; an exclusion not applied
// always) and a header record (the first maxDamageRecords).
type damageLog struct {
	warn    func(string, ...any)
	list    []image.Damage
	n       int // damage found, exclusions not applied included
	skipped int // exclusions not applied
	shown   int
}

func (l *damageLog) add(d volume.Damage) {
	l.record(d)
	if d.Kind == notApplied {
		l.skipped++
		l.warn("%s matches %s, but %s", d.What, d.Path, d.Msg)
		return
	}
	if l.shown < maxDamageWarnings {
		l.shown++
		l.warn("file-system damage: %s", d)
	}
}

// record keeps d in the header without a warning.
func (l *damageLog) record(d volume.Damage) {
	l.n++
	if len(l.list) < maxDamageRecords {
		l.list = append(l.list, image.Damage{Kind: d.Kind, Path: d.Path, What: d.What, Offset: d.Offset, Msg: d.Msg})
	}
}

func (l *damageLog) finish() {
	if l.n > len(l.list) {
		l.warn("the image records the first %d of %d damaged structures (cbimg check lists them all)", len(l.list), l.n)
	}
	if other := l.n - l.skipped; other > 0 {
		l.warn("%d damaged file-system structures found: the backup copies every allocated cluster, so the image holds the volume as it is (cbimg info lists the damage); repair a restored copy, not the only one", other)
	}
}

func allSet(n uint64) []byte {
	b := make([]byte, (n+7)/8)
	for i := range b {
		b[i] = 0xff
	}
	if r := n % 8; r != 0 {
		b[len(b)-1] = 1<<r - 1
	}
	return b
}

// logicalReader yields the image's logical stream straight from the
// source: the system extents in header order, then every cluster whose bit
// is set, in ascending order, with large reads over contiguous runs.
type logicalReader struct {
	ctx        context.Context
	src        io.ReaderAt
	info       *volume.Info
	h          *image.Header
	bitmap     []byte
	ext        int   // next system extent
	extOff     int64 // bytes done of that extent
	cluster    uint64
	runLeft    int64 // bytes left in the current cluster run
	runOff     int64 // partition offset of the next byte of that run
	done       int64
	progress   func(int64)
	rescue     bool
	unreadable []image.Run
}

const maxRead = 8 << 20

func (l *logicalReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	var off int64
	var n int
	system := l.ext < len(l.h.SysExtents)
	switch {
	case system:
		e := l.h.SysExtents[l.ext]
		n = int(min(int64(len(p)), e.Length-l.extOff, maxRead))
		off = e.Offset + l.extOff
		l.extOff += int64(n)
		if l.extOff == e.Length {
			l.ext++
			l.extOff = 0
		}
	default:
		if l.runLeft == 0 && !l.nextRun() {
			return 0, io.EOF
		}
		n = int(min(int64(len(p)), l.runLeft, maxRead))
		off = l.runOff
		l.runOff += int64(n)
		l.runLeft -= int64(n)
	}
	if err := l.read(p[:n], off, system); err != nil {
		return 0, err
	}
	l.done += int64(n)
	if l.progress != nil {
		l.progress(l.done)
	}
	return n, nil
}

// read fills p from the source at off. When a large read fails it reads
// again in small pieces to name the exact place that fails; in rescue mode
// unreadable clusters become zeros and are recorded instead.
func (l *logicalReader) read(p []byte, off int64, system bool) error {
	err := readFull(l.src, p, off)
	if err == nil {
		return nil
	}
	unit := int64(l.info.ClusterSize)
	if system {
		unit = int64(l.info.SectorSize)
	}
	base := l.info.ClusterOrigin
	if system {
		base = 0
	}
	for pos := int64(0); pos < int64(len(p)); {
		// Pieces end on unit boundaries so that a failure maps to one cluster.
		end := min(int64(len(p)), (off+pos-base)/unit*unit+unit+base-off)
		piece := p[pos:end]
		perr := readFull(l.src, piece, off+pos)
		c := uint64((off + pos - base) / unit)
		pos = end
		if perr == nil {
			continue
		}
		if !l.rescue || system {
			return perr
		}
		clear(piece)
		if n := len(l.unreadable); n > 0 && l.unreadable[n-1].Start+l.unreadable[n-1].Count == c {
			l.unreadable[n-1].Count++
		} else {
			l.unreadable = append(l.unreadable, image.Run{Start: c, Count: 1})
		}
	}
	return nil // every piece was read (or recorded): the first failure was transient
}

// nextRun moves to the next run of set bits.
func (l *logicalReader) nextRun() bool {
	c, e, ok := image.NextRun(l.bitmap, l.h.ClusterCount, l.cluster)
	l.cluster = e
	if !ok {
		return false
	}
	l.runOff = l.info.ClusterOffset(c)
	l.runLeft = int64(e-c) * int64(l.info.ClusterSize)
	return true
}

// SourceReadError names the source offset that could not be read.
type SourceReadError struct {
	Offset int64
	Length int
	Err    error
}

func (e *SourceReadError) Error() string {
	return fmt.Sprintf("read source at byte %d (%d bytes): %v", e.Offset, e.Length, e.Err)
}
func (e *SourceReadError) Unwrap() error { return e.Err }

func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &SourceReadError{Offset: off + int64(n), Length: len(p) - n, Err: err}
}

func popcount(b []byte) uint64 {
	var n uint64
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}
