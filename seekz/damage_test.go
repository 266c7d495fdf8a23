//go:build linux

package seekz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
)

// TestStaleIndex: an image changed after its index was made is detected and
// its index rebuilt; reads then give the new bytes.
func TestStaleIndex(t *testing.T) {
	testvol.Need(t, "partclone.fat16", "gzip")
	in, want := partcloneStream(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "img.gz")
	compress(t, in, out, `gzip -c "$IN" > "$OUT"`)
	opt := Options{CacheDir: filepath.Join(dir, "cache"), Spacing: 256 << 10}
	r, err := Open(context.Background(), []string{out}, opt)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	// The same name now holds another stream: the first half only.
	half := filepath.Join(dir, "half")
	if err := os.WriteFile(half, want[:len(want)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	compress(t, half, out, `gzip -c "$IN" > "$OUT"`)
	r, err = Open(context.Background(), []string{out}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Info().Reused || r.Info().Rebuilt == "" {
		t.Fatalf("stale index not detected: %+v", r.Info())
	}
	checkReads(t, r, want[:len(want)/2])
	r.Close()
	// Only the modification time changes: still rebuilt.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(out, later, later); err != nil {
		t.Fatal(err)
	}
	r, err = Open(context.Background(), []string{out}, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Info().Reused || r.Info().Rebuilt == "" {
		t.Fatalf("changed mtime not detected: %+v", r.Info())
	}
	// A damaged index is detected and rebuilt too.
	r.Close()
	idx := r.Info().IndexPath
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-trailerSize-5] ^= 0x40
	if err := os.WriteFile(idx, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(context.Background(), []string{out}, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if r2.Info().Reused || r2.Info().Rebuilt != "index damaged" {
		t.Fatalf("damaged index not detected: %+v", r2.Info())
	}
	checkReads(t, r2, want[:len(want)/2])
}

// TestDamagedStreams: cut and corrupted streams and bad pieces are clear
// errors at Open, naming an offset.
func TestDamagedStreams(t *testing.T) {
	testvol.Need(t, "partclone.fat16", "gzip", "zstd", "xz", "bzip2", "lz4", "split")
	in, _ := partcloneStream(t)
	dir := t.TempDir()
	tools := map[string]string{
		"gz":  `gzip -c "$IN" > "$OUT"`,
		"zst": `zstd -q -c "$IN" > "$OUT"`,
		"xz":  `xz -0 -T2 --block-size=1MiB -c "$IN" > "$OUT"`,
		"bz2": `bzip2 -1 -c "$IN" > "$OUT"`,
		"lz4": `lz4 -q -B4 -BX -c "$IN" > "$OUT"`,
	}
	for ext, pipeline := range tools {
		src := filepath.Join(dir, "src."+ext)
		compress(t, in, src, pipeline)
		good, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []struct {
			name string
			mod  func([]byte) []byte
			want []error
		}{
			{"cut", func(b []byte) []byte { return b[:len(b)*2/3] }, []error{ErrTruncated, ErrCorrupt}},
			{"flipped", func(b []byte) []byte {
				c := append([]byte(nil), b...)
				for i := len(c) / 2; i < len(c)/2+64; i++ {
					c[i] ^= 0x55
				}
				return c
			}, []error{ErrCorrupt, ErrChecksum, ErrTruncated}},
		} {
			t.Run(ext+"-"+d.name, func(t *testing.T) {
				p := filepath.Join(dir, d.name+"."+ext)
				if err := os.WriteFile(p, d.mod(good), 0o600); err != nil {
					t.Fatal(err)
				}
				r, err := Open(context.Background(), []string{p}, Options{CacheDir: filepath.Join(dir, "cache"), SegmentLimit: 4 << 20})
				if err == nil {
					r.Close()
					t.Fatal("damaged stream opened")
				}
				ok := false
				for _, w := range d.want {
					ok = ok || errors.Is(err, w)
				}
				var oe *OffsetError
				if !ok || !errors.As(err, &oe) {
					t.Fatalf("error %v (want one of %v with an offset)", err, d.want)
				}
				t.Logf("%v", err)
				// Nothing is left behind in the cache directory.
				left, _ := filepath.Glob(filepath.Join(dir, "cache", "*.partial"))
				if len(left) > 0 {
					t.Fatalf("left %v", left)
				}
			})
		}
	}
	// Pieces: a missing one, a cut one, two swapped.
	split := filepath.Join(dir, "split", "img.gz")
	os.MkdirAll(filepath.Dir(split), 0o700)
	compress(t, filepath.Join(dir, "src.gz"), split, `split -b 300000 "$IN" "$OUT."`)
	if _, err := Pieces(split + ".ac"); err != nil {
		t.Fatal(err)
	}
	opt := Options{CacheDir: filepath.Join(dir, "cache")}
	os.Rename(split+".ab", split+".xx")
	if _, err := Pieces(split + ".aa"); !errors.Is(err, ErrPieces) {
		t.Fatalf("missing piece: %v", err)
	}
	os.Rename(split+".xx", split+".ab")
	os.Rename(split+".ab", split+".tmp")
	os.Rename(split+".ac", split+".ab")
	os.Rename(split+".tmp", split+".ac")
	pieces, err := Pieces(split + ".aa")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), pieces, opt); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrChecksum) {
		t.Fatalf("swapped pieces: %v", err)
	}
	os.Rename(split+".ab", split+".tmp")
	os.Rename(split+".ac", split+".ab")
	os.Rename(split+".tmp", split+".ac")
	if err := os.Truncate(split+".ab", 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), pieces, opt); !errors.Is(err, ErrPieces) {
		t.Fatalf("cut piece: %v", err)
	}
}

// TestConcurrentReads: parallel readers (as under a FUSE mount) get the
// right bytes while segments are decoded, kept and evicted.
func TestConcurrentReads(t *testing.T) {
	testvol.Need(t, "partclone.fat16", "gzip")
	in, want := partcloneStream(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "img.gz")
	compress(t, in, out, `gzip -c "$IN" > "$OUT"`)
	r, err := Open(context.Background(), []string{out}, Options{CacheDir: dir, Spacing: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.segCap = 256 << 10 // a few segments: eviction under concurrent use
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			rng := rand.New(rand.NewSource(int64(g)))
			buf := make([]byte, 20000)
			for i := 0; i < 60; i++ {
				o := rng.Int63n(int64(len(want) - len(buf)))
				if _, err := r.ReadAt(buf, o); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, want[o:o+int64(len(buf))]) {
					errs <- fmt.Errorf("reader %d: bytes at %d differ", g, o)
					return
				}
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestCacheFileSparse: the cache file of a one-frame zstd stream takes disk
// space only for data that is not zeros, and Info says so.
func TestCacheFileSparse(t *testing.T) {
	testvol.Need(t, "zstd")
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	want := make([]byte, 12<<20)
	rand.New(rand.NewSource(3)).Read(want[4<<20 : 5<<20])
	if err := os.WriteFile(plain, want, 0o600); err != nil {
		t.Fatal(err)
	}
	compress(t, plain, plain+".zst", `zstd -q -T0 -c < "$IN" > "$OUT"`)
	r, err := Open(context.Background(), []string{plain + ".zst"}, Options{CacheDir: dir, SegmentLimit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	inf := r.Info()
	if inf.Strategy != CacheFile || inf.Size != int64(len(want)) || inf.CacheBytes < 1<<20 || inf.CacheBytes > 2<<20 {
		t.Fatalf("info %+v", inf)
	}
	checkReads(t, r, want)
}

// TestLongSegments: segments longer than what is decoded whole and kept
// (xz blocks of 10 MiB) are read through resumable decoders: sequential
// reads continue one, a read behind it starts another.
func TestLongSegments(t *testing.T) {
	testvol.Need(t, "xz")
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	want := make([]byte, 13<<20)
	rng := rand.New(rand.NewSource(4))
	for i := 0; i < len(want); i += 1 << 20 {
		rng.Read(want[i : i+64<<10])
	}
	if err := os.WriteFile(plain, want, 0o600); err != nil {
		t.Fatal(err)
	}
	compress(t, plain, plain+".xz", `xz -0 -T2 --block-size=10MiB -c "$IN" > "$OUT"`)
	r, err := Open(context.Background(), []string{plain + ".xz"}, Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if inf := r.Info(); inf.Strategy != Checkpoints || inf.Checkpoints != 2 || r.cps[1].Out-r.cps[0].Out <= segWhole {
		t.Fatalf("info %+v", inf)
	}
	buf := make([]byte, 100000)
	read := func(o int64) {
		n := min(int64(len(buf)), int64(len(want))-o)
		if _, err := r.ReadAt(buf[:n], o); err != nil || !bytes.Equal(buf[:n], want[o:o+n]) {
			t.Fatalf("read at %d: %v", o, err)
		}
	}
	for o := int64(0); o < int64(len(want)); o += int64(len(buf)) {
		read(o)
	}
	for i := 0; i < 8; i++ {
		read(rng.Int63n(int64(len(want))))
	}
}

// TestDamageWhileOpen: bytes that go bad after the index was made (a bad
// sector under a mount) fail the reads that need them with an error naming
// the offset; reads elsewhere still succeed.
func TestDamageWhileOpen(t *testing.T) {
	testvol.Need(t, "partclone.fat16", "gzip")
	in, want := partcloneStream(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "img.gz")
	compress(t, in, out, `gzip -c "$IN" > "$OUT"`)
	r, err := Open(context.Background(), []string{out}, Options{CacheDir: dir, Spacing: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := os.OpenFile(out, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	mid := r.cps[len(r.cps)/2]
	junk := bytes.Repeat([]byte{0xa5}, 2000)
	if _, err := f.WriteAt(junk, mid.In/8+100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	end := r.cps[len(r.cps)/2+1].Out
	buf := make([]byte, end-mid.Out)
	if _, err := r.ReadAt(buf, mid.Out); err == nil || !strings.Contains(err.Error(), "decompressed offset") {
		t.Fatalf("damaged segment read: %v", err)
	} else {
		t.Log(err)
	}
	// Twice: the failure is not remembered as data.
	if _, err := r.ReadAt(buf[:100], mid.Out+int64(len(buf))-100); err == nil {
		t.Fatal("damaged segment read a second time without error")
	}
	ok := make([]byte, 4096)
	if _, err := r.ReadAt(ok, 0); err != nil || !bytes.Equal(ok, want[:4096]) {
		t.Fatalf("undamaged read: %v", err)
	}
}
