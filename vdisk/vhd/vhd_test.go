package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

// openAny opens parents as VHDs, as vdisk.Open does for VHD parents.
func openAny(p string, depth int) (vdio.Disk, error) { return Open(p, openAny, depth) }

// qemu-img writes dynamic VHDs but not differencing ones, so the child is
// built here by the specification over a parent qemu-img made.
func mkFooter(size uint64, typ uint32, dataOff uint64, uid [16]byte) []byte {
	be := binary.BigEndian
	b := make([]byte, footerLen)
	copy(b, footerMagic)
	be.PutUint32(b[8:], 2)
	be.PutUint32(b[12:], 0x10000)
	be.PutUint64(b[16:], dataOff)
	copy(b[28:], "test")
	be.PutUint64(b[40:], size)
	be.PutUint64(b[48:], size)
	be.PutUint32(b[60:], typ)
	copy(b[68:], uid[:])
	be.PutUint32(b[64:], checksum(b, 64))
	return b
}

// mkChild returns a differencing VHD over a 4 MiB parent named parentName
// (relative locator) with id parentID: sectors 0-7 and 100-103 of block
// 0 hold 0xCC, everything else comes from the parent.
func mkChild(parentName string, parentID, uid [16]byte) []byte {
	be := binary.BigEndian
	const size, bs = 4 << 20, 2 << 20
	var out bytes.Buffer
	out.Write(mkFooter(size, typeDiff, 512, uid))
	h := make([]byte, dynLen)
	copy(h, dynMagic)
	be.PutUint64(h[8:], noOffset)
	be.PutUint64(h[16:], 1536)
	be.PutUint32(h[24:], 0x10000)
	be.PutUint32(h[28:], 2)
	be.PutUint32(h[32:], bs)
	copy(h[40:], parentID[:])
	name := utf16.Encode([]rune(parentName))
	for i, c := range name {
		be.PutUint16(h[64+2*i:], c)
	}
	loc := make([]byte, 512)
	for i, c := range name {
		binary.LittleEndian.PutUint16(loc[2*i:], c)
	}
	copy(h[576:], "W2ru")
	be.PutUint32(h[576+4:], 512)
	be.PutUint32(h[576+8:], uint32(2*len(name)))
	be.PutUint64(h[576+16:], 2048)
	be.PutUint32(h[36:], checksum(h, 36))
	out.Write(h)
	bat := make([]byte, 512)
	be.PutUint32(bat, 2560/512)
	be.PutUint32(bat[4:], unallocated)
	out.Write(bat) // 1536
	out.Write(loc) // 2048
	bm := make([]byte, 512)
	bm[0] = 0xff     // sectors 0-7
	bm[100/8] = 0x0f // sectors 100-103
	out.Write(bm)    // 2560
	out.Write(bytes.Repeat([]byte{0xcc}, bs))
	out.Write(mkFooter(size, typeDiff, 512, uid))
	return out.Bytes()
}

func readAll(t *testing.T, d vdio.Disk) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	if n, err := d.ReadAt(b, 0); n != len(b) {
		t.Fatalf("read %d of %d: %v", n, len(b), err)
	}
	return b
}

func TestDifferencing(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent.vhd")
	pb := seeds.Make(t, "p.vhd", []string{"qemu-img", "create", "-f", "vpc", "-o", "subformat=dynamic,force_size=on", "{}", "4M"},
		[]string{"qemu-io", "-f", "vpc", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 3M 1M", "{}"})
	if pb == nil {
		t.Fatal("qemu-img is needed (apt-get install qemu-utils)")
	}
	os.WriteFile(parent, pb, 0o600)
	var pid [16]byte
	copy(pid[:], pb[len(pb)-footerLen+68:])
	child := filepath.Join(dir, "child.vhd")
	os.WriteFile(child, mkChild("parent.vhd", pid, [16]byte{1}), 0o600)

	p, err := openAny(parent, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, p)
	p.Close()
	for _, s := range []int{0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 103} {
		copy(want[s*512:(s+1)*512], bytes.Repeat([]byte{0xcc}, 512))
	}
	d, err := openAny(child, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.(*Disk).Format() != "VHD (differencing)" || !bytes.Equal(readAll(t, d), want) {
		t.Fatal("the differencing disk does not read as its parent with its own sectors over it")
	}
	d.Close()

	// A parent that is another disk: refused, naming the identity.
	other := filepath.Join(dir, "other.vhd")
	os.WriteFile(other, mkChild("parent.vhd", [16]byte{9}, [16]byte{2}), 0o600)
	if _, err := openAny(other, 0); !errors.Is(err, vdio.ErrFormat) {
		t.Errorf("wrong parent: %v, want ErrFormat", err)
	}
	// A disk that is its own parent: the chain bound stops it.
	self := filepath.Join(dir, "self.vhd")
	os.WriteFile(self, mkChild("self.vhd", [16]byte{3}, [16]byte{3}), 0o600)
	if _, err := openAny(self, 0); !errors.Is(err, vdio.ErrFormat) {
		t.Errorf("self parent: %v, want ErrFormat", err)
	}
	// A missing parent.
	os.Remove(parent)
	if _, err := openAny(child, 0); !errors.Is(err, vdio.ErrMissing) {
		t.Errorf("missing parent: %v, want ErrMissing", err)
	}
}

// TestBATPastEnd: a BAT entry pointing past the file is refused at open.
func TestBATPastEnd(t *testing.T) {
	b := seeds.Make(t, "a.vhd", []string{"qemu-img", "create", "-f", "vpc", "-o", "subformat=dynamic", "{}", "4M"},
		[]string{"qemu-io", "-f", "vpc", "-c", "write -P 0x11 0 4k", "{}"})
	if b == nil {
		t.Fatal("qemu-img is needed (apt-get install qemu-utils)")
	}
	h, _ := parseDynHeader(b[512:])
	binary.BigEndian.PutUint32(b[h.tableOffset:], 0x00ffffff)
	_, err := Open(seeds.File(t, "bad.vhd", b), openAny, 0)
	if !errors.Is(err, vdio.ErrFormat) {
		t.Fatalf("BAT entry past the end: %v, want ErrFormat", err)
	}
	t.Log(err)
}
