package volume

import (
	"context"
	"errors"
	"fmt"
)

// FATCopyDiff says how one FAT copy differs from the active one.
type FATCopyDiff struct {
	Copy       int    // FAT copy number (0 is the first)
	Entries    uint64 // entries that differ (cluster entries and the two reserved ones)
	FirstEntry uint32 // lowest differing entry
}

// CompareFATCopies reads every FAT copy and reports those that differ from
// the active one. Differences are not an error: the active copy is what
// the reader uses, and a faithful backup keeps all copies as they are.
// With FAT32 mirroring disabled the copies may differ by design.
func (f *FATFS) CompareFATCopies() ([]FATCopyDiff, error) {
	bs := f.boot
	active := bs.ActiveFAT()
	if bs.NumFATs < 2 {
		return nil, nil
	}
	// Compared piece by piece: memory stays at two pieces.
	var diffs []FATCopyDiff
	for i := 0; i < int(bs.NumFATs); i++ {
		if i == active {
			continue
		}
		d := FATCopyDiff{Copy: i}
		if err := compareFATPieces(f, active, i, &d); err != nil {
			return nil, err
		}
		if d.Entries > 0 {
			diffs = append(diffs, d)
		}
	}
	return diffs, nil
}

// compareFATPieces compares copies a and b piece by piece.
func compareFATPieces(f *FATFS, a, b int, d *FATCopyDiff) error {
	bs := f.boot
	total := fatEntryBytes(bs.Type, uint64(bs.ClusterCount)+2)
	piece := int64(fatPieceSize)
	if bs.Type == FAT12 {
		piece = total
	}
	pa := make([]byte, min(piece, total))
	pb := make([]byte, min(piece, total))
	per := int64(fatEntryBits(bs.Type) / 8)
	for off := int64(0); off < total; off += piece {
		n := min(piece, total-off)
		if err := readFull(f.r, pa[:n], bs.FATOffset(a)+off); err != nil {
			return fmt.Errorf("volume: reading FAT %d: %w", a, err)
		}
		if err := readFull(f.r, pb[:n], bs.FATOffset(b)+off); err != nil {
			return fmt.Errorf("volume: reading FAT %d: %w", b, err)
		}
		if string(pa[:n]) == string(pb[:n]) {
			continue
		}
		first := uint32(0)
		if bs.Type != FAT12 {
			first = uint32(off / per)
		}
		var va []uint32
		decodeFATEntries(bs.Type, pa[:n], first, func(_, v uint32) { va = append(va, v) })
		k := 0
		decodeFATEntries(bs.Type, pb[:n], first, func(c, v uint32) {
			if va[k] != v {
				if d.Entries == 0 {
					d.FirstEntry = c
				}
				d.Entries++
			}
			k++
		})
	}
	return nil
}

// CopyDamage describes a FAT copy that differs from the active one, at
// its first differing entry.
func (f *FATFS) CopyDamage(d FATCopyDiff) Damage {
	bs := f.boot
	return Damage{Kind: DamageFATCopies, What: fmt.Sprintf("FAT %d entry %d", d.Copy+1, d.FirstEntry),
		Offset: bs.FATOffset(d.Copy) + int64(d.FirstEntry)*int64(fatEntryBits(bs.Type))/8,
		Msg:    fmt.Sprintf("%d entries differ from the active FAT %d", d.Entries, bs.ActiveFAT()+1)}
}

// fatEntryOffset is the partition offset of FAT entry c in the active FAT.
func (f *FATFS) fatEntryOffset(c uint32) int64 {
	bs := f.boot
	return bs.FATOffset(bs.ActiveFAT()) + int64(c)*int64(fatEntryBits(bs.Type))/8
}

// fatScanDir is a directory waiting to be read by a tolerant walk.
type fatScanDir struct {
	ref    fatDirRef
	parent uint32       // first cluster of the parent directory; 0 for the root
	above  *fatAncestor // the directories above it
}

// fatAncestor is one directory on the path to another, shared by all the
// directories below it, so memory stays one node per directory.
type fatAncestor struct {
	cluster uint32
	depth   int
	up      *fatAncestor
}

func (a *fatAncestor) holds(c uint32) bool {
	for ; a != nil; a = a.up {
		if a.cluster == c {
			return true
		}
	}
	return false
}

// fatMaxDepth bounds how deep a tolerant walk descends: deeper
// directories are reported, not walked.
const fatMaxDepth = 4096

// walkTolerant walks like walk, but a damaged directory, chain or entry is
// reported and skipped. Every chain is claimed once, so a chain that runs
// into another (cross-link) or into a directory above it (loop) is found.
func (f *FATFS) walkTolerant(ctx context.Context, fn func(File) error, report func(Damage)) error {
	_, err := f.scanTolerant(ctx, fn, report)
	return err
}

// scanTolerant is walkTolerant; it returns the clusters its chains claimed.
func (f *FATFS) scanTolerant(ctx context.Context, fn func(File) error, report func(Damage)) (fatClaims, error) {
	t, err := f.table()
	if err != nil {
		return nil, err
	}
	bs := f.boot
	last := bs.ClusterCount + 1
	get := func(c uint32) (uint32, error) { return t.get(c), nil }
	cl := make(fatClaims, len(t.used))
	claimed := func(c uint32) bool { return c >= 2 && c <= last && cl[(c-2)>>3]&(1<<((c-2)&7)) != 0 }
	// chainDamage classifies a chain error from the runs followed before it.
	chainDamage := func(p string, start uint32, runs []Run, err error) Damage {
		next := start
		if k := len(runs); k > 0 {
			next = t.get(uint32(runs[k-1].Start+runs[k-1].Count-1) + 2)
		}
		d := damageOf(DamageChain, p, err)
		var fe *FormatError
		if errors.As(err, &fe) && claimed(next) {
			own := false
			for _, r := range runs {
				own = own || uint64(next-2) >= r.Start && uint64(next-2) < r.Start+r.Count
			}
			if !own {
				d.Kind = DamageCrossLink
				d.Clusters = []Run{{Start: uint64(next - 2), Count: 1}}
			}
		}
		return d
	}
	root := f.rootRef()
	stack := []fatScanDir{{ref: root}}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		dd, err := f.readDir(d.ref, get, cl)
		if err != nil && (dd == nil || dd.scan.err != err) {
			// The directory's chain or clusters cannot be read: nothing
			// under it is walked.
			dmg := damageOf(DamageDir, d.ref.path, err)
			if dd != nil {
				dmg = chainDamage(d.ref.path, d.ref.cluster, dd.runs, err)
			}
			dmg.Msg += " (its contents are not walked)"
			report(dmg)
			var runs []Run
			if dd != nil {
				runs = dd.runs
			}
			if err := fn(File{Path: d.ref.path, Dir: true, Runs: runs, Damaged: true}); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			report(damageOf(DamageEntry, d.ref.path, err))
		}
		if !d.ref.fixedRoot && d.ref.cluster != root.cluster {
			f.checkDots(d, dd, report)
		}
		if err := fn(File{Path: d.ref.path, Dir: true, Size: dd.size, Runs: dd.runs}); err != nil {
			return nil, err
		}
		var subdirs []fatScanDir
		here := &fatAncestor{cluster: d.ref.cluster, up: d.above}
		if d.above != nil {
			here.depth = d.above.depth + 1
		}
		for i := range dd.scan.entries {
			e := &dd.scan.entries[i]
			p := joinFATPath(d.ref.path, e.Name)
			if e.IsDir() {
				dmg := Damage{Path: p, What: "directory entry", Offset: e.offset}
				switch {
				case e.Cluster == 0 || e.Cluster > last:
					dmg.Kind, dmg.Msg = DamageEntry, fmt.Sprintf("directory names cluster %d, outside clusters 2..%d", e.Cluster, last)
				case e.Cluster == d.ref.cluster || e.Cluster == root.cluster || d.above.holds(e.Cluster):
					dmg.Kind, dmg.Msg = DamageDirLoop, fmt.Sprintf("directory points back at cluster %d, the first cluster of a directory above it", e.Cluster)
				case claimed(e.Cluster):
					dmg.Kind, dmg.Msg = DamageCrossLink, fmt.Sprintf("directory starts at cluster %d, which another chain already holds", e.Cluster)
					dmg.Clusters = []Run{{Start: uint64(e.Cluster - 2), Count: 1}}
				case here.depth >= fatMaxDepth:
					dmg.Kind, dmg.Msg = DamageDir, fmt.Sprintf("more than %d directory levels: not walked", fatMaxDepth)
				default:
					subdirs = append(subdirs, fatScanDir{ref: fatDirRef{path: p, cluster: e.Cluster}, parent: d.ref.cluster, above: here})
					continue
				}
				report(dmg)
				continue
			}
			if e.Size == 0 && e.Cluster != 0 {
				report(Damage{Kind: DamageEmptyChain, Path: p, What: "directory entry", Offset: e.offset,
					Msg: fmt.Sprintf("empty file names first cluster %d", e.Cluster)})
				if err := fn(File{Path: p, Damaged: true}); err != nil {
					return nil, err
				}
				continue
			}
			runs, _, err := f.chain(p, e.Cluster, e.Size, false, get, cl)
			if err != nil {
				report(chainDamage(p, e.Cluster, runs, err))
			}
			if err := fn(File{Path: p, Size: int64(e.Size), Runs: runs, Damaged: err != nil}); err != nil {
				return nil, err
			}
		}
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	return cl, nil
}

// checkDots checks the "." and ".." entries of a subdirectory. ".." names
// the parent's first cluster, or 0 for the root (FAT32: the root's cluster
// is accepted too).
func (f *FATFS) checkDots(d fatScanDir, dd *fatDirData, report func(Damage)) {
	dirOff := f.inf.ClusterOffset(uint64(d.ref.cluster - 2))
	want := [2]uint32{d.ref.cluster, d.parent}
	if d.parent == f.rootRef().cluster {
		want[1] = 0
	}
	for k, name := range []string{".", ".."} {
		dot := dd.scan.dots[k]
		switch {
		case !dot.found:
			report(Damage{Kind: DamageDotEntry, Path: d.ref.path, What: "directory", Offset: dirOff,
				Msg: fmt.Sprintf("no %q entry", name)})
		case dot.cluster != want[k] && !(k == 1 && want[1] == 0 && dot.cluster == f.boot.RootCluster && f.boot.Type == FAT32):
			report(Damage{Kind: DamageDotEntry, Path: d.ref.path, What: fmt.Sprintf("%q entry", name), Offset: dot.offset,
				Msg: fmt.Sprintf("%q names cluster %d, should be %d", name, dot.cluster, want[k])})
		}
	}
}

// check reports FAT copies that differ, every damaged chain, entry and
// directory the tolerant walk finds, and lost chains: clusters the FAT
// marks in use that no file or directory reaches.
func (f *FATFS) check(ctx context.Context, report func(Damage)) error {
	diffs, err := f.CompareFATCopies()
	if err != nil {
		return err
	}
	for _, d := range diffs {
		report(f.CopyDamage(d))
	}
	cl, err := f.scanTolerant(ctx, func(File) error { return nil }, report)
	if err != nil {
		return err
	}
	t, err := f.table()
	if err != nil {
		return err
	}
	f.lostChains(t, cl, report)
	return nil
}

// lostChains reports the chains of clusters in use in the FAT but claimed
// by no file or directory, one per chain head, like fsck.fat's
// "unused clusters".
func (f *FATFS) lostChains(t *fatTable, cl fatClaims, report func(Damage)) {
	n := uint64(t.n)
	orphan := func(b uint64) bool { return t.used[b>>3]&(1<<(b&7)) != 0 && cl[b>>3]&(1<<(b&7)) == 0 }
	pointed := newClaimSet(n)
	for b := uint64(0); b < n; b++ {
		if orphan(b) {
			if v := uint64(t.get(uint32(b + 2))); v >= 2 && v-2 < n && orphan(v-2) {
				pointed.set(v - 2)
			}
		}
	}
	seen := newClaimSet(n)
	cs := int64(f.boot.ClusterSize())
	chains, total := 0, uint64(0)
	follow := func(head uint64) uint64 {
		k := uint64(0)
		for b := head; b < n && orphan(b) && !seen.has(b); {
			seen.set(b)
			k++
			v := uint64(t.get(uint32(b + 2)))
			if v < 2 {
				break
			}
			b = v - 2
		}
		return k
	}
	emit := func(head, k uint64, msg string) {
		chains++
		total += k
		if chains <= maxReported {
			report(Damage{Kind: DamageLostChain, What: fmt.Sprintf("FAT entry %d", head+2), Offset: f.fatEntryOffset(uint32(head + 2)),
				Msg: fmt.Sprintf("%s of %d clusters (%d bytes) from cluster %d (data at byte %d): in use in the FAT, reached by no file or directory",
					msg, k, int64(k)*cs, head+2, f.inf.ClusterOffset(head))})
		}
	}
	for b := uint64(0); b < n; b++ {
		if orphan(b) && !pointed.has(b) && !seen.has(b) {
			emit(b, follow(b), "lost chain")
		}
	}
	// What is left are chains that loop among themselves.
	for b := uint64(0); b < n; b++ {
		if orphan(b) && !seen.has(b) {
			emit(b, follow(b), "lost looping chain")
		}
	}
	if chains > maxReported {
		report(Damage{Kind: DamageLostChain, What: "FAT", Offset: f.fatEntryOffset(0),
			Msg: fmt.Sprintf("%d lost chains of %d clusters in all; the first %d are listed", chains, total, maxReported)})
	}
}
