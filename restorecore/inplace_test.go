//go:build linux

package restorecore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/restorecore"
)

// fsState is what sleuthkit sees: the fls listing of live entries and the
// SHA-256 of every regular file (NTFS metafiles left out: the driver
// rewrites $LogFile and $Volume when it mounts and unmounts).
type fsState struct {
	fls    []string
	hashes map[string]string
	sizes  map[string]int
}

func stateOf(t *testing.T, vol string) fsState {
	t.Helper()
	s := fsState{hashes: map[string]string{}, sizes: map[string]int{}}
	for _, l := range oracle.Live(oracle.FLS(t, vol)) {
		if _, p, ok := strings.Cut(l, ":\t"); ok && strings.HasPrefix(p, "$") {
			continue
		}
		s.fls = append(s.fls, l)
	}
	for _, f := range oracle.Files(t, vol) {
		if strings.HasPrefix(f.Path, "$") {
			continue
		}
		b := oracle.ICat(t, vol, f.Addr)
		s.hashes[f.Path] = oracle.Hex(b)
		s.sizes[f.Path] = len(b)
	}
	return s
}

// expect is the state a restore must give: the state at backup, with the
// files the image left out reading as zeros.
func (s fsState) expect(h *image.Header) fsState {
	out := fsState{fls: s.fls, hashes: map[string]string{}, sizes: s.sizes}
	for p, h := range s.hashes {
		out.hashes[p] = h
	}
	for _, x := range h.Exclusions {
		if x.Reason == backupcore.InPlaceRule {
			continue
		}
		p := strings.TrimPrefix(x.Path, "/")
		if n, ok := s.sizes[p]; ok {
			out.hashes[p] = oracle.Hex(make([]byte, n))
		}
	}
	return out
}

func sameState(t *testing.T, what string, got, want fsState) {
	t.Helper()
	if strings.Join(got.fls, "\n") != strings.Join(want.fls, "\n") {
		t.Errorf("%s: fls differs:\n got %q\nwant %q", what, got.fls, want.fls)
	}
	for p, h := range want.hashes {
		if got.hashes[p] != h {
			t.Errorf("%s: %s: icat hash %.12s, want %.12s", what, p, got.hashes[p], h)
		}
	}
	if len(got.hashes) != len(want.hashes) {
		t.Errorf("%s: %d files, want %d", what, len(got.hashes), len(want.hashes))
	}
}

// mountNTFS mounts vol with ntfs-3g (in the foreground, so unmount can wait
// for it) and returns the mount point and the unmount function.
func mountNTFS(t *testing.T, vol string, opts ...string) (string, func()) {
	t.Helper()
	testvol.Need(t, "ntfs-3g", "fusermount")
	dir := t.TempDir()
	o := "no_detach"
	for _, x := range opts {
		o += "," + x
	}
	return dir, testvol.MountDriver(t, exec.Command("ntfs-3g", "-o", o, vol, dir), dir)
}

// mountFusefat mounts a FAT volume read-write with fusefat.
func mountFusefat(t *testing.T, vol string) (string, func()) {
	t.Helper()
	if _, err := exec.LookPath("fusefat"); err != nil {
		t.Fatalf("fusefat is missing (apt-get install fusefat)")
	}
	dir := t.TempDir()
	return dir, testvol.MountDriver(t, exec.Command("fusefat", "-f", "-o", "rw+", vol, dir), dir)
}

// sha identifies the state of a volume file: any write changes its
// modification time (nanoseconds) or its first 32 MiB, where the metadata is.
func sha(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, io.LimitReader(f, 32<<20))
	return fmt.Sprintf("%d %d %s", st.ModTime().UnixNano(), st.Size(), hex.EncodeToString(h.Sum(nil)))
}

func mtools(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func verifyImage(t *testing.T, spec string) {
	t.Helper()
	r, err := locate.OpenImage(spec)
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	defer r.Close()
	rep, err := r.Verify(context.Background(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %s: %v %v", spec, err, rep.Error())
	}
}

// cycle changes the volume, restores it in place from spec and checks the
// result against want, twice (the second time with ZeroFree).
func cycle(t *testing.T, vol, spec string, want fsState, change func(round int)) {
	t.Helper()
	for round := 1; round <= 2; round++ {
		change(round)
		if changed := stateOf(t, vol); strings.Join(changed.fls, "\n") == strings.Join(want.fls, "\n") {
			t.Fatalf("round %d: the changes did not change the file list", round)
		}
		// The second round also zeros free clusters, around the image.
		res, err := restorecore.Restore(context.Background(), restorecore.Options{Image: spec, Target: vol, ZeroFree: round == 2})
		if err != nil {
			t.Fatalf("round %d: restore in place: %v", round, err)
		}
		if res.Zeroed == 0 && len(res.Header.Exclusions) > 1 {
			t.Errorf("round %d: excluded files were not zeroed", round)
		}
		sameState(t, fmt.Sprintf("round %d", round), stateOf(t, vol), want)
		verifyImage(t, spec)
	}
}

// NTFS: the image is written under the user's ntfs-3g mount of the source.
func TestInPlaceNTFS(t *testing.T) {
	testvol.Need(t, "fls", "icat")
	vol := testvol.Copy(t, testvol.NTFS(t, testvol.NTFSSpec{SizeMiB: 256, Content: "basic"}))
	mnt, unmount := mountNTFS(t, vol)
	res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: filepath.Join(mnt, "Data", "c.cbi"), Codec: image.CodecZstd})
	if err != nil {
		t.Fatalf("backup in place: %v", err)
	}
	// The image reads back through the driver that was bypassed.
	verifyImage(t, filepath.Join(mnt, "Data", "c.cbi"))
	unmount()
	spec := vol + ":/Data/c.cbi"
	verifyImage(t, spec)
	x := res.Header.Exclusions[len(res.Header.Exclusions)-1]
	if x.Reason != backupcore.InPlaceRule || x.Path != "/Data/c.cbi" || x.Clusters == 0 {
		t.Fatalf("the image's own file is not excluded: %+v", x)
	}
	want := stateOf(t, vol)
	if _, ok := want.hashes["Data/c.cbi"]; !ok {
		t.Fatalf("the image file is not listed: %v", want.fls)
	}
	want = want.expect(res.Header)
	cycle(t, vol, spec, want, func(round int) {
		m, un := mountNTFS(t, vol)
		defer un()
		if err := os.Remove(filepath.Join(m, "Data", "4095.bin")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(m, "Documents", fmt.Sprintf("new-%d.txt", round)), bytes.Repeat([]byte("new"), 5000), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(m, "Documents", "readme.txt"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("changed after the backup\n")
		f.Close()
	})
}

// FAT32: cbimg creates the image file itself (mtools) in the unmounted
// source named as SOURCE:/path.
func TestInPlaceFAT32(t *testing.T) {
	testvol.Need(t, "fls", "icat", "mcopy", "mdel")
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 300, Content: "basic"}))
	spec := vol + ":/DOCS/backup.cbi"
	res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: spec, Codec: image.CodecZstd})
	if err != nil {
		t.Fatalf("backup in place: %v", err)
	}
	verifyImage(t, spec)
	oracle.FsckFAT(t, vol)
	want := stateOf(t, vol).expect(res.Header)
	if _, ok := want.hashes["DOCS/backup.cbi"]; !ok {
		t.Fatalf("the image file is not listed: %v", want.fls)
	}
	cycle(t, vol, spec, want, func(round int) {
		mtools(t, "mdel", "-i", vol, "::/Data/4095.bin")
		new := filepath.Join(t.TempDir(), "new.bin")
		os.WriteFile(new, bytes.Repeat([]byte{byte(round)}, 300000), 0o644)
		mtools(t, "mcopy", "-i", vol, new, fmt.Sprintf("::/DOCS/NEW%d.BIN", round))
		mtools(t, "mcopy", "-o", "-i", vol, new, "::/DOCS/README.TXT")
	})
	oracle.FsckFAT(t, vol)
}

// FAT32 under a fusefat mount: the image is written under the user's mount.
func TestInPlaceFAT32Fusefat(t *testing.T) {
	testvol.Need(t, "fls", "icat", "mcopy", "mdel")
	vol := testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 300, Content: "basic"}))
	mnt, unmount := mountFusefat(t, vol)
	res, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: filepath.Join(mnt, "Data", "c.cbi"), Codec: image.CodecZstd})
	if err != nil {
		t.Fatalf("backup in place under fusefat: %v", err)
	}
	if x := res.Header.Exclusions[len(res.Header.Exclusions)-1]; x.Reason != backupcore.InPlaceRule {
		t.Fatalf("the image was not written in place: %+v", res.Header.Exclusions)
	}
	verifyImage(t, filepath.Join(mnt, "Data", "c.cbi"))
	spec := vol + ":/Data/c.cbi"
	// fusefat does not name its device in the mount table; it is found anyway.
	if _, err := restorecore.Restore(context.Background(), restorecore.Options{Image: spec, Target: vol}); !errors.Is(err, restorecore.ErrTargetMounted) {
		t.Fatalf("restore in place under a fusefat mount: want a refusal, got %v", err)
	}
	if _, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: vol + ":/Data/d.cbi"}); !errors.Is(err, backupcore.ErrInPlaceUnsafe) {
		t.Fatalf("backup to PARTITION:PATH under a fusefat mount: want a refusal, got %v", err)
	}
	unmount()
	want := stateOf(t, vol).expect(res.Header)
	cycle(t, vol, spec, want, func(round int) {
		mtools(t, "mdel", "-i", vol, "::/DOCS/ONE.TXT")
		new := filepath.Join(t.TempDir(), "new.bin")
		os.WriteFile(new, bytes.Repeat([]byte{byte(round)}, 70000), 0o644)
		mtools(t, "mcopy", "-i", vol, new, fmt.Sprintf("::/Data/NEW%d.BIN", round))
	})
}

// Refusals come before anything is written.
func TestInPlaceRefusals(t *testing.T) {
	testvol.Need(t, "mcopy")
	fat := testvol.FAT(t, testvol.FATSpec{Bits: 32, SizeMiB: 300, Content: "basic"})
	backupErr := func(src, img string) error {
		t.Helper()
		before := sha(src)
		_, err := backupcore.Backup(context.Background(), backupcore.Options{Source: src, Image: img, Codec: image.CodecZstd})
		if after := sha(src); after != before {
			t.Errorf("backup to %s changed the source although it failed (%v)", img, err)
		}
		return err
	}

	t.Run("free space", func(t *testing.T) {
		vol := testvol.Copy(t, fat)
		big := filepath.Join(t.TempDir(), "big")
		f, _ := os.Create(big)
		f.Truncate(200 << 20)
		f.Close()
		mtools(t, "mcopy", "-i", vol, big, "::/BIG.BIN")
		err := backupErr(vol, vol+":/DOCS/c.cbi")
		if !errors.Is(err, backupcore.ErrInPlaceUnsafe) || !strings.Contains(err.Error(), "free clusters") {
			t.Fatalf("want a refusal for free space, got %v", err)
		}
	})
	t.Run("exists, no directory, other partition, split", func(t *testing.T) {
		vol := testvol.Copy(t, fat)
		other := testvol.Copy(t, fat)
		for _, tc := range []struct{ img, want string }{
			{vol + ":/DOCS/README.TXT", "already exists"},
			{vol + ":/Nowhere/c.cbi", "no directory"},
			{other + ":/DOCS/c.cbi", "only for the partition being backed up"},
		} {
			if err := backupErr(vol, tc.img); !errors.Is(err, backupcore.ErrInPlaceUnsafe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: want %q, got %v", tc.img, tc.want, err)
			}
		}
		_, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: vol + ":/DOCS/c.cbi", Split: 1 << 20})
		if !errors.Is(err, backupcore.ErrInPlaceUnsafe) {
			t.Errorf("split in place: %v", err)
		}
	})
	t.Run("read-only mount", func(t *testing.T) {
		vol := testvol.Copy(t, testvol.NTFS(t, testvol.NTFSSpec{SizeMiB: 256, Content: "basic"}))
		mnt, _ := mountNTFS(t, vol, "ro")
		if err := backupErr(vol, filepath.Join(mnt, "Data", "c.cbi")); !errors.Is(err, backupcore.ErrInPlaceUnsafe) || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("want a refusal for a read-only mount, got %v", err)
		}
		if err := backupErr(vol, vol+":/Data/c.cbi"); !errors.Is(err, backupcore.ErrInPlaceUnsafe) || !strings.Contains(err.Error(), "is mounted at") {
			t.Fatalf("want a refusal for PARTITION:PATH of a mounted source, got %v", err)
		}
	})
	t.Run("restore of an image not made in place", func(t *testing.T) {
		vol := testvol.Copy(t, fat)
		img := filepath.Join(t.TempDir(), "outside.cbi")
		backup(t, vol, img, false)
		mtools(t, "mcopy", "-i", vol, img, "::/DOCS/OUTSIDE.CBI")
		before := sha(vol)
		_, err := restorecore.Restore(context.Background(), restorecore.Options{Image: vol + ":/DOCS/OUTSIDE.CBI", Target: vol})
		if !errors.Is(err, restorecore.ErrInPlaceUnsafe) {
			t.Fatalf("want a refusal, got %v", err)
		}
		if sha(vol) != before {
			t.Fatal("the refused restore wrote to the target")
		}
	})
}

// Something that writes to the mounted file system during the backup makes
// the backup fail, and no image is left that verifies.
func TestInPlaceChangedDuringBackup(t *testing.T) {
	vol := testvol.Copy(t, testvol.NTFS(t, testvol.NTFSSpec{SizeMiB: 256, Content: "basic"}))
	mnt, _ := mountNTFS(t, vol)
	img := filepath.Join(mnt, "Data", "c.cbi")
	wrote := false
	_, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: img, Codec: image.CodecZstd,
		Progress: func(p backupcore.Progress) {
			if p.Phase == "copy" && !wrote {
				wrote = true
				if err := os.WriteFile(filepath.Join(mnt, "intruder.txt"), []byte("written during the backup"), 0o644); err != nil {
					t.Error(err)
				}
			}
		}})
	if !errors.Is(err, backupcore.ErrInPlaceUnsafe) || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("want the change detected, got %v", err)
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the discarded image file is still there (%v)", err)
	}
}
