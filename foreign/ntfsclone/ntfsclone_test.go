//go:build linux

package ntfsclone

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
)

func openBytes(b []byte) (*Reader, error) {
	return NewReader(context.Background(), bytes.NewReader(b), int64(len(b)), nil)
}

func readAll(t testing.TB, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadEqualsRestore: ntfsclone --save-image of volumes made by mkntfs +
// ntfs-3g and by Windows, to a file and to standard output, reads byte for
// byte as `ntfsclone -r` writes it (which is the source volume), and the
// stored clusters stream in order.
func TestReadEqualsRestore(t *testing.T) {
	vols := map[string]string{
		"basic":         testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}),
		"64k":           testvol.NTFS(t, testvol.NTFSSpec{Content: "basic", ClusterSize: 65536}),
		"win10-ntfs":    testvol.Real(t, "ntfs/win10-test-ntfs.dd"),
		"win10-dissect": testvol.Real(t, "ntfs/win10-dissect-ntfs.bin"),
		"winxp-ntfs":    testvol.Real(t, "ntfs/winxp-ntfs-undel.dd"),
	}
	for name, vol := range vols {
		for _, stdout := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "-file", true: "-stdout"}[stdout], func(t *testing.T) {
				img := testvol.NTFSClone(t, vol, stdout)
				f, size := testvol.OpenFile(t, img)
				var last int64
				r, err := NewReader(context.Background(), f, size, &Options{Progress: func(d, t int64) { last = d }})
				if err != nil {
					t.Fatal(err)
				}
				if last != size {
					t.Errorf("index progress ended at %d of %d", last, size)
				}
				want, err := os.ReadFile(testvol.NTFSCloneRestore(t, img))
				if err != nil {
					t.Fatal(err)
				}
				src, _ := os.ReadFile(vol)
				got := readAll(t, r, r.Size())
				// The other tool's file ends with the last block it wrote;
				// the partition goes on (zeros) to the device size.
				if len(want) > len(got) || !bytes.Equal(got[:len(want)], want) || !zero(got[len(want):]) {
					t.Fatalf("ReadAt differs from the other tool's restore (%d and %d bytes)", len(got), len(want))
				}
				want = append(want, make([]byte, len(got)-len(want))...)
				if !bytes.Equal(want, src) {
					t.Logf("note: ntfsclone -r does not give the source back")
				}
				for _, off := range []int64{1, 4095, r.Size()/2 + 77, r.Size() - 300} {
					p := make([]byte, 9000)
					n, err := r.ReadAt(p, off)
					if err != nil && err != io.EOF || !bytes.Equal(p[:n], want[off:off+int64(n)]) {
						t.Errorf("ReadAt(%d): %d %v", off, n, err)
					}
				}
				n, err := r.Verify(context.Background(), nil)
				if err != nil || n != r.Header.InUse {
					t.Fatalf("verify: %d %v", n, err)
				}
				var used bytes.Buffer
				cs := int64(r.Header.ClusterSize)
				bm := r.Bitmap()
				for c := int64(0); c < r.Header.Clusters; c++ {
					if bm[c/8]>>(c%8)&1 != 0 {
						used.Write(want[c*cs : (c+1)*cs])
					}
				}
				stream, err := io.ReadAll(r.Used(context.Background()))
				if err != nil || !bytes.Equal(stream, used.Bytes()) {
					t.Errorf("Used: %d bytes, %v; want %d", len(stream), err, used.Len())
				}
				t.Logf("%s %s: %d of %d clusters of %d in %d runs; tail %d bytes", name, r.Header.Version(), r.Header.InUse, r.Header.Clusters, cs, r.Runs(), r.Header.TailLen())
			})
		}
	}
}

// TestDamage: bad records, a truncated image, counts that disagree and
// hostile headers are refused, naming what and where, in bounded memory.
func TestDamage(t *testing.T) {
	good, err := os.ReadFile(testvol.NTFSClone(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), false))
	if err != nil {
		t.Fatal(err)
	}
	r, err := openBytes(good)
	if err != nil {
		t.Fatal(err)
	}
	firstGap := int64(-1)
	for _, ru := range r.runs {
		if ru.cluster > 0 {
			firstGap = ru.off - gapLen
			break
		}
	}
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want error
		says string
	}{
		{"truncated", good[:len(good)-100], image.ErrTruncated, "ends in the record"},
		{"truncated-much", good[:len(good)/2], image.ErrTruncated, "in use need more"},
		{"truncated-header", good[:30], image.ErrFormat, "not an ntfsclone"},
		{"trailing", append(append([]byte(nil), good...), 1, 2), image.ErrFormat, "after the last record"},
		{"command", edit(func(b []byte) { b[r.runs[0].off+int64(r.Header.ClusterSize)+1] = 7 }), image.ErrFormat, "command byte 7"},
		{"gap-past-end", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[firstGap+1:], 1<<40) }), image.ErrFormat, "gap of"},
		{"inuse", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[38:], uint64(r.Header.InUse-1)) }), image.ErrFormat, "in use"},
		{"2^40-clusters", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[30:], 1<<40) }), image.ErrFormat, "clusters"},
		{"cluster-size", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[18:], 3000) }), image.ErrFormat, "cluster size"},
		{"version", edit(func(b []byte) { b[16] = 11 }), image.ErrVersion, "11.1"},
	}
	for _, c := range cases {
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
	// A command byte damaged after indexing is caught by a read.
	b := append([]byte(nil), good...)
	rd, err := openBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	ru := rd.runs[len(rd.runs)/2]
	b[ru.off] = 9
	if _, err := rd.ReadAt(make([]byte, 4096), ru.cluster*int64(rd.Header.ClusterSize)); !errors.Is(err, image.ErrFormat) {
		t.Errorf("read over a changed record: %v", err)
	}
}

// FuzzNewReader: any bytes as an ntfsclone image give an error or a
// reader whose reads end, never a panic or a hang.
func FuzzNewReader(f *testing.F) {
	b, err := os.ReadFile(testvol.NTFSClone(f, testvol.NTFS(f, testvol.NTFSSpec{SizeMiB: 32, ClusterSize: 512, Content: "empty"}), false))
	if err != nil {
		f.Fatal(err)
	}
	// The metadata and the records around it; the rest is a long gap.
	f.Add(b[:min(len(b), 64<<10)])
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(context.Background(), bytes.NewReader(b), int64(len(b)), nil)
		if err != nil {
			return
		}
		p := make([]byte, 64<<10)
		for _, off := range []int64{0, r.Size() / 2, r.Size() - 1} {
			r.ReadAt(p, off)
		}
		r.Verify(context.Background(), nil)
		if r.Header.Clusters < 1<<24 {
			io.Copy(io.Discard, r.Used(context.Background()))
			r.Bitmap()
		}
	})
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
