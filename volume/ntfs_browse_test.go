//go:build linux

package volume

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/internal/testvol"
)

// ntfsTree lists the volume recursively through ReadDir: path -> entry.
// Reparse points (junctions) are not entered, as ntfs-3g shows them as
// symbolic links.
func ntfsTree(t *testing.T, nfs *NTFSFS) map[string]NTFSDirEntry {
	out := map[string]NTFSDirEntry{}
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		if depth > 100 {
			t.Fatalf("%s: too deep", dir)
		}
		ents, err := nfs.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir(%q): %v", dir, err)
		}
		for _, e := range ents {
			p := strings.TrimSuffix(dir, "/") + "/" + e.Name
			if _, dup := out[p]; dup {
				t.Errorf("ReadDir lists %s twice", p)
			}
			out[p] = e
			if e.Dir && e.Attr&NTFSAttrReparsePoint == 0 {
				walk(p, depth+1)
			}
		}
	}
	walk("/", 0)
	return out
}

func ntfsHashFile(t *testing.T, f *NTFSFile) string {
	h := sha256.New()
	// An odd buffer size crosses cluster and compression-unit boundaries.
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, f.Size()), make([]byte, 100003)); err != nil {
		t.Fatalf("read record %d stream %q: %v", f.Record, f.Stream, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ntfsCheckBrowse lists the volume through ReadDir and reads every file
// and stream through Open, comparing with a read-only ntfs-3g mount (found)
// and sleuthkit (tsk_recover output in rec, fls addresses, icat).
func ntfsCheckBrowse(t *testing.T, nfs *NTFSFS, img string, found map[string]findEntry, rec string, fls map[string]string) {
	tree := ntfsTree(t, nfs)

	// The listing is exactly what a read-only ntfs-3g mount shows.
	for p, e := range found {
		d, ok := tree[p]
		if !ok {
			t.Errorf("ntfs-3g shows %s, ReadDir does not", p)
			continue
		}
		if d.Record != e.inode {
			t.Errorf("%s: record %d, ntfs-3g inode %d", p, d.Record, e.inode)
		}
		if !e.link && d.Dir != e.dir {
			t.Errorf("%s: dir %v, ntfs-3g %v", p, d.Dir, e.dir)
		}
	}
	for p := range tree {
		if _, ok := found[p]; !ok {
			t.Errorf("ReadDir lists %s, ntfs-3g does not", p)
		}
	}

	// Every file's main stream reads as sleuthkit reads it.
	files, viaIcat, streams := 0, 0, 0
	for p, e := range tree {
		fe := found[p]
		if fe.link {
			continue
		}
		st, err := nfs.Stat(p)
		if err != nil {
			t.Errorf("Stat(%s): %v", p, err)
			continue
		}
		if st.Dir != e.Dir || st.Record != e.Record {
			t.Errorf("Stat(%s) = %+v, ReadDir %+v", p, st, e)
		}
		if !e.Dir {
			if st.Size != fe.size {
				t.Errorf("Stat(%s).Size = %d, ntfs-3g %d", p, st.Size, fe.size)
			}
			f, err := nfs.Open(p)
			if err != nil {
				t.Errorf("Open(%s): %v", p, err)
				continue
			}
			got := ntfsHashFile(t, f)
			var want string
			if f.Size() == 0 {
				// tsk_recover writes no empty files.
				want = testvol.SHA256(nil)
			} else if _, err := os.Stat(filepath.Join(rec, p)); err == nil {
				want = testvol.FileSHA256(t, filepath.Join(rec, p))
			} else if addr := fls[p]; addr != "" {
				want = testvol.ICat(t, img, addr)
				viaIcat++
			} else {
				t.Errorf("%s: neither tsk_recover nor fls has it", p)
				continue
			}
			if got != want {
				t.Errorf("%s: content differs from sleuthkit (size %d, compressed %v, sparse %v, %d runs)", p, f.Size(), f.Compressed(), f.Sparse(), len(f.Runs()))
			}
			files++
		}
		// Named streams, on files and directories.
		ss, err := nfs.Streams(p)
		if err != nil {
			t.Errorf("Streams(%s): %v", p, err)
			continue
		}
		for _, s := range ss {
			key := p + ":" + s.Name
			addr := fls[key]
			if addr == "" && e.Dir {
				// fls lists no streams of directories.
				addr = ntfsIstatStream(t, img, e.Record, s.Name)
			}
			if addr == "" {
				t.Errorf("%s: sleuthkit does not list the stream", key)
				continue
			}
			f, err := nfs.OpenStream(p, s.Name)
			if err != nil {
				t.Errorf("OpenStream(%s): %v", key, err)
				continue
			}
			if f.Size() != s.Size {
				t.Errorf("%s: size %d, Streams says %d", key, f.Size(), s.Size)
			}
			if got, want := ntfsHashFile(t, f), testvol.ICat(t, img, addr); got != want {
				t.Errorf("%s: content differs from icat", key)
			}
			streams++
		}
	}
	// fls names no stream of a listed file that Streams missed.
	for k := range fls {
		p, s, ok := strings.Cut(k[1:], ":")
		if !ok {
			continue
		}
		p = "/" + p
		if e, listed := tree[p]; listed && !found[p].link {
			ss, _ := nfs.Streams(p)
			hit := false
			for _, x := range ss {
				hit = hit || x.Name == s
			}
			if !hit {
				t.Errorf("fls lists stream %s; Streams(%s) = %v (record %d)", k, p, ss, e.Record)
			}
		}
	}
	// The metadata files in the root read as icat reads them.
	meta := 0
	for k, addr := range fls {
		if strings.Count(k, "/") != 1 || !strings.HasPrefix(k, "/$") || strings.HasPrefix(k, "/$RECYCLE.BIN") {
			continue
		}
		p, s, _ := strings.Cut(k, ":")
		if k == "/$BadClus:$Bad" {
			// Its valid data length is 0: icat prints nothing where
			// NTFS reads zeros. Check those below.
			continue
		}
		f, err := nfs.OpenStream(p, s)
		if err != nil {
			// $Secure:$SDH and the like are index roots, not data.
			if !strings.Contains(addr, "-128-") {
				continue
			}
			t.Errorf("OpenStream(%s, %q): %v", p, s, err)
			continue
		}
		if got, want := ntfsHashFile(t, f), testvol.ICat(t, img, addr); got != want {
			t.Errorf("%s: content differs from icat", k)
		}
		meta++
	}
	if f, err := nfs.OpenStream("/$BadClus", "$Bad"); err != nil {
		t.Errorf("$BadClus:$Bad: %v", err)
	} else {
		zero := testvol.ZeroSHA256(f.Size())
		if got := ntfsHashFile(t, f); got != zero || f.Size() != int64(nfs.Info().ClusterCount)*int64(nfs.Info().ClusterSize) {
			t.Errorf("$BadClus:$Bad: %d bytes, not all zero", f.Size())
		}
	}
	t.Logf("%d entries listed, %d files compared (%d via icat), %d named streams, %d metadata streams", len(tree), files, viaIcat, streams, meta)
	if files == 0 || meta < 5 {
		t.Error("too little compared")
	}
}

// TestNTFSFreedIndexBlocks checks that the large directory of the main
// fixture has freed index blocks that still hold names, and that ReadDir
// shows none of them.
func TestNTFSFreedIndexBlocks(t *testing.T) {
	var main *ntfsFixture
	for _, fx := range ntfsFixtures(t) {
		if fx.name == "main" {
			main = fx
		}
	}
	f, err := os.Open(main.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	nfs, err := OpenNTFSFS(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	ents, err := nfs.ReadDir("/many")
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, e := range ents {
		live[e.Name] = true
	}
	if want := ntfsManyCount - (ntfsManyDelLast - ntfsManyDelFirst + 1); len(ents) != want {
		t.Errorf("/many: %d entries, want %d", len(ents), want)
	}
	for i := 0; i < ntfsManyCount; i++ {
		name := fmt.Sprintf("f%05d.txt", i)
		if deleted := i >= ntfsManyDelFirst && i <= ntfsManyDelLast; live[name] == deleted {
			t.Errorf("%s listed %v", name, live[name])
		}
	}
	// Read the freed blocks directly to prove the fixture has stale names.
	dir, err := nfs.Stat("/many")
	if err != nil {
		t.Fatal(err)
	}
	v := nfs.v
	_, attrs, err := v.fileAttrs(dir.Record, dir.Seq)
	if err != nil {
		t.Fatal(err)
	}
	as, err := v.fileStream(attrs, dir.Record, attrIndexAlloc, i30)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := v.fileStream(attrs, dir.Record, attrBitmap, i30)
	if err != nil {
		t.Fatal(err)
	}
	bm := make([]byte, bs.dataSize)
	if err := bs.readFull(bm, 0); err != nil {
		t.Fatal(err)
	}
	ibs := int64(v.boot.IndexBlockSize)
	stale := 0
	for i := int64(0); i < int64(as.dataSize)/ibs; i++ {
		if bm[i/8]&(1<<(i%8)) != 0 {
			continue
		}
		b := make([]byte, ibs)
		if err := as.readFull(b, i*ibs); err != nil {
			t.Fatal(err)
		}
		if string(b[:4]) != "INDX" {
			continue
		}
		if err := applyFixups(b, int(binary.LittleEndian.Uint16(b[4:])), int(binary.LittleEndian.Uint16(b[6:])), func() string { return "block" }, -1); err != nil {
			continue
		}
		var old []ntfsDirEntry
		if err := parseIndexNode(b[idxBlockHeader:], &old, "freed block"); err != nil {
			continue
		}
		for _, e := range old {
			if !live[e.fn.name] {
				stale++
			}
		}
	}
	t.Logf("/many: %d live entries, %d stale names in freed index blocks", len(ents), stale)
	if stale == 0 {
		t.Error("no stale names in freed index blocks: the fixture does not exercise the index bitmap")
	}
}

func TestNTFSBrowseErrors(t *testing.T) {
	r, size, _ := ntfsRealImage(t, t.TempDir(), "win10-test-ntfs.dd.gz", 0)
	nfs, err := OpenNTFSFS(r, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/nope", "/Folder A/nope", "/just_a_file.txt/x"} {
		if _, err := nfs.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s): %v, want ErrNotExist", p, err)
		}
	}
	if _, err := nfs.Open("/Folder A"); err == nil {
		t.Error("Open of a directory succeeded")
	}
	if _, err := nfs.ReadDir("/just_a_file.txt"); err == nil {
		t.Error("ReadDir of a file succeeded")
	}
	// Names match case-insensitively through $UpCase.
	e, err := nfs.Stat("/FOLDER a/folder B/HELLO WORLD TEXT DOCUMENT.TXT")
	if err != nil || e.Name != "Hello world text document.txt" || e.Size != 12 {
		t.Errorf("case-insensitive Stat: %+v, %v", e, err)
	}
	ss, err := nfs.Streams("/Folder A/Folder B/Hello world text document.txt")
	if err != nil || len(ss) != 1 || ss[0].Name != "goodbye.txt" || ss[0].Size != 20 {
		t.Errorf("Streams: %v, %v", ss, err)
	}
	// The compressed file spreads over extension records (attribute list).
	f, err := nfs.Open("/ones.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Compressed() || f.Size() != 2949120 {
		t.Errorf("ones.bin: compressed %v size %d", f.Compressed(), f.Size())
	}
	b := make([]byte, 10)
	if n, err := f.ReadAt(b, f.Size()-5); n != 5 || err != io.EOF {
		t.Errorf("ReadAt at end: %d, %v", n, err)
	}
	if n, err := f.ReadAt(b, f.Size()); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past end: %d, %v", n, err)
	}
	var names []string
	ents, err := nfs.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	want := "$RECYCLE.BIN,Folder A,System Volume Information,another_file.txt,just_a_file.txt,ones.bin"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("root: %s\nwant  %s", got, want)
	}
}

// ntfsIstatStream finds the sleuthkit address of a named $DATA stream.
func ntfsIstatStream(t *testing.T, img string, rec uint64, name string) string {
	out := ntfsExec(t, "istat", img, fmt.Sprint(rec))
	for _, line := range strings.Split(out, "\n") {
		var id int
		if _, err := fmt.Sscanf(line, "Type: $DATA (128-%d)", &id); err != nil {
			continue
		}
		if strings.Contains(line, "Name: "+name+" ") {
			return fmt.Sprintf("%d-128-%d", rec, id)
		}
	}
	return ""
}

// TestNTFSConcurrentRead reads a compressed file from several goroutines.
func TestNTFSConcurrentRead(t *testing.T) {
	r, size, _ := ntfsRealImage(t, t.TempDir(), "win10-test-ntfs.dd.gz", 0)
	nfs, err := OpenNTFSFS(r, size)
	if err != nil {
		t.Fatal(err)
	}
	f, err := nfs.Open("/ones.bin")
	if err != nil {
		t.Fatal(err)
	}
	want := ntfsHashFile(t, f)
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			h := sha256.New()
			buf := make([]byte, 4096+g*1000)
			_, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, f.Size()), buf)
			if err == nil && hex.EncodeToString(h.Sum(nil)) != want {
				err = fmt.Errorf("goroutine %d read different bytes", g)
			}
			errs <- err
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
