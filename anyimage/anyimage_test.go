//go:build linux

package anyimage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/volume"
)

func readAll(t testing.TB, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t testing.TB, name string) anyimage.Image {
	t.Helper()
	img, err := anyimage.Open(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// TestOpenByContent: .cbi, partclone and ntfsclone images of one NTFS
// volume, under names that say nothing, open as their kind, describe the
// same file system, and read as the partition: partclone's image with the
// backup boot sector partclone leaves out rebuilt (so it reads as the
// source, where partclone.restore leaves that sector zero), ntfsclone's as
// ntfsclone -r writes it.
func TestOpenByContent(t *testing.T) {
	vol := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	src, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := func(p, name string) string {
		l := filepath.Join(dir, name)
		if err := os.Symlink(p, l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	cbi := filepath.Join(dir, "a")
	if _, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: cbi, Codec: image.CodecZstd, NoDefaultExcludes: true}); err != nil {
		t.Fatal(err)
	}
	pc := testvol.Partclone(t, "partclone.ntfs", vol, false)
	nc := testvol.NTFSClone(t, vol, true)
	kinds := map[string]string{cbi: "cbi", link(pc, "b.img"): "partclone", link(nc, "c.cbi"): "ntfsclone"}
	for name, kind := range kinds {
		img := open(t, name)
		h := img.Header()
		if img.Info().Format != kind || volume.Type(h.FSType) != volume.NTFS || h.Label != "cbimg-test" || h.ClusterSize != 4096 {
			t.Errorf("%s: %s, %v %q clusters of %d", kind, img.Info().Format, volume.Type(h.FSType), h.Label, h.ClusterSize)
		}
		got := readAll(t, img, img.Size())
		if kind != "cbi" && !bytes.Equal(got, src) {
			t.Errorf("%s: does not read as the source volume", kind)
		}
		if n := popcount(img.Bitmap()); n != h.ImageClusters {
			t.Errorf("%s: bitmap has %d clusters, header %d", kind, n, h.ImageClusters)
		}
		u, err := img.Used(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, u)
		if err != nil || n != h.LogicalLen {
			t.Errorf("%s: Used gave %d bytes (%v), header says %d", kind, n, err, h.LogicalLen)
		}
		rep, err := img.Verify(context.Background(), nil)
		if err != nil || !rep.OK() || rep.Checksummed != (kind != "ntfsclone") {
			t.Errorf("%s: verify %v %+v", kind, err, rep)
		}
	}
	// partclone.restore leaves the NTFS backup boot sector out; cbimg
	// rebuilds it from the primary, and says so.
	img := open(t, pc)
	restored, _ := os.ReadFile(testvol.PartcloneRestore(t, pc))
	got := readAll(t, img, img.Size())
	last := img.Header().FSSize - 512
	if !bytes.Equal(got[:last], restored[:last]) || !bytes.Equal(got[last+512:], restored[last+512:]) || bytes.Equal(got[last:last+512], restored[last:last+512]) {
		t.Errorf("partclone: should differ from partclone.restore in the backup boot sector only")
	}
	if !bytes.Equal(got[last:last+512], src[:512]) || len(img.Info().Notes) != 1 || !strings.Contains(img.Info().Notes[0], "backup boot sector") {
		t.Errorf("partclone: backup boot sector not rebuilt from the primary; notes %q", img.Info().Notes)
	}
	// Describe, as the catalogue uses it, agrees without walking.
	f, size := testvol.OpenFile(t, nc)
	h, inf, err := anyimage.Describe(f, size, nc)
	if err != nil || inf.Format != "ntfsclone" || h.FSType != uint8(volume.NTFS) || h.FSSize != int64(len(src)) || h.ImageClusters != open(t, nc).Header().ImageClusters {
		t.Errorf("describe: %v %+v", err, h)
	}
	// Not an image.
	if _, err := anyimage.Open(vol, nil); !errors.Is(err, image.ErrFormat) {
		t.Errorf("a volume as an image: %v", err)
	}
}

func popcount(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		for ; c != 0; c &= c - 1 {
			n++
		}
	}
	return n
}

// TestConvert: partclone (NTFS, FAT16) and ntfsclone images convert to
// .cbi images that verify, read as the same partition, and record where
// they came from; converting back (from .cbi) keeps the origin chain.
func TestConvert(t *testing.T) {
	ntfs := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	for _, c := range []struct{ name, img string }{
		{"partclone-ntfs", testvol.Partclone(t, "partclone.ntfs", ntfs, false)},
		{"partclone-fat16", testvol.Partclone(t, "partclone.fat16", fat, true)},
		{"ntfsclone", testvol.NTFSClone(t, ntfs, false)},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := open(t, c.img)
			out := filepath.Join(t.TempDir(), "x.cbi")
			f, err := image.Create(out, 0)
			if err != nil {
				t.Fatal(err)
			}
			var last int64
			res, err := anyimage.Convert(context.Background(), src, f, anyimage.ConvertOptions{Codec: image.CodecZstd, ToolVersion: "cbimg test", Progress: func(d, _ int64) { last = d }})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			if last != res.Header.LogicalLen {
				t.Errorf("progress ended at %d of %d", last, res.Header.LogicalLen)
			}
			r, err := image.Open(out, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if rep, err := r.Verify(context.Background(), nil); err != nil || !rep.OK() {
				t.Fatalf("verify: %v %v", err, rep)
			}
			if !strings.HasPrefix(r.Header.Origin, src.Info().Format+" ") || !strings.Contains(r.Header.Origin, c.img) {
				t.Errorf("origin %q", r.Header.Origin)
			}
			if !bytes.Equal(readAll(t, r, r.Size()), readAll(t, src, src.Size())) {
				t.Errorf("the .cbi reads other bytes than its source")
			}
		})
	}
}

// TestUnknownFileSystem: a partclone image of a file system cbimg does not
// know (ext4, made by mkfs.ext4 and partclone.extfs) still reads, restores
// and converts as the raw partition partclone.restore writes.
func TestUnknownFileSystem(t *testing.T) {
	testvol.Need(t, "mkfs.ext4", "partclone.extfs")
	vol := filepath.Join(t.TempDir(), "ext4")
	if err := os.WriteFile(vol, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(vol, 16<<20)
	testvol.Run(t, "mkfs.ext4", "-q", "-F", "-b", "4096", vol)
	pc := testvol.Partclone(t, "partclone.extfs", vol, false)
	img := open(t, pc)
	want, _ := os.ReadFile(testvol.PartcloneRestore(t, pc))
	if img.Header().FSType != uint8(volume.Unknown) || img.Info().FSName == "" || len(img.Header().SysExtents) != 0 {
		t.Errorf("header: %+v, info %+v", img.Header(), img.Info())
	}
	if !bytes.Equal(readAll(t, img, img.Size()), want) {
		t.Fatal("reads other bytes than partclone.restore writes")
	}
	out := filepath.Join(t.TempDir(), "x.cbi")
	f, _ := image.Create(out, 0)
	if _, err := anyimage.Convert(context.Background(), img, f, anyimage.ConvertOptions{Codec: image.CodecZstd}); err != nil {
		t.Fatal(err)
	}
	f.Commit()
	c := open(t, out)
	if !bytes.Equal(readAll(t, c, c.Size()), want) {
		t.Error("the converted image reads other bytes")
	}
}
