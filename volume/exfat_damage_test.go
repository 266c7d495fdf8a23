//go:build linux

package volume

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
)

// exfatSmall is a compact volume (FAT and heap aligned to 16 KiB, 512-byte
// clusters): its metadata lies in the first 64 KiB, for damage tests and
// fuzz seeds.
var exfatSmall = testvol.ExFATSpec{SizeMiB: 8, ClusterSize: 512, Content: "basic", Align: 16 << 10}

// exfatPatch edits a volume file in place.
func exfatPatch(t testing.TB, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// exfatEditSet rewrites the entry set of path (its bytes through edit)
// and, when fix, its checksum.
func exfatEditSet(t testing.TB, img, path string, fix bool, edit func(set []byte)) {
	t.Helper()
	f, size := testvol.OpenFile(t, img)
	x, err := OpenExFATFS(f, size)
	if err != nil {
		t.Fatal(err)
	}
	e, err := x.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	set := make([]byte, 32*3)
	if err := readFull(f, set[:32], e.offset); err != nil {
		t.Fatal(err)
	}
	set = set[:32*(int(set[1])+1)]
	if err := readFull(f, set, e.offset); err != nil {
		t.Fatal(err)
	}
	edit(set)
	if fix {
		binary.LittleEndian.PutUint16(set[2:], exfatSetChecksum(set))
	}
	exfatPatch(t, img, e.offset, set)
}

// exfatRootEntry finds the first root directory entry of type typ among
// the first 16 and returns its partition offset and bytes.
func exfatRootEntry(t *testing.T, x *ExFATFS, img string, typ byte) (int64, []byte) {
	t.Helper()
	root := x.inf.ClusterOffset(uint64(x.boot.RootCluster) - 2)
	f, _ := testvol.OpenFile(t, img)
	b := make([]byte, 32)
	for i := int64(0); i < 16; i++ {
		if err := readFull(f, b, root+32*i); err != nil {
			t.Fatal(err)
		}
		if b[0] == typ {
			return root + 32*i, b
		}
	}
	t.Fatalf("no root entry of type %#x", typ)
	return 0, nil
}

func TestExFATDamage(t *testing.T) {
	src := testvol.ExFAT(t, exfatSmall)
	f0, size := testvol.OpenFile(t, src)
	x0, err := OpenExFATFS(f0, size)
	if err != nil {
		t.Fatal(err)
	}
	bs := x0.Boot()
	ss := int64(bs.SectorSize())
	le := binary.LittleEndian
	u32 := func(v uint32) []byte { b := make([]byte, 4); le.PutUint32(b, v); return b }
	u64 := func(v uint64) []byte { b := make([]byte, 8); le.PutUint64(b, v); return b }
	big, err := x0.Stat("/Data/1MiB.bin")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		patch func(t *testing.T, img string)
		want  string // in the error of Open, Bitmap or Walk
	}{
		{"boot checksum (OEM sector)", func(t *testing.T, img string) { exfatPatch(t, img, 9*ss+7, []byte{0x5a}) }, "boot checksum"},
		{"boot checksum (serial)", func(t *testing.T, img string) { exfatPatch(t, img, exfatOffSerial, []byte{1, 2, 3, 4}) }, "boot checksum"},
		{"extended boot signature", func(t *testing.T, img string) { exfatPatch(t, img, 3*ss-4, []byte{0, 0, 0, 0}) }, "extended boot sector 2"},
		{"heap past the volume", func(t *testing.T, img string) { exfatPatch(t, img, exfatOffVolumeLength, u64(bs.VolumeLength-64)) }, "extends past the volume"},
		{"entry set checksum", func(t *testing.T, img string) {
			exfatEditSet(t, img, "/Documents/readme.txt", false, func(s []byte) { s[2*32+2] = 'R' })
		}, "entry set checksum"},
		{"name hash", func(t *testing.T, img string) {
			exfatEditSet(t, img, "/Documents/readme.txt", true, func(s []byte) { s[2*32+2] = 'x' })
		}, "name hash"},
		{"contiguous run leaves the heap", func(t *testing.T, img string) {
			exfatEditSet(t, img, "/Data/1MiB.bin", true, func(s []byte) {
				s[32+exfatStreamFlags] |= exfatFlagNoFatChain
				le.PutUint32(s[32+exfatFirstCluster:], bs.ClusterCount-10)
			})
		}, "leave the heap"},
		{"chain loops", func(t *testing.T, img string) {
			exfatEditSet(t, img, "/Data/1MiB.bin", true, func(s []byte) { s[32+exfatStreamFlags] &^= exfatFlagNoFatChain })
			c := big.Cluster
			exfatPatch(t, img, bs.FATOffsetBytes(0)+int64(c)*4, u32(c+1))
			exfatPatch(t, img, bs.FATOffsetBytes(0)+int64(c+1)*4, u32(c))
		}, "loops"},
		{"chain leaves the heap", func(t *testing.T, img string) {
			exfatEditSet(t, img, "/Data/1MiB.bin", true, func(s []byte) { s[32+exfatStreamFlags] &^= exfatFlagNoFatChain })
			exfatPatch(t, img, bs.FATOffsetBytes(0)+int64(big.Cluster)*4, u32(bs.ClusterCount+2))
		}, "outside the heap"},
		{"file longer than the heap", func(t *testing.T, img string) {
			exfatEditSet(t, img, "/Data/1MiB.bin", true, func(s []byte) {
				le.PutUint64(s[32+exfatDataLength:], 1<<40)
				le.PutUint64(s[32+exfatStreamValidData:], 1<<40)
			})
		}, "the heap has"},
		{"bitmap shorter than the heap", func(t *testing.T, img string) {
			off, _ := exfatRootEntry(t, x0, img, exfatTypeBitmap)
			exfatPatch(t, img, off+exfatDataLength, u64(uint64(bs.ClusterCount)/8-1))
		}, "allocation bitmap"},
		{"up-case table checksum", func(t *testing.T, img string) {
			off, b := exfatRootEntry(t, x0, img, exfatTypeUpcase)
			exfatPatch(t, img, off+4, u32(le.Uint32(b[4:])+1))
		}, "up-case table"},
		{"file cluster free in the bitmap", func(t *testing.T, img string) {
			bmOff := x0.inf.ClusterOffset(x0.sysRuns[0].Start)
			c := uint64(big.Cluster) - 2 + 8 // a whole byte inside the file
			exfatPatch(t, img, bmOff+int64(c/8), []byte{0})
		}, "marked free"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := fatCopyFile(t, src, filepath.Join(dir, "v.img"))
			tc.patch(t, img)
			f, size := testvol.OpenFile(t, img)
			start := time.Now()
			err := func() error {
				v, err := Open(f, size)
				if err != nil {
					return err
				}
				if _, err := v.Bitmap(); err != nil {
					return err
				}
				return v.Walk(context.Background(), func(File) error { return nil })
			}()
			if err == nil {
				t.Fatalf("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %q (corrupt %v), want %q", err, errors.Is(err, ErrCorrupt), tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("not a FormatError: %T", err)
			}
			t.Logf("%v (%v)", err, time.Since(start).Round(time.Millisecond))
		})
	}

	// A damaged backup boot region is reported, not refused.
	img := fatCopyFile(t, src, filepath.Join(dir, "b.img"))
	exfatPatch(t, img, 12*ss+exfatOffSerial, []byte{9})
	f, size := testvol.OpenFile(t, img)
	x, err := OpenExFATFS(f, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.BackupBootError(); err == nil || !strings.Contains(err.Error(), "backup boot region") {
		t.Errorf("backup boot region damage: %v", err)
	}
}

// TestExFATFlags reads VolumeDirty and MediaFailure (outside the boot
// checksum) and the label, GUID and serial.
func TestExFATFlags(t *testing.T) {
	src := testvol.ExFAT(t, exfatSmall)
	img := fatCopyFile(t, src, filepath.Join(t.TempDir(), "v.img"))
	exfatPatch(t, img, exfatOffVolumeFlags, []byte{exfatFlagVolumeDirty | exfatFlagMediaFailure, 0})
	f, size := testvol.OpenFile(t, img)
	v, err := Open(f, size)
	if err != nil {
		t.Fatal(err)
	}
	x := v.ExFAT()
	if !v.Info.Dirty || !x.Boot().Dirty() || !x.Boot().MediaFailure() {
		t.Errorf("dirty %v media failure %v", v.Info.Dirty, x.Boot().MediaFailure())
	}
	if v.Info.Label != "CBIMGTEST" || v.Info.Serial == 0 || v.Info.OEMName != "EXFAT" {
		t.Errorf("info %+v", v.Info)
	}
}

// TestExFATTimes compares the decoded times (UTC, with the 10 ms fields)
// with what exfat-fuse wrote: a file touched to a known instant.
func TestExFATTimesDecode(t *testing.T) {
	// 2021-03-04 05:06:08 plus 1.23 s, written at UTC+2 (8 quarter hours).
	ts := uint32(41)<<25 | 3<<21 | 4<<16 | 5<<11 | 6<<5 | 4
	got, ok := exfatTime(ts, 123, 0x80|8)
	want := time.Date(2021, 3, 4, 3, 6, 9, 230e6, time.UTC)
	if !ok || !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Negative offset: UTC-5 (-20 quarter hours).
	got, _ = exfatTime(ts, 0, 0x80|uint8(-20&0x7f))
	if want := time.Date(2021, 3, 4, 10, 6, 8, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, ok := exfatTime(ts|31<<11, 0, 0); ok {
		t.Error("hour 31 accepted")
	}
}

// FuzzExFATVolume overwrites the metadata of a compact real exFAT volume
// with fuzzed bytes: the first 512 bytes of the input replace the boot
// sector (whose checksum sector is then made to match, so that fuzzing
// gets past it), the rest the root directory and what follows it (the
// first directories). Open, bitmap, walk and reads must return errors,
// never panic or run away.
func FuzzExFATVolume(f *testing.F) {
	img, err := os.ReadFile(testvol.ExFAT(f, exfatSmall))
	if err != nil {
		f.Fatal(err)
	}
	x0, err := OpenExFATFS(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	const tail = 16 << 10
	root := x0.inf.ClusterOffset(uint64(x0.boot.RootCluster) - 2)
	f.Add(append(append([]byte(nil), img[:512]...), img[root:root+tail]...))
	f.Add(img[:512])
	f.Fuzz(func(t *testing.T, b []byte) {
		vol := append([]byte(nil), img...)
		copy(vol[:512], b)
		if len(b) > 512 {
			copy(vol[root:root+tail], b[512:])
		}
		if ss := 1 << min(max(vol[exfatOffSectorShift], 9), 12); 12*ss <= len(vol) {
			sum := exfatBootChecksum(vol[:12*ss], ss)
			for i := 11 * ss; i < 12*ss; i += 4 {
				binary.LittleEndian.PutUint32(vol[i:], sum)
			}
		}
		v, err := Open(bytes.NewReader(vol), int64(len(vol)))
		if err != nil {
			return
		}
		bm, err := v.Bitmap()
		if err == nil && uint64(len(bm)) != (v.Info.ClusterCount+7)/8 {
			t.Fatalf("bitmap %d bytes for %d clusters", len(bm), v.Info.ClusterCount)
		}
		_ = v.Walk(context.Background(), func(f File) error {
			for _, r := range f.Runs {
				if r.Start+r.Count > v.Info.ClusterCount {
					t.Fatalf("%s: run %v past %d clusters", f.Path, r, v.Info.ClusterCount)
				}
			}
			return nil
		})
		x := v.ExFAT()
		for _, d := range []string{"/", "/Data", "/Documents"} {
			ents, err := x.ReadDir(d)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if xf, err := x.Open(d + "/" + e.Name); err == nil {
					_, _ = xf.ReadAt(make([]byte, min(xf.Size(), 1<<20)), 0)
				}
			}
		}
	})
}

// TestExFATTexFAT turns a real volume into a TexFAT one (mkfs.exfat makes
// none): a second FAT in the gap before the heap, a second allocation
// bitmap with its root entry, NumberOfFats 2 and new boot checksums. The
// ActiveFat flag (outside the checksum) then chooses FAT and bitmap.
func TestExFATTexFAT(t *testing.T) {
	src := testvol.ExFAT(t, testvol.ExFATSpec{Content: "basic"})
	img := fatCopyFile(t, src, filepath.Join(t.TempDir(), "t.img"))
	f0, size := testvol.OpenFile(t, img)
	x, err := OpenExFATFS(f0, size)
	if err != nil {
		t.Fatal(err)
	}
	bs := x.boot
	ss := int64(bs.SectorSize())
	le := binary.LittleEndian
	if int64(bs.FATOffset)+2*int64(bs.FATLength) > int64(bs.HeapOffset) {
		t.Skip("no room for a second FAT")
	}
	bm, err := x.loadBitmap()
	if err != nil {
		t.Fatal(err)
	}
	used := x.bmUsed
	// A free cluster for the second bitmap (the bitmap fits one cluster).
	if x.bitmapSt.size > uint64(bs.ClusterSize()) {
		t.Skip("bitmap larger than a cluster")
	}
	var c uint64
	for c = 100; bm[c>>3]&(1<<(c&7)) != 0; c++ {
	}
	bm1 := append([]byte(nil), bm...)
	bm1[c>>3] |= 1 << (c & 7)
	bm2 := append([]byte(nil), bm1...)
	exfatPatch(t, img, x.inf.ClusterOffset(uint64(x.bitmapSt.cluster)-2), bm1)
	exfatPatch(t, img, x.inf.ClusterOffset(c), bm2)
	fat := make([]byte, int64(bs.FATLength)*ss)
	if err := readFull(f0, fat, bs.FATOffsetBytes(0)); err != nil {
		t.Fatal(err)
	}
	le.PutUint32(fat[(c+2)*4:], exfatEndOfChain)
	exfatPatch(t, img, bs.FATOffsetBytes(0), fat)
	exfatPatch(t, img, bs.FATOffsetBytes(1), fat)
	// The second bitmap's entry in the first free slot of the root.
	root := make([]byte, bs.ClusterSize())
	rootOff := x.inf.ClusterOffset(uint64(bs.RootCluster) - 2)
	if err := readFull(f0, root, rootOff); err != nil {
		t.Fatal(err)
	}
	slot := -1
	for i := 0; i < len(root); i += 32 {
		if root[i] == exfatTypeEnd {
			slot = i
			break
		}
	}
	if slot < 0 {
		t.Skip("no free root slot")
	}
	e := make([]byte, 32)
	e[0], e[1] = exfatTypeBitmap, 1
	le.PutUint32(e[exfatFirstCluster:], uint32(c+2))
	le.PutUint64(e[exfatDataLength:], x.bitmapSt.size)
	exfatPatch(t, img, rootOff+int64(slot), e)
	// Two FATs, in both boot regions, with their checksums.
	for _, base := range []int64{0, 12 * ss} {
		region := make([]byte, 12*ss)
		if err := readFull(f0, region, base); err != nil {
			t.Fatal(err)
		}
		region[exfatOffNumFATs] = 2
		sum := exfatBootChecksum(region, int(ss))
		for i := 11 * ss; i < 12*ss; i += 4 {
			le.PutUint32(region[i:], sum)
		}
		exfatPatch(t, img, base, region)
	}
	open := func(active byte) (*ExFATFS, error) {
		exfatPatch(t, img, exfatOffVolumeFlags, []byte{active, 0})
		f, size := testvol.OpenFile(t, img)
		x, err := OpenExFATFS(f, size)
		if err != nil {
			return nil, err
		}
		v := &Volume{Info: x.inf, impl: x, r: f}
		if err := v.Walk(context.Background(), func(File) error { return nil }); err != nil {
			return x, err
		}
		return x, nil
	}
	for _, active := range []byte{0, 1} {
		x, err := open(active)
		if err != nil {
			t.Fatalf("active FAT %d: %v", active, err)
		}
		if n, _ := x.UsedClusters(); n != used+1 || x.BackupBootError() != nil {
			t.Errorf("active FAT %d: %d used clusters, want %d; backup region %v", active, n, used+1, x.BackupBootError())
		}
		want := x.sysRuns[0].Start + 2
		if active == 1 {
			want = c + 2
		}
		if uint64(x.bitmapSt.cluster) != want || x.fat.off != bs.FATOffsetBytes(int(active)) {
			t.Errorf("active FAT %d: bitmap at cluster %d (want %d), FAT at %d", active, x.bitmapSt.cluster, want, x.fat.off)
		}
	}
	// A file cluster free only in the second bitmap: an error only when
	// the second one is active.
	xf, err := x.Open("/Data/1MiB.bin")
	if err != nil {
		t.Fatal(err)
	}
	b := xf.Runs()[0].Start + 8
	exfatPatch(t, img, x.inf.ClusterOffset(c)+int64(b>>3), []byte{0})
	if _, err := open(0); err != nil {
		t.Errorf("first bitmap active: %v", err)
	}
	if _, err := open(1); err == nil || !strings.Contains(err.Error(), "marked free") {
		t.Errorf("second bitmap active: %v", err)
	}
}
