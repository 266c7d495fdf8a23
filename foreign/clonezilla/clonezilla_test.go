//go:build linux

package clonezilla

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/seekz"
)

func sh(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -eo pipefail; "+script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// restoredFrom is what partclone.restore makes of the pieces: the
// reference for every read of an image.
func restoredFrom(t *testing.T, dir, decompress string, pieces []string) []byte {
	t.Helper()
	out := filepath.Join(dir, "restored.img")
	args := append([]string{"-c", `set -eo pipefail; cat "$@" | ` + decompress + ` | partclone.restore -q -C --restore_raw_file -L /dev/null -s - -o "` + out + `" 2>&1`, "sh"}, pieces...)
	if b, err := exec.Command("bash", args...).CombinedOutput(); err != nil {
		t.Fatalf("partclone.restore: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(out)
	return b
}

// sameAsRestore checks the image reads as partclone.restore's output.
func sameAsRestore(t *testing.T, img anyimage.Image, want []byte) {
	t.Helper()
	// partclone.restore stops after the last used block; the rest of the
	// partition is free space, zeros on these fresh volumes.
	if img.Size() < int64(len(want)) {
		t.Fatalf("size %d, partclone.restore wrote %d", img.Size(), len(want))
	}
	want = append(want, make([]byte, img.Size()-int64(len(want)))...)
	got := make([]byte, len(want))
	if _, err := img.ReadAt(got, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	// partclone leaves the NTFS backup boot sector out; FAT has none, so all
	// bytes must agree.
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("byte %d differs from partclone.restore's output", i)
			}
		}
	}
}

var ocsTools = []string{"ocs-sr", "partclone.fat16", "partclone.restore", "losetup", "gzip", "zstd", "split", "sfdisk"}

// TestOcsSr saves a real FAT16 volume with Clonezilla's ocs-sr (gzip by
// pigz, and zstd by zstdmt, 1 MB pieces) and reads the directories.
func TestOcsSr(t *testing.T) {
	testvol.Need(t, ocsTools...)
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 16, Content: "full"})
	loop := strings.TrimSpace(sh(t, `losetup -r -f --show "$VOL"`, "VOL="+vol))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	dev := filepath.Base(loop)
	repo := t.TempDir()
	cache := filepath.Join(repo, "cache")
	for _, c := range []struct{ opt, suffix, decompress string }{
		{"-z1p", "gz", "gzip -dc"},
		{"-z9p", "zst", "zstd -dcq"},
	} {
		t.Run(c.suffix, func(t *testing.T) {
			name := "img-" + c.suffix
			// ocs-sr keeps state in fixed places (/var/log/clonezilla, /tmp);
			// another ocs-sr running at the same time can fail it, so one
			// failed run is tried again, its log shown.
			ocs := exec.Command("ocs-sr", "-or", repo, "-b", "-q2", "-j2", c.opt, "-i", "1", "-sfsck", "-senc", "-scs", "-p", "true", "saveparts", name, dev)
			if out, err := ocs.CombinedOutput(); err != nil {
				t.Logf("ocs-sr failed (%v), trying again; its output ended:\n%s", err, tail(out))
				os.RemoveAll(filepath.Join(repo, name))
				ocs = exec.Command(ocs.Args[0], ocs.Args[1:]...)
				if out, err := ocs.CombinedOutput(); err != nil {
					t.Fatalf("ocs-sr: %v\n%s", err, tail(out))
				}
			}
			dir := filepath.Join(repo, name)
			if !IsDir(dir) {
				t.Fatalf("%s is not recognized", dir)
			}
			d, err := OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Partitions) != 1 || len(d.Parts) != 1 || d.Parts[0] != dev {
				t.Fatalf("partitions %+v, parts %v", d.Partitions, d.Parts)
			}
			p := d.Partitions[0]
			if p.Name != dev || p.FS != "vfat" || p.Tool != "partclone" || p.Suffix != c.suffix || len(p.Pieces) < 2 ||
				!strings.HasSuffix(p.Pieces[0], dev+".vfat-ptcl-img."+c.suffix+".aa") {
				t.Fatalf("partition %+v", p)
			}
			want := restoredFrom(t, repo, c.decompress, p.Pieces)
			img, err := anyimage.Open(dir+"@"+dev, &anyimage.Options{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			inf := img.Info()
			if inf.Format != "partclone" || !strings.Contains(inf.Origin, "Clonezilla image "+name) || len(inf.Pieces) != len(p.Pieces) || inf.ImageBytes != p.Bytes {
				t.Fatalf("info %+v", inf)
			}
			sameAsRestore(t, img, want)
			rep, err := img.Verify(context.Background(), nil)
			if err != nil || !rep.OK() {
				t.Fatalf("verify: %v %+v", err, rep)
			}
			img.Close()
			// Naming the first piece opens the same image; the index is reused.
			img, err = anyimage.Open(p.Pieces[0], &anyimage.Options{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if n := img.Info().Notes; !strings.Contains(n[len(n)-1], "(made earlier)") {
				t.Fatalf("notes %v", n)
			}
			sameAsRestore(t, img, want)
		})
	}
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// TestHandMade builds directories as Clonezilla names them, by hand
// (partclone | compressor | split), with a real partition table dump, in
// the current and the older naming forms, and the faults a directory can
// have.
func TestHandMade(t *testing.T) {
	testvol.Need(t, ocsTools...)
	testvol.Need(t, "bzip2", "xz", "lz4")
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 16, Content: "full"})
	dir := filepath.Join(t.TempDir(), "2026-01-01-img")
	os.MkdirAll(dir, 0o700)
	cache := filepath.Join(dir, "..", "cache")
	env := []string{"VOL=" + vol, "D=" + dir}
	sh(t, `cd "$D"
echo "This image was saved by Clonezilla at 2026-01-01 00:00:00 UTC." > clonezilla-img
echo "sda" > disk; echo "sda1 sda2 sda3 sda5" > parts
truncate -s 64M disk.raw
printf 'label: dos\n2048,32768,6,*\n34816,32768,c\n67584,,83\n' | sfdisk -q disk.raw
sfdisk -d disk.raw | sed 's#disk.raw#/dev/sda#g' > sda-pt.sf; dd if=disk.raw of=sda-mbr bs=512 count=1 status=none; rm disk.raw
partclone.fat16 -q -c -L /dev/null -s "$VOL" -O - 2>/dev/null | gzip -c | split -b 1000000 - sda1.vfat-ptcl-img.gz.
partclone.fat16 -q -c -L /dev/null -s "$VOL" -O - 2>/dev/null | bzip2 -c | split -b 1000000 - sda2.vfat-img.
partclone.fat16 -q -c -L /dev/null -s "$VOL" -O - 2>/dev/null > sda3.vfat-ptcl-img.uncomp
partclone.fat16 -q -c -L /dev/null -s "$VOL" -O - 2>/dev/null | lz4 -q -c > sda5.vfat-ptcl-img.lz4
echo 'UUID="x"' > swappt-sda6.info`, env...)
	want := restoredFrom(t, dir, "cat", []string{filepath.Join(dir, "sda3.vfat-ptcl-img.uncomp")})
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) != 4 || d.Tables["sda"] == nil || d.Tables["sda"].Label != "dos" || len(d.Tables["sda"].Files) != 2 {
		t.Fatalf("dir %+v tables %+v", d, d.Tables)
	}
	for _, c := range []struct {
		part, codec string
		start       int64
	}{{"sda1", "gzip", 2048}, {"sda2", "bzip2", 34816}, {"sda3", "none", 67584}, {"sda5", "lz4", 0}} {
		p, err := d.Partition(c.part)
		if err != nil {
			t.Fatal(err)
		}
		if c.start != 0 && (p.Entry == nil || p.Entry.Start != c.start) {
			t.Fatalf("%s: table entry %+v", c.part, p.Entry)
		}
		img, err := anyimage.Open(dir+"@"+c.part, &anyimage.Options{CacheDir: cache})
		if err != nil {
			t.Fatalf("%s: %v", c.part, err)
		}
		if img.Info().Compression != c.codec {
			t.Fatalf("%s: compression %q", c.part, img.Info().Compression)
		}
		sameAsRestore(t, img, want)
		img.Close()
	}
	// The older form: ntfsclone's image, named sdaN.ntfs-img, its
	// compression told by its content only; reads equal ntfsclone -r's output.
	nc := testvol.NTFSClone(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}), true)
	sh(t, `cd "$D"; gzip -1 -c "$NC" | split -b 3000000 - sda6.ntfs-img.`, append(env, "NC="+nc)...)
	ncWant, err := os.ReadFile(testvol.NTFSCloneRestore(t, nc))
	if err != nil {
		t.Fatal(err)
	}
	img, err := anyimage.Open(dir+"@sda6", &anyimage.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if inf := img.Info(); inf.Format != "ntfsclone" || inf.Compression != "gzip" || len(inf.Pieces) < 2 || !strings.Contains(inf.Origin, "sda6 (ntfs, ntfsclone)") {
		t.Fatalf("ntfsclone info %+v", inf)
	}
	sameAsRestore(t, img, ncWant)
	img.Close()
	if _, err := anyimage.Open(dir, nil); !errors.Is(err, ErrIsDir) || !strings.Contains(err.Error(), dir+"@sda1") {
		t.Fatalf("directory: %v", err)
	}
	if _, err := anyimage.Open(dir+"@sda9", nil); !errors.Is(err, ErrNoPart) || !errors.Is(err, image.ErrFormat) {
		t.Fatalf("no such partition: %v", err)
	}
	// A name that says gz over zstd content; a codec cbimg does not decode.
	sh(t, `cd "$D"; partclone.fat16 -q -c -L /dev/null -s "$VOL" -O - 2>/dev/null | zstd -q -c > sda7.vfat-ptcl-img.gz; echo x > sda8.vfat-ptcl-img.lzo`, env...)
	if _, err := anyimage.Open(dir+"@sda7", &anyimage.Options{CacheDir: cache}); !errors.Is(err, ErrMismatch) || !errors.Is(err, image.ErrFormat) {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := anyimage.Open(dir+"@sda8", &anyimage.Options{CacheDir: cache}); !errors.Is(err, ErrCodec) {
		t.Fatalf("lzo: %v", err)
	}
	// A missing piece; then a piece cut short.
	os.Rename(filepath.Join(dir, "sda1.vfat-ptcl-img.gz.ab"), filepath.Join(dir, "moved"))
	if _, err := anyimage.Open(dir+"@sda1", &anyimage.Options{CacheDir: cache}); !errors.Is(err, seekz.ErrPieces) || !errors.Is(err, image.ErrFormat) {
		t.Fatalf("missing piece: %v", err)
	}
	os.Rename(filepath.Join(dir, "moved"), filepath.Join(dir, "sda1.vfat-ptcl-img.gz.ab"))
	os.Truncate(filepath.Join(dir, "sda1.vfat-ptcl-img.gz.ab"), 5000)
	if _, err := anyimage.Open(dir+"@sda1", &anyimage.Options{CacheDir: cache}); !errors.Is(err, image.ErrFormat) && !errors.Is(err, image.ErrTruncated) {
		t.Fatalf("cut piece: %v", err)
	}
	// The last piece cut short: the stream ends early (exit 3).
	pieces, _ := seekz.Pieces(filepath.Join(dir, "sda2.vfat-img.aa"))
	last := pieces[len(pieces)-1]
	st, _ := os.Stat(last)
	os.Truncate(last, st.Size()/2)
	if _, err := anyimage.Open(dir+"@sda2", &anyimage.Options{CacheDir: cache}); !errors.Is(err, image.ErrTruncated) {
		t.Fatalf("cut stream: %v", err)
	}
}

func TestParseImageName(t *testing.T) {
	for _, c := range []struct {
		in                   string
		part, fs, tool, suff string
		ok                   bool
	}{
		{"sda1.ntfs-ptcl-img.gz.aa", "sda1", "ntfs", "partclone", "gz", true},
		{"sda1.ntfs-ptcl-img.gz.aab", "sda1", "ntfs", "partclone", "gz", true},
		{"nvme0n1p2.ext4-ptcl-img.zst", "nvme0n1p2", "ext4", "partclone", "zst", true},
		{"sda1.ntfs-img.aa", "sda1", "ntfs", "ntfsclone", "", true},
		{"sda1.dd-img.ab", "sda1", "dd", "dd", "", true},
		{"sda2.vfat-ptcl-img.uncomp", "sda2", "vfat", "partclone", "uncomp", true},
		{"sda-pt.sf", "", "", "", "", false},
		{"Info-img-id.txt", "", "", "", "", false},
		{"swappt-sda5.info", "", "", "", "", false},
		{"blkdev.list", "", "", "", "", false},
		{"sda1.ntfs-ptcl-img.rar", "", "", "", "", false},
	} {
		n, ok := parseImageName(c.in)
		if ok != c.ok || ok && (n.part != c.part || n.fs != c.fs || n.tool != c.tool || n.suffix != c.suff) {
			t.Errorf("%s: %+v %v", c.in, n, ok)
		}
	}
	if d := diskOf("nvme0n1p2", nil); d != "nvme0n1" {
		t.Errorf("diskOf nvme: %q", d)
	}
	if d := diskOf("sda12", nil); d != "sda" {
		t.Errorf("diskOf sda12: %q", d)
	}
}
