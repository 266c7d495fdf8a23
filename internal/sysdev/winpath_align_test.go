package sysdev

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// strictDev is a file that, like a Windows volume handle, refuses requests
// that are not whole sectors at sector-aligned offsets, and ends at size.
type strictDev struct {
	f      *os.File
	sector int64
	size   int64
	calls  int
}

func (d *strictDev) check(p []byte, off int64) error {
	d.calls++
	if off%d.sector != 0 || int64(len(p))%d.sector != 0 {
		return fmt.Errorf("unaligned request: %d bytes at %d (sector %d)", len(p), off, d.sector)
	}
	if off+int64(len(p)) > d.size {
		return fmt.Errorf("request past the device end: %d bytes at %d", len(p), off)
	}
	return nil
}

func (d *strictDev) ReadAt(p []byte, off int64) (int, error) {
	if err := d.check(p, off); err != nil {
		return 0, err
	}
	return d.f.ReadAt(p, off)
}

func (d *strictDev) WriteAt(p []byte, off int64) (int, error) {
	if err := d.check(p, off); err != nil {
		return 0, err
	}
	return d.f.WriteAt(p, off)
}

func newStrictDev(t *testing.T, size, sector int64, rng *rand.Rand) (*strictDev, []byte) {
	t.Helper()
	data := make([]byte, size)
	rng.Read(data)
	path := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &strictDev{f: f, sector: sector, size: size}, data
}

func TestSectorIORandom(t *testing.T) {
	cases := []struct {
		devSector, ioSector int64 // the device's real sector, the one SectorIO assumes
		devSize, base, size int64
	}{
		{512, 512, 1 << 20, 0, 1 << 20},
		{512, 512, 1 << 20, 64 << 10, 512 << 10},
		{4096, 4096, 1 << 20, 8192, 256 << 10},
		// Sector unknown: 4096 is assumed on a 512-byte-sector device whose
		// window is not a multiple of 4096; requests are cut at its end.
		{512, 4096, 1<<20 + 1536, 1024, 1<<20 + 512},
		// bounceMax-sized unaligned requests are split.
		{512, 512, 4 << 20, 512, 4<<20 - 512},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(i) + 1))
			dev, model := newStrictDev(t, c.devSize, c.devSector, rng)
			s := &SectorIO{Dev: dev, Base: c.base, Size: c.size, Sector: c.ioSector}
			win := model[c.base : c.base+c.size]
			for op := 0; op < 400; op++ {
				off := rng.Int63n(c.size)
				var n int64
				switch rng.Intn(4) {
				case 0:
					n = rng.Int63n(16) // tiny
				case 1:
					n = rng.Int63n(3 * c.ioSector)
				case 2:
					n = rng.Int63n(c.size - off + 1)
				default:
					off -= off % c.ioSector
					n = c.ioSector * (1 + rng.Int63n(4))
				}
				n = min(n, c.size-off)
				if rng.Intn(2) == 0 {
					p := make([]byte, n)
					rng.Read(p)
					k, err := s.WriteAt(p, off)
					if err != nil || int64(k) != n {
						t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", n, off, k, err)
					}
					copy(win[off:], p)
				} else {
					p := make([]byte, n)
					k, err := s.ReadAt(p, off)
					if err != nil || int64(k) != n {
						t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, k, err)
					}
					if !bytes.Equal(p, win[off:off+n]) {
						t.Fatalf("ReadAt(%d bytes, %d): wrong data", n, off)
					}
				}
			}
			// The whole device, outside the window too, holds what the model says.
			got := make([]byte, c.devSize)
			if _, err := dev.f.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, model) {
				t.Fatal("device contents differ from the model")
			}
		})
	}
}

func TestSectorIOEnds(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	dev, model := newStrictDev(t, 64<<10, 512, rng)
	s := &SectorIO{Dev: dev, Base: 4096, Size: 32 << 10, Sector: 512}

	// A read that runs past the end returns what there is and io.EOF.
	p := make([]byte, 1000)
	n, err := s.ReadAt(p, s.Size-300)
	if n != 300 || err != io.EOF || !bytes.Equal(p[:300], model[4096+s.Size-300:4096+s.Size]) {
		t.Errorf("ReadAt at the end = %d, %v", n, err)
	}
	if n, err := s.ReadAt(p, s.Size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v", n, err)
	}
	if _, err := s.ReadAt(p, -1); err == nil {
		t.Error("ReadAt at -1 succeeded")
	}

	// A write past the end writes nothing.
	before := dev.calls
	if n, err := s.WriteAt(make([]byte, 1000), s.Size-300); n != 0 || !errors.Is(err, ErrPastEnd) {
		t.Errorf("WriteAt past the end = %d, %v; want ErrPastEnd", n, err)
	}
	if dev.calls != before {
		t.Errorf("a refused write reached the device (%d calls)", dev.calls-before)
	}

	// An aligned request is passed through as one call.
	before = dev.calls
	if _, err := s.WriteAt(make([]byte, 8192), 1024); err != nil || dev.calls != before+1 {
		t.Errorf("aligned write: %v, %d device calls", err, dev.calls-before)
	}
	// One unaligned byte costs one read and one write of its sector.
	before = dev.calls
	if _, err := s.WriteAt([]byte{1}, 777); err != nil || dev.calls != before+2 {
		t.Errorf("1-byte write: %v, %d device calls", err, dev.calls-before)
	}

	// A failing device read stops a partial write before it writes.
	dev.f.Close()
	if _, err := s.WriteAt([]byte{1}, 5); err == nil {
		t.Error("write on a closed device succeeded")
	}
}
