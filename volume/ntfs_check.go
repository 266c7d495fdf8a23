package volume

import (
	"bytes"
	"context"
	"fmt"
	"sort"
)

// mftRecMirror is $MFTMirr, the copy of the first $MFT records.
const mftRecMirror = 1

// check reports what the tolerant walk finds, then compares $MFTMirr with
// the $MFT records it copies, $Bitmap with the clusters the records claim,
// and every directory index entry with the record it names.
func (v *ntfsVol) check(ctx context.Context, report func(Damage)) error {
	sc, err := v.scan(ctx, func(File) error { return nil }, report)
	if err != nil {
		return err
	}
	v.checkMirror(report)
	bm, err := v.bitmap()
	if err != nil {
		return err
	}
	v.checkBitmap(bm, sc.claims, report)
	return v.checkIndexes(ctx, sc, report)
}

// checkMirror compares the records $MFTMirr holds (at least four) with the
// same records of $MFT, byte for byte as stored.
func (v *ntfsVol) checkMirror(report func(Damage)) {
	fail := func(off int64, format string, a ...any) {
		report(Damage{Kind: DamageMirror, Path: "/$MFTMirr", What: "MFT record 1", Offset: off, Msg: fmt.Sprintf(format, a...)})
	}
	rec, err := v.readBaseRecord(mftRecMirror, 0)
	if err != nil {
		report(damageOf(DamageMirror, "/$MFTMirr", err))
		return
	}
	attrs, err := v.loadAttrs(rec)
	if err != nil {
		report(damageOf(DamageMirror, "/$MFTMirr", err))
		return
	}
	s, err := v.fileStream(attrs, mftRecMirror, attrData, "")
	if err != nil {
		report(damageOf(DamageMirror, "/$MFTMirr", err))
		return
	}
	rs := uint64(v.recSize)
	n := min(s.dataSize/rs, v.nrec, 64)
	if n < 4 && v.nrec >= 4 {
		fail(v.recordOffset(mftRecMirror), "$MFTMirr holds %d records, fewer than 4", n)
	}
	a, b := make([]byte, rs), make([]byte, rs)
	for i := uint64(0); i < n; i++ {
		if err := v.mft.readFull(a, int64(i*rs)); err != nil {
			report(Damage{Kind: DamageMirror, Path: "/$MFT", What: fmt.Sprintf("MFT record %d", i), Offset: v.recordOffset(i), Msg: err.Error()})
			continue
		}
		if err := s.readFull(b, int64(i*rs)); err != nil {
			fail(s.physOffset(int64(i*rs)), "copy of record %d: %v", i, err)
			continue
		}
		if !bytes.Equal(a, b) {
			k := 0
			for a[k] == b[k] {
				k++
			}
			fail(s.physOffset(int64(i*rs)), "copy of MFT record %d differs from $MFT (first at byte %d of the record; $MFT's copy at byte %d)", i, k, v.recordOffset(i))
		}
	}
}

// checkBitmap compares $Bitmap with the clusters the walk saw claimed:
// clusters a file uses but $Bitmap calls free (a cluster backup would not
// copy them), and clusters $Bitmap marks in use that no record claims.
func (v *ntfsVol) checkBitmap(bm []byte, claims claimSet, report func(Damage)) {
	n := v.inf.ClusterCount
	inBM := func(c uint64) bool { return bm[c>>3]&(1<<(c&7)) != 0 }
	cs := int64(v.inf.ClusterSize)
	for _, k := range []struct {
		pick func(uint64) bool
		msg  string
	}{
		{func(c uint64) bool { return claims.has(c) && !inBM(c) }, "used by a file but free in $Bitmap (a cluster backup does not copy them)"},
		{func(c uint64) bool { return !claims.has(c) && inBM(c) }, "marked in use in $Bitmap but used by no file"},
	} {
		runs, total := bitRuns(n, k.pick, maxReported, func(r Run) {
			report(Damage{Kind: DamageBitmap, What: "clusters " + runsString([]Run{r}), Offset: int64(r.Start) * cs,
				Msg: fmt.Sprintf("%d clusters %s", r.Count, k.msg)})
		})
		if runs > maxReported {
			report(Damage{Kind: DamageBitmap, What: "$Bitmap", Offset: -1,
				Msg: fmt.Sprintf("%d runs of %d clusters in all %s; the first %d are listed", runs, total, k.msg, maxReported)})
		}
	}
}

// checkIndexes reads every directory's index and reports entries that name
// a record that is not an in-use base record with that sequence number.
func (v *ntfsVol) checkIndexes(ctx context.Context, sc *ntfsScan, report func(Damage)) error {
	paths := &pathBuilder{nodes: sc.nodes}
	var dirs []uint64
	for rec, nd := range sc.nodes {
		if nd.dir {
			dirs = append(dirs, rec)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] < dirs[j] })
	// Which records an index names, and which directories were read.
	indexed, read := newClaimSet(v.nrec), newClaimSet(v.nrec)
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		dp := paths.path(d)
		ents, err := v.listDir(d, sc.nodes[d].seq)
		if err != nil {
			report(damageOf(DamageIndex, dp, err))
			continue
		}
		read.set(d)
		for _, e := range ents {
			if e.rec < v.nrec {
				indexed.set(e.rec)
			}
			t := sc.nodes[e.rec]
			msg := ""
			switch {
			case t == nil:
				msg = "which is not an in-use file record"
			case e.seq != 0 && t.seq != e.seq:
				msg = fmt.Sprintf("whose sequence number is %d (a stale entry)", t.seq)
			}
			if msg != "" {
				report(Damage{Kind: DamageIndex, Path: joinFATPath(dp, e.fn.name), What: fmt.Sprintf("index of MFT record %d", d),
					Offset: v.recordOffset(d), Msg: fmt.Sprintf("entry %q names MFT record %d (sequence %d), %s", e.fn.name, e.rec, e.seq, msg)})
			}
		}
	}
	// The other way round: a file whose directory's index does not name it
	// is invisible to Windows.
	var recs []uint64
	for rec, nd := range sc.nodes {
		if rec != mftRecRoot && nd.parent < v.nrec && read.has(nd.parent) && !indexed.has(rec) {
			recs = append(recs, rec)
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i] < recs[j] })
	for _, rec := range recs {
		nd := sc.nodes[rec]
		report(Damage{Kind: DamageIndex, Path: paths.path(rec), What: fmt.Sprintf("index of MFT record %d", nd.parent), Offset: v.recordOffset(nd.parent),
			Msg: fmt.Sprintf("MFT record %d (%q) is missing from its directory's index", rec, nd.name)})
	}
	return nil
}
