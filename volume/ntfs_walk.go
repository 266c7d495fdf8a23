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

// walk scans every in-use MFT record, then reports files in record order.
// A file with several hard links is reported once, under its first Win32
// (or POSIX) name; records whose parent chain is broken appear under
// /$OrphanFiles.
func (v *ntfsVol) walk(ctx context.Context, fn func(File) error) error {
	nodes := make(map[uint64]*walkNode)
	var items []walkItem
	rs := uint64(v.recSize)
	buf := make([]byte, walkBatch*rs)
	for first := uint64(0); first < v.nrec; first += walkBatch {
		if err := ctx.Err(); err != nil {
			return err
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
		if err := v.mft.readFull(buf[:n*rs], int64(first*rs)); err != nil {
			return fmt.Errorf("$MFT records %d..%d: %w", first, first+n-1, err)
		}
		for i := first; i < first+n; i++ {
			if !v.recordInUse(i) {
				continue
			}
			b := make([]byte, rs)
			copy(b, buf[(i-first)*rs:])
			rec, err := parseRecord(b, i, v.recordOffset(i))
			if err != nil {
				return err
			}
			if !rec.inUse() || rec.baseRef != 0 {
				continue
			}
			if err := v.walkRecord(rec, nodes, &items); err != nil {
				return err
			}
		}
	}
	paths := &pathBuilder{nodes: nodes}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := it.file
		f.Path = paths.path(it.rec)
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// walkRecord collects the names and streams of one base record.
func (v *ntfsVol) walkRecord(rec *mftRecord, nodes map[uint64]*walkNode, items *[]walkItem) error {
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
	if !nd.named {
		// In-use records without a name (reserved records) are no files.
		return nil
	}
	nodes[rec.num] = nd
	if nd.dir {
		*items = append(*items, walkItem{rec: rec.num, file: File{Dir: true}})
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
			return err
		}
		*items = append(*items, walkItem{rec: rec.num, file: File{
			Stream: a.name,
			Size:   s.size(),
			Runs:   s.clusterRuns(),
		}})
	}
	return nil
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
