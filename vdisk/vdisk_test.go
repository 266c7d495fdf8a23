package vdisk_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
	. "github.com/cbimg/cbimg/vdisk"
)

// A Windows-made MBR disk (one NTFS partition) in every format qemu-img
// and ewfacquire write, each with the raw bytes it must read as.
type fixture struct {
	name string // file to open
	ref  string // raw bytes it must equal
	kind Kind
}

var fixtures struct {
	once sync.Once
	dir  string
	raw  string
	list []fixture
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

// buildFixtures converts the raw disk into every format once per run.
func buildFixtures(t *testing.T) (string, []fixture) {
	t.Helper()
	testvol.Need(t, "qemu-img", "qemu-io", "ewfacquire")
	fixtures.once.Do(func() {
		dir, err := os.MkdirTemp("", "vdisk-test-")
		if err != nil {
			t.Fatal(err)
		}
		fixtures.dir = dir
		raw := testvol.Real(t, "ntfs/win10-mbr-disk-lastaccess.raw")
		fixtures.raw = raw
		p := func(n string) string { return filepath.Join(dir, n) }
		conv := func(out, fmt string, opts ...string) {
			args := append([]string{"convert", "-f", "raw", "-O", fmt}, opts...)
			testvol.Run(t, "qemu-img", append(args, raw, p(out))...)
		}
		add := func(name, ref string, k Kind) {
			fixtures.list = append(fixtures.list, fixture{p(name), ref, k})
		}
		conv("dyn.vhd", "vpc", "-o", "subformat=dynamic,force_size=on")
		add("dyn.vhd", raw, VHD)
		conv("fixed.vhd", "vpc", "-o", "subformat=fixed,force_size=on")
		add("fixed.vhd", raw, VHD)
		conv("dyn.vhdx", "vhdx")
		add("dyn.vhdx", raw, VHDX)
		conv("fixed.vhdx", "vhdx", "-o", "subformat=fixed")
		add("fixed.vhdx", raw, VHDX)
		conv("v2.qcow2", "qcow2", "-o", "compat=0.10")
		add("v2.qcow2", raw, QCOW2)
		conv("v3.qcow2", "qcow2", "-o", "compat=1.1,cluster_size=4096")
		add("v3.qcow2", raw, QCOW2)
		conv("zlib.qcow2", "qcow2", "-c")
		add("zlib.qcow2", raw, QCOW2)
		conv("zstd.qcow2", "qcow2", "-c", "-o", "compression_type=zstd")
		add("zstd.qcow2", raw, QCOW2)
		// An overlay on a compressed qcow2, with writes of its own, one
		// zeroed range, and a size beyond its backing file's.
		testvol.Run(t, "qemu-img", "create", "-f", "qcow2", "-b", "zlib.qcow2", "-F", "qcow2", p("overlay.qcow2"), "300M")
		testvol.Run(t, "qemu-io", "-c", "write -P 0xab 1M 192k", "-c", "write -z 2M 64k", "-c", "write -P 0x5c 299M 64k", p("overlay.qcow2"))
		testvol.Run(t, "qemu-img", "convert", "-O", "raw", p("overlay.qcow2"), p("overlay.raw"))
		add("overlay.qcow2", p("overlay.raw"), QCOW2)
		// A qcow2 straight over the raw file.
		testvol.Run(t, "qemu-img", "create", "-f", "qcow2", "-b", raw, "-F", "raw", p("onraw.qcow2"))
		add("onraw.qcow2", raw, QCOW2)
		conv("sparse.vmdk", "vmdk", "-o", "subformat=monolithicSparse")
		add("sparse.vmdk", raw, VMDK)
		conv("stream.vmdk", "vmdk", "-o", "subformat=streamOptimized")
		add("stream.vmdk", raw, VMDK)
		conv("flat.vmdk", "vmdk", "-o", "subformat=monolithicFlat")
		add("flat.vmdk", raw, VMDK)
		testvol.Run(t, "ewfacquire", "-u", "-t", p("ev"), "-c", "deflate:fast", "-S", "1MiB", "-f", "encase6", "-q", raw)
		add("ev.E01", raw, EWF)
		testvol.Run(t, "ewfacquire", "-u", "-t", p("plain"), "-c", "none", "-f", "encase6", "-q", raw)
		add("plain.E01", raw, EWF)
	})
	if fixtures.list == nil {
		t.Fatal("fixtures were not built")
	}
	return fixtures.dir, fixtures.list
}

var refSums sync.Map

// refSHA hashes a reference file once per run.
func refSHA(t *testing.T, path string) [32]byte {
	if s, ok := refSums.Load(path); ok {
		return s.([32]byte)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	s := sha(t, f, st.Size())
	refSums.Store(path, s)
	return s
}

func sha(t *testing.T, r io.ReaderAt, size int64) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// TestReadersEqualRaw: every format reads as the raw disk it was made from
// (qemu-img's raw output for an overlay), whole and by random reads.
func TestReadersEqualRaw(t *testing.T) {
	_, list := buildFixtures(t)
	for _, fx := range list {
		t.Run(filepath.Base(fx.name), func(t *testing.T) {
			k, err := Detect(fx.name)
			if err != nil || k != fx.kind {
				t.Fatalf("Detect = %v, %v; want %v", k, err, fx.kind)
			}
			d, err := Open(fx.name)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ref, err := os.Open(fx.ref)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			st, _ := ref.Stat()
			if d.Size() != st.Size() {
				t.Fatalf("size %d, want %d", d.Size(), st.Size())
			}
			if sha(t, d, d.Size()) != refSHA(t, fx.ref) {
				t.Fatalf("%s (%s) does not read as %s", fx.name, d.Format(), fx.ref)
			}
			rng := rand.New(rand.NewSource(1))
			for range 40 {
				n := rng.Intn(300000) + 1
				off := rng.Int63n(d.Size() + 1000)
				a, b := make([]byte, n), make([]byte, n)
				na, ea := d.ReadAt(a, off)
				nb, eb := ref.ReadAt(b, off)
				if na != nb || !bytes.Equal(a[:na], b[:nb]) || (ea == nil) != (eb == nil) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v; raw gives %d, %v", n, off, na, ea, nb, eb)
				}
			}
		})
	}
}

// TestRawIsNotVirtual: a raw disk is not taken for a virtual one.
func TestRawIsNotVirtual(t *testing.T) {
	buildFixtures(t)
	if k, err := Detect(fixtures.raw); err != nil || k != Raw {
		t.Fatalf("Detect(raw) = %v, %v", k, err)
	}
	if _, err := Open(fixtures.raw); !errors.Is(err, ErrNotVirtual) {
		t.Fatalf("Open(raw) = %v, want ErrNotVirtual", err)
	}
}

// TestVerify: the E01's stored MD5 equals ewfverify's and the raw disk's;
// other formats report their content's MD5.
func TestVerify(t *testing.T) {
	dir, _ := buildFixtures(t)
	want := fmt.Sprintf("%x", md5sum(t, fixtures.raw))
	out := testvol.Run(t, "ewfverify", "-q", filepath.Join(dir, "ev.E01"))
	if !strings.Contains(out, want) {
		t.Fatalf("ewfverify does not report %s:\n%s", want, out)
	}
	for _, n := range []string{"ev.E01", "dyn.vhdx"} {
		res, err := Verify(context.Background(), filepath.Join(dir, n))
		if err != nil || res.MD5 != want || (n == "ev.E01") != (res.StoredMD5 == want) {
			t.Errorf("Verify(%s) = %+v, %v; want MD5 %s", n, res, err, want)
		}
	}
}

func md5sum(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := md5.New()
	io.Copy(h, f)
	return h.Sum(nil)
}

// TestRealImagesAreRaw: none of the raw volumes and disks in
// testdata/realimages is taken for a virtual disk (one of them ends in a
// VHD footer whose size does not match: it stays raw).
func TestRealImagesAreRaw(t *testing.T) {
	seen := map[string]bool{}
	for _, rel := range testvol.RealList(t) {
		rel, _, _ = strings.Cut(rel, "@")
		if seen[rel] {
			continue
		}
		seen[rel] = true
		if k, err := Detect(testvol.Real(t, rel)); err != nil || k != Raw {
			t.Errorf("%s: Detect = %v, %v", rel, k, err)
		}
	}
}

// TestConcurrentReads: reads from several goroutines (as FUSE sends them)
// return the raw disk's bytes; run with -race to check the caches.
func TestConcurrentReads(t *testing.T) {
	dir, _ := buildFixtures(t)
	ref, err := os.Open(fixtures.raw)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, n := range []string{"zlib.qcow2", "stream.vmdk", "ev.E01", "dyn.vhdx", "dyn.vhd"} {
		d, err := Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(g)))
				a, b := make([]byte, 100000), make([]byte, 100000)
				for range 30 {
					off := rng.Int63n(d.Size() - int64(len(a)))
					if _, err := d.ReadAt(a, off); err != nil {
						t.Errorf("%s at %d: %v", n, off, err)
						return
					}
					ref.ReadAt(b, off)
					if !bytes.Equal(a, b) {
						t.Errorf("%s at %d: not the raw disk's bytes", n, off)
						return
					}
				}
			}()
		}
		wg.Wait()
		d.Close()
	}
}
