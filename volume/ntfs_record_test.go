package volume

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeRunlist(t *testing.T) {
	// 16 clusters at 256; 5 at 256-16; 8 sparse; 2 at 240+0x1000.
	b := []byte{0x21, 0x10, 0x00, 0x01, 0x11, 0x05, 0xF0, 0x01, 0x08, 0x21, 0x02, 0x00, 0x10, 0x00}
	runs, err := decodeRunlist(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []ntfsRun{{0, 256, 16}, {16, 240, 5}, {21, -1, 8}, {29, 240 + 0x1000, 2}}
	if !reflect.DeepEqual(runs, want) {
		t.Errorf("runs %v, want %v", runs, want)
	}
	for name, bad := range map[string][]byte{
		"unterminated":    {0x11, 0x01, 0x05},
		"negative LCN":    {0x11, 0x01, 0xFF, 0x00},
		"9 length bytes":  {0x09, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
		"zero length":     {0x11, 0x00, 0x05, 0x00},
		"no length bytes": {0x10, 0x05, 0x00},
		"truncated pair":  {0x31, 0x01, 0x05},
	} {
		if _, err := decodeRunlist(bad, 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestApplyFixups(t *testing.T) {
	b := make([]byte, 1024)
	binary.LittleEndian.PutUint16(b[0x30:], 0x0007)
	binary.LittleEndian.PutUint16(b[0x32:], 0xAAAA)
	binary.LittleEndian.PutUint16(b[0x34:], 0xBBBB)
	binary.LittleEndian.PutUint16(b[510:], 0x0007)
	binary.LittleEndian.PutUint16(b[1022:], 0x0007)
	c := bytes.Clone(b)
	what := func() string { return "test record" }
	if err := applyFixups(c, 0x30, 3, what, 0); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint16(c[510:]) != 0xAAAA || binary.LittleEndian.Uint16(c[1022:]) != 0xBBBB {
		t.Error("fixups not restored")
	}
	c = bytes.Clone(b)
	c[1022] = 0
	if err := applyFixups(c, 0x30, 3, what, 100); err == nil || !strings.Contains(err.Error(), "stride 1") {
		t.Errorf("torn second stride: %v", err)
	}
	if err := applyFixups(bytes.Clone(b), 0x30, 2, what, 0); err == nil {
		t.Error("wrong count accepted")
	}
	if err := applyFixups(bytes.Clone(b), 0x1FF, 3, what, 0); err == nil {
		t.Error("odd offset accepted")
	}
}

func TestLZNT1(t *testing.T) {
	// "abc" as literals, then a back-reference 3 bytes back, 9 long: the
	// token is (3-1)<<12 | (9-3) while fewer than 16 bytes are out.
	chunk := []byte{0x08, 'a', 'b', 'c', 0x06, 0x20}
	src := binary.LittleEndian.AppendUint16(nil, 0xB000|uint16(len(chunk)-1))
	src = append(src, chunk...)
	// A stored chunk follows: 4096 raw bytes.
	raw := bytes.Repeat([]byte("xyz!"), 1024)
	src = binary.LittleEndian.AppendUint16(src, 0x3000|uint16(len(raw)-1))
	src = append(src, raw...)
	src = append(src, 0, 0)
	dst := make([]byte, 3*4096)
	n, err := lznt1Decompress(dst, src)
	if err != nil || n != 8192 {
		t.Fatalf("n %d err %v", n, err)
	}
	want := append([]byte("abcabcabcabc"), make([]byte, 4096-12)...)
	want = append(want, raw...)
	if !bytes.Equal(dst[:n], want) {
		t.Errorf("decoded %q...", dst[:20])
	}
	// A back-reference before the start of the chunk is an error.
	bad := []byte{0x01, 0x00, 0x10, 0x00}
	src = binary.LittleEndian.AppendUint16(nil, 0xB000|uint16(len(bad)-1))
	if _, err := lznt1Decompress(dst, append(src, bad...)); err == nil {
		t.Error("reference before chunk start accepted")
	}
}

// ntfsTestImage unpacks the small Windows 10 image into memory.
func ntfsTestImage(t testing.TB) []byte {
	f, err := os.Open(filepath.Join("..", "testdata", "realimages", "ntfs", "win10-test-ntfs.dd.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzNTFSRecord(f *testing.F) {
	img := ntfsTestImage(f)
	v, err := openNTFSVol(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []uint64{0, 3, 5, 6, 9, 10, 37, 38, 46} {
		off := v.recordOffset(n)
		f.Add(bytes.Clone(img[off : off+int64(v.recSize)]))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 1024 {
			return
		}
		r, err := parseRecord(b, 1, 0)
		if err != nil {
			return
		}
		for _, a := range r.attrs {
			if !a.resident && runsEnd(a.runs, a.startVCN) != a.lastVCN+1 {
				t.Fatalf("runs end %d, last VCN %d", runsEnd(a.runs, a.startVCN), a.lastVCN)
			}
		}
	})
}

func FuzzLZNT1(f *testing.F) {
	f.Add([]byte{0x05, 0xB0, 0x08, 'a', 'b', 'c', 0x06, 0x20})
	f.Add([]byte{0x03, 0x30, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := make([]byte, 16384)
		n, _ := lznt1Decompress(dst, src)
		if n < 0 || n > len(dst) {
			t.Fatalf("n %d", n)
		}
	})
}

// patchReader overlays patch at off on a base image.
type patchReader struct {
	base  []byte
	off   int64
	patch []byte
}

func (p *patchReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(p.base)) {
		return 0, io.EOF
	}
	n := copy(b, p.base[off:])
	// Overlay the intersection of [off, off+n) and the patch.
	lo, hi := max(off, p.off), min(off+int64(n), p.off+int64(len(p.patch)))
	if lo < hi {
		copy(b[lo-off:hi-off], p.patch[lo-p.off:hi-p.off])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// FuzzNTFSVolume damages the $MFT region of a real volume and runs every
// reader entry point: errors are fine, panics and hangs are not.
func FuzzNTFSVolume(f *testing.F) {
	img := ntfsTestImage(f)
	v, err := openNTFSVol(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	mftOff := v.recordOffset(0)
	f.Add(uint32(0), []byte("BAAD"))
	f.Add(uint32(5*1024+0x18), []byte{0xFF, 0xFF})
	f.Add(uint32(38*1024+0x100), []byte{0x41, 0x42, 0x43, 0x44})
	f.Add(uint32(6*1024+0x80), bytes.Repeat([]byte{0x7F}, 16))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		if len(patch) > 4096 {
			return
		}
		pr := &patchReader{base: img, off: mftOff + int64(off%(64*1024)), patch: patch}
		vol, err := Open(pr, int64(len(img)))
		if err != nil {
			return
		}
		vol.Bitmap()
		vol.Hibernated()
		n := 0
		vol.Walk(context.Background(), func(File) error { n++; return nil })
		nfs := vol.NTFS()
		ents, err := nfs.ReadDir("/")
		if err != nil {
			return
		}
		buf := make([]byte, 8192)
		for _, e := range ents {
			if e.Dir {
				nfs.ReadDir(e.Name)
				continue
			}
			if fl, err := nfs.Open(e.Name); err == nil {
				for o := int64(0); o < fl.Size() && o < 1<<20; o += int64(len(buf)) {
					if _, err := fl.ReadAt(buf, o); err != nil && err != io.EOF {
						break
					}
				}
			}
		}
	})
}
