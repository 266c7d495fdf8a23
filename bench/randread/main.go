//go:build linux

// Command randread measures random 4 KiB read latency of a file: N preads
// at random 4 KiB-aligned offsets (seeded, so every file gets the same
// offsets), then the same offsets again. It prints four numbers in
// microseconds: first pass p50 and p99, second pass p50 and p99.
//
//	randread [-n N] [-used RAW] FILE
//
// With -used, only offsets whose 4 KiB in RAW (the restored volume) are not
// all zeros are taken: reads of allocated data only. RAW's page cache is
// dropped after choosing, so choosing does not warm it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 20000, "number of reads per pass")
	used := flag.String("used", "", "only offsets holding data in this file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: randread [-n N] [-used RAW] FILE")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	check(err)
	st, err := f.Stat()
	check(err)
	pages := st.Size() / 4096
	rng := rand.New(rand.NewSource(1))
	offs := make([]int64, 0, *n)
	buf := make([]byte, 4096)
	if *used != "" {
		raw, err := os.Open(*used)
		check(err)
		zero := make([]byte, 4096)
		for tries := 0; len(offs) < *n; tries++ {
			if tries > 1000**n {
				check(fmt.Errorf("%s: too few allocated pages", *used))
			}
			off := rng.Int63n(pages) * 4096
			_, err := raw.ReadAt(buf, off)
			check(err)
			if !bytes.Equal(buf, zero) {
				offs = append(offs, off)
			}
		}
		check(unix.Fadvise(int(raw.Fd()), 0, 0, unix.FADV_DONTNEED))
		raw.Close()
	} else {
		for range *n {
			offs = append(offs, rng.Int63n(pages)*4096)
		}
	}
	pass := func() (p50, p99 float64) {
		lat := make([]time.Duration, len(offs))
		for i, off := range offs {
			t := time.Now()
			k, err := f.ReadAt(buf, off)
			lat[i] = time.Since(t)
			if k != len(buf) {
				check(fmt.Errorf("read at %d: %d bytes, %v", off, k, err))
			}
		}
		slices.Sort(lat)
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
		return us(lat[len(lat)/2]), us(lat[len(lat)*99/100])
	}
	c50, c99 := pass()
	w50, w99 := pass()
	s50, s99 := pass()
	fmt.Printf("%.1f %.1f %.1f %.1f %.1f %.1f\n", c50, c99, w50, w99, s50, s99)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "randread:", err)
		os.Exit(1)
	}
}
