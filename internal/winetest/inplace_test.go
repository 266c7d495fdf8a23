//go:build linux

package winetest

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
)

// TestInPlace runs the Windows way of storing an image inside the volume
// it backs up: a volume mounted by a FUSE driver (ntfs-3g, fusefat) is a
// Wine drive, its file the drive's raw device, and cbimg.exe backs the
// drive up into a file on it (cbimg backup M: M:\Backups\img.cbi). Wine
// answers FSCTL_LOCK_VOLUME and FSCTL_UNLOCK_VOLUME with success without
// doing anything and FSCTL_GET_RETRIEVAL_POINTERS with a placeholder, so
// the clusters come from cbimg's own reader alone (with a warning) and
// nothing but the test keeps the driver from writing meanwhile. The
// Linux cbimg then checks the image where it lies, restores it elsewhere
// for sleuthkit to compare, and cbimg.exe restores the volume in place
// from the image inside it.
func TestInPlace(t *testing.T) {
	for _, c := range []struct {
		name  string
		ntfs  bool
		drive string
	}{
		{"ntfs", true, "M:"},
		{"fat32", false, "N:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			inPlace(t, c.ntfs, c.drive)
		})
	}
}

func inPlace(t *testing.T, ntfs bool, drive string) {
	work := t.TempDir()
	var vol string
	if ntfs {
		vol = testvol.Copy(t, testvol.NTFS(t, testvol.NTFSSpec{Content: "basic"}))
	} else {
		vol = testvol.Copy(t, testvol.FAT(t, testvol.FATSpec{Bits: 32, Content: "basic"}))
	}
	const inside = "/Backups/img.cbi"
	img := drive + `\Backups\img.cbi`
	before := fileHashes(t, vol, "")

	dir, unmount := mountRW(t, vol, ntfs)
	if err := os.Mkdir(filepath.Join(dir, "Backups"), 0o755); err != nil {
		t.Fatal(err)
	}
	env.MapDrive(t, drive, dir)
	env.MapDevice(t, drive, vol)
	r := mustOK(t, "wine backup "+drive+" "+img, env.Wine(t, work, nil, "backup", drive, img))
	t.Logf("cbimg.exe backup: %s%s", r.Stdout, r.Stderr)
	if !strings.Contains(r.Stdout, "excluded /Backups/img.cbi (the image itself") {
		t.Errorf("the backup does not report its own file as excluded:\n%s", r.Stdout)
	}
	// Wine's placeholder answer must be taken for "not implemented", never
	// for a list of clusters.
	if !strings.Contains(r.Stderr, "FSCTL_GET_RETRIEVAL_POINTERS") {
		t.Logf("Wine now answers FSCTL_GET_RETRIEVAL_POINTERS: the driver's cluster list was compared")
	}
	// Refusals leave nothing behind, and a second backup to the same name
	// leaves the first image alone.
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"backup", drive, img}, "exists"},
		{[]string{"backup", drive, drive + `\NoSuchDir\x.cbi`}, "no directory"},
		{[]string{"backup", drive, drive + `\Backups\split.cbi`, "--split", "10M"}, "cannot be split"},
	} {
		r := env.Wine(t, work, nil, c.args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, c.msg) {
			t.Errorf("cbimg.exe %s: exit %d, %q; want %q", strings.Join(c.args, " "), r.Code, r.Stderr, c.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "Backups", "split.cbi")); err == nil {
		t.Error("a refused in-place backup left its file")
	}
	unmount()

	// The Linux build reads the image where it lies, through the raw
	// volume, and finds its own file excluded.
	spec := vol + ":" + inside
	mustOK(t, "linux verify "+spec, env.Native(t, work, nil, "verify", spec))
	info := parseInfo(t, mustOK(t, "linux info", env.Native(t, work, nil, "info", "--json", spec)).Stdout)
	if b, _ := json.Marshal(info["exclusions"]); !bytes.Contains(b, []byte(`"this image"`)) {
		t.Errorf("info lists no \"this image\" exclusion: %s", b)
	}

	// Nothing but the image file changed in the volume.
	after := fileHashes(t, vol, inside)
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed during the in-place backup", p)
		}
	}

	// Restored elsewhere, sleuthkit sees the same files with the same
	// bytes; the image's own file is there, full of zeros.
	restored := filepath.Join(work, "restored")
	mustOK(t, "linux restore", env.Native(t, work, nil, "restore", spec, restored, "--yes"))
	if a, b := oracle.Live(oracle.FLS(t, vol)), oracle.Live(oracle.FLS(t, restored)); !reflect.DeepEqual(a, b) {
		t.Errorf("fls of the restored volume differs from the source's:\n%v\n%v", a, b)
	}
	if got := fileHashes(t, restored, inside); !reflect.DeepEqual(got, after) {
		t.Errorf("icat of the restored volume differs from the source's:\n%v\n%v", got, after)
	}
	for _, f := range oracle.Files(t, restored) {
		if "/"+f.Path == inside && !oracle.IsZero(oracle.ICat(t, restored, f.Addr)) {
			t.Errorf("the image's own file is not zeros in the restored volume")
		}
	}
	if !ntfs {
		if a, b := fsckReport(t, vol), fsckReport(t, restored); a != b {
			t.Errorf("fsck.fat -n of the restored volume differs from the source's:\n%s\n%s", a, b)
		}
	}

	// Change the volume, then cbimg.exe restores it in place from the
	// image inside it: the volume is as it was after the backup, and the
	// image still reads.
	listing := oracle.Live(oracle.FLS(t, vol))
	dir, unmount = mountRW(t, vol, ntfs)
	env.MapDrive(t, drive, dir)
	// A regular file to delete, the same in every run (fls also lists a FAT
	// volume label, which is no file).
	var victim string
	for _, p := range slices.Sorted(maps.Keys(before)) {
		if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil && st.Mode().IsRegular() {
			victim = p
			break
		}
	}
	if victim == "" {
		t.Fatal("no regular file to delete")
	}
	if err := os.Remove(filepath.Join(dir, filepath.FromSlash(victim))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "after-backup.txt"), bytes.Repeat([]byte("new data "), 50000), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()
	if reflect.DeepEqual(oracle.Live(oracle.FLS(t, vol)), listing) {
		t.Fatal("the volume did not change")
	}
	r = mustOK(t, "wine restore "+img+" "+drive, env.Wine(t, work, nil, "restore", img, drive, "--yes"))
	t.Logf("cbimg.exe restore: %s%s", r.Stdout, r.Stderr)
	if got := oracle.Live(oracle.FLS(t, vol)); !reflect.DeepEqual(got, listing) {
		t.Errorf("fls after the in-place restore differs from after the backup:\n%v\n%v", got, listing)
	}
	if got := fileHashes(t, vol, inside); !reflect.DeepEqual(got, after) {
		t.Errorf("icat after the in-place restore differs from after the backup")
	}
	mustOK(t, "linux verify after the in-place restore", env.Native(t, work, nil, "verify", spec))
	if !ntfs {
		if got := fsckReport(t, vol); got != fsckReport(t, restored) {
			t.Errorf("fsck.fat -n after the in-place restore:\n%s", got)
		}
	}
}

// fsckReport is fsck.fat -n's report without the dirty bit: the image was
// taken while fusefat had the volume mounted, which sets it, so a volume
// restored from it has it set.
func fsckReport(t *testing.T, vol string) string {
	var keep []string
	for _, l := range strings.Split(oracle.Fsck(t, vol), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "irty bit") || l == "Leaving filesystem unchanged." || strings.HasPrefix(l, "exit ") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// fileHashes maps the path of every allocated file of vol but skip and
// the files excluded by default (restored as zeros) to the hash of its
// bytes as icat reads them.
func fileHashes(t *testing.T, vol, skip string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range oracle.Files(t, vol) {
		switch strings.ToLower(f.Path) {
		case "hiberfil.sys", "pagefile.sys", "swapfile.sys":
			continue
		}
		if p := "/" + f.Path; p != skip && !strings.HasPrefix(f.Path, "$") {
			m[f.Path] = oracle.ICatHash(t, vol, f.Addr)
		}
	}
	return m
}

// mountRW mounts vol read-write with the FUSE driver Linux users have for
// it, in the foreground, and returns the directory and an unmount that
// waits for the driver to write everything and exit.
func mountRW(t *testing.T, vol string, ntfs bool) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	var cmd *exec.Cmd
	if ntfs {
		testvol.Need(t, "ntfs-3g", "fusermount")
		cmd = exec.Command("ntfs-3g", "-o", "no_detach,noatime", vol, dir)
	} else {
		testvol.Need(t, "fusefat", "fusermount")
		cmd = exec.Command("fusefat", "-f", "-o", "rw+", vol, dir)
	}
	return dir, testvol.MountDriver(t, cmd, dir)
}
