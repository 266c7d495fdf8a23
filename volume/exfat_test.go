//go:build linux

package volume

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/oracle"
	"github.com/cbimg/cbimg/internal/testvol"
)

// exfatSpecs are the exFAT fixtures: several cluster and sector sizes.
var exfatSpecs = []testvol.ExFATSpec{
	{Content: "full"},                                       // mkfs default (4 KiB clusters), 512-byte sectors
	{ClusterSize: 512, Content: "basic"},                    // one sector per cluster
	{ClusterSize: 32768, SectorSize: 4096, Content: "full"}, // 4 KiB sectors
	{ClusterSize: 1 << 20, SectorSize: 4096, Content: "basic"},
	{SizeMiB: 256, ClusterSize: 32 << 20, Content: "empty"}, // the largest clusters
}

// exfatDump returns dump.exfat's "Free Clusters" figure.
func exfatDump(t testing.TB, img string) (free uint64) {
	t.Helper()
	out := fatRunTool(t, "dump.exfat", img)
	m := regexp.MustCompile(`Free Clusters:\s*(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dump.exfat: no free cluster count in\n%s", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

func exfatFsckClean(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command("fsck.exfat", "-n", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "clean") {
		t.Fatalf("fsck.exfat -n %s: %v\n%s", img, err, out)
	}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestExFATVolumes checks the reader against fsck.exfat, dump.exfat and
// sleuthkit (fls listing, icat contents) on volumes made by mkfs.exfat and
// filled through exfat-fuse.
func TestExFATVolumes(t *testing.T) {
	testvol.Need(t, "fsck.exfat", "dump.exfat", "fls", "icat")
	for _, spec := range exfatSpecs {
		t.Run(strconv.Itoa(spec.ClusterSize)+"-"+strconv.Itoa(spec.SectorSize)+"-"+spec.Content, func(t *testing.T) {
			img := testvol.ExFAT(t, spec)
			v, files := exfatCheckVolume(t, img, "CBIMGTEST")
			if spec.ClusterSize != 0 && v.Info.ClusterSize != uint32(spec.ClusterSize) {
				t.Errorf("cluster size %d, want %d", v.Info.ClusterSize, spec.ClusterSize)
			}
			if ss := max(spec.SectorSize, 512); v.Info.SectorSize != uint32(ss) {
				t.Errorf("sector size %d, want %d", v.Info.SectorSize, ss)
			}
			x := v.ExFAT()
			if spec.Content == "full" {
				if f := files["/Frag/fragmented.bin"]; len(f.Runs) < 10 {
					t.Errorf("fragmented.bin has %d runs", len(f.Runs))
				}
				long := "/Data/" + strings.Repeat("L", 251) + ".txt"
				if _, ok := files[long]; !ok {
					t.Errorf("255-character name missing")
				}
				if _, ok := files["/Grüße/Ελληνικά — ünïcödé 😀.bin"]; !ok {
					t.Errorf("Unicode name missing")
				}
				// Case-insensitive lookup through the up-case table.
				if _, err := x.Stat("/GRÜSSE"); err == nil {
					t.Errorf("ß should not up-case to SS")
				}
				if e, err := x.Stat("/grüße/ελληνικά — ÜNÏCÖDÉ 😀.BIN"); err != nil || e.Size != 3000 {
					t.Errorf("case-insensitive Stat: %+v %v", e, err)
				}
			}
		})
	}
}

// exfatCheckVolume checks the reader on img against fsck.exfat, dump.exfat
// and sleuthkit (fls listing, icat contents of every file but samples of
// Many/ and Frag/).
func exfatCheckVolume(t *testing.T, img, label string) (*Volume, map[string]File) {
	t.Helper()
	exfatFsckClean(t, img)
	v := fatOpenImage(t, img)
	if v.Info.Type != ExFAT || v.Info.Label != label {
		t.Fatalf("type %v label %q", v.Info.Type, v.Info.Label)
	}
	x := v.ExFAT()
	if err := x.BackupBootError(); err != nil {
		t.Errorf("backup boot region: %v", err)
	}
	if _, ok := x.GUID(); ok {
		t.Log("volume has a GUID entry")
	}
	used, err := x.UsedClusters()
	if err != nil {
		t.Fatal(err)
	}
	if free := exfatDump(t, img); used+free != v.Info.ClusterCount {
		t.Errorf("used %d + dump.exfat free %d != %d clusters", used, free, v.Info.ClusterCount)
	}
	files := fatWalkAll(t, v)
	// The walk's runs cover only clusters the bitmap marks.
	bm, err := v.Bitmap()
	if err != nil {
		t.Fatal(err)
	}
	var walked uint64
	for _, f := range files {
		for _, r := range f.Runs {
			for c := r.Start; c < r.Start+r.Count; c++ {
				if bm[c>>3]&(1<<(c&7)) == 0 {
					t.Fatalf("%s: cluster %d not in the bitmap", f.Path, c+2)
				}
			}
			walked += r.Count
		}
	}
	if walked > used {
		t.Errorf("walk holds %d clusters, the bitmap %d", walked, used)
	}
	// Names and contents against sleuthkit.
	tsk := map[string]string{}
	for _, l := range oracle.Live(oracle.FLS(t, img)) {
		typ, rest, _ := strings.Cut(l, " ")
		addr, p, _ := strings.Cut(rest, ":\t")
		if strings.HasPrefix(p, "$") || strings.HasSuffix(p, "(Volume Label Entry)") || strings.HasPrefix(p, "$OrphanFiles") {
			continue
		}
		if typ == "d/d" {
			addr = "dir"
		}
		tsk["/"+p] = addr
	}
	var ours []string
	for p := range files {
		if p != "/" {
			ours = append(ours, p)
		}
	}
	var theirs []string
	for p := range tsk {
		theirs = append(theirs, p)
	}
	sort.Strings(ours)
	sort.Strings(theirs)
	if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
		t.Fatalf("walk lists %d paths, fls %d:\nours %q\nfls %q", len(ours), len(theirs), ours, theirs)
	}
	checked := 0
	for p, f := range files {
		if f.Dir {
			continue
		}
		// Every file of the small fixtures, and a sample of Many/.
		if strings.HasPrefix(p, "/Many/") && !strings.HasSuffix(p, "00.txt") || strings.HasPrefix(p, "/Frag/F") && !strings.HasSuffix(p, "0.BIN") {
			continue
		}
		want := oracle.ICatHash(t, img, tsk[p])
		if got := sha(fatReadRuns(t, img, v, f)); got != want {
			t.Errorf("%s: walk runs hash %s, icat %s", p, got, want)
		}
		xf, err := x.Open(p)
		if err != nil {
			t.Fatalf("Open(%s): %v", p, err)
		}
		b, err := io.ReadAll(io.NewSectionReader(xf, 0, xf.Size()))
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		if got := sha(b); got != want {
			t.Errorf("%s: Open hash %s, icat %s", p, got, want)
		}
		checked++
	}
	t.Logf("%d paths, %d files checked against icat", len(files), checked)
	return v, files
}

// TestExFATRealImage: a volume made by another tool (a 15-character label,
// deleted entries), from dsoprea/go-exfat's test assets.
func TestExFATRealImage(t *testing.T) {
	testvol.Need(t, "fsck.exfat", "dump.exfat", "fls", "icat")
	img := testvol.Gunzip(t, "../testdata/exfat/go-exfat-test.img.gz")
	_, files := exfatCheckVolume(t, img, "testvolumelabel")
	if len(files) < 10 {
		t.Errorf("%d paths", len(files))
	}
}

// exfatFuseHashes reads every file through an exfat-fuse mount of a copy.
func exfatFuseHashes(t *testing.T, img string) map[string]string {
	t.Helper()
	dir := testvol.MountExFAT(t, img)
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(p, dir)] = sha(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExFATFuseContents compares every file read by the reader with the
// same file read through exfat-fuse, on 4 KiB sectors.
func TestExFATFuseContents(t *testing.T) {
	img := testvol.ExFAT(t, exfatSpecs[2])
	want := exfatFuseHashes(t, img)
	v := fatOpenImage(t, img)
	x := v.ExFAT()
	n := 0
	for p, h := range want {
		xf, err := x.Open(p)
		if err != nil {
			t.Fatalf("Open(%s): %v", p, err)
		}
		b := make([]byte, xf.Size())
		if _, err := xf.ReadAt(b, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if sha(b) != h {
			t.Errorf("%s differs from exfat-fuse", p)
		}
		n++
	}
	if n < 1000 {
		t.Errorf("only %d files", n)
	}
}
