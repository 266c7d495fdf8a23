package vdwrite_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/cbimg/cbimg/vdisk"
	"github.com/cbimg/cbimg/vdisk/vdwrite"
)

func backup(t *testing.T, src string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "p.cbi")
	if _, err := backupcore.Backup(context.Background(), backupcore.Options{Source: src, Image: img, Codec: image.CodecZstd}); err != nil {
		t.Fatalf("backup %s: %v", src, err)
	}
	return img
}

func fileSHA(t *testing.T, path string, off, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if k, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil || k != n {
		t.Fatalf("read %s: %d of %d bytes, %v", path, k, n, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// convertAll writes the image as every format (or those given), checks each with qemu-img
// check, and returns the raw output after asserting that qemu-img reads
// every other format as exactly those bytes and vdisk reads them too.
func convertAll(t *testing.T, img string, formats ...vdwrite.Format) (string, *image.Reader, int64) {
	t.Helper()
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	src, err := vdwrite.FromImage(r)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rawOut := filepath.Join(dir, "disk.raw")
	if err := vdwrite.Create(context.Background(), rawOut, vdwrite.Raw, src); err != nil {
		t.Fatal(err)
	}
	want := fileSHA(t, rawOut, 0, src.Size)
	if formats == nil {
		formats = []vdwrite.Format{vdwrite.QCOW2, vdwrite.VHDX, vdwrite.VMDK}
	}
	for _, f := range formats {
		out := filepath.Join(dir, "disk."+string(f))
		if err := vdwrite.Create(context.Background(), out, f, src); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		testvol.Run(t, "qemu-img", "check", out)
		back := filepath.Join(dir, string(f)+".raw")
		testvol.Run(t, "qemu-img", "convert", "-O", "raw", out, back)
		if got := fileSHA(t, back, 0, src.Size); got != want {
			t.Errorf("qemu-img reads %s as other bytes than the raw output", f)
		}
		d, err := vdisk.Open(out)
		if err != nil {
			t.Fatalf("vdisk.Open(%s): %v", f, err)
		}
		h := sha256.New()
		io.Copy(h, io.NewSectionReader(d, 0, d.Size()))
		d.Close()
		if hex.EncodeToString(h.Sum(nil)) != want {
			t.Errorf("vdisk reads %s as other bytes than the raw output", f)
		}
		os.Remove(back)
	}
	return rawOut, r, src.Size
}

// TestFromImageMBR: an image of a Windows-made MBR disk's partition
// becomes a disk whose partition equals a restore, at the same offset,
// and sleuthkit lists the same files.
func TestFromImageMBR(t *testing.T) {
	raw := testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
	img := backup(t, raw+"@1")
	out, r, _ := convertAll(t, img, vdwrite.QCOW2) // the small volumes go through every format

	h := r.Header
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: restored}); err != nil {
		t.Fatal(err)
	}
	if fileSHA(t, out, h.PartStart, h.PartLength) != fileSHA(t, restored, 0, h.PartLength) {
		t.Error("the partition in the disk differs from a restore")
	}
	dump := testvol.Run(t, "sfdisk", "-d", out)
	if !strings.Contains(dump, "start=         128, size=      518144, type=7, bootable") {
		t.Errorf("sfdisk sees:\n%s", dump)
	}
	a := testvol.Run(t, "fls", "-r", "-p", "-o", "128", out)
	b := testvol.Run(t, "fls", "-r", "-p", restored)
	if a != b || !strings.Contains(a, "test/1.txt") {
		t.Errorf("fls of the disk:\n%s\nof the restore:\n%s", a, b)
	}
}

// TestFromImageBare: an image of a bare NTFS volume is placed at 1 MiB
// with the boot sector's and its backup's hidden sectors set to 2048.
func TestFromImageBare(t *testing.T) {
	vol := testvol.NTFS(t, testvol.NTFSSpec{SizeMiB: 16})
	img := backup(t, vol)
	out, r, _ := convertAll(t, img)
	f, _ := os.Open(out)
	defer f.Close()
	b := make([]byte, 512)
	for _, off := range []int64{1 << 20, 1<<20 + r.Header.FSSize - 512} {
		f.ReadAt(b, off)
		if string(b[3:7]) != "NTFS" || binary.LittleEndian.Uint32(b[0x1C:]) != 2048 {
			t.Errorf("boot record at %d: %q hidden %d", off, b[3:7], binary.LittleEndian.Uint32(b[0x1C:]))
		}
	}
	if a, b := testvol.Run(t, "fls", "-r", "-p", "-o", "2048", out), testvol.Run(t, "fls", "-r", "-p", vol); a != b {
		t.Errorf("fls of the disk:\n%s\nof the volume:\n%s", a, b)
	}
}

// TestFromImageGPT: an image of a GPT disk's partition gets a valid GPT
// (sgdisk -v) with the partition's type, GUID, name and place.
func TestFromImageGPT(t *testing.T) {
	gdisk := disktest.GPT(t)
	img := backup(t, gdisk+"@3")
	out, _, _ := convertAll(t, img)
	if v := testvol.Run(t, "sgdisk", "-v", out); !strings.Contains(v, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", v)
	}
	src := disktest.SfdiskJSON(t, gdisk)
	dst := disktest.SfdiskJSON(t, out)
	p3, _ := src.Part(3)
	if len(dst.Partitions) != 1 || dst.Partitions[0].Start != p3.Start || dst.Partitions[0].Size != p3.Size ||
		dst.Partitions[0].Type != p3.Type || dst.Partitions[0].UUID != p3.UUID || dst.Partitions[0].Name != p3.Name {
		t.Errorf("partitions %+v, want one like %+v", dst.Partitions, p3)
	}
	if a, b := testvol.Run(t, "fls", "-r", "-p", "-o", itoa(p3.Start), out), testvol.Run(t, "fls", "-r", "-p", "-o", itoa(p3.Start), gdisk); a != b {
		t.Errorf("fls of the disk:\n%s\nof the source disk:\n%s", a, b)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestFromImagesMBR: images of two partitions of one MBR disk become one
// disk with both at their places, each equal to a restore.
func TestFromImagesMBR(t *testing.T) {
	src := disktest.MBR(t)
	st := disktest.SfdiskJSON(t, src)
	var rs []*image.Reader
	var imgs []string
	for _, n := range []string{"1", "2"} {
		img := backup(t, src+"@"+n)
		r, err := image.Open(img, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs, imgs = append(rs, r), append(imgs, img)
	}
	s, err := vdwrite.FromImages(rs[1], rs[0])
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "d.qcow2")
	if err := vdwrite.Create(context.Background(), out, vdwrite.QCOW2, s); err != nil {
		t.Fatal(err)
	}
	testvol.Run(t, "qemu-img", "check", out)
	rawOut := out + ".raw"
	testvol.Run(t, "qemu-img", "convert", "-O", "raw", out, rawOut)
	dst := disktest.SfdiskJSON(t, rawOut)
	if len(dst.Partitions) != 2 {
		t.Fatalf("partitions %+v", dst.Partitions)
	}
	for i, img := range imgs {
		want, _ := st.Part(i + 1)
		got := dst.Partitions[i]
		if got.Start != want.Start || got.Size != want.Size || got.Type != want.Type {
			t.Errorf("partition %d: %+v, want %+v", i+1, got, want)
		}
		restored := filepath.Join(t.TempDir(), "r")
		if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: img, Target: restored}); err != nil {
			t.Fatal(err)
		}
		h := rs[i].Header
		if fileSHA(t, rawOut, h.PartStart, h.PartLength) != fileSHA(t, restored, 0, h.PartLength) {
			t.Errorf("partition %d differs from its restore", i+1)
		}
	}
}
