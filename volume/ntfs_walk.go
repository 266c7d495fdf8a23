package volume

import (
	"context"
	"fmt"
	"strings"
)

// walkNode is what the walk keeps of each in-use base record to build paths.
type walkNode struct {
	name      string
	parent    uint64
	parentSeq uint16
	seq       uint16
	named     bool
	dir       bool
	path      string // memoized for directories
}

// walkItem is one File to report, by record, before paths are known.
type walkItem struct {
	rec  uint64
	file File
}

// walkBatch is how many records the walk reads at a time.
const walkBatch = 256

// ntfsScan is what a walk gathers: names to build paths, the files to
// report, and in tolerant mode the clusters every record claims.
type ntfsScan struct {
	nodes  map[uint64]*walkNode
	items  []walkItem
	report func(Damage) // nil: strict, the first damage ends the walk
	claims claimSet     // tolerant mode: clusters of every non-resident attribute
	shared []walkShared // tolerant mode: clusters claimed twice
}

// walkShared is a cross-link found before paths are known.
type walkShared struct {
	rec  uint64
	what string
	runs []Run
}

// walk scans every in-use MFT record, then reports files in record order.
// A file with several hard links is reported once, under its first Win32
// (or POSIX) name; records whose parent chain is broken appear under
// /$OrphanFiles.
func (v *ntfsVol) walk(ctx context.Context, fn func(File) error) error {
	_, err := v.scan(ctx, fn, nil)
	return err
}

// walkTolerant is walk that reports a damaged record, attribute or runlist
// and goes on, and finds clusters that two records claim (cross-links).
func (v *ntfsVol) walkTolerant(ctx context.Context, fn func(File) error, report func(Damage)) error {
	_, err := v.scan(ctx, fn, report)
	return err
}

// scan does walk (report nil) and walkTolerant, and returns what it
// gathered, for check.
func (v *ntfsVol) scan(ctx context.Context, fn func(File) error, report func(Damage)) (*ntfsScan, error) {
	sc := &ntfsScan{nodes: make(map[uint64]*walkNode), report: report}
	if report != nil {
		sc.claims = newClaimSet(v.inf.ClusterCount)
	}
	rs := uint64(v.recSize)
	buf := make([]byte, walkBatch*rs)
	for first := uint64(0); first < v.nrec; first += walkBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := v.nrec - first
		if n > walkBatch {
			n = walkBatch
		}
		anyUsed := false
		for i := first; i < first+n; i++ {
			if v.recordInUse(i) {
				anyUsed = true
				break
			}
		}
		if !anyUsed {
			continue
		}
		batchErr := v.mft.readFull(buf[:n*rs], int64(first*rs))
		if batchErr != nil && report == nil {
			return nil, fmt.Errorf("$MFT records %d..%d: %w", first, first+n-1, batchErr)
		}
		for i := first; i < first+n; i++ {
			if !v.recordInUse(i) {
				continue
			}
			b := make([]byte, rs)
			if batchErr != nil {
				// One record at a time, so only unreadable ones are lost.
				if err := v.mft.readFull(b, int64(i*rs)); err != nil {
					report(Damage{Kind: DamageRecord, What: fmt.Sprintf("MFT record %d", i), Offset: v.recordOffset(i), Msg: err.Error()})
					continue
				}
			} else {
				copy(b, buf[(i-first)*rs:])
			}
			rec, err := parseRecord(b, i, v.recordOffset(i))
			if err != nil {
				if report == nil {
					return nil, err
				}
				report(damageOf(DamageRecord, "", err))
				continue
			}
			if !rec.inUse() && report != nil {
				report(Damage{Kind: DamageRecord, What: fmt.Sprintf("MFT record %d", i), Offset: v.recordOffset(i),
					Msg: "the $MFT bitmap marks it in use, its header says it is free"})
			}
			if !rec.inUse() || rec.baseRef != 0 {
				continue
			}
			if err := v.walkRecord(rec, sc); err != nil {
				if report == nil {
					return nil, err
				}
				report(damageOf(DamageRecord, "", err))
			}
		}
	}
	paths := &pathBuilder{nodes: sc.nodes}
	for _, sh := range sc.shared {
		report(Damage{Kind: DamageCrossLink, Path: paths.path(sh.rec), What: fmt.Sprintf("MFT record %d %s", sh.rec, sh.what),
			Offset: v.recordOffset(sh.rec), Msg: fmt.Sprintf("clusters %s also belong to another file or attribute", runsString(sh.runs)), Clusters: sh.runs})
	}
	orphaned := map[uint64]bool{}
	for _, it := range sc.items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := it.file
		f.Path = paths.path(it.rec)
		if report != nil && strings.HasPrefix(f.Path, orphanDir+"/") && !orphaned[it.rec] {
			orphaned[it.rec] = true
			nd := sc.nodes[it.rec]
			report(Damage{Kind: DamageOrphan, Path: f.Path, What: fmt.Sprintf("MFT record %d", it.rec), Offset: v.recordOffset(it.rec),
				Msg: fmt.Sprintf("its parent, record %d (sequence %d), is not an in-use directory", nd.parent, nd.parentSeq)})
		}
		if err := fn(f); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// walkRecord collects the names and streams of one base record. In
// tolerant mode a stream that cannot be joined is reported and passed on
// as Damaged.
func (v *ntfsVol) walkRecord(rec *mftRecord, sc *ntfsScan) error {
	attrs, err := v.loadAttrs(rec)
	if err != nil {
		return err
	}
	nd := &walkNode{seq: rec.seq, dir: rec.isDir()}
	var dos *ntfsFileName
	for _, a := range attrs {
		if a.typ != attrFileName {
			continue
		}
		if !a.resident {
			return recErr(rec.num, v.recordOffset(rec.num), "non-resident $FILE_NAME")
		}
		f, err := parseFileName(a.value)
		if err != nil {
			return recErr(rec.num, v.recordOffset(rec.num), "%v", err)
		}
		if f.namespace == nsDOS {
			if dos == nil {
				dos = &f
			}
			continue
		}
		if !nd.named {
			nd.name, nd.parent, nd.parentSeq, nd.named = f.name, f.parent, f.parentSeq, true
		}
	}
	if !nd.named && dos != nil {
		nd.name, nd.parent, nd.parentSeq, nd.named = dos.name, dos.parent, dos.parentSeq, true
	}
	if sc.claims != nil {
		v.claimAttrs(rec.num, attrs, sc)
	}
	if !nd.named {
		// In-use records without a name (reserved records) are no files.
		return nil
	}
	sc.nodes[rec.num] = nd
	if nd.dir {
		sc.items = append(sc.items, walkItem{rec: rec.num, file: File{Dir: true}})
	}
	// Streams: one per distinct $DATA name, in attribute order.
	seen := map[string]bool{}
	for _, a := range attrs {
		if a.typ != attrData || seen[a.name] {
			continue
		}
		seen[a.name] = true
		s, err := v.fileStream(attrs, rec.num, attrData, a.name)
		if err != nil {
			if sc.report == nil {
				return err
			}
			sc.report(damageOf(DamageRecord, "", err))
			sc.items = append(sc.items, walkItem{rec: rec.num, file: File{Stream: a.name, Damaged: true}})
			continue
		}
		sc.items = append(sc.items, walkItem{rec: rec.num, file: File{
			Stream: a.name,
			Size:   s.size(),
			Runs:   s.clusterRuns(),
		}})
	}
	return nil
}

// claimAttrs marks the clusters of every non-resident attribute piece of a
// record, and notes those another record (or attribute) claimed first.
func (v *ntfsVol) claimAttrs(num uint64, attrs []ntfsAttr, sc *ntfsScan) {
	nc := v.inf.ClusterCount
	for _, a := range attrs {
		if a.resident {
			continue
		}
		var dup []Run
		for _, r := range a.runs {
			if r.lcn < 0 {
				continue
			}
			if uint64(r.lcn) >= nc || r.length > nc-uint64(r.lcn) {
				sc.report(Damage{Kind: DamageRecord, What: fmt.Sprintf("MFT record %d %s", num, attrLabel(a.typ, a.name)), Offset: v.recordOffset(num),
					Msg: fmt.Sprintf("run of %d clusters at LCN %d passes the volume's %d clusters", r.length, r.lcn, nc)})
				continue
			}
			dup = append(dup, sc.claims.claim(uint64(r.lcn), r.length)...)
		}
		if len(dup) > 0 {
			sc.shared = append(sc.shared, walkShared{rec: num, what: attrLabel(a.typ, a.name), runs: dup})
		}
	}
}

// runsString shows runs as "c1-c2, c3" with at most a few listed.
func runsString(runs []Run) string {
	var sb strings.Builder
	for i, r := range runs {
		if i == 4 {
			fmt.Fprintf(&sb, " and %d more runs", len(runs)-i)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		if r.Count == 1 {
			fmt.Fprintf(&sb, "%d", r.Start)
		} else {
			fmt.Fprintf(&sb, "%d-%d", r.Start, r.Start+r.Count-1)
		}
	}
	return sb.String()
}

// pathBuilder turns parent references into paths, memoizing directories.
type pathBuilder struct {
	nodes map[uint64]*walkNode
}

const orphanDir = "/$OrphanFiles"

func (p *pathBuilder) path(rec uint64) string {
	if rec == mftRecRoot {
		return "/"
	}
	var parts []string
	cur := rec
	prefix := ""
	for depth := 0; ; depth++ {
		nd := p.nodes[cur]
		if nd == nil || depth > ntfsMaxPathDepth {
			prefix = orphanDir
			break
		}
		if nd.path != "" {
			prefix = nd.path
			break
		}
		parts = append(parts, nd.name)
		par := p.nodes[nd.parent]
		switch {
		case nd.parent == mftRecRoot:
			prefix = ""
		case par == nil || !par.dir || (nd.parentSeq != 0 && par.seq != nd.parentSeq) || nd.parent == cur:
			prefix = orphanDir
		default:
			cur = nd.parent
			continue
		}
		break
	}
	if prefix == "/" {
		prefix = ""
	}
	var sb strings.Builder
	sb.WriteString(prefix)
	for i := len(parts) - 1; i >= 0; i-- {
		sb.WriteByte('/')
		sb.WriteString(parts[i])
	}
	out := sb.String()
	if nd := p.nodes[rec]; nd != nil && nd.dir && prefix != orphanDir {
		nd.path = out
	}
	return out
}
