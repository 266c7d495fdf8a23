//go:build linux

package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// ntfsRealImages are the Windows-made volumes in testdata/realimages/ntfs.
var ntfsRealImages = []struct {
	file      string
	partStart int64 // byte offset of the NTFS partition in the image
	label     string
}{
	{"win10-test-ntfs.dd.gz", 0, "Test Volume"},
	{"win10-dissect-ntfs.bin.gz", 0, "New Volume"},
	{"winxp-ntfs-undel.dd.gz", 0, "NTFS_DEL"},
	{"win10-mbr-disk-lastaccess.raw.gz", 128 * 512, "Last access"},
}

// ntfsRealImage unpacks a real image into dir and returns the image path, a
// reader over the NTFS partition and its size, and a file holding just the
// partition for tools that cannot take an offset.
func ntfsRealImage(t *testing.T, dir, file string, partStart int64) (part io.ReaderAt, size int64, partPath string) {
	t.Helper()
	img := testvol.Real(t, "ntfs/"+strings.TrimSuffix(file, ".gz"))
	f, size := testvol.OpenFile(t, img)
	if partStart == 0 {
		return f, size, img
	}
	sr := io.NewSectionReader(f, partStart, size-partStart)
	partPath = img + ".part"
	out, err := os.Create(partPath)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < sr.Size(); off += int64(len(buf)) {
		n, err := sr.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !allZero(buf[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := out.Truncate(sr.Size()); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return sr, sr.Size(), partPath
}

func TestNTFSRealImages(t *testing.T) {
	ntfsNeedTools(t, "ntfs-3g", "ntfsinfo", "fsstat", "blkls", "fls", "icat", "tsk_recover")
	for _, im := range ntfsRealImages {
		t.Run(im.file, func(t *testing.T) {
			r, size, partPath := ntfsRealImage(t, t.TempDir(), im.file, im.partStart)
			v := ntfsCheckVolume(t, r, size, partPath)
			if v.Info.Label != im.label {
				t.Errorf("label %q, want %q", v.Info.Label, im.label)
			}
			if h, err := v.Hibernated(); err != nil || h {
				t.Errorf("Hibernated() = %v, %v; want false", h, err)
			}
		})
	}
}

func TestNTFSBuiltVolumes(t *testing.T) {
	ntfsNeedTools(t, "ntfs-3g", "ntfsinfo", "fsstat", "blkls", "fls", "icat", "tsk_recover")
	for _, fx := range ntfsFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			f, err := os.Open(fx.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			v := ntfsCheckVolume(t, f, st.Size(), fx.path)
			if int(v.Info.ClusterSize) != fx.clusterSize {
				t.Errorf("cluster size %d, built with %d", v.Info.ClusterSize, fx.clusterSize)
			}
			files := ntfsWalkMap(t, v)
			// "dirty" has a resumed ("wake") hiberfil.sys: not hibernated.
			wantHib := map[string]bool{"main": true, "big64k": false, "dirty": false}[fx.name]
			if h, err := v.Hibernated(); err != nil || h != wantHib {
				t.Errorf("Hibernated() = %v, %v; want %v", h, err, wantHib)
			}
			if fx.name != "dirty" {
				bf := files["/frag/large.bin"]
				if bf == nil {
					t.Fatal("walk lacks /frag/large.bin")
				}
				if len(bf.Runs) < 50 {
					t.Errorf("/frag/large.bin has %d runs; the fixture should have made 50+", len(bf.Runs))
				}
			}
			switch fx.name {
			case "main":
				ntfsCheckMainExtras(t, f, v, files, fx.path)
			case "dirty":
				if !v.Info.Dirty {
					t.Error("dirty volume not reported dirty")
				}
				if v.Info.Size >= st.Size() {
					t.Errorf("shrunk volume Size %d, image %d", v.Info.Size, st.Size())
				}
			}
		})
	}
}

func ntfsCheckMainExtras(t *testing.T, r io.ReaderAt, v *Volume, files map[string]*File, img string) {
	nv := v.impl.(*ntfsVol)
	// The fragmented file's record must need an attribute list.
	ent, err := nv.lookup(mftRecRoot, "frag")
	if err != nil || ent == nil {
		t.Fatalf("lookup /frag: %v", err)
	}
	ent, err = nv.lookup(ent.rec, "large.bin")
	if err != nil || ent == nil {
		t.Fatalf("lookup large.bin: %v", err)
	}
	rec, err := nv.readBaseRecord(ent.rec, ent.seq)
	if err != nil {
		t.Fatal(err)
	}
	if len(attrsOf(rec.attrs, attrAttributeList, "")) == 0 {
		t.Error("/frag/large.bin has no $ATTRIBUTE_LIST; fixture too small")
	}
	for _, p := range []string{"/ads.txt:alt", "/ads.txt:big", "/docs:dirstream"} {
		if files[p] == nil {
			t.Errorf("walk lacks stream %s", p)
		}
	}
	fls := ntfsFls(t, img)
	big := files["/ads.txt:big"]
	if big != nil {
		addr := fls["/ads.txt:big"]
		if addr == "" {
			t.Fatal("fls lacks /ads.txt:big")
		}
		if got, want := readRunsSHA(t, r, big.Runs, int64(v.Info.ClusterSize), big.Size), testvol.ICat(t, img, addr); got != want {
			t.Errorf("/ads.txt:big via runs differs from icat")
		}
	}
	if f := files["/sparse.bin"]; f == nil || f.Size != 20<<20 || runsClusters(f.Runs) > 16 {
		t.Errorf("/sparse.bin: %+v; want 20 MiB with few clusters", f)
	}
	if f := files["/comp/text.txt"]; f == nil || f.Size != 300000 || runsClusters(f.Runs)*4096 >= 300000 {
		t.Errorf("/comp/text.txt: %+v; want compressed", f)
	}
	if (files["/docs/readme.txt"] == nil) == (files["/docs/hardlink.txt"] == nil) {
		t.Error("hard link must be reported once, under its first name")
	}
	if files["/deleted/gone.bin"] != nil {
		t.Error("deleted file reported")
	}
	n := 0
	for p := range files {
		if strings.HasPrefix(p, "/many/") {
			n++
		}
	}
	if want := ntfsManyCount - (ntfsManyDelLast - ntfsManyDelFirst + 1); n != want {
		t.Errorf("/many has %d files, want %d", n, want)
	}
}

// ntfsWalkMap walks v into path[:stream] -> File.
func ntfsWalkMap(t *testing.T, v *Volume) map[string]*File {
	t.Helper()
	m := map[string]*File{}
	err := v.Walk(context.Background(), func(f File) error {
		k := f.Path
		if f.Stream != "" {
			k += ":" + f.Stream
		}
		if _, dup := m[k]; dup {
			return fmt.Errorf("walk reports %q twice", k)
		}
		fc := f
		m[k] = &fc
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return m
}

// ntfsCheckVolume checks Info, Bitmap, SystemExtents and Walk of the volume
// in r against ntfsinfo, fsstat, blkls, a read-only ntfs-3g mount and
// tsk_recover run on img (the same partition as a file).
func ntfsCheckVolume(t *testing.T, r io.ReaderAt, size int64, img string) *Volume {
	t.Helper()
	v, err := Open(r, size)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	in := v.Info
	if in.Type != NTFS || in.ClusterOrigin != 0 {
		t.Errorf("type %v origin %d", in.Type, in.ClusterOrigin)
	}
	ni := ntfsInfoM(t, img)
	if cs := ntfsInfoInt(t, ni, "Cluster Size"); uint64(in.ClusterSize) != cs {
		t.Errorf("cluster size %d, ntfsinfo %d", in.ClusterSize, cs)
	}
	if cc := ntfsInfoInt(t, ni, "Volume Size in Clusters"); in.ClusterCount != cc {
		t.Errorf("cluster count %d, ntfsinfo %d", in.ClusterCount, cc)
	}
	flags := ntfsInfoInt(t, ni, "Volume Flags")
	if in.Dirty != (flags&1 != 0) {
		t.Errorf("dirty %v, ntfsinfo flags %#x", in.Dirty, flags)
	}
	if name := ni["Volume Name"]; name != in.Label {
		t.Errorf("label %q, ntfsinfo %q", in.Label, name)
	}
	cc, cs := ntfsFsstat(t, img)
	if cc != in.ClusterCount || cs != uint64(in.ClusterSize) {
		t.Errorf("clusters %d x %d, fsstat %d x %d", in.ClusterCount, in.ClusterSize, cc, cs)
	}
	if want := int64(in.TotalSectors+1) * int64(in.SectorSize); in.Size != min(want, size) {
		t.Errorf("Size %d, want %d", in.Size, min(want, size))
	}

	bm, err := v.Bitmap()
	if err != nil {
		t.Fatalf("Bitmap: %v", err)
	}
	if uint64(len(bm)) != (in.ClusterCount+7)/8 {
		t.Fatalf("bitmap %d bytes for %d clusters", len(bm), in.ClusterCount)
	}
	free := ntfsInfoInt(t, ni, "Free Clusters")
	if used := popcount(bm); used != in.ClusterCount-free {
		t.Errorf("bitmap has %d used clusters, ntfsinfo %d", used, in.ClusterCount-free)
	}
	if want := ntfsBlkls(t, img, in.ClusterCount); !bytes.Equal(bm, want) {
		for i := range bm {
			if bm[i] != want[i] {
				t.Errorf("bitmap differs from blkls first at byte %d: %08b vs %08b", i, bm[i], want[i])
				break
			}
		}
	}

	ext := v.SystemExtents()
	grid := int64(in.ClusterCount) * int64(in.ClusterSize)
	if grid < in.Size {
		if len(ext) != 1 || ext[0].Offset != grid || ext[0].End() != in.Size {
			t.Errorf("system extents %v, want [%d,%d)", ext, grid, in.Size)
		} else if in.Size == int64(in.TotalSectors+1)*int64(in.SectorSize) && in.Size == size {
			b := make([]byte, 512)
			if err := readFull(r, b, in.Size-int64(in.SectorSize)); err != nil {
				t.Fatal(err)
			}
			bb, err := ParseNTFSBoot(b)
			if err != nil || bb.Serial != in.Serial {
				t.Errorf("backup boot sector: %v", err)
			}
		}
	} else if len(ext) != 0 {
		t.Errorf("system extents %v, want none", ext)
	}

	files := ntfsWalkMap(t, v)
	// Every cluster a file holds is marked used.
	for p, f := range files {
		for _, run := range f.Runs {
			for c := run.Start; c < run.Start+run.Count; c++ {
				if bm[c/8]&(1<<(c%8)) == 0 {
					t.Fatalf("%s holds cluster %d, which the bitmap says is free", p, c)
				}
			}
		}
	}
	// The walk matches what ntfs-3g shows.
	mnt, unmount := ntfsMount(t, img, "ro")
	found := ntfsFind(t, mnt)
	unmount()
	walkIno := map[uint64]bool{}
	for p, e := range found {
		if f := files[p]; f != nil {
			walkIno[e.inode] = true
		}
	}
	for p, e := range found {
		f := files[p]
		if f == nil {
			if e.links > 1 && walkIno[e.inode] {
				continue // another name of a hard-linked file
			}
			t.Errorf("ntfs-3g shows %s, walk does not", p)
			continue
		}
		if e.link {
			continue // ntfs-3g shows reparse points as symbolic links
		}
		if f.Dir != e.dir {
			t.Errorf("%s: dir %v, ntfs-3g %v", p, f.Dir, e.dir)
		}
		if !e.dir && f.Size != e.size {
			t.Errorf("%s: size %d, ntfs-3g %d", p, f.Size, e.size)
		}
	}
	for p, f := range files {
		if f.Stream != "" || p == "/" || ntfsSystemPath(p) {
			continue
		}
		if _, ok := found[p]; !ok {
			t.Errorf("walk reports %s, ntfs-3g does not show it", p)
		}
	}
	// Cluster runs hold the data sleuthkit extracts.
	rec := ntfsRecover(t, img)
	fls := ntfsFls(t, img)
	compared := 0
	for p, f := range files {
		// Compressed files can have a last unit that is short and
		// compressed; /comp holds the built volumes' compressed files.
		if strings.HasPrefix(p, "/comp/") {
			continue
		}
		if f.Dir || f.Stream != "" || f.Runs == nil || f.Size == 0 || runsClusters(f.Runs)*uint64(in.ClusterSize) < uint64(f.Size) {
			continue
		}
		want := filepath.Join(rec, filepath.FromSlash(p))
		if _, err := os.Stat(want); err != nil {
			continue
		}
		if got := readRunsSHA(t, r, f.Runs, int64(in.ClusterSize), f.Size); got != testvol.FileSHA256(t, want) {
			t.Errorf("%s: bytes via runs differ from tsk_recover", p)
		}
		compared++
	}
	if compared == 0 {
		t.Error("no non-resident file compared with tsk_recover")
	}
	t.Logf("%d clusters of %d bytes, %d used; walk %d entries, ntfs-3g %d paths, %d files compared by runs",
		in.ClusterCount, in.ClusterSize, popcount(bm), len(files), len(found), compared)
	ntfsCheckBrowse(t, v.NTFS(), img, found, rec, fls)
	return v
}

// ntfsSystemPath reports paths ntfs-3g hides: the metadata files.
func ntfsSystemPath(p string) bool {
	return strings.HasPrefix(p, "/$") && !strings.HasPrefix(p, "/$RECYCLE.BIN")
}

// errAfterReader fails every read that reaches past limit.
type errAfterReader struct {
	r     io.ReaderAt
	limit int64
}

var errInjected = errors.New("injected read error")

func (e *errAfterReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.limit {
		return 0, errInjected
	}
	return e.r.ReadAt(p, off)
}

func TestNTFSDamaged(t *testing.T) {
	dir := t.TempDir()
	r, size, _ := ntfsRealImage(t, dir, "win10-test-ntfs.dd.gz", 0)
	img := make([]byte, size)
	if err := readFull(r, img, 0); err != nil {
		t.Fatal(err)
	}
	v, err := Open(bytes.NewReader(img), size)
	if err != nil {
		t.Fatal(err)
	}
	nv := v.impl.(*ntfsVol)
	ent, err := nv.lookup(mftRecRoot, "another_file.txt")
	if err != nil || ent == nil {
		t.Fatalf("lookup: %v", err)
	}
	recOff := nv.recordOffset(ent.rec)
	walkErr := func(b []byte) error {
		v, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return err
		}
		return v.Walk(context.Background(), func(File) error { return nil })
	}

	t.Run("truncated", func(t *testing.T) {
		_, err := Open(bytes.NewReader(img[:size/2]), size/2)
		if err == nil || !strings.Contains(err.Error(), "truncated") || !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open of half an image: %v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		v, err := Open(&errAfterReader{bytes.NewReader(img), recOff}, size)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		err = v.Walk(context.Background(), func(File) error { return nil })
		if !errors.Is(err, errInjected) {
			t.Errorf("Walk over failing reads: %v", err)
		}
	})
	t.Run("zeroed record", func(t *testing.T) {
		b := bytes.Clone(img)
		clear(b[recOff : recOff+int64(nv.recSize)])
		err := walkErr(b)
		want := fmt.Sprintf("MFT record %d", ent.rec)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "zeros") {
			t.Errorf("Walk with zeroed record %d: %v", ent.rec, err)
		}
	})
	t.Run("bad fixup", func(t *testing.T) {
		b := bytes.Clone(img)
		b[recOff+510] ^= 0xFF
		err := walkErr(b)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("MFT record %d", ent.rec)) || !strings.Contains(err.Error(), "fixup") {
			t.Errorf("Walk with torn record: %v", err)
		}
	})
	t.Run("bad $MFT record", func(t *testing.T) {
		b := bytes.Clone(img)
		mft := int64(nv.boot.MFTCluster) * int64(nv.inf.ClusterSize)
		copy(b[mft:], "BAAD")
		_, err := Open(bytes.NewReader(b), size)
		if err == nil || !strings.Contains(err.Error(), "MFT record 0") {
			t.Errorf("Open with bad $MFT record: %v", err)
		}
	})
	t.Run("run past volume", func(t *testing.T) {
		// Point /ones.bin's first run far past the end of the volume.
		ent, err := nv.lookup(mftRecRoot, "ones.bin")
		if err != nil || ent == nil {
			t.Fatalf("lookup: %v", err)
		}
		rec, err := nv.readBaseRecord(ent.rec, ent.seq)
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := nv.loadAttrs(rec)
		if err != nil {
			t.Fatal(err)
		}
		d := attrsOf(attrs, attrData, "")[0]
		if d.resident {
			t.Skip("ones.bin data resident")
		}
		off := nv.recordOffset(d.rec)
		raw := img[off : off+int64(nv.recSize)]
		// Find the runlist of the piece and make its first LCN huge.
		p := ntfsFindAttrOffset(t, raw, attrData, d.id)
		runOff := int(raw[p+0x20]) | int(raw[p+0x21])<<8
		h := raw[p+runOff]
		ln, on := int(h&0xF), int(h>>4)
		b := bytes.Clone(img)
		rb := b[off : off+int64(nv.recSize)]
		for i := 0; i < on; i++ {
			rb[p+runOff+1+ln+i] = 0x7F
		}
		err = walkErr(b)
		if err == nil || !strings.Contains(err.Error(), "passes the volume") {
			t.Errorf("Walk with a run past the volume: %v", err)
		}
	})
}

// ntfsFindAttrOffset finds attribute typ/id in a raw record (fixups still
// applied on disk, which leaves attribute headers intact).
func ntfsFindAttrOffset(t *testing.T, rec []byte, typ uint32, id uint16) int {
	p := int(rec[recAttrOffset]) | int(rec[recAttrOffset+1])<<8
	for p+16 < len(rec) {
		at := uint32(rec[p]) | uint32(rec[p+1])<<8 | uint32(rec[p+2])<<16 | uint32(rec[p+3])<<24
		l := int(rec[p+4]) | int(rec[p+5])<<8
		aid := uint16(rec[p+14]) | uint16(rec[p+15])<<8
		if at == typ && aid == id {
			return p
		}
		if at == attrEnd || l == 0 {
			break
		}
		p += l
	}
	t.Fatalf("attribute %#x id %d not in record", typ, id)
	return 0
}

// TestNTFSTestvol runs the same checks on the shared fixture volumes.
func TestNTFSTestvol(t *testing.T) {
	ntfsNeedTools(t, "ntfs-3g", "ntfsinfo", "fsstat", "blkls", "fls", "icat", "tsk_recover")
	for _, tc := range []struct {
		name string
		spec testvol.NTFSSpec
	}{
		{"full", testvol.NTFSSpec{Content: "full"}},
		{"basic-dirty", testvol.NTFSSpec{Content: "basic", Dirty: true}},
		// Records and index blocks span several 512-byte clusters.
		{"basic-512", testvol.NTFSSpec{SizeMiB: 64, ClusterSize: 512, Content: "basic"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := testvol.NTFS(t, tc.spec)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			v := ntfsCheckVolume(t, f, st.Size(), img)
			if v.Info.Dirty != tc.spec.Dirty {
				t.Errorf("Dirty %v, want %v", v.Info.Dirty, tc.spec.Dirty)
			}
			if h, err := v.Hibernated(); err != nil || h {
				t.Errorf("Hibernated() = %v, %v; hiberfil.sys begins with \"wake\" (resumed)", h, err)
			}
		})
	}
	// ntfs-3g refuses to mount a hibernated volume, so only the flag here.
	img := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic", Hibernated: true})
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	v, err := Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if h, err := v.Hibernated(); err != nil || !h {
		t.Errorf("Hibernated() = %v, %v on a hibernated volume", h, err)
	}
}
