package volume

import (
	"context"
	"errors"
	"fmt"
)

// Damage is one damaged or inconsistent structure of a file system, as
// fsck.fat -n or chkdsk would report it. Damage is never fatal to a backup:
// only an unreadable allocation map is.
type Damage struct {
	Kind   string // one of the Damage* kinds
	Path   string // the file or directory concerned; "" when none
	What   string // the structure, e.g. "FAT entry 12", "MFT record 40"
	Offset int64  // partition byte offset of the structure; -1 when unknown
	Msg    string
	// Clusters are bitmap clusters that more than one chain or file claims
	// (or may claim): an exclusion must never clear them.
	Clusters []Run
}

func (d Damage) String() string {
	s := d.Kind
	if d.Path != "" {
		s += " " + d.Path
	}
	s += ": " + d.What
	if d.Offset >= 0 {
		s += fmt.Sprintf(" at byte %d", d.Offset)
	}
	return s + ": " + d.Msg
}

// Damage kinds.
const (
	DamageChain      = "bad chain"             // a FAT chain runs into a free, bad or out-of-range cluster, or does not fit the size
	DamageCrossLink  = "cross-linked"          // two chains or files claim the same cluster
	DamageDirLoop    = "directory loop"        // a directory entry points back at a directory above it
	DamageDotEntry   = "bad dot entry"         // "." or ".." missing or pointing at the wrong cluster
	DamageEmptyChain = "empty file with chain" // a 0-byte file whose entry still names a first cluster
	DamageFATCopies  = "FAT copies differ"
	DamageLostChain  = "lost chain"     // clusters in use in the allocation map that no file or directory reaches
	DamageEntry      = "bad entry"      // a directory entry that cannot be a file
	DamageDir        = "unreadable dir" // a directory whose contents could not be read
	DamageRecord     = "bad MFT record" // an MFT record (or its attributes) that cannot be read
	DamageOrphan     = "orphan file"    // an MFT record whose parent directory is gone
	DamageIndex      = "bad index"      // a directory index that cannot be read, or an entry naming a record not in use
	DamageMirror     = "MFT mirror mismatch"
	DamageBitmap     = "bitmap mismatch" // $Bitmap disagrees with the clusters files use
	DamageVolume     = "bad volume info" // $Volume or the root label entry could not be read
)

// damageOf turns a read error into a Damage of kind, keeping the structure
// and offset of a *FormatError.
func damageOf(kind, path string, err error) Damage {
	var fe *FormatError
	if errors.As(err, &fe) {
		return Damage{Kind: kind, Path: path, What: fe.What, Offset: fe.Offset, Msg: fe.Msg}
	}
	return Damage{Kind: kind, Path: path, What: "read", Offset: -1, Msg: err.Error()}
}

// tolerantWalker is implemented by readers whose walk can report damage and
// go on.
type tolerantWalker interface {
	walkTolerant(ctx context.Context, fn func(File) error, report func(Damage)) error
}

// checker is implemented by readers that can check a whole file system.
type checker interface {
	check(ctx context.Context, report func(Damage)) error
}

// WalkTolerant is Walk for damaged file systems: a damaged directory, chain
// or record is reported and skipped, and the walk goes on. A file whose
// chain or runs are damaged is passed to fn with Damaged set and the runs
// that could be followed. It fails only when fn fails, ctx is done, or the
// allocation data itself cannot be read.
//
// Damage that Open tolerated is not reported again (see OpenDamage).
func (v *Volume) WalkTolerant(ctx context.Context, fn func(File) error, report func(Damage)) error {
	if tw, ok := v.impl.(tolerantWalker); ok {
		return tw.walkTolerant(ctx, fn, report)
	}
	// A reader without its own tolerant walk stops at the first damage.
	var fnErr error
	err := v.impl.walk(ctx, func(f File) error {
		if fnErr = fn(f); fnErr != nil {
			return fnErr
		}
		return nil
	})
	if err != nil && fnErr == nil && ctx.Err() == nil {
		report(damageOf(DamageDir, "", err))
		return nil
	}
	return err
}

// Check reports every damaged structure it finds, read-only, the way
// fsck.fat -n or chkdsk would: the tolerant walk's findings plus checks of
// the whole file system (lost chains, FAT copies, "." and "..", index
// entries, the $MFT mirror, $Bitmap against the files' clusters).
func (v *Volume) Check(ctx context.Context, report func(Damage)) error {
	if c, ok := v.impl.(checker); ok {
		for _, d := range v.openDamage {
			report(d)
		}
		return c.check(ctx, report)
	}
	return v.WalkTolerant(ctx, func(File) error { return nil }, report)
}

// OpenDamage lists damage found while opening the volume that Open
// tolerated (an unreadable $Volume record or root label entry).
func (v *Volume) OpenDamage() []Damage { return v.openDamage }

// claimSet is one bit per bitmap cluster: which clusters a chain or file
// already claimed.
type claimSet []byte

func newClaimSet(n uint64) claimSet { return make(claimSet, (n+7)/8) }

func (c claimSet) has(b uint64) bool { return c[b>>3]&(1<<(b&7)) != 0 }
func (c claimSet) set(b uint64)      { c[b>>3] |= 1 << (b & 7) }

// claim sets clusters [s, s+n) and returns the runs of those that were
// already set; whole free bytes are set at once.
func (c claimSet) claim(s, n uint64) []Run {
	var dup []Run
	for b, e := s, s+n; b < e; {
		if b&7 == 0 && e-b >= 8 && c[b>>3] == 0 {
			c[b>>3] = 0xFF
			b += 8
			continue
		}
		if !c.has(b) {
			c.set(b)
		} else if k := len(dup); k > 0 && dup[k-1].Start+dup[k-1].Count == b {
			dup[k-1].Count++
		} else {
			dup = append(dup, Run{Start: b, Count: 1})
		}
		b++
	}
	return dup
}

// bitRuns calls fn for each run of clusters below n where pick(c) holds,
// stopping after max runs; it returns the runs and clusters seen in all.
func bitRuns(n uint64, pick func(uint64) bool, max int, fn func(Run)) (runs, clusters uint64) {
	for c := uint64(0); c < n; {
		if !pick(c) {
			c++
			continue
		}
		s := c
		for c < n && pick(c) {
			c++
		}
		runs++
		clusters += c - s
		if runs <= uint64(max) {
			fn(Run{Start: s, Count: c - s})
		}
	}
	return runs, clusters
}

// maxReported caps how many runs of one kind a check lists one by one.
const maxReported = 100
