//go:build linux

package mount_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/mount"
)

// TestMountMatchesRestore: volume.raw has the bytes a restore writes, for
// built and real volumes, compressed or not, one file or split.
func TestMountMatchesRestore(t *testing.T) {
	testvol.Need(t, "fusermount3", "fsck.fat")
	type tc struct {
		name string
		src  func(t *testing.T) string
		opts imageOpts
		fat  bool
	}
	ntfsBasic := func(t *testing.T) string { return testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}) }
	cases := []tc{
		{"ntfs-basic-zstd", ntfsBasic, imageOpts{codec: image.CodecZstd}, false},
		{"ntfs-basic-none", ntfsBasic, imageOpts{codec: image.CodecNone}, false},
		{"ntfs-basic-split", ntfsBasic, imageOpts{codec: image.CodecZstd, split: 3 << 20}, false},
		{"ntfs-basic-none-split", ntfsBasic, imageOpts{codec: image.CodecNone, split: 5 << 20}, false},
		{"ntfs-64k-cluster", func(t *testing.T) string {
			return testvol.NTFS(t, testvol.NTFSSpec{SizeMiB: 32, ClusterSize: 65536})
		}, imageOpts{codec: image.CodecZstd}, false},
	}
	for _, bits := range []int{12, 16, 32} {
		b := bits
		src := func(t *testing.T) string { return testvol.FAT(t, testvol.FATSpec{Bits: b, Content: "basic"}) }
		cases = append(cases,
			tc{"fat" + strconv.Itoa(b) + "-basic-zstd", src, imageOpts{codec: image.CodecZstd}, true},
			tc{"fat" + strconv.Itoa(b) + "-basic-none", src, imageOpts{codec: image.CodecNone}, true})
	}
	for _, rel := range testvol.RealList(t) {
		rel := rel
		src := func(t *testing.T) string { return testvol.Real(t, rel) }
		fat := strings.HasPrefix(rel, "fat/")
		cases = append(cases,
			tc{"real/" + rel + "-zstd", src, imageOpts{codec: image.CodecZstd}, fat},
			tc{"real/" + rel + "-none", src, imageOpts{codec: image.CodecNone}, fat})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := c.src(t)
			img := makeImage(t, src, c.opts)
			if c.opts.split > 0 {
				if _, err := os.Stat(img + ".002"); err != nil {
					t.Fatalf("split image has no second volume: %v", err)
				}
			}
			want := restored(t, img)
			raw, logs := mountImage(t, img, 0)
			st, err := os.Stat(raw)
			if err != nil {
				t.Fatal(err)
			}
			wst, _ := os.Stat(want)
			if st.Size() != wst.Size() {
				t.Fatalf("volume.raw is %d bytes, the restored file %d", st.Size(), wst.Size())
			}
			if got, w := testvol.FileSHA256(t, raw), testvol.FileSHA256(t, want); got != w {
				t.Fatalf("sha256 of volume.raw %s, of the restored target %s", got, w)
			}
			if c.fat {
				// Clean, or (for a real image that is not) the same findings
				// as on the source.
				out, err := exec.Command("fsck.fat", "-n", raw).CombinedOutput()
				if err != nil {
					srcOut, srcErr := exec.Command("fsck.fat", "-n", src).CombinedOutput()
					if srcErr == nil || strings.ReplaceAll(string(srcOut), src, "DEV") != strings.ReplaceAll(string(out), raw, "DEV") {
						t.Errorf("fsck.fat -n volume.raw: %v\n%s\nsource: %v\n%s", err, out, srcErr, srcOut)
					}
				}
			}
			if l := logs.String(); l != "" {
				t.Errorf("unexpected server log:\n%s", l)
			}
		})
	}
}

// TestSleuthkit: fls -r -p and icat give on volume.raw what they give on
// the source (on the restored target for names only the free clusters of
// the source hold: deleted directories).
func TestSleuthkit(t *testing.T) {
	testvol.Need(t, "fls", "icat")
	for _, c := range []struct {
		name    string
		src     func(t *testing.T) string
		deleted bool // has deleted directories, whose clusters are not imaged
	}{
		{"ntfs-full", func(t *testing.T) string { return testvol.NTFS(t, testvol.NTFSSpec{Content: "full"}) }, false},
		{"fat32-basic", func(t *testing.T) string { return testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}) }, false},
		{"ntfs-real", func(t *testing.T) string { return testvol.Real(t, "ntfs/win10-test-ntfs.dd") }, false},
		{"fat16-real-deleted", func(t *testing.T) string { return testvol.Real(t, "fat/winxp-fat16-undel.dd") }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := c.src(t)
			img := makeImage(t, src, imageOpts{codec: image.CodecZstd, noExclude: true})
			raw, _ := mountImage(t, img, 0)
			ref := src
			if c.deleted {
				ref = restored(t, img)
			}
			want := testvol.Run(t, "fls", "-r", "-p", ref)
			got := testvol.Run(t, "fls", "-r", "-p", raw)
			if got != want {
				t.Fatalf("fls -r -p differs:\n%s:\n%s\nvolume.raw:\n%s", ref, want, got)
			}
			// icat every allocated file, or an even sample of at most 120.
			var addrs []string
			for _, line := range strings.Split(want, "\n") {
				// "r/r 64-128-2:\tData/1MiB.bin"; deleted entries have a "*".
				typ, rest, ok := strings.Cut(line, " ")
				if !ok || !strings.HasSuffix(typ, "/r") || strings.HasPrefix(rest, "*") {
					continue
				}
				addr, _, _ := strings.Cut(rest, ":")
				addrs = append(addrs, addr)
			}
			if len(addrs) == 0 {
				t.Fatalf("only %d allocated files", len(addrs))
			}
			step := max(1, len(addrs)/120)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			n := 0
			for i := 0; i < len(addrs); i += step {
				addr := addrs[i]
				n++
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					g, w := icat(raw, addr), icat(src, addr)
					if g != w {
						t.Errorf("icat %s: volume.raw %s, source %s", addr, g, w)
					}
				}()
			}
			wg.Wait()
			t.Logf("fls equal (%d lines); %d of %d allocated files equal under icat", strings.Count(want, "\n"), n, len(addrs))
		})
	}
}

// icat returns the sha256 of a file's content, or the error.
func icat(dev, addr string) string {
	h, err := testvol.TryICat(dev, addr)
	if err != nil {
		return "error: " + err.Error()
	}
	return h
}

// TestNTFS3G: ntfs-3g mounts volume.raw read-only and every file reads as
// on the source mounted the same way.
func TestNTFS3G(t *testing.T) {
	testvol.Need(t, "ntfs-3g", "fusermount3")
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "full"})
	raw, _ := mountImage(t, makeImage(t, src, imageOpts{codec: image.CodecZstd, noExclude: true}), 0)
	want := ntfsTree(t, src)
	got := ntfsTree(t, raw)
	if len(want) < 10 {
		t.Fatalf("only %d entries on the source", len(want))
	}
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s missing on volume.raw", p)
		} else if g != w {
			t.Errorf("%s: volume.raw %s, source %s", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s only on volume.raw", p)
		}
	}
	t.Logf("%d entries equal", len(want))
}

// ntfsTree mounts dev with ntfs-3g -o ro and returns path -> size and
// sha256 of every entry.
func ntfsTree(t *testing.T, dev string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	testvol.Run(t, "ntfs-3g", "-o", "ro", dev, dir)
	defer func() {
		if out, err := exec.Command("fusermount3", "-u", dir).CombinedOutput(); err != nil {
			t.Errorf("fusermount3 -u %s: %v %s", dir, err, out)
		}
	}()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			tree[rel+"/"] = "dir"
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			tree[rel] = "-> " + strings.Replace(target, dir, "MNT", 1) // junctions point into the mount
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		tree[rel] = strconv.Itoa(len(b)) + " " + testvol.SHA256(b)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dev, err)
	}
	return tree
}

// TestConcurrentReads: many goroutines reading at random offsets, through
// the page cache and with O_DIRECT, get the restored bytes; a small chunk
// cache makes loads and evictions race.
func TestConcurrentReads(t *testing.T) {
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "full"})
	img := makeImage(t, src, imageOpts{codec: image.CodecZstd})
	want, err := os.ReadFile(restored(t, img))
	if err != nil {
		t.Fatal(err)
	}
	raw, logs := mountImage(t, img, 3<<20)
	size := int64(len(want))
	const workers, reads = 48, 120
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			flags := os.O_RDONLY
			if w%2 == 1 {
				flags |= syscall.O_DIRECT
			}
			f, err := os.OpenFile(raw, flags, 0)
			if err != nil {
				mu.Lock()
				fails = append(fails, err.Error())
				mu.Unlock()
				return
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			buf := alignedBuf(t, 1<<20)
			for range reads {
				var off int64
				var n int
				if flags&syscall.O_DIRECT != 0 {
					off = rng.Int64N(size/4096) * 4096
					n = (1 + rng.IntN(64)) * 4096
				} else {
					off = rng.Int64N(size)
					n = 1 + rng.IntN(300<<10)
				}
				n = int(min(int64(n), size-off))
				got, err := f.ReadAt(buf[:n], off)
				if err != nil || !bytes.Equal(buf[:got], want[off:off+int64(n)]) || got != n {
					mu.Lock()
					fails = append(fails, "pread "+strconv.Itoa(n)+" at "+strconv.Itoa(int(off))+": "+errString(err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of %d reads wrong, first: %s", len(fails), workers*reads, fails[0])
	}
	if l := logs.String(); l != "" {
		t.Errorf("server log:\n%s", l)
	}
}

func errString(err error) string {
	if err == nil {
		return "wrong bytes"
	}
	return err.Error()
}

// alignedBuf returns page-aligned memory, as O_DIRECT wants.
func alignedBuf(t *testing.T, n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Error(err)
		return make([]byte, n)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

// TestCorruptChunk: a damaged chunk gives EIO for exactly the pages of its
// damaged 4 KiB block (raw chunk) or zstd frame (compressed chunk), the
// rest reads right, the error is logged with its offset, and the mount
// stays up.
func TestCorruptChunk(t *testing.T) {
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	good := makeImage(t, src, imageOpts{codec: image.CodecZstd})
	want, err := os.ReadFile(restored(t, good))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []uint8{image.FrameBlockCRC, image.FrameSubFrames} {
		t.Run(map[uint8]string{image.FrameBlockCRC: "raw", image.FrameSubFrames: "zstd"}[kind], func(t *testing.T) {
			corruptChunk(t, good, want, kind)
		})
	}
}

// corruptChunk damages the first chunk from the middle of the image on
// whose frame flags are kind, mounts the image and checks which pages fail.
func corruptChunk(t *testing.T, good string, want []byte, kind uint8) {
	r, err := image.Open(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, bitmap := r.Header, r.Bitmap
	r.Close()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Walk the frames (64-byte header, stored length at byte 12, flags at
	// byte 17) to the chunk of the kind nearest the middle from below or
	// the first one after it.
	k, off := -1, int64(0)
	at := h.Len + h.BitmapLen + 4
	for i := 0; i < int(h.ChunkCount); i++ {
		if string(data[at:at+4]) != image.FrameMagic {
			t.Fatalf("no frame at %d", at)
		}
		if data[at+17] == kind && (k < 0 || k < int(h.ChunkCount/2)) {
			k, off = i, at
		}
		at += 64 + int64(binary.LittleEndian.Uint32(data[at+12:]))
	}
	if k < 0 {
		t.Fatalf("no chunk with flags %#x in the image", kind)
	}
	stored := int64(binary.LittleEndian.Uint32(data[off+12:]))
	bad := off + 64 + stored/2
	data[bad] ^= 0xff
	img := filepath.Join(t.TempDir(), "bad.cbi")
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// Which partition pages hold the damaged bytes: the damaged block's
	// (raw chunk) or zstd frame's (compressed chunk) part of chunk k's
	// logical range.
	lo, hi := int64(k)*int64(h.ChunkSize), min(int64(k+1)*int64(h.ChunkSize), h.LogicalLen)
	logical := int64(binary.LittleEndian.Uint32(data[off+8:]))
	at = stored / 2
	if kind == image.FrameBlockCRC {
		if at >= logical {
			at = (at - logical) / 4 * image.BlockSize
		}
		lo += at / image.BlockSize * image.BlockSize
		hi = min(lo+image.BlockSize, hi)
	} else {
		// The frame index (8 bytes per frame) follows the frames.
		sub := int64(h.SubFrameSize)
		nf := (logical + sub - 1) / sub
		ix := off + 64 + stored - 8*nf
		j, end := int64(0), int64(0)
		for ; j < nf; j++ {
			end += int64(binary.LittleEndian.Uint32(data[ix+8*j:]))
			if at < end {
				break
			}
		}
		if j == nf {
			j = (at - (stored - 8*nf)) / 8
		}
		lo += j * sub
		hi = min(lo+sub, hi)
	}
	streamOf := streamMap(h, bitmap)
	const page = 4096
	wantBad := map[int64]bool{}
	for s := int64(0); s < h.PartLength; s += 512 {
		if so := streamOf(s); so >= lo && so < hi {
			wantBad[s/page] = true
		}
	}
	if len(wantBad) == 0 {
		t.Fatal("chunk maps to no partition bytes")
	}

	raw, logs := mountImage(t, img, 0)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, page)
	var gotBad []int64
	for p := int64(0); p*page < h.PartLength; p++ {
		n, err := f.ReadAt(buf, p*page)
		if err != nil {
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("page %d: %v, want EIO or data", p, err)
			}
			gotBad = append(gotBad, p)
			continue
		}
		if !bytes.Equal(buf[:n], want[p*page:p*page+int64(n)]) {
			t.Fatalf("page %d (offset %d) differs from the restored bytes", p, p*page)
		}
	}
	if len(gotBad) != len(wantBad) {
		t.Fatalf("%d pages gave EIO, want %d (of chunk %d); first bad: %v", len(gotBad), len(wantBad), k, gotBad[:min(5, len(gotBad))])
	}
	for _, p := range gotBad {
		if !wantBad[p] {
			t.Fatalf("page %d gave EIO but holds no byte of chunk %d", p, k)
		}
	}
	// A large read across the damage fails as a whole; the mount stays up.
	big := make([]byte, 8<<20)
	first := gotBad[0] * page
	if _, err := f.ReadAt(big, max(0, first-4<<20)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("8 MiB read across the damaged chunk: %v, want EIO", err)
	}
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("after EIO, page 0: %v", err)
	}
	if st, err := os.Stat(raw); err != nil || st.Size() != h.PartLength {
		t.Fatalf("after EIO: stat %v, size %d", err, st.Size())
	}
	l := logs.String()
	if !strings.Contains(l, "image chunk at byte") || strings.Count(l, "\n") != 1 {
		t.Fatalf("want one log line naming the chunk's offset, got:\n%s", l)
	}
	t.Logf("%d pages of chunk %d give EIO; log: %s", len(gotBad), k, strings.TrimSpace(l))
}

// streamMap returns a function from partition offset to logical-stream
// offset (-1 for zeros), computed by plain scanning: system extents first,
// then stored clusters in ascending order.
func streamMap(h *image.Header, bitmap []byte) func(int64) int64 {
	type ext struct{ off, n, s int64 }
	var exts []ext
	var s int64
	for _, e := range h.SysExtents {
		exts = append(exts, ext{e.Offset, e.Length, s})
		s += e.Length
	}
	sysLen := s
	prefix := make([]int64, h.ClusterCount+1)
	for c := uint64(0); c < h.ClusterCount; c++ {
		prefix[c+1] = prefix[c]
		if bitmap[c/8]>>(c%8)&1 != 0 {
			prefix[c+1]++
		}
	}
	cs := int64(h.ClusterSize)
	return func(off int64) int64 {
		for _, e := range exts {
			if off >= e.off && off < e.off+e.n {
				return e.s + off - e.off
			}
		}
		if off < h.ClusterOrigin {
			return -1
		}
		c := uint64((off - h.ClusterOrigin) / cs)
		if c >= h.ClusterCount || bitmap[c/8]>>(c%8)&1 == 0 {
			return -1
		}
		return sysLen + prefix[c]*cs + (off-h.ClusterOrigin)%cs
	}
}

// TestReadOnly: every way of writing fails.
func TestReadOnly(t *testing.T) {
	src := testvol.FAT(t, testvol.FATSpec{Bits: 16, Content: "basic"})
	raw, _ := mountImage(t, makeImage(t, src, imageOpts{codec: image.CodecZstd}), 0)
	dir := filepath.Dir(raw)
	roErr := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.EROFS) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
			t.Errorf("%s: %v, want EROFS or EACCES", what, err)
		}
	}
	_, err := os.OpenFile(raw, os.O_WRONLY, 0)
	roErr("open O_WRONLY", err)
	_, err = os.OpenFile(raw, os.O_RDWR, 0)
	roErr("open O_RDWR", err)
	roErr("truncate", os.Truncate(raw, 0))
	roErr("chmod", os.Chmod(raw, 0o666))
	roErr("create", os.WriteFile(filepath.Join(dir, "new"), nil, 0o644))
	roErr("mkdir", os.Mkdir(filepath.Join(dir, "d"), 0o755))
	roErr("remove", os.Remove(raw))
	roErr("rename", os.Rename(raw, filepath.Join(dir, "x")))
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != mount.FileName {
		t.Fatalf("directory: %v %v, want just %s", entries, err, mount.FileName)
	}
	st, _ := os.Stat(raw)
	if st.Mode().Perm() != 0o444 || !st.Mode().IsRegular() {
		t.Errorf("mode %v, want -r--r--r--", st.Mode())
	}
}

// TestMountpointErrors: a busy or non-empty mountpoint is refused clearly.
func TestMountpointErrors(t *testing.T) {
	src := testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"})
	img := makeImage(t, src, imageOpts{codec: image.CodecZstd})
	raw, _ := mountImage(t, img, 0)
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = mount.Mount(filepath.Dir(raw), r, nil)
	if !errors.Is(err, mount.ErrBusy) || !strings.Contains(err.Error(), "already a mount point") {
		t.Errorf("mount on a mount: %v", err)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if _, err := mount.Mount(full, r, nil); !errors.Is(err, mount.ErrNotEmpty) {
		t.Errorf("mount on a non-empty directory: %v", err)
	}
	if _, err := mount.Mount(filepath.Join(full, "x"), r, nil); !errors.Is(err, mount.ErrNotEmpty) {
		t.Errorf("mount on a file: %v", err)
	}
	if _, err := mount.Mount(filepath.Join(full, "nope"), r, nil); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("mount on a missing directory: %v", err)
	}
	if err := mount.Unmount(full); !errors.Is(err, mount.ErrNotMounted) {
		t.Errorf("unmount of a plain directory: %v", err)
	}
	// Unmount refuses while volume.raw is open, and works after.
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := mount.Unmount(filepath.Dir(raw)); !errors.Is(err, mount.ErrBusy) {
		t.Errorf("unmount with volume.raw open: %v, want ErrBusy", err)
	}
	f.Close()
	names := []string{}
	entries, _ := os.ReadDir(filepath.Dir(raw))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, ",") != mount.FileName {
		t.Errorf("after a failed unmount the mount lists %v", names)
	}
}
