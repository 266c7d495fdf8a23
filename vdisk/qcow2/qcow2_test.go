package qcow2

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

func openAny(p string, depth int) (vdio.Disk, error) { return Open(p, openAny, depth) }

func seed(t *testing.T) []byte {
	b := seeds.Make(t, "a.qcow2", []string{"qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1", "{}", "4M"},
		[]string{"qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", "-c", "write -c -P 0x22 128k 64k", "{}"})
	if b == nil {
		t.Fatal("qemu-img is needed (apt-get install qemu-utils)")
	}
	return b
}

// TestHostile: damaged tables and chains give ErrFormat or ErrMissing, at
// open or at the read that meets them.
func TestHostile(t *testing.T) {
	good := seed(t)
	h := parseHeader(good)
	l2 := binary.BigEndian.Uint64(good[h.l1Offset:]) & l1OffsetMask
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	read := func(b []byte) error {
		d, err := Open(seeds.File(t, "x.qcow2", b), openAny, 0)
		if err != nil {
			return err
		}
		defer d.Close()
		_, err = d.ReadAt(make([]byte, 256<<10), 0)
		return err
	}
	if err := read(good); err != nil {
		t.Fatalf("good image: %v", err)
	}
	cases := map[string][]byte{
		"L1 past the end":  edit(func(b []byte) { binary.BigEndian.PutUint64(b[h.l1Offset:], 1<<40) }),
		"L1 at the header": edit(func(b []byte) { binary.BigEndian.PutUint64(b[h.l1Offset:], 0x200|1<<63) }),
		"data past the end": edit(func(b []byte) {
			binary.BigEndian.PutUint64(b[l2:], 1<<40|1<<63)
		}),
		"compressed cluster that does not inflate": edit(func(b []byte) {
			e := binary.BigEndian.Uint64(b[l2+16:])
			x := 62 - (h.clusterBits - 8)
			off := e & (1<<x - 1)
			for i := range 64 {
				b[int(off)+i] = 0xff
			}
		}),
		"L1 too short":    edit(func(b []byte) { binary.BigEndian.PutUint32(b[36:], 0) }),
		"unknown version": edit(func(b []byte) { binary.BigEndian.PutUint32(b[4:], 4) }),
		"marked corrupt":  edit(func(b []byte) { b[79] |= featCorrupt }),
	}
	for name, b := range cases {
		if err := read(b); !errors.Is(err, vdio.ErrFormat) && !errors.Is(err, vdio.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrFormat or ErrUnsupported", name, err)
		}
	}

	// A backing file that names itself, and one that is missing.
	dir := t.TempDir()
	self := filepath.Join(dir, "self.qcow2")
	b := edit(func(b []byte) {
		const at = 4096
		copy(b[at:], "self.qcow2")
		binary.BigEndian.PutUint64(b[8:], at)
		binary.BigEndian.PutUint32(b[16:], uint32(len("self.qcow2")))
	})
	os.WriteFile(self, b, 0o600)
	if _, err := openAny(self, 0); !errors.Is(err, vdio.ErrFormat) {
		t.Errorf("self backing: %v, want ErrFormat", err)
	}
	os.Rename(self, filepath.Join(dir, "moved.qcow2"))
	if _, err := openAny(filepath.Join(dir, "moved.qcow2"), 0); !errors.Is(err, vdio.ErrMissing) {
		t.Errorf("missing backing: %v, want ErrMissing", err)
	}
}
