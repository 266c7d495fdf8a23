//go:build linux

package seekz

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// openGzip compresses the partclone stream with pipeline and opens it with
// the default spacing.
func openGzip(t *testing.T, pipeline string) (*Reader, []byte, Options, string) {
	t.Helper()
	testvol.Need(t, "partclone.fat16", "gzip", "pigz")
	in, want := partcloneStream(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "img.gz")
	compress(t, in, out, pipeline)
	opt := Options{CacheDir: filepath.Join(dir, "cache")}
	r, err := Open(context.Background(), []string{out}, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, want, opt, out
}

// segState reports how far segment seg is decoded and whether it keeps a
// decoder, or -1 if it is not kept.
func segState(r *Reader, seg int) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.segs {
		if d.seg == seg {
			d.mu.Lock()
			defer d.mu.Unlock()
			return int64(len(d.data)), d.rd != nil
		}
	}
	return -1, false
}

func segOf(r *Reader, o int64) int {
	i := 0
	for i+1 < len(r.cps) && r.cps[i+1].Out <= o {
		i++
	}
	return i
}

// TestGzipDenseCheckpoints: by default gzip checkpoints are about 256 KiB
// of output apart (at block starts), so a random read decodes little.
func TestGzipDenseCheckpoints(t *testing.T) {
	for _, c := range []struct{ name, pipeline string }{
		{"gzip", `gzip -6 -c "$IN" > "$OUT"`},
		{"pigz", `pigz -p 2 -c "$IN" > "$OUT"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, want, _, _ := openGzip(t, c.pipeline)
			if r.Size() != int64(len(want)) {
				t.Fatalf("size %d", r.Size())
			}
			if min := int(r.Size() / (1 << 20)); len(r.cps) < min {
				t.Fatalf("%d checkpoints for %d bytes", len(r.cps), r.Size())
			}
			for i := 1; i < len(r.cps); i++ {
				if d := r.cps[i].Out - r.cps[i-1].Out; d < gzipSpacing {
					t.Fatalf("checkpoints %d and %d only %d bytes apart", i-1, i, d)
				}
			}
			checkReads(t, r, want)
		})
	}
}

// TestGzipEarlyStop: a small read in the middle of a segment decodes only
// up to the end of the 32 KiB sub-block it needs (checked against its
// sub-sum); a later read further on continues the same decoder; a read
// from where decoding stopped completes the segment and checks its sum.
func TestGzipEarlyStop(t *testing.T) {
	r, want, _, _ := openGzip(t, `gzip -6 -c "$IN" > "$OUT"`)
	seg := len(r.cps) / 2
	start, end := r.cps[seg].Out, r.cps[seg+1].Out
	if end-start < gzipSpacing {
		t.Fatalf("segment %d is %d bytes", seg, end-start)
	}
	buf := make([]byte, 4096)
	o := start + (end-start)/4
	if _, err := r.ReadAt(buf, o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, want[o:o+4096]) {
		t.Fatal("bytes differ")
	}
	upTo := func(e int64) int64 { return min(end-start, (e-start+subSum-1)/subSum*subSum) }
	n, live := segState(r, seg)
	if n != upTo(o+4096) || !live {
		t.Fatalf("decoded %d (live %v), want exactly %d", n, live, upTo(o+4096))
	}
	// Further on, past a gap: decodes on to that read's end only.
	o2 := start + (end-start)/2
	if _, err := r.ReadAt(buf, o2); err != nil || !bytes.Equal(buf, want[o2:o2+4096]) {
		t.Fatalf("second read: %v", err)
	}
	if n, _ := segState(r, seg); n != upTo(o2+4096) {
		t.Fatalf("decoded %d, want %d", n, upTo(o2+4096))
	}
	// Backwards, inside what is decoded: nothing more is decoded.
	if _, err := r.ReadAt(buf, o); err != nil || !bytes.Equal(buf, want[o:o+4096]) {
		t.Fatalf("third read: %v", err)
	}
	if n, _ := segState(r, seg); n != upTo(o2+4096) {
		t.Fatalf("decoded %d after a read behind", n)
	}
	// From where decoding stopped (a sequential reader): read-ahead to the
	// segment's end, its sum checked and the decoder dropped.
	o3 := start + upTo(o2+4096) - 100
	if _, err := r.ReadAt(buf, o3); err != nil || !bytes.Equal(buf, want[o3:o3+4096]) {
		t.Fatalf("fourth read: %v", err)
	}
	if n, live := segState(r, seg); n != end-start || live {
		t.Fatalf("decoded %d of %d (live %v) after a sequential read", n, end-start, live)
	}
}

// TestGzipSequential: a sequential reader in FUSE-sized requests gets the
// plain stream, and every segment it passes is decoded whole (read-ahead),
// so each is checked against its sum.
func TestGzipSequential(t *testing.T) {
	r, want, _, _ := openGzip(t, `pigz -p 2 -c "$IN" > "$OUT"`)
	got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("sequential read: %v, %d bytes", err, len(got))
	}
	r2, _, _, _ := openGzip(t, `pigz -p 2 -c "$IN" > "$OUT"`)
	buf := make([]byte, 128<<10)
	for o := int64(0); o < r2.Size(); o += int64(len(buf)) {
		n, err := r2.ReadAt(buf, o)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], want[o:o+int64(n)]) {
			t.Fatalf("bytes differ at %d", o)
		}
		seg := segOf(r2, o)
		if segEnd := r2.cps[seg].Out; o >= segEnd+int64(len(buf)) || seg == 0 {
			continue
		}
		// The segment before is complete.
		if n, live := segState(r2, seg-1); n >= 0 && (n != r2.cps[seg].Out-r2.cps[seg-1].Out || live) {
			t.Fatalf("segment %d decoded to %d, live %v", seg-1, n, live)
		}
	}
}

// TestGzipRandomReads: many random reads on fresh readers equal the plain
// stream; decoders kept stay bounded.
func TestGzipRandomReads(t *testing.T) {
	r, want, _, _ := openGzip(t, `gzip -6 -c "$IN" > "$OUT"`)
	rng := rand.New(rand.NewSource(7))
	buf := make([]byte, 4096)
	for i := 0; i < 400; i++ {
		o := rng.Int63n(int64(len(want)) - 4096)
		if i%5 == 0 {
			o &^= 4095
		}
		if _, err := r.ReadAt(buf, o); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, want[o:o+4096]) {
			t.Fatalf("read %d at %d differs", i, o)
		}
	}
	live := 0
	r.mu.Lock()
	for _, d := range r.segs {
		d.mu.Lock()
		if d.rd != nil {
			live++
		}
		d.mu.Unlock()
	}
	r.mu.Unlock()
	if live > maxLiveDec {
		t.Fatalf("%d decoders kept", live)
	}
}

// TestGzipEarlyStopDamage: a compressed byte going bad after indexing:
// reading the whole segment fails, and of the 4 KiB reads across it (each
// on a fresh reader, so each stops early) those that decode past the
// damage fail while those before it give the right bytes: nothing wrong is
// handed out.
func TestGzipEarlyStopDamage(t *testing.T) {
	r, want, _, out := openGzip(t, `gzip -1 -c "$IN" > "$OUT"`)
	seg := len(r.cps) / 2
	start, end := r.cps[seg].Out, r.cps[seg+1].Out
	r.Close()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte of a literal run near the segment's compressed end: the
	// stream may still decode, to different bytes.
	at := (r.cps[seg+1].In/8 + r.cps[seg].In/8) / 2
	b[at] ^= 0x01
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read with the index made before the damage, as a mount that was
	// open when the bytes went bad.
	ps, err := openPieces([]string{out})
	if err != nil {
		t.Fatal(err)
	}
	rr := &Reader{src: ps, segCap: segCacheCap, cps: r.cps, info: r.info, dec: gzipSegments{}}
	rr.idx, err = os.Open(r.info.IndexPath)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	full := make([]byte, end-start)
	if _, err := rr.ReadAt(full, start); err == nil {
		t.Fatal("a damaged segment read whole without an error")
	}
	failed := 0
	buf := make([]byte, 4096)
	for o := start; o+4096 <= end; o += 4096 {
		rr.mu.Lock()
		rr.segs, rr.segBytes = nil, 0
		rr.mu.Unlock()
		if _, err := rr.ReadAt(buf, o); err != nil {
			failed++
			continue
		}
		if !bytes.Equal(buf, want[o:o+4096]) {
			t.Fatalf("wrong bytes at %d handed out", o)
		}
	}
	if failed == 0 {
		t.Fatal("no 4 KiB read of the damaged segment failed")
	}
}

// TestIndexVersion: an index of another version is rebuilt, never read.
func TestIndexVersion(t *testing.T) {
	r, want, opt, out := openGzip(t, `gzip -c "$IN" > "$OUT"`)
	idx := r.Info().IndexPath
	r.Close()
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	tr := b[len(b)-trailerSize:]
	binary.LittleEndian.PutUint32(tr[8:], idxVersion-1)
	binary.LittleEndian.PutUint32(tr[92:], crc32.Checksum(tr[:92], castagnoli))
	if err := os.WriteFile(idx, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(context.Background(), []string{out}, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if r2.Info().Reused || r2.Info().Rebuilt != "index made by another version of cbimg" {
		t.Fatalf("old index not rebuilt: %+v", r2.Info())
	}
	checkReads(t, r2, want)
}

// TestGzipTrimmedHistories: a checkpoint stores only the history its
// segment's matches copy from: none where the data did not compress; reads
// from such checkpoints still equal the plain stream.
func TestGzipTrimmedHistories(t *testing.T) {
	testvol.Need(t, "partclone.fat16", "gzip", "openssl")
	in, plain := partcloneStream(t)
	dir := t.TempDir()
	mixed := filepath.Join(dir, "mixed")
	compress(t, in, mixed, `{ head -c 4000000 "$IN"; head -c 3000000 < <(openssl enc -aes-128-ctr -nosalt -pass pass:x -in /dev/zero 2>/dev/null); tail -c +4000001 "$IN"; } > "$OUT"`)
	want, err := os.ReadFile(mixed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want[:4000000], plain[:4000000]) {
		t.Fatal("mixed stream does not start with the partclone stream")
	}
	out := filepath.Join(dir, "img.gz")
	compress(t, mixed, out, `gzip -6 -c "$IN" > "$OUT"`)
	r, err := Open(context.Background(), []string{out}, Options{CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	empty, full := 0, 0
	for _, c := range r.cps[1:] {
		if c.Out > 4000000+maxHist && c.Out+gzipSpacing < 7000000 && c.WinRaw == 0 {
			empty++
		}
		if c.WinRaw > 0 {
			full++
		}
	}
	if empty == 0 || full == 0 {
		t.Fatalf("histories: %d empty in the random stretch, %d not empty", empty, full)
	}
	checkReads(t, r, want)
}
