package image

import (
	"math/rand/v2"
	"testing"
)

func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {4096, 4096}, {4096, 17}, {3, 100000}, {70000, 4096}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := crc(append(append([]byte{}, a...), b...))
		if got := crcCombine(crc(a), crc(b), shiftOp(int64(len(b)))); got != want {
			t.Errorf("%d+%d bytes: combined %08x, want %08x", n[0], n[1], got, want)
		}
	}
	if blockShift != shiftOp(BlockSize) {
		t.Fatal("blockShift")
	}
}

// BenchmarkChunkSums compares the chunk checksums per 1 MiB chunk:
// go test -run '^$' -bench ChunkSums ./image
func BenchmarkChunkSums(b *testing.B) {
	p := make([]byte, 1<<20)
	for i := range p {
		p[i] = byte(i * 7)
	}
	for _, c := range []struct {
		name string
		f    frame
	}{{"blake3", frame{}}, {"xxh3", frame{xxh: true}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				c.f.logicalSum(p)
			}
		})
	}
	b.Run("crc32c", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			crc(p)
		}
	})
}
