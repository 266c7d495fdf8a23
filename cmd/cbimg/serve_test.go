//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/internal/testvol"
)

// served is a running "cbimg serve" over a Unix socket.
type served struct {
	sock string
	uris []string // as printed, one per export
	cmd  *exec.Cmd
	errb *bytes.Buffer
	// stopFn stops the server (SIGTERM; it must exit 0); also at cleanup.
	stopFn func()
}

// uri names an export of the server ("" is the default).
func (s *served) uri(name string) string { return "nbd+unix:///" + name + "?socket=" + s.sock }

// serve starts "cbimg serve IMAGE" and waits for it to print its URIs; the
// server is stopped with SIGTERM at cleanup and must exit 0.
func serve(t *testing.T, image string, nexports int, extra ...string) *served {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	s := &served{sock: sock, errb: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, append([]string{"serve", image, "--nbd", "unix:" + sock}, extra...)...)
	s.cmd.Stderr = s.errb
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for len(s.uris) < nexports {
		select {
		case l, ok := <-lines:
			if !ok {
				s.cmd.Wait()
				t.Fatalf("serve %s exited: %s", image, s.errb)
			}
			s.uris = append(s.uris, l)
		case <-time.After(2 * time.Minute):
			s.cmd.Process.Kill()
			t.Fatalf("serve %s printed no URI: %s", image, s.errb)
		}
	}
	t.Cleanup(s.stop(t))
	return s
}

// stop returns a function that stops the server once.
func (s *served) stop(t *testing.T) func() {
	var once sync.Once
	s.stopFn = func() {
		once.Do(func() {
			s.cmd.Process.Signal(syscall.SIGTERM)
			if err := s.cmd.Wait(); err != nil {
				t.Errorf("serve: %v: %s", err, s.errb)
			}
			if _, err := os.Stat(s.sock); err == nil {
				t.Errorf("serve left its socket %s behind", s.sock)
			}
		})
	}
	return s.stopFn
}

// run runs a client tool and fails the test when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// mapEntry is one line of nbdinfo --map --json.
type mapEntry struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	Type   int   `json:"type"`
}

// wantMap is the base:allocation map an image should give, walked cluster
// by cluster: clusters the bitmap leaves out (and no system extent
// touches) are hole|zero (3), everything else data (0).
func wantMap(t *testing.T, image string) []mapEntry {
	img, err := anyimage.Open(image, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	h, bm := img.Header(), img.Bitmap()
	var out []mapEntry
	add := func(off, n int64, typ int) {
		if k := len(out); k > 0 && out[k-1].Type == typ {
			out[k-1].Length += n
			return
		}
		out = append(out, mapEntry{off, n, typ})
	}
	sysAt := func(off, n int64) bool {
		for _, e := range h.SysExtents {
			if e.Offset < off+n && off < e.Offset+e.Length {
				return true
			}
		}
		return false
	}
	cs := int64(h.ClusterSize)
	add(0, h.ClusterOrigin, 0)
	for c := uint64(0); c < h.ClusterCount; c++ {
		off := h.ClusterOrigin + int64(c)*cs
		n := min(cs, img.Size()-off)
		typ := 3
		if bm[c/8]&(1<<(c%8)) != 0 || sysAt(off, n) {
			typ = 0
		}
		add(off, n, typ)
	}
	if end := h.ClusterOrigin + int64(h.ClusterCount)*cs; end < img.Size() {
		add(end, img.Size()-end, 0)
	}
	if out[0].Length == 0 {
		out = out[1:]
	}
	return out
}

// qemuRead reads n bytes at off through qemu-io's hex dump.
func qemuRead(t *testing.T, uri string, off, n int64) []byte {
	t.Helper()
	out := run(t, "qemu-io", "-r", "-f", "raw", "-c", fmt.Sprintf("read -v %d %d", off, n), uri)
	var b []byte
	for _, line := range strings.Split(out, "\n") {
		addr, rest, ok := strings.Cut(line, ":  ")
		if !ok || len(addr) != 8 {
			continue
		}
		for _, f := range strings.Fields(rest)[:min(16, len(strings.Fields(rest)))] {
			v, err := strconv.ParseUint(f, 16, 8)
			if err != nil || len(f) != 2 {
				break
			}
			b = append(b, byte(v))
		}
	}
	if int64(len(b)) != n {
		t.Fatalf("qemu-io read %d of %d bytes at %d:\n%s", len(b), n, off, out)
	}
	return b
}

// An image served over NBD reads, through nbdinfo, nbdcopy, qemu-img and
// qemu-io, as its restore; its block-status map is the image's bitmap.
func TestServeNBD(t *testing.T) {
	testvol.Need(t, "nbdinfo", "nbdcopy", "qemu-img", "qemu-io")
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 32, Content: "basic"})
	ntfs := testvol.NTFS(t, testvol.NTFSSpec{SizeMiB: 32, Content: "basic"})
	dir := t.TempDir()
	fatCBI, ntfsCBI := filepath.Join(dir, "fat.cbi"), filepath.Join(dir, "ntfs.cbi")
	for _, args := range [][]string{{"backup", "-q", fat, fatCBI}, {"backup", "-q", ntfs, ntfsCBI}} {
		if _, stderr, code := cbimg(t, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	for _, tc := range []struct{ name, image string }{
		{"fat16-cbi", fatCBI},
		{"ntfs-cbi", ntfsCBI},
		{"fat16-partclone", testvol.Partclone(t, "partclone.fat16", fat, false)},
		{"ntfs-ntfsclone", testvol.NTFSClone(t, ntfs, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restored := filepath.Join(t.TempDir(), "restored")
			if _, stderr, code := cbimg(t, nil, "restore", "-q", "--yes", tc.image, restored); code != 0 {
				t.Fatalf("restore: %s", stderr)
			}
			want, err := os.ReadFile(restored)
			if err != nil {
				t.Fatal(err)
			}
			s := serve(t, tc.image, 1)
			if s.uris[0] != s.uri("") {
				t.Errorf("printed URI %q, want %q", s.uris[0], s.uri(""))
			}

			var info struct {
				Exports []struct {
					Size     int64 `json:"export-size"`
					ReadOnly bool  `json:"is_read_only"`
					Contexts []string
					BlockMax int64 `json:"block_size_maximum"`
				}
			}
			if err := json.Unmarshal([]byte(run(t, "nbdinfo", "--json", s.uri(""))), &info); err != nil {
				t.Fatal(err)
			}
			if e := info.Exports[0]; e.Size != int64(len(want)) || !e.ReadOnly || e.BlockMax != 32<<20 ||
				len(e.Contexts) != 1 || e.Contexts[0] != "base:allocation" {
				t.Errorf("nbdinfo: %+v (want size %d, read-only, base:allocation, max block 32 MiB)", e, len(want))
			}

			var got []mapEntry
			if err := json.Unmarshal([]byte(run(t, "nbdinfo", "--map", "--json", s.uri(""))), &got); err != nil {
				t.Fatal(err)
			}
			wm := wantMap(t, tc.image)
			if fmt.Sprint(got) != fmt.Sprint(wm) {
				t.Errorf("block-status map\n got %v\nwant %v", got, wm)
			}
			holes := 0
			for _, e := range got {
				if e.Type == 3 {
					holes++
					if !bytes.Equal(want[e.Offset:e.Offset+e.Length], make([]byte, e.Length)) {
						t.Errorf("hole at %d+%d is not zeros in the restore", e.Offset, e.Length)
					}
				}
			}
			if holes == 0 {
				t.Error("no holes reported for a volume with free clusters")
			}

			// Two copies at once, by two different clients.
			copied, converted := filepath.Join(t.TempDir(), "copy"), filepath.Join(t.TempDir(), "qemu")
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); run(t, "nbdcopy", s.uri(""), copied) }()
			go func() { defer wg.Done(); run(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", s.uri(""), converted) }()
			wg.Wait()
			for _, f := range []string{copied, converted} {
				if b, _ := os.ReadFile(f); !bytes.Equal(b, want) {
					t.Errorf("%s differs from the restore", filepath.Base(f))
				}
			}
			run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", s.uri(""), restored)

			rng := rand.New(rand.NewPCG(1, uint64(len(want))))
			for range 4 {
				off := rng.Int64N(int64(len(want)) - 4096)
				n := 1 + rng.Int64N(4096)
				if b := qemuRead(t, s.uri(""), off, n); !bytes.Equal(b, want[off:off+n]) {
					t.Errorf("qemu-io read %d at %d differs from the restore", n, off)
				}
			}
			// A hole reads as zeros; writes are refused.
			for _, e := range got {
				if e.Type == 3 {
					run(t, "qemu-io", "-r", "-f", "raw", "-c", fmt.Sprintf("read -P 0 %d %d", e.Offset, min(e.Length, 1<<20)), s.uri(""))
					break
				}
			}
			if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write 0 512", s.uri("")).CombinedOutput(); err == nil {
				t.Errorf("qemu-io write succeeded: %s", out)
			}
		})
	}
}

// nbdHello does the fixed newstyle handshake and NBD_OPT_EXPORT_NAME for
// the default export, returning the export size.
func nbdHello(t *testing.T, c net.Conn) int64 {
	t.Helper()
	var hello [18]byte
	if _, err := c.Read(hello[:]); err != nil {
		t.Fatal(err)
	}
	var req [20]byte
	binary.BigEndian.PutUint32(req[0:], 3) // fixed newstyle, no zeroes
	binary.BigEndian.PutUint64(req[4:], 0x49484156454f5054)
	binary.BigEndian.PutUint32(req[12:], 1) // NBD_OPT_EXPORT_NAME, name ""
	if _, err := c.Write(req[:]); err != nil {
		t.Fatal(err)
	}
	var rep [10]byte
	if _, err := c.Read(rep[:]); err != nil {
		t.Fatal(err)
	}
	return int64(binary.BigEndian.Uint64(rep[:]))
}

// nbdRequest sends one transmission request.
func nbdRequest(t *testing.T, c net.Conn, typ uint16, off uint64, n uint32) {
	t.Helper()
	var h [28]byte
	binary.BigEndian.PutUint32(h[0:], 0x25609513)
	binary.BigEndian.PutUint16(h[6:], typ)
	binary.BigEndian.PutUint64(h[8:], 7)
	binary.BigEndian.PutUint64(h[16:], off)
	binary.BigEndian.PutUint32(h[24:], n)
	if _, err := c.Write(h[:]); err != nil {
		t.Fatal(err)
	}
}

// Clients that send garbage, ask too much, or vanish mid-transfer end only
// their own connection: the server keeps serving others, and stops cleanly.
func TestServeNBDBadClients(t *testing.T) {
	testvol.Need(t, "nbdinfo", "nbdcopy")
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 48, Content: "basic"})
	img := filepath.Join(t.TempDir(), "fat.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", fat, img); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}
	s := serve(t, img, 1)
	dial := func() net.Conn {
		c, err := net.Dial("unix", s.sock)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(time.Minute))
		return c
	}
	// Garbage instead of the handshake.
	c := dial()
	c.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 100))
	c.Close()
	// A huge option length.
	c = dial()
	var opt [20]byte
	binary.BigEndian.PutUint32(opt[0:], 1)
	binary.BigEndian.PutUint64(opt[4:], 0x49484156454f5054)
	binary.BigEndian.PutUint32(opt[12:], 7)
	binary.BigEndian.PutUint32(opt[16:], 0xffffffff)
	c.Write(opt[:])
	c.Close()

	// A read above 32 MiB is refused with EINVAL and the connection
	// stays usable; a write is refused with EPERM.
	c = dial()
	size := nbdHello(t, c)
	if size != 48<<20 {
		t.Fatalf("export size %d", size)
	}
	nbdRequest(t, c, 0, 0, 32<<20+1)
	var rep [16]byte
	if _, err := c.Read(rep[:]); err != nil || binary.BigEndian.Uint32(rep[4:]) != 22 {
		t.Fatalf("read of 32 MiB + 1: errno %d, %v (want EINVAL)", binary.BigEndian.Uint32(rep[4:]), err)
	}
	nbdRequest(t, c, 1, 0, 512)
	c.Write(make([]byte, 512))
	if _, err := c.Read(rep[:]); err != nil || binary.BigEndian.Uint32(rep[4:]) != 1 {
		t.Fatalf("write: errno %d, %v (want EPERM)", binary.BigEndian.Uint32(rep[4:]), err)
	}
	// Simple replies (no structured replies negotiated) carry the bytes.
	nbdRequest(t, c, 0, 4096, 8192)
	got := make([]byte, 16+8192)
	if _, err := io.ReadFull(c, got); err != nil || binary.BigEndian.Uint32(got[4:]) != 0 {
		t.Fatalf("read: %v, errno %d", err, binary.BigEndian.Uint32(got[4:]))
	}
	wantVol, err := os.ReadFile(fat)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[16:], wantVol[4096:4096+8192]) {
		t.Error("a simple-reply read differs from the volume")
	}
	// A read past the end is refused too.
	nbdRequest(t, c, 0, uint64(size)-512, 1024)
	if _, err := c.Read(rep[:]); err != nil || binary.BigEndian.Uint32(rep[4:]) != 22 {
		t.Fatalf("read past the end: errno %d, %v (want EINVAL)", binary.BigEndian.Uint32(rep[4:]), err)
	}
	// Then a 32 MiB read, abandoned after a few bytes.
	nbdRequest(t, c, 0, 0, 32<<20)
	c.Read(rep[:])
	c.Close()
	// Garbage in the transmission phase.
	c = dial()
	nbdHello(t, c)
	c.Write(bytes.Repeat([]byte{0xff}, 4096))
	c.Close()

	// Meanwhile and after, a real client copies all of it.
	out := filepath.Join(t.TempDir(), "copy")
	run(t, "nbdcopy", s.uri(""), out)
	restored := filepath.Join(t.TempDir(), "restored")
	if _, stderr, code := cbimg(t, nil, "restore", "-q", "--yes", img, restored); code != 0 {
		t.Fatalf("restore: %s", stderr)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(restored)
	if !bytes.Equal(a, b) {
		t.Error("nbdcopy after bad clients differs from the restore")
	}
	// A second server on the same socket is refused.
	if _, stderr, code := cbimg(t, nil, "serve", img, "--nbd", "unix:"+s.sock); code != exitRefused {
		t.Errorf("second server on a busy socket: exit %d (%s), want %d", code, stderr, exitRefused)
	}
}

// A virtual disk and a raw disk file are served whole and per partition
// ("partN"); DISK@N serves one partition. Bytes equal the raw disk's.
func TestServeNBDDisk(t *testing.T) {
	testvol.Need(t, "nbdinfo", "nbdcopy", "qemu-img")
	raw := disktest.GPT(t)
	rawBytes, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	qcow := filepath.Join(t.TempDir(), "disk.qcow2")
	testvol.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
	tab := disktest.SfdiskJSON(t, raw)
	part := func(n int) []byte {
		for _, p := range tab.Partitions {
			if p.Number() == n {
				ss := int64(tab.SectorSize)
				return rawBytes[p.Start*ss : (p.Start+p.Size)*ss]
			}
		}
		t.Fatalf("no partition %d", n)
		return nil
	}
	copyOf := func(uri string) []byte {
		out := filepath.Join(t.TempDir(), "copy")
		run(t, "nbdcopy", uri, out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, disk := range []string{qcow, raw} {
		s := serve(t, disk, 1+len(tab.Partitions))
		if want := []string{s.uri(""), s.uri("part1"), s.uri("part2"), s.uri("part3"), s.uri("part4")}; fmt.Sprint(s.uris) != fmt.Sprint(want) {
			t.Errorf("%s: URIs %v, want %v", disk, s.uris, want)
		}
		list := run(t, "nbdinfo", "--list", s.uri(""))
		if !strings.Contains(list, `export="part3"`) || !strings.Contains(list, "whole disk") {
			t.Errorf("nbdinfo --list of %s:\n%s", disk, list)
		}
		if !bytes.Equal(copyOf(s.uri("")), rawBytes) {
			t.Errorf("%s: the whole-disk export differs from the raw disk", disk)
		}
		if !bytes.Equal(copyOf(s.uri("part3")), part(3)) {
			t.Errorf("%s: part3 differs from partition 3 of the raw disk", disk)
		}
		if out, err := exec.Command("nbdinfo", s.uri("part9")).CombinedOutput(); err == nil {
			t.Errorf("export part9 of %s opened: %s", disk, out)
		}
	}
	s := serve(t, qcow+"@1", 1)
	if !bytes.Equal(copyOf(s.uri("")), part(1)) {
		t.Error("DISK@1 differs from partition 1 of the raw disk")
	}
	// A qcow2 overlay over the export takes writes; the export stays as it was.
	overlay := filepath.Join(t.TempDir(), "overlay.qcow2")
	run(t, "qemu-img", "create", "-f", "qcow2", "-b", s.uri(""), "-F", "raw", overlay)
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 4096 8192", overlay)
	run(t, "qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 4096 8192", overlay)
	if !bytes.Equal(copyOf(s.uri("")), part(1)) {
		t.Error("the export changed under a written overlay")
	}
}

// A damaged chunk fails the reads that need it with an error the client
// sees; the server logs it and goes on serving.
func TestServeNBDDamaged(t *testing.T) {
	testvol.Need(t, "nbdinfo", "nbdcopy")
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 32, Content: "basic"})
	img := filepath.Join(t.TempDir(), "fat.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", "--compress", "none", fat, img); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)*6/10] ^= 0xff
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := cbimg(t, nil, "verify", "-q", img); code != exitDamaged {
		t.Fatalf("verify of the damaged image: exit %d, want %d", code, exitDamaged)
	}
	s := serve(t, img, 1)
	out := filepath.Join(t.TempDir(), "copy")
	if b, err := exec.Command("nbdcopy", s.uri(""), out).CombinedOutput(); err == nil {
		t.Errorf("nbdcopy of a damaged image succeeded: %s", b)
	}
	if size := strings.TrimSpace(run(t, "nbdinfo", "--size", s.uri(""))); size != strconv.Itoa(32<<20) {
		t.Errorf("after the failed copy: size %s", size)
	}
	if !strings.Contains(s.errb.String(), "nbd: read") {
		t.Errorf("the failed read is not logged: %s", s.errb)
	}
}

// The kernel's NBD client reads the export as a block device.
func TestServeNBDKernel(t *testing.T) {
	testvol.Need(t, "nbd-client")
	if _, err := os.Stat("/dev/nbd0"); err != nil {
		if out, err := exec.Command("modprobe", "nbd").CombinedOutput(); err != nil {
			t.Skipf("kernel NBD client unavailable: no /dev/nbd0 and modprobe nbd failed: %v %s", err, bytes.TrimSpace(out))
		}
		if _, err := os.Stat("/dev/nbd0"); err != nil {
			t.Skipf("kernel NBD client unavailable: no /dev/nbd0 after modprobe nbd")
		}
	}
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 32, Content: "basic"})
	img := filepath.Join(t.TempDir(), "fat.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", fat, img); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}
	s := serve(t, img, 1)
	dev := ""
	for i := range 16 {
		d := fmt.Sprintf("/dev/nbd%d", i)
		if exec.Command("nbd-client", "-c", d).Run() != nil { // not connected
			if out, err := exec.Command("nbd-client", "-unix", s.sock, d, "-readonly", "-N", "").CombinedOutput(); err != nil {
				t.Skipf("nbd-client %s: %v %s", d, err, out)
			}
			dev = d
			break
		}
	}
	if dev == "" {
		t.Skip("no free /dev/nbdN")
	}
	defer exec.Command("nbd-client", "-d", dev).Run()
	a, err := os.ReadFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(fat)
	if !bytes.Equal(a, b) {
		t.Errorf("%s (%d bytes) differs from the volume (%d bytes)", dev, len(a), len(b))
	}
}

// With --overlay the export takes writes, kept in the overlay file across
// restarts; the image is never written; the overlay of another image is
// refused.
func TestServeNBDOverlay(t *testing.T) {
	testvol.Need(t, "nbdinfo", "nbdcopy", "qemu-io")
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 32, Content: "basic"})
	dir := t.TempDir()
	img, restored, ov := filepath.Join(dir, "fat.cbi"), filepath.Join(dir, "restored"), filepath.Join(dir, "fat.overlay")
	for _, args := range [][]string{{"backup", "-q", fat, img}, {"restore", "-q", "--yes", img, restored}} {
		if _, stderr, code := cbimg(t, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	want, err := os.ReadFile(restored)
	if err != nil {
		t.Fatal(err)
	}
	imgSum := testvol.FileSHA256(t, img)
	s := serve(t, img, 1, "--overlay", ov)
	var got []mapEntry
	if err := json.Unmarshal([]byte(run(t, "nbdinfo", "--map", "--json", s.uri(""))), &got); err != nil {
		t.Fatal(err)
	}
	hole := got[len(got)-1]
	if hole.Type != 3 {
		t.Fatalf("no hole at the end: %v", got)
	}
	// Unaligned writes across blocks, one of them into free space.
	writes := []struct{ off, n int64 }{{1000, 5000}, {hole.Offset + 12345, 9000}}
	for i, w := range writes {
		run(t, "qemu-io", "-f", "raw", "-c", fmt.Sprintf("write -P %d %d %d", 0x41+i, w.off, w.n), s.uri(""))
		copy(want[w.off:w.off+w.n], bytes.Repeat([]byte{byte(0x41 + i)}, int(w.n)))
	}
	if strings.Contains(run(t, "nbdinfo", s.uri("")), "is_read_only: true") {
		t.Error("the export with an overlay is read-only")
	}
	got = nil
	json.Unmarshal([]byte(run(t, "nbdinfo", "--map", "--json", s.uri(""))), &got)
	for _, e := range got {
		if e.Type == 3 && e.Offset < writes[1].off+writes[1].n && writes[1].off < e.Offset+e.Length {
			t.Errorf("written range still reported as a hole: %v", e)
		}
	}
	s.stopFn()

	s = serve(t, img, 1, "--overlay", ov)
	out := filepath.Join(t.TempDir(), "copy")
	run(t, "nbdcopy", s.uri(""), out)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, want) {
		t.Error("after a restart, the export is not the restore with the writes")
	}
	s.stopFn()
	if testvol.FileSHA256(t, img) != imgSum {
		t.Error("the image changed")
	}

	other := filepath.Join(dir, "other.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"}), other); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}
	if _, stderr, code := cbimg(t, nil, "serve", other, "--overlay", ov, "--nbd", "unix:"+filepath.Join(dir, "x.sock")); code != exitRefused {
		t.Errorf("overlay of another image: exit %d (%s), want %d", code, stderr, exitRefused)
	}
}

// --nbd tcp:HOST:PORT listens there and prints an nbd:// URI; a bad --nbd
// is a usage error.
func TestServeNBDTCP(t *testing.T) {
	testvol.Need(t, "nbdinfo")
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 12, Content: "basic"})
	img := filepath.Join(t.TempDir(), "fat.cbi")
	if _, stderr, code := cbimg(t, nil, "backup", "-q", fat, img); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}
	cmd := exec.Command(bin, "serve", img, "--nbd", "tcp:127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	uri, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(uri, "nbd://127.0.0.1:") {
		t.Fatalf("printed %q, %v", uri, err)
	}
	st, _ := os.Stat(fat)
	if size := strings.TrimSpace(run(t, "nbdinfo", "--size", strings.TrimSpace(uri))); size != strconv.FormatInt(st.Size(), 10) {
		t.Errorf("size %s over TCP, want %d", size, st.Size())
	}
	if _, _, code := cbimg(t, nil, "serve", img, "--nbd", "http://x"); code != exitUsage {
		t.Errorf("--nbd http://x: exit %d, want %d", code, exitUsage)
	}
}
