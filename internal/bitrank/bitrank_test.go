package bitrank

import (
	"math/rand"
	"testing"
)

// TestAgainstCounting: Rank, Select, Run and Count agree with counting bit
// by bit, on random bitmaps of many lengths and densities.
func TestAgainstCounting(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []uint64{1, 7, 63, 64, 65, 511, 512, 513, 4096, 10007} {
		for _, density := range []float64{0, 0.01, 0.5, 0.99, 1} {
			bm := make([]byte, (n+7)/8)
			for i := uint64(0); i < n; i++ {
				if rng.Float64() < density {
					bm[i/8] |= 1 << (i % 8)
				}
			}
			ix := New(bm, n)
			var rank uint64
			for i := uint64(0); i < n; i++ {
				if ix.Rank(i) != rank {
					t.Fatalf("n %d: Rank(%d) = %d, want %d", n, i, ix.Rank(i), rank)
				}
				if ix.Bit(i) {
					if s, ok := ix.Select(rank); !ok || s != i {
						t.Fatalf("n %d: Select(%d) = %d %v, want %d", n, rank, s, ok, i)
					}
					rank++
				}
				run := uint64(0)
				for j := i; j < n && ix.Bit(j) == ix.Bit(i) && run < 200; j++ {
					run++
				}
				if got := ix.Run(i, 200); got != run {
					t.Fatalf("n %d: Run(%d, 200) = %d, want %d", n, i, got, run)
				}
			}
			if ix.Count() != rank || ix.Rank(n) != rank {
				t.Fatalf("n %d: Count %d, Rank(n) %d, want %d", n, ix.Count(), ix.Rank(n), rank)
			}
			if _, ok := ix.Select(rank); ok {
				t.Fatalf("n %d: Select past the last set bit", n)
			}
		}
	}
}
