//go:build linux

package backupcore

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/faultdev"
	"github.com/cbimg/cbimg/internal/testvol"
)

// A read error in the source fails the backup, names the offset, and
// leaves no image.
func TestSourceReadError(t *testing.T) {
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	// A bad range inside used data: the 10 MiB file of the basic content is
	// somewhere in the first 40 MiB; take a range the bitmap says is used.
	img := filepath.Join(t.TempDir(), "x.cbi")
	probe, err := Backup(context.Background(), Options{Source: src, Image: img, NoDefaultExcludes: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := image.NextRun(r.Bitmap, probe.Header.ClusterCount, 2000)
	r.Close()
	badOff := int64(c) * int64(probe.Header.ClusterSize)
	dev := faultdev.Serve(t, src, faultdev.Range{Off: badOff, Len: 4096})
	img2 := filepath.Join(t.TempDir(), "y.cbi")
	_, err = Backup(context.Background(), Options{Source: dev, Image: img2, NoDefaultExcludes: true})
	var re *SourceReadError
	if !errors.As(err, &re) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("backup over a bad sector: %v", err)
	}
	if re.Offset > badOff || re.Offset+int64(re.Length) <= badOff || re.Length > int(probe.Header.ClusterSize) {
		t.Errorf("error names [%d,+%d), bad sector at %d", re.Offset, re.Length, badOff)
	}
	if m, _ := filepath.Glob(img2 + "*"); len(m) > 0 {
		t.Fatalf("left behind: %v", m)
	}
	if !strings.Contains(err.Error(), "read source at byte") {
		t.Errorf("message: %v", err)
	}
}

// With Rescue the bad cluster is stored as zeros and listed in the image;
// everything else is intact.
func TestRescue(t *testing.T) {
	src := testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"})
	dir := t.TempDir()
	good := filepath.Join(dir, "good.cbi")
	probe, err := Backup(context.Background(), Options{Source: src, Image: good, NoDefaultExcludes: true})
	if err != nil {
		t.Fatal(err)
	}
	gr, _ := image.Open(good, nil)
	defer gr.Close()
	c, _, _ := image.NextRun(gr.Bitmap, probe.Header.ClusterCount, 3000)
	cs := int64(probe.Header.ClusterSize)
	dev := faultdev.Serve(t, src, faultdev.Range{Off: int64(c)*cs + 100, Len: 10}, faultdev.Range{Off: int64(c+1) * cs, Len: 1})
	img := filepath.Join(dir, "r.cbi")
	res, err := Backup(context.Background(), Options{Source: dev, Image: img, NoDefaultExcludes: true, Rescue: true})
	if err != nil {
		t.Fatalf("rescue backup: %v", err)
	}
	if len(res.Header.Unreadable) != 1 || res.Header.Unreadable[0] != (image.Run{Start: c, Count: 2}) {
		t.Fatalf("unreadable %v, want [{%d 2}]", res.Header.Unreadable, c)
	}
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Header.Unreadable) != 1 {
		t.Fatalf("image lists %v", r.Header.Unreadable)
	}
	if rep, err := r.Verify(context.Background(), nil); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Error())
	}
	// Same bytes as the good image except the two clusters, which are zero.
	for _, off := range []int64{0, int64(c-1) * cs, int64(c) * cs, int64(c+1) * cs, int64(c+2) * cs} {
		a, b := make([]byte, cs), make([]byte, cs)
		gr.ReadAt(a, off)
		r.ReadAt(b, off)
		bad := off == int64(c)*cs || off == int64(c+1)*cs
		if bad && !bytes.Equal(b, make([]byte, cs)) || !bad && !bytes.Equal(a, b) {
			t.Errorf("cluster at %d: wrong contents (unreadable=%v)", off, bad)
		}
	}
}
