//go:build linux

package seekz

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// stream is a real partclone image of a FAT16 volume built by mkfs.fat and
// mtools, made once per test process.
var stream struct {
	once sync.Once
	path string
	data []byte
}

func partcloneStream(t *testing.T) (string, []byte) {
	t.Helper()
	stream.once.Do(func() {
		vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 16, Content: "full"})
		dir, err := os.MkdirTemp("", "seekz-stream")
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "fat16.ptcl")
		testvol.Run(t, "partclone.fat16", "-q", "-c", "-L", "/dev/null", "-s", vol, "-O", out)
		stream.path = out
		stream.data, err = os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
	})
	if stream.path == "" {
		t.Fatal("no partclone stream")
	}
	return stream.path, stream.data
}

// compress runs a shell pipeline with $IN and $OUT set.
func compress(t *testing.T, in, out, pipeline string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -eo pipefail; "+pipeline)
	cmd.Env = append(os.Environ(), "IN="+in, "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", pipeline, err, b)
	}
}

// checkReads compares random and boundary reads with the plain bytes.
func checkReads(t *testing.T, r *Reader, want []byte) {
	t.Helper()
	if r.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", r.Size(), len(want))
	}
	rng := rand.New(rand.NewSource(1))
	offs := []int64{0, int64(len(want)) - 1, int64(len(want)) - 4096}
	for _, c := range r.cps {
		offs = append(offs, c.Out, c.Out-1, c.Out-100)
	}
	for i := 0; i < 150; i++ {
		offs = append(offs, rng.Int63n(int64(len(want))))
	}
	buf := make([]byte, 70000)
	for i, o := range offs {
		if o < 0 {
			continue
		}
		n := 1 + rng.Intn(len(buf))
		if i%3 == 0 {
			n = 4096
		}
		end := min(o+int64(n), int64(len(want)))
		got := buf[:end-o]
		if _, err := r.ReadAt(got, o); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", len(got), o, err)
		}
		if !bytes.Equal(got, want[o:end]) {
			t.Fatalf("ReadAt(%d, %d): bytes differ", len(got), o)
		}
	}
	// Reading past the end gives what is there and io.EOF.
	tail := make([]byte, 10)
	if n, err := r.ReadAt(tail, int64(len(want))-3); n != 3 || err == nil {
		t.Fatalf("read over the end: %d, %v", n, err)
	}
}

func TestCodecs(t *testing.T) {
	testvol.Need(t, "partclone.fat16", "gzip", "pigz", "zstd", "pzstd", "xz", "bzip2", "lz4", "split")
	in, want := partcloneStream(t)
	cases := []struct {
		name, pipeline string
		codec          Codec
		strategy       Strategy
		split          bool
	}{
		{"gzip", `gzip -6 -c "$IN" > "$OUT"`, Gzip, Checkpoints, true},
		{"gzip-1", `gzip -1 -c "$IN" > "$OUT"`, Gzip, Checkpoints, false},
		{"pigz", `pigz -p 2 -b 128 -c "$IN" > "$OUT"`, Gzip, Checkpoints, true},
		{"gzip-members", `head -c 3000000 "$IN" | gzip -c > "$OUT"; tail -c +3000001 "$IN" | gzip -9 -c >> "$OUT"`, Gzip, Checkpoints, false},
		{"zstd", `zstd -q -3 -c "$IN" > "$OUT"`, Zstd, CacheFile, true},
		{"zstd-T0", `zstd -q -T0 -c < "$IN" > "$OUT"`, Zstd, CacheFile, false},
		{"pzstd", `pzstd -q -p 2 -c "$IN" > "$OUT"`, Zstd, "", false},
		{"zstd-frames", `split -b 1000000 --filter='zstd -q -c' "$IN" > "$OUT"`, Zstd, Checkpoints, true},
		{"xz", `xz -1 -c "$IN" > "$OUT"`, Xz, CacheFile, false},
		{"xz-T0", `xz -1 -T2 --block-size=1MiB -c "$IN" > "$OUT"`, Xz, Checkpoints, true},
		{"bzip2", `bzip2 -1 -c "$IN" > "$OUT"`, Bzip2, Checkpoints, true},
		{"bzip2-streams", `split -b 700000 --filter='bzip2 -2 -c' "$IN" > "$OUT"`, Bzip2, Checkpoints, false},
		{"lz4", `lz4 -q -B4 -c "$IN" > "$OUT"`, Lz4, Checkpoints, true},
		{"lz4-linked", `lz4 -q -BD -B4 -c "$IN" > "$OUT"`, Lz4, CacheFile, false},
		{"none", `cp "$IN" "$OUT"`, None, Direct, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "img")
			compress(t, in, out, c.pipeline)
			first := out
			if c.split {
				compress(t, out, out, `split -b 400000 "$IN" "$OUT." && rm "$IN"`)
				first = out + ".aa"
			}
			pieces, err := Pieces(first)
			if err != nil {
				t.Fatal(err)
			}
			if c.split && len(pieces) < 2 {
				t.Fatalf("pieces %v", pieces)
			}
			opt := Options{CacheDir: filepath.Join(dir, "cache"), Spacing: 256 << 10, SegmentLimit: 4 << 20}
			var calls int
			opt.Progress = func(done, total int64) { calls++ }
			r, err := Open(context.Background(), pieces, opt)
			if err != nil {
				t.Fatal(err)
			}
			info := r.Info()
			if info.Codec != c.codec || (c.strategy != "" && info.Strategy != c.strategy) || info.Reused {
				t.Fatalf("info %+v", info)
			}
			if info.Strategy == Checkpoints && info.Checkpoints < 2 {
				t.Fatalf("only %d checkpoints", info.Checkpoints)
			}
			if info.Strategy == CacheFile && (info.CacheBytes <= 0 || info.CacheBytes > int64(len(want))+1<<20) {
				t.Fatalf("cache bytes %d", info.CacheBytes)
			}
			if c.codec != None && calls == 0 {
				t.Fatal("no progress reported")
			}
			checkReads(t, r, want)
			r.Close()
			// A second open reuses the index.
			r, err = Open(context.Background(), pieces, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if c.codec != None && !r.Info().Reused {
				t.Fatalf("index not reused: %+v", r.Info())
			}
			checkReads(t, r, want)
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if stream.path != "" {
		os.RemoveAll(filepath.Dir(stream.path))
	}
	os.Exit(code)
}
