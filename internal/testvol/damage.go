//go:build linux

package testvol

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// Damaged is a volume damaged on purpose and what a file-system check must
// find in it.
type Damaged struct {
	Path string
	Want []WantDamage
	// Files are paths whose chains or records are intact and may be
	// excluded; Shared are files whose clusters another file's chain also
	// claims (an exclusion of them must not be applied).
	Files  []string
	Shared []string
}

// WantDamage is one finding: its kind (the strings of volume.Damage*), the
// volume path concerned ("" for none) and the partition byte offset of the
// structure.
type WantDamage struct {
	Kind   string
	Path   string
	Offset int64
}

// fatVol is the little of a FAT16 or FAT32 volume the damage helpers need.
type fatVol struct {
	t     testing.TB
	f     *os.File
	bps   int64
	cs    int64
	rsvd  int64
	nfat  int64
	fsz   int64  // sectors per FAT
	root  uint32 // FAT32 root cluster; 0 for the FAT16 fixed root
	rootN int64  // FAT16: root directory entries
	data  int64  // partition offset of cluster 2
	n     uint32 // clusters
	w     int64  // bytes per FAT entry: 2 or 4
}

func openFATVol(t testing.TB, path string, f *os.File) *fatVol {
	t.Helper()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	v := &fatVol{t: t, f: f, bps: int64(le.Uint16(b[11:])), rsvd: int64(le.Uint16(b[14:])), nfat: int64(b[16]),
		fsz: int64(le.Uint16(b[22:])), rootN: int64(le.Uint16(b[17:])), w: 2}
	v.cs = v.bps * int64(b[13])
	total := int64(le.Uint16(b[19:]))
	if total == 0 {
		total = int64(le.Uint32(b[32:]))
	}
	if v.fsz == 0 {
		v.fsz, v.root, v.w = int64(le.Uint32(b[36:])), le.Uint32(b[44:]), 4
	}
	rootBytes := (v.rootN*32 + v.bps - 1) / v.bps * v.bps
	v.data = (v.rsvd+v.nfat*v.fsz)*v.bps + rootBytes
	v.n = uint32((total*v.bps - v.data) / v.cs)
	if v.w == 2 && (v.n < 4085 || v.n >= 65525) {
		t.Fatalf("testvol: %s is neither FAT16 nor FAT32", path)
	}
	return v
}

func (v *fatVol) fatOff(copy int) int64 { return (v.rsvd + int64(copy)*v.fsz) * v.bps }
func (v *fatVol) entryOff(copy int, c uint32) int64 {
	return v.fatOff(copy) + v.w*int64(c)
}
func (v *fatVol) clusterOff(c uint32) int64 { return v.data + int64(c-2)*v.cs }

func (v *fatVol) read(off int64, n int) []byte {
	b := make([]byte, n)
	if _, err := v.f.ReadAt(b, off); err != nil {
		v.t.Fatal(err)
	}
	return b
}

func (v *fatVol) write(off int64, b []byte) {
	if _, err := v.f.WriteAt(b, off); err != nil {
		v.t.Fatal(err)
	}
}

func (v *fatVol) get(c uint32) uint32 {
	if v.w == 2 {
		return uint32(binary.LittleEndian.Uint16(v.read(v.entryOff(0, c), 2)))
	}
	return binary.LittleEndian.Uint32(v.read(v.entryOff(0, c), 4)) & 0x0FFFFFFF
}

// eoc is the end-of-chain mark.
func (v *fatVol) eoc() uint32 {
	if v.w == 2 {
		return 0xFFFF
	}
	return 0x0FFFFFFF
}

// set writes FAT entry c in the copies listed.
func (v *fatVol) set(c, val uint32, copies ...int) {
	b := binary.LittleEndian.AppendUint32(nil, val)
	for _, k := range copies {
		v.write(v.entryOff(k, c), b[:v.w])
	}
}

func (v *fatVol) chain(c uint32) []uint32 {
	var out []uint32
	for c >= 2 && c < v.eoc()&^7 && len(out) < 1<<20 {
		out = append(out, c)
		c = v.get(c)
	}
	return out
}

// entry finds the 8.3 entry named short (11 bytes, space padded) in the
// directory starting at cluster dir (0: the FAT16 fixed root); it returns
// the entry's offset and its first cluster.
func (v *fatVol) entry(dir uint32, short string) (int64, uint32) {
	type area struct{ off, n int64 }
	var areas []area
	if dir == 0 {
		areas = append(areas, area{(v.rsvd + v.nfat*v.fsz) * v.bps, v.rootN * 32})
	}
	for _, c := range v.chain(dir) {
		areas = append(areas, area{v.clusterOff(c), v.cs})
	}
	for _, a := range areas {
		b := v.read(a.off, int(a.n))
		for i := 0; i+32 <= len(b); i += 32 {
			if string(b[i:i+11]) == short {
				e := b[i:]
				return a.off + int64(i), uint32(binary.LittleEndian.Uint16(e[26:])) | uint32(binary.LittleEndian.Uint16(e[20:]))<<16
			}
		}
	}
	v.t.Fatalf("testvol: no entry %q in the directory at cluster %d", short, dir)
	return 0, 0
}

// setCluster points the entry at off to cluster c.
func (v *fatVol) setCluster(off int64, c uint32) {
	v.write(off+26, binary.LittleEndian.AppendUint16(nil, uint16(c)))
	v.write(off+20, binary.LittleEndian.AppendUint16(nil, uint16(c>>16)))
}

// DamagedFAT32 returns a private copy of the basic FAT32 volume (512-byte
// clusters) damaged in each way a FAT check must name: a cross-linked
// chain, a directory loop, a wrong "..", a 0-byte file that keeps its
// chain, FAT copies that disagree and a lost chain (plus the lost chains
// these leave behind).
func DamagedFAT32(t testing.TB) *Damaged { return DamagedFAT(t, 32) }

// DamagedFAT is DamagedFAT32 for the basic FAT16 (fixed root directory) or
// FAT32 volume.
func DamagedFAT(t testing.TB, bits int) *Damaged {
	t.Helper()
	p, f := writableCopy(t, FAT(t, FATSpec{Bits: bits, Content: "basic"}))
	v := openFATVol(t, p, f)
	d := &Damaged{Path: p}
	add := func(kind, path string, off int64) { d.Want = append(d.Want, WantDamage{kind, path, off}) }

	docsOff, docs := v.entry(v.root, "DOCS       ")
	_, data := v.entry(v.root, "DATA       ")
	_, deep := v.entry(v.root, "DEEP       ")
	_ = docsOff

	// README.TXT (walked first) keeps its first cluster and then runs into
	// the last clusters of 1MiB.bin, as many as its size needs: 1MiB.bin
	// is found cross-linked, README.TXT shares clusters with it, and
	// README's own other clusters are lost.
	_, readme := v.entry(docs, "README  TXT")
	rc := v.chain(readme)
	_, big := v.entry(data, "1MIB    BIN")
	bc := v.chain(big)
	if need := (46000 + v.cs - 1) / v.cs; int64(len(rc)) != need || int64(len(bc)) != 1<<20/v.cs {
		t.Fatalf("testvol: README.TXT has %d clusters, 1MiB.bin %d, of %d bytes", len(rc), len(bc), v.cs)
	}
	k := len(bc) - (len(rc) - 1)
	v.set(rc[0], bc[k], 0, 1)
	add("cross-linked", "/Data/1MiB.bin", v.entryOff(0, bc[k]))
	add("lost chain", "", v.entryOff(0, rc[1]))
	d.Shared = append(d.Shared, "/DOCS/README.TXT", "/Data/1MiB.bin")

	// A directory loop: /Deep/Level 1 points back at /Deep.
	lvlOff, _ := v.entry(deep, "LEVEL1~1   ")
	v.setCluster(lvlOff, deep)
	add("directory loop", "/Deep/Level 1", lvlOff)

	// /Data's ".." names /DOCS instead of the root (0).
	dotdot := v.clusterOff(data) + 32
	if string(v.read(dotdot, 11)) != "..         " {
		t.Fatal("testvol: no .. entry at the second slot of /Data")
	}
	v.setCluster(dotdot, docs)
	add("bad dot entry", "/Data", dotdot)

	// ONE.TXT becomes a 0-byte file that still names its cluster.
	oneOff, one := v.entry(docs, "ONE     TXT")
	v.write(oneOff+28, make([]byte, 4))
	add("empty file with chain", "/DOCS/ONE.TXT", oneOff)
	add("lost chain", "", v.entryOff(0, one))

	// A lost chain of two clusters near the end, in both FATs, and one
	// entry only the second FAT has.
	lost := v.n - 100
	if v.get(lost) != 0 || v.get(lost+1) != 0 || v.get(lost+10) != 0 {
		t.Fatal("testvol: the clusters for the lost chain are in use")
	}
	v.set(lost, lost+1, 0, 1)
	v.set(lost+1, v.eoc(), 0, 1)
	add("lost chain", "", v.entryOff(0, lost))
	v.set(lost+10, v.eoc(), 1)
	add("FAT copies differ", "", v.entryOff(1, lost+10))

	d.Files = []string{"/Data/4095.bin", "/DOCS/SMALL.BIN"}
	return d
}

// ntfsBoot returns the cluster size, the $MFT offset and the MFT record
// size from the boot sector.
func ntfsBoot(t testing.TB, f *os.File) (cs, mft, rs int64) {
	t.Helper()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	cs = int64(le.Uint16(b[11:])) * int64(b[13])
	rs = 1024
	if x := int8(b[0x40]); x < 0 {
		rs = 1 << -x
	} else if x > 0 {
		rs = int64(x) * cs
	}
	return cs, int64(le.Uint64(b[0x30:])) * cs, rs
}

// ntfsRecordOffset is the offset of record n, for the first records
// (those in $MFT's first run).
func ntfsRecordOffset(t testing.TB, f *os.File, n int64) int64 {
	_, mft, rs := ntfsBoot(t, f)
	return mft + n*rs
}

// ntfsRecord finds the MFT record whose $FILE_NAME holds name (among the
// first 1024 records, which the basic volume's files use) and returns its
// partition offset.
func ntfsRecord(t testing.TB, f *os.File, name string) int64 {
	t.Helper()
	_, mft, rs := ntfsBoot(t, f)
	le := binary.LittleEndian
	u := utf16.Encode([]rune(name))
	pat := make([]byte, 0, 2*len(u))
	for _, c := range u {
		pat = le.AppendUint16(pat, c)
	}
	rec := make([]byte, rs)
	for i := int64(16); i < 1024; i++ {
		if _, err := f.ReadAt(rec, mft+i*rs); err != nil {
			t.Fatal(err)
		}
		if string(rec[:4]) == "FILE" && fileNamed(rec, pat) {
			return mft + i*rs
		}
	}
	t.Fatalf("testvol: no MFT record named %q", name)
	return 0
}

// fileNamed reports whether an MFT record has a $FILE_NAME attribute whose
// name is pat (UTF-16LE).
func fileNamed(rec, pat []byte) bool {
	le := binary.LittleEndian
	for off := int(le.Uint16(rec[0x14:])); off+0x18 <= len(rec); {
		typ, l := le.Uint32(rec[off:]), int(le.Uint32(rec[off+4:]))
		if typ == 0xFFFFFFFF || l < 0x18 || off+l > len(rec) {
			return false
		}
		if typ == 0x30 && rec[off+8] == 0 {
			v := off + int(le.Uint16(rec[off+0x14:]))
			if v+0x42 <= len(rec) {
				n := 2 * int(rec[v+0x40])
				if v+0x42+n <= len(rec) && bytes.Equal(rec[v+0x42:v+0x42+n], pat) {
					return true
				}
			}
		}
		off += l
	}
	return false
}

// DamagedNTFS returns a private copy of the basic NTFS volume with a
// directory index entry to a record no longer in use (Documents/one.txt:
// its record's in-use flag cleared), an index entry that names another
// record than its file's (Documents/readme.txt), an unreadable file record
// (Data/4095.bin: "FILE" magic overwritten), two files whose runs share
// clusters and a damaged $MFTMirr.
func DamagedNTFS(t testing.TB) *Damaged {
	t.Helper()
	p, f := writableCopy(t, NTFS(t, NTFSSpec{Content: "basic"}))
	d := &Damaged{Path: p, Files: []string{"/Data/4097.bin", "/Documents/readme.txt"}}
	write := func(off int64, b []byte) {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	one := ntfsRecord(t, f, "one.txt")
	flags := make([]byte, 2)
	if _, err := f.ReadAt(flags, one+0x16); err != nil {
		t.Fatal(err)
	}
	flags[0] &^= 1
	write(one+0x16, flags)
	d.Want = append(d.Want, WantDamage{"bad index", "/Documents/one.txt", -1})

	// The index entry of Documents/readme.txt names record 1000 (free)
	// instead: the entry names a record not in use, and readme.txt's
	// record is missing from the index.
	docs := ntfsRecord(t, f, "Documents")
	rec := make([]byte, 1024)
	if _, err := f.ReadAt(rec, docs); err != nil {
		t.Fatal(err)
	}
	var pat []byte
	for _, r := range "readme.txt" {
		pat = append(pat, byte(r), 0)
	}
	at := bytes.Index(rec, pat) - 0x52 // entry header 0x10, name at 0x42 of the key
	if at < 0x38 || at/512 != (at+8)/512 || at%512 > 0x1F6 {
		t.Fatalf("testvol: readme.txt's index entry at %d of the Documents record", at)
	}
	write(docs+int64(at), binary.LittleEndian.AppendUint64(nil, 1000|1<<48))
	d.Want = append(d.Want, WantDamage{"bad index", "/Documents/readme.txt", -1})

	bin := ntfsRecord(t, f, "4095.bin")
	write(bin, []byte("BAAD"))
	d.Want = append(d.Want, WantDamage{"bad MFT record", "", bin})

	// /Data/1MiB.bin's run moved onto the start of /Data/10MiB.bin: the
	// record read later is found cross-linked; both share clusters.
	small, large := ntfsRecord(t, f, "1MiB.bin"), ntfsRecord(t, f, "10MiB.bin")
	writeLCN(t, f, small, firstLCN(t, f, large))
	later := "/Data/10MiB.bin"
	if small > large {
		later = "/Data/1MiB.bin"
	}
	d.Want = append(d.Want, WantDamage{"cross-linked", later, -1})
	d.Shared = []string{"/Data/1MiB.bin", "/Data/10MiB.bin"}

	b := make([]byte, 8)
	if _, err := f.ReadAt(b, 0x38); err != nil {
		t.Fatal(err)
	}
	cs, _, rs := ntfsBoot(t, f)
	mirr := int64(binary.LittleEndian.Uint64(b)) * cs
	// Record 2 of the mirror ($LogFile's copy): a byte in its attributes.
	write(mirr+2*rs+0x100, []byte{0xEE})
	d.Want = append(d.Want, WantDamage{"MFT mirror mismatch", "/$MFTMirr", mirr + 2*rs})
	return d
}

// dataRun returns the partition offset of the LCN field of the first run
// of the non-resident $DATA of the record at rec, and its size in bytes.
func dataRun(t testing.TB, f *os.File, rec int64) (int64, int) {
	return attrRun(t, f, rec, 0x80)
}

// attrRun is dataRun for the first non-resident attribute of type typ.
func attrRun(t testing.TB, f *os.File, rec int64, typ uint32) (int64, int) {
	t.Helper()
	b := make([]byte, 1024)
	if _, err := f.ReadAt(b, rec); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for off := int(le.Uint16(b[0x14:])); off+0x40 <= len(b); {
		at, l := le.Uint32(b[off:]), int(le.Uint32(b[off+4:]))
		if at == 0xFFFFFFFF || l < 0x18 || off+l > len(b) {
			break
		}
		if at == typ && b[off+8] == 1 {
			mp := off + int(le.Uint16(b[off+0x20:]))
			h := b[mp]
			at := mp + 1 + int(h&0xF)
			n := int(h >> 4)
			if n == 0 || at+n > 0x1FE {
				t.Fatalf("testvol: first run of the record at %d: header %#x at %d", rec, h, mp)
			}
			return rec + int64(at), n
		}
		off += l
	}
	t.Fatalf("testvol: no non-resident attribute %#x in the record at %d", typ, rec)
	return 0, 0
}

func firstLCN(t testing.TB, f *os.File, rec int64) int64 {
	return firstAttrLCN(t, f, rec, 0x80)
}

func firstAttrLCN(t testing.TB, f *os.File, rec int64, typ uint32) int64 {
	off, n := attrRun(t, f, rec, typ)
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	var v int64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | int64(b[i])
	}
	if b[n-1]&0x80 != 0 {
		v -= 1 << (8 * n)
	}
	return v
}

// writeLCN sets the LCN of the first run of the record at rec to lcn,
// which must fit the field as it is.
func writeLCN(t testing.TB, f *os.File, rec, lcn int64) {
	off, n := dataRun(t, f, rec)
	if lim := int64(1) << (8*n - 1); lcn >= lim || lcn < -lim {
		t.Fatalf("testvol: LCN %d does not fit %d bytes", lcn, n)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(lcn >> (8 * i))
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// BrokenIndexNTFS returns a private copy of the full NTFS volume whose
// /Many/d000 index (100 entries) has its first index block's "INDX" magic overwritten, and
// that block's partition offset.
func BrokenIndexNTFS(t testing.TB) (string, int64) {
	t.Helper()
	p, f := writableCopy(t, NTFS(t, NTFSSpec{Content: "full"}))
	b := make([]byte, 4)
	cs, _, _ := ntfsBoot(t, f)
	off := firstAttrLCN(t, f, ntfsRecord(t, f, "d000"), 0xA0) * cs
	if _, err := f.ReadAt(b[:4], off); err != nil || string(b[:4]) != "INDX" {
		t.Fatalf("testvol: no index block at %d (%q, %v)", off, b[:4], err)
	}
	if _, err := f.WriteAt([]byte("XXXX"), off); err != nil {
		t.Fatal(err)
	}
	return p, off
}

// UnreadableBitmapNTFS returns a private copy of the basic NTFS volume
// whose $Bitmap record (record 6) has its "FILE" magic overwritten: the
// allocation map cannot be found.
func UnreadableBitmapNTFS(t testing.TB) string {
	t.Helper()
	return BadRecordNTFS(t, 6)
}

// BadRecordNTFS returns a private copy of the basic NTFS volume whose
// system record n (below 16) has its "FILE" magic overwritten.
func BadRecordNTFS(t testing.TB, n int64) string {
	t.Helper()
	p, f := writableCopy(t, NTFS(t, NTFSSpec{Content: "basic"}))
	if _, err := f.WriteAt([]byte("BAAD"), ntfsRecordOffset(t, f, n)); err != nil {
		t.Fatal(err)
	}
	return p
}

// writableCopy makes a private copy of a volume file and opens it for
// writing until cleanup.
func writableCopy(t testing.TB, src string) (string, *os.File) {
	t.Helper()
	p := Copy(t, src)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return p, f
}

// HasDamage reports whether a check's findings, each "kind|path|offset",
// include w (any offset when w.Offset is -1).
func HasDamage(found []string, w WantDamage) bool {
	for _, s := range found {
		parts := strings.SplitN(s, "|", 3)
		if len(parts) == 3 && parts[0] == w.Kind && parts[1] == w.Path && (w.Offset < 0 || parts[2] == strconv.FormatInt(w.Offset, 10)) {
			return true
		}
	}
	return false
}
