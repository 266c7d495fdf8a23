//go:build linux

package partclone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
)

func openFile(t testing.TB, p string) *Reader {
	t.Helper()
	f, size := testvol.OpenFile(t, p)
	r, err := NewReader(f, size, nil)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(p), err)
	}
	return r
}

func openBytes(b []byte) (*Reader, error) { return NewReader(bytes.NewReader(b), int64(len(b)), nil) }

func readAll(t testing.TB, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadEqualsRestore: for volumes made by mkntfs/ntfs-3g, mkfs.fat/mtools
// and Windows, every partclone image (to a file, to standard output, without
// checksums, with 7 blocks per checksum, with chained checksums) reads
// byte for byte as partclone.restore writes it, verifies, and streams its
// used blocks in order.
func TestReadEqualsRestore(t *testing.T) {
	type variant struct {
		name   string
		stdout bool
		extra  []string
	}
	all := []variant{{"file", false, nil}, {"stdout", true, nil}, {"nocsum", false, []string{"-a0"}}, {"k7", false, []string{"-k", "7"}}, {"noreseed", false, []string{"-K"}}}
	cases := []struct {
		name, tool, vol string
		variants        []variant
	}{
		{"ntfs", "partclone.ntfs", testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), all[:2]},
		{"fat32", "partclone.fat32", testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}), all[:1]},
		{"fat16", "partclone.fat16", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}), all},
		{"fat12", "partclone.fat12", testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"}), all[:2]},
		{"win10-ntfs", "partclone.ntfs", testvol.Real(t, "ntfs/win10-test-ntfs.dd"), all[:1]},
		{"win10-dissect-ntfs", "partclone.ntfs", testvol.Real(t, "ntfs/win10-dissect-ntfs.bin"), all[:1]},
		{"winxp-ntfs", "partclone.ntfs", testvol.Real(t, "ntfs/winxp-ntfs-undel.dd"), all[:1]},
		{"lfn-fat12", "partclone.fat12", testvol.Real(t, "fat/mkfs-fat12-lfn.img"), all[:1]},
		{"lfn-fat16", "partclone.fat16", testvol.Real(t, "fat/mkfs-fat16-lfn.img"), all[:1]},
	}
	for _, c := range cases {
		for _, v := range c.variants {
			t.Run(c.name+"-"+v.name, func(t *testing.T) {
				img := testvol.Partclone(t, c.tool, c.vol, v.stdout, v.extra...)
				if v.stdout {
					if a, b := sum(t, img), sum(t, testvol.Partclone(t, c.tool, c.vol, false, v.extra...)); a != b {
						t.Errorf("partclone to stdout wrote other bytes than to a file")
					}
				}
				r := openFile(t, img)
				want, err := os.ReadFile(testvol.PartcloneRestore(t, img))
				if err != nil {
					t.Fatal(err)
				}
				got := readAll(t, r, r.Size())
				// The other tool's file ends with the last block it wrote;
				// the partition goes on (zeros) to the device size.
				if len(want) > len(got) || !bytes.Equal(got[:len(want)], want) || !zero(got[len(want):]) {
					t.Fatalf("ReadAt differs from the other tool's restore (%d and %d bytes)", len(got), len(want))
				}
				want = append(want, make([]byte, len(got)-len(want))...)
				// Small unaligned reads agree too.
				for _, off := range []int64{0, 511, 4097, r.Size()/3 + 13, r.Size() - 700} {
					p := make([]byte, 700)
					n, err := r.ReadAt(p, off)
					if err != nil && err != io.EOF || !bytes.Equal(p[:n], want[off:off+int64(n)]) {
						t.Errorf("ReadAt(%d): %d %v", off, n, err)
					}
				}
				res, err := r.Verify(context.Background(), nil)
				if err != nil || len(res.Problems) > 0 {
					t.Fatalf("verify: %v %v", err, res.Problems)
				}
				if res.Blocks != int64(r.Header.UsedBlocks) {
					t.Errorf("verify read %d blocks of %d", res.Blocks, r.Header.UsedBlocks)
				}
				var used bytes.Buffer
				bs := int64(r.Header.BlockSize)
				for b := uint64(0); b < r.Header.TotalBlocks; b++ {
					if r.ix.Bit(b) {
						used.Write(want[int64(b)*bs : int64(b+1)*bs])
					}
				}
				stream, err := io.ReadAll(r.Used(context.Background()))
				if err != nil || !bytes.Equal(stream, used.Bytes()) {
					t.Errorf("Used: %d bytes, %v; want %d", len(stream), err, used.Len())
				}
				t.Logf("%s: %s %s, %d of %d blocks of %d, checked reads %v", filepath.Base(img), r.Header.FS, r.Header.Checksums(),
					r.Header.UsedBlocks, r.Header.TotalBlocks, bs, r.Checked())
			})
		}
	}
}

func sum(t testing.TB, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func fat16Image(t testing.TB, extra ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(testvol.Partclone(t, "partclone.fat16", testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"}), false, extra...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setHeader rewrites a 0002 descriptor field and its CRC.
func setHeader(b []byte, off int, v uint64, size int) []byte {
	b = append([]byte(nil), b...)
	switch size {
	case 8:
		binary.LittleEndian.PutUint64(b[off:], v)
	case 4:
		binary.LittleEndian.PutUint32(b[off:], uint32(v))
	}
	binary.LittleEndian.PutUint32(b[descV2Len-4:], crcUpdate(crcSeed, b[:descV2Len-4]))
	return b
}

// Offsets of 0002 fields in the descriptor.
const (
	offTotal = headV2Len + 16 + 8
	offUsed  = headV2Len + 16 + 8 + 8 + 8
)

// TestDamage: damaged and hostile images are refused or reported with
// what is wrong and where, in bounded time and memory.
func TestDamage(t *testing.T) {
	good := fat16Image(t)
	r, err := openBytes(good)
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, r, r.Size())

	t.Run("crc", func(t *testing.T) {
		bad := append([]byte(nil), good...)
		at := r.blockOffset(int64(r.Header.UsedBlocks)-2) + 100
		bad[at] ^= 0x55
		br, err := openBytes(bad)
		if err != nil {
			t.Fatal(err)
		}
		_, err = br.ReadAt(make([]byte, br.Size()), 0)
		var fe *image.FormatError
		if !errors.Is(err, image.ErrChecksum) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "blocks ") {
			t.Fatalf("ReadAt over a damaged group: %v", err)
		}
		res, err := br.Verify(context.Background(), nil)
		if err != nil || len(res.Problems) != 1 || !errors.Is(res.Problems[0], image.ErrChecksum) {
			t.Fatalf("verify: %v %v", err, res)
		}
		t.Logf("verify: %v", res.Problems[0])
		// Blocks outside the damaged group still read.
		p := make([]byte, 4096)
		if _, err := br.ReadAt(p, 0); err != nil || !bytes.Equal(p, want[:4096]) {
			t.Errorf("an undamaged block: %v", err)
		}
		if _, err := io.Copy(io.Discard, br.Used(context.Background())); !errors.Is(err, image.ErrChecksum) {
			t.Errorf("Used over a damaged group: %v", err)
		}
	})
	t.Run("crc-chained", func(t *testing.T) {
		bad := fat16Image(t, "-K")
		cr, _ := openBytes(bad)
		bad[cr.blockOffset(3)+7] ^= 1
		cr, err := openBytes(bad)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cr.Verify(context.Background(), nil)
		if err != nil || len(res.Problems) != 1 {
			t.Fatalf("verify of a chained-CRC image: %v %v", err, res)
		}
	})
	refuse := []struct {
		name string
		b    []byte
		want error
		says string
	}{
		{"truncated-data", good[:len(good)-1000], image.ErrTruncated, "inside block"},
		{"truncated-bitmap", good[:descV2Len+100], image.ErrTruncated, "bitmap"},
		{"truncated-header", good[:60], image.ErrTruncated, "shorter than"},
		{"trailing", append(append([]byte(nil), good...), 0), image.ErrFormat, "after the last block"},
		{"2^40-blocks", setHeader(good, offTotal, 1<<40, 8), image.ErrFormat, "blocks"},
		{"2^32-blocks", setHeader(good, offTotal, 1<<32, 8), image.ErrFormat, "do not fit"},
		{"2^32-blocks-device", setHeader(setHeader(good, offTotal, 1<<32, 8), headV2Len+16, 1<<41, 8), image.ErrTruncated, "bitmap"},
		{"used-count", setHeader(good, offUsed, r.Header.UsedBlocks+1, 8), image.ErrFormat, "bitmap marks"},
		{"header-crc", func() []byte { b := append([]byte(nil), good...); b[40] ^= 1; return b }(), image.ErrChecksum, "header CRC"},
		{"bitmap-crc", func() []byte { b := append([]byte(nil), good...); b[descV2Len+3] ^= 0x10; return b }(), image.ErrChecksum, "bitmap CRC"},
		{"version", func() []byte { b := append([]byte(nil), good...); copy(b[30:], "0003"); return b }(), image.ErrVersion, "0003"},
		{"block-size", setHeader(good, offUsed+8, 100, 4), image.ErrFormat, "block size"},
	}
	for _, c := range refuse {
		t.Run(c.name, func(t *testing.T) {
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			_, err := openBytes(c.b)
			runtime.ReadMemStats(&m1)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
			}
			if a := m1.TotalAlloc - m0.TotalAlloc; a > 16<<20 {
				t.Errorf("refusing it allocated %d bytes", a)
			}
			t.Logf("%v", err)
		})
	}
}

// v1Image lays a 0002 image's blocks out as version 0001 does: the 4160-byte
// descriptor, a byte map and "BiTmAgIc", then every block followed by its
// chained 0001 CRC in csum bytes (8: the 64-bit build's flaw).
func v1Image(t testing.TB, r *Reader, data []byte, csum int) []byte {
	h := r.Header
	var b bytes.Buffer
	b.WriteString(magic)
	fs := make([]byte, 15)
	copy(fs, h.FS)
	b.Write(fs)
	b.WriteString("0001\x00\x00")
	binary.Write(&b, binary.LittleEndian, h.BlockSize)
	binary.Write(&b, binary.LittleEndian, h.DeviceSize)
	binary.Write(&b, binary.LittleEndian, h.TotalBlocks)
	binary.Write(&b, binary.LittleEndian, h.UsedBlocks)
	b.Write(make([]byte, optV1Len))
	for i := uint64(0); i < h.TotalBlocks; i++ {
		if r.ix.Bit(i) {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	}
	b.WriteString(bitMagic)
	crc := uint32(crcSeed)
	bs := int64(h.BlockSize)
	for i := uint64(0); i < h.TotalBlocks; i++ {
		if !r.ix.Bit(i) {
			continue
		}
		blk := data[int64(i)*bs : int64(i+1)*bs]
		b.Write(blk)
		crc = crcV1(crc, blk)
		s := make([]byte, csum)
		binary.LittleEndian.PutUint32(s, crc)
		b.Write(s)
	}
	return b.Bytes()
}

// TestVersion1: version 0001's layout (byte map, "BiTmAgIc", one chained
// CRC per block, also stored in 8 bytes by old 64-bit builds) reads as the
// same partition; partclone 0.3 cannot write 0001 any more, so the image is
// laid out from a real 0002 one.
func TestVersion1(t *testing.T) {
	r, err := openBytes(fat16Image(t))
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, r, r.Size())
	for _, cs := range []int{4, 8} {
		v1 := v1Image(t, r, want, cs)
		r1, err := openBytes(v1)
		if err != nil {
			t.Fatalf("csum %d: %v", cs, err)
		}
		if r1.Header.Version != 1 || r1.csum != int64(cs) {
			t.Errorf("version %d, checksum bytes %d", r1.Header.Version, r1.csum)
		}
		if got := readAll(t, r1, r1.Size()); !bytes.Equal(got, want) {
			t.Fatalf("csum %d: 0001 reads other bytes", cs)
		}
		if res, err := r1.Verify(context.Background(), nil); err != nil || len(res.Problems) > 0 {
			t.Fatalf("verify: %v %v", err, res.Problems)
		}
		// 0001's CRC covers each block's first byte only.
		v1[r1.blockOffset(5)] ^= 1
		r1, _ = openBytes(v1)
		if res, err := r1.Verify(context.Background(), nil); err != nil || len(res.Problems) == 0 {
			t.Errorf("verify of a damaged 0001 image: %v %v", err, res)
		}
		v1[r1.Header.DescLen+2] = 7
		if _, err := openBytes(v1); !errors.Is(err, image.ErrFormat) {
			t.Errorf("byte map entry 7: %v", err)
		}
	}
}

// TestBitrankLayout: every used block's offset from rank and the checksum
// layout lands on the bytes partclone wrote for it (checked without the
// group cache).
func TestBitrankLayout(t *testing.T) {
	b := fat16Image(t, "-k", "7")
	r, err := openBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checked() != true || r.perSum != 7 {
		t.Fatalf("checked %v, per sum %d", r.Checked(), r.perSum)
	}
	for k := uint64(0); k < r.Header.UsedBlocks; k += 97 {
		blk, ok := r.ix.Select(k)
		if !ok || r.ix.Rank(blk) != k {
			t.Fatalf("select/rank disagree at %d", k)
		}
	}
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// selfChecked is a source that says it checks what it hands out.
type selfChecked struct{ *bytes.Reader }

func (selfChecked) SourceChecked() bool { return true }

// TestSourceChecked: from a source that checks itself, reads go straight to
// the blocks (no checksum groups loaded) and give the same bytes; Verify
// still checks partclone's checksums.
func TestSourceChecked(t *testing.T) {
	b := fat16Image(t, "-k", "7")
	checked, err := openBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(selfChecked{bytes.NewReader(b)}, int64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !checked.Checked() || r.Checked() {
		t.Fatalf("checked %v / %v", checked.Checked(), r.Checked())
	}
	if !bytes.Equal(readAll(t, r, r.Size()), readAll(t, checked, checked.Size())) {
		t.Fatal("reads differ")
	}
	for off := int64(0); off+4096 <= r.Size(); off += 65537 {
		p, q := make([]byte, 4096), make([]byte, 4096)
		if _, err := r.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
		if _, err := checked.ReadAt(q, off); err != nil || !bytes.Equal(p, q) {
			t.Fatalf("4 KiB at %d differs (%v)", off, err)
		}
	}
	if r.cache.ll.Len() != 0 {
		t.Fatalf("%d groups loaded", r.cache.ll.Len())
	}
	res, err := r.Verify(context.Background(), nil)
	if err != nil || res.Groups == 0 || len(res.Problems) != 0 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}
