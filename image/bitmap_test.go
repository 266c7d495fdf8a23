package image

import (
	"math/rand"
	"testing"
)

func TestNextRun(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for n := 0; n < 200; n++ {
		total := uint64(rng.Intn(300) + 1)
		bm := make([]byte, (total+7)/8)
		for c := uint64(0); c < total; c++ {
			if rng.Intn(3) == 0 || (c > 40 && c < 100) {
				bm[c/8] |= 1 << (c % 8)
			}
		}
		for _, set := range []bool{true, false} {
			seen := make([]bool, total)
			for c := uint64(0); ; {
				s, e, ok := nextRun(bm, total, c, set)
				if !ok {
					break
				}
				for x := s; x < e; x++ {
					seen[x] = true
				}
				c = e
			}
			for c := uint64(0); c < total; c++ {
				if bit := bm[c/8]&(1<<(c%8)) != 0; seen[c] != (bit == set) {
					t.Fatalf("total %d set=%v: cluster %d misreported", total, set, c)
				}
			}
		}
	}
}
