// Package damage breaks the directory structures of real NTFS and FAT
// volume files in known ways (an index entry pointing at the wrong record,
// a directory that is its own ancestor, ...), for tests of the readers that
// browse them. It locates structures through the volume package and
// patches the bytes in place; it never builds a volume.
package damage

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/cbimg/cbimg/volume"
)

// Shape is one kind of damage.
type Shape struct {
	Name string
	// Entry is the volume path of the entry the damage makes untrustworthy,
	// as browsing lists it (a name that cannot be a path element is shown
	// made safe, "/" as "_"); browsing must list it, mark it and never
	// follow it.
	Entry string
	// Hides is the path of the undamaged volume the damage takes away (with
	// everything below it); "" means Entry.
	Hides string
	// Apply damages the volume file at path.
	Apply func(path string) error
}

// NTFSShapes damage the "basic" NTFS fixture (testvol content "basic").
// Every change is in the $INDEX_ROOT of a small directory.
func NTFSShapes() []Shape {
	ref := func(target string, seqDelta int) func(*ntfsVol, []byte) error {
		return func(v *ntfsVol, e []byte) error {
			rec, seq, err := v.ref(target)
			if err != nil {
				return err
			}
			binary.LittleEndian.PutUint64(e, rec|uint64(seq+uint16(seqDelta))<<48)
			return nil
		}
	}
	raw := func(rec uint64) func(*ntfsVol, []byte) error {
		return func(v *ntfsVol, e []byte) error {
			binary.LittleEndian.PutUint64(e, rec)
			return nil
		}
	}
	return []Shape{
		{"ntfs file entry to the root directory", "/Data/4095.bin", "", ntfsEntry("/Data/4095.bin", raw(5|5<<48))},
		{"ntfs file entry in an $INDEX_ROOT to the root directory", "/Data/Nested/a/b/c/d/deep.txt", "", ntfsEntry("/Data/Nested/a/b/c/d/deep.txt", raw(5|5<<48))},
		{"ntfs file entry to another directory", "/Data/4095.bin", "", ntfsEntry("/Data/4095.bin", ref("/Data/Nested", 0))},
		{"ntfs directory entry to its own directory", "/Data/Nested", "", ntfsEntry("/Data/Nested", ref("/Data", 0))},
		{"ntfs directory entry to its parent", "/Data/Nested/a", "", ntfsEntry("/Data/Nested/a", ref("/Data", 0))},
		{"ntfs directory entry to the root", "/Data/Nested/a/b", "", ntfsEntry("/Data/Nested/a/b", raw(5|5<<48))},
		{"ntfs entry to a record not in use", "/Data/4097.bin", "", ntfsEntry("/Data/4097.bin", func(v *ntfsVol, e []byte) error {
			rec, err := v.unusedRecord()
			binary.LittleEndian.PutUint64(e, rec)
			return err
		})},
		{"ntfs entry past the end of the MFT", "/Data/4097.bin", "", ntfsEntry("/Data/4097.bin", raw(0xFFFFFFFF))},
		{"ntfs sequence number mismatch", "/Data/1MiB.bin", "", ntfsEntry("/Data/1MiB.bin", ref("/Data/1MiB.bin", 1))},
		{"ntfs entry to another file", "/Data/1MiB.bin", "", ntfsEntry("/Data/1MiB.bin", ref("/Data/4095.bin", 0))},
		{"ntfs name mismatch", "/Data/1MiC.bin", "/Data/1MiB.bin", ntfsEntry("/Data/1MiB.bin", func(v *ntfsVol, e []byte) error {
			return setName(e, "1MiC.bin")
		})},
		{"ntfs name with a slash", "/Data/4095_bin", "/Data/4095.bin", ntfsEntry("/Data/4095.bin", func(v *ntfsVol, e []byte) error {
			return setName(e, "4095/bin")
		})},
		{"ntfs index says file, record is a directory", "/Data/Nested", "", ntfsEntry("/Data/Nested", func(v *ntfsVol, e []byte) error {
			fl := binary.LittleEndian.Uint32(e[0x10+0x38:])
			binary.LittleEndian.PutUint32(e[0x10+0x38:], fl&^0x10000000)
			return nil
		})},
		{"ntfs index says directory, record is a file", "/Data/4095.bin", "", ntfsEntry("/Data/4095.bin", func(v *ntfsVol, e []byte) error {
			fl := binary.LittleEndian.Uint32(e[0x10+0x38:])
			binary.LittleEndian.PutUint32(e[0x10+0x38:], fl|0x10000000)
			return nil
		})},
	}
}

// NTFSDuplicateName renames /Data/4097.bin's index entry to 4095.bin, the
// name of the entry before it: a lookup by name finds the first, so the
// second must be listed as damaged (Entry names both; Hides the lost one).
func NTFSDuplicateName() Shape {
	return Shape{Name: "ntfs two entries with one name", Entry: "/Data/4095.bin", Hides: "/Data/4097.bin",
		Apply: ntfsEntry("/Data/4097.bin", func(v *ntfsVol, e []byte) error { return setName(e, "4095.bin") })}
}

// FATShapes damage the "basic" FAT fixture (any FAT type).
func FATShapes() []Shape {
	cluster := func(target string) func(*fatVol, []byte) error {
		return func(v *fatVol, e []byte) error {
			var c uint32
			if target != "/" {
				st, err := v.fs.Stat(target)
				if err != nil {
					return err
				}
				c = st.Cluster
			} else if v.fs.Boot().Type == volume.FAT32 {
				c = v.fs.Boot().RootCluster
			}
			binary.LittleEndian.PutUint16(e[26:], uint16(c))
			binary.LittleEndian.PutUint16(e[20:], uint16(c>>16))
			return nil
		}
	}
	return []Shape{
		{"fat directory entry to its own directory", "/Deep/Level 1/Level 2", "", fatEntry("/Deep/Level 1/Level 2", cluster("/Deep/Level 1"))},
		{"fat directory entry to its parent", "/Deep/Level 1/Level 2", "", fatEntry("/Deep/Level 1/Level 2", cluster("/Deep"))},
		{"fat directory entry to the root (cluster 0 on FAT12/16)", "/Deep/Level 1", "", fatEntry("/Deep/Level 1", cluster("/"))},
		{"fat directory entry past the last cluster", "/Deep/Level 1", "", fatEntry("/Deep/Level 1", func(v *fatVol, e []byte) error {
			c := v.fs.Boot().ClusterCount + 2
			binary.LittleEndian.PutUint16(e[26:], uint16(c))
			binary.LittleEndian.PutUint16(e[20:], uint16(c>>16))
			return nil
		})},
		{"fat directory entry to a free cluster", "/Deep/Level 1", "", fatEntry("/Deep/Level 1", func(v *fatVol, e []byte) error {
			c := v.fs.Boot().ClusterCount + 1 // the last cluster, free on the fixtures
			binary.LittleEndian.PutUint16(e[26:], uint16(c))
			binary.LittleEndian.PutUint16(e[20:], uint16(c>>16))
			return nil
		})},
		{"fat file flagged as a directory", "/DOCS/README.TXT", "", fatEntry("/DOCS/README.TXT", func(v *fatVol, e []byte) error {
			e[11] |= 0x10
			return nil
		})},
		{"fat file entry to a directory above it", "/Deep/Level 1/Level 2/Level 3/Level 4/Level 5/deep file.txt", "",
			fatEntry("/Deep/Level 1/Level 2/Level 3/Level 4/Level 5/deep file.txt", cluster("/Deep/Level 1"))},
	}
}

type ntfsVol struct {
	fs   *volume.NTFSFS
	f    *os.File
	mft  []volume.Run
	cs   int64
	rs   int64
	nrec uint64
}

func (v *ntfsVol) ref(p string) (uint64, uint16, error) {
	st, err := v.fs.Stat(p)
	if err != nil {
		return 0, 0, err
	}
	return st.Record, st.Seq, nil
}

// unusedRecord finds a user record of the $MFT that is not in use.
func (v *ntfsVol) unusedRecord() (uint64, error) {
	b := make([]byte, v.rs)
	for n := uint64(16); n < v.nrec; n++ {
		off, err := v.recOffset(n)
		if err != nil {
			return 0, err
		}
		if _, err := v.f.ReadAt(b, off); err != nil {
			return 0, err
		}
		if binary.LittleEndian.Uint16(b[0x16:])&1 == 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no unused MFT record")
}

func (v *ntfsVol) recOffset(n uint64) (int64, error) {
	pos := int64(n) * v.rs
	for _, r := range v.mft {
		l := int64(r.Count) * v.cs
		if pos < l {
			return int64(r.Start)*v.cs + pos, nil
		}
		pos -= l
	}
	return 0, fmt.Errorf("MFT record %d past the $MFT runs", n)
}

// openNTFS opens an NTFS volume file for patching.
func openNTFS(file string) (*ntfsVol, error) {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil {
		var nfs *volume.NTFSFS
		if nfs, err = volume.OpenNTFSFS(f, st.Size()); err == nil {
			var mft *volume.NTFSFile
			if mft, err = nfs.OpenRecord(0, ""); err == nil {
				v := &ntfsVol{fs: nfs, f: f, mft: mft.Runs(), cs: int64(nfs.Info().ClusterSize), rs: int64(nfs.Boot().RecordSize)}
				v.nrec = uint64(mft.Size() / v.rs)
				return v, nil
			}
		}
	}
	f.Close()
	return nil, err
}

// dirRecord reads the MFT record of directory p with fixups undone, and
// its partition offset.
func (v *ntfsVol) dirRecord(p string) ([]byte, int64, error) {
	dir, err := v.fs.Stat(p)
	if err != nil {
		return nil, 0, err
	}
	off, err := v.recOffset(dir.Record)
	if err != nil {
		return nil, 0, err
	}
	rec := make([]byte, v.rs)
	if _, err := v.f.ReadAt(rec, off); err != nil {
		return nil, 0, err
	}
	return rec, off, fixups(rec, false)
}

// ntfsEntry applies change to the index entry of p in its directory's
// $INDEX_ROOT (the entry's bytes from its MFT reference on).
func ntfsEntry(p string, change func(*ntfsVol, []byte) error) func(string) error {
	return func(file string) error {
		v, err := openNTFS(file)
		if err != nil {
			return err
		}
		defer v.f.Close()
		rec, off, err := v.dirRecord(path.Dir(p))
		if err != nil {
			return err
		}
		// The entry sits in the $INDEX_ROOT, or in an INDX block.
		buf, bufOff := rec, off
		e, err := nodeEntry(rec, path.Base(p), true)
		if err != nil {
			var blocks []indxBlock
			if blocks, err = v.indexBlocks(rec); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			for _, b := range blocks {
				if e, err = nodeEntry(b.data, path.Base(p), false); err == nil {
					buf, bufOff = b.data, b.off
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := change(v, e); err != nil {
			return err
		}
		if err := fixups(buf, true); err != nil {
			return err
		}
		_, err = v.f.WriteAt(buf, bufOff)
		return err
	}
}

type indxBlock struct {
	off  int64 // partition offset
	data []byte
}

// indexBlocks reads the INDX blocks of a directory record's
// $INDEX_ALLOCATION:$I30 (each within one run), with fixups undone.
func (v *ntfsVol) indexBlocks(rec []byte) ([]indxBlock, error) {
	le := binary.LittleEndian
	bs := int64(v.fs.Boot().IndexBlockSize)
	for p := int(le.Uint16(rec[0x14:])); p+16 <= len(rec); {
		typ, l := le.Uint32(rec[p:]), int(le.Uint32(rec[p+4:]))
		if typ == 0xFFFFFFFF || l < 16 || p+l > len(rec) {
			break
		}
		if typ == 0xA0 && rec[p+8] == 1 {
			size := int64(le.Uint64(rec[p+0x30:]))
			runs := decodeRuns(rec[p+int(le.Uint16(rec[p+0x20:])) : p+l])
			var out []indxBlock
			for pos := int64(0); pos+bs <= size; pos += bs {
				vcn, lcn := pos/v.cs, int64(-1)
				for _, r := range runs {
					if vcn >= r[0] && vcn < r[0]+r[2] {
						lcn = r[1] + vcn - r[0]
					}
				}
				if lcn < 0 {
					continue
				}
				b := indxBlock{off: lcn*v.cs + pos%v.cs, data: make([]byte, bs)}
				if _, err := v.f.ReadAt(b.data, b.off); err != nil {
					return nil, err
				}
				if string(b.data[:4]) != "INDX" || fixups(b.data, false) != nil {
					continue
				}
				out = append(out, b)
			}
			return out, nil
		}
		p += l
	}
	return nil, fmt.Errorf("no $INDEX_ALLOCATION")
}

// decodeRuns decodes a runlist into {vcn, lcn, length} triples.
func decodeRuns(b []byte) [][3]int64 {
	var out [][3]int64
	vcn, lcn := int64(0), int64(0)
	for i := 0; i < len(b) && b[i] != 0; {
		nl, no := int(b[i]&0xF), int(b[i]>>4)
		if i+1+nl+no > len(b) || nl == 0 || nl > 8 || no > 8 {
			break
		}
		n := int64(0)
		for k := nl - 1; k >= 0; k-- {
			n = n<<8 | int64(b[i+1+k])
		}
		d := int64(0)
		if no > 0 {
			d = int64(int8(b[i+nl+no]))
			for k := no - 2; k >= 0; k-- {
				d = d<<8 | int64(b[i+1+nl+k])
			}
		}
		i += 1 + nl + no
		if no == 0 {
			vcn += n
			continue
		}
		lcn += d
		out = append(out, [3]int64{vcn, lcn, n})
		vcn += n
	}
	return out
}

// fixups undoes (apply false) or redoes the update sequence array of a
// record.
func fixups(b []byte, apply bool) error {
	le := binary.LittleEndian
	uo, uc := int(le.Uint16(b[4:])), int(le.Uint16(b[6:]))
	if uc < 2 || uo+2*uc > len(b) || (uc-1)*512 > len(b) {
		return fmt.Errorf("update sequence array %d/%d", uo, uc)
	}
	usn := b[uo : uo+2]
	for i := 1; i < uc; i++ {
		end := b[i*512-2 : i*512]
		slot := b[uo+2*i : uo+2*i+2]
		if apply {
			copy(slot, end)
			copy(end, usn)
		} else {
			copy(end, slot)
		}
	}
	return nil
}

// nodeEntry returns the bytes of the index entry named name in a record's
// $INDEX_ROOT:$I30 (root) or in an INDX block.
func nodeEntry(b []byte, name string, root bool) ([]byte, error) {
	le := binary.LittleEndian
	if !root {
		return findInNode(b[0x18:], name)
	}
	for p := int(le.Uint16(b[0x14:])); p+16 <= len(b); {
		typ, l := le.Uint32(b[p:]), int(le.Uint32(b[p+4:]))
		if typ == 0xFFFFFFFF || l < 16 || p+l > len(b) {
			break
		}
		if typ == 0x90 && b[p+8] == 0 {
			v := b[p+int(le.Uint16(b[p+0x14:])):][:le.Uint32(b[p+0x10:])]
			return findInNode(v[0x10:], name)
		}
		p += l
	}
	return nil, fmt.Errorf("no $INDEX_ROOT")
}

func findInNode(node []byte, name string) ([]byte, error) {
	le := binary.LittleEndian
	for q := int(le.Uint32(node[0:])); q+16 <= len(node); {
		el, kl, fl := int(le.Uint16(node[q+8:])), int(le.Uint16(node[q+10:])), le.Uint16(node[q+12:])
		if fl&2 != 0 || el < 16 || q+16+kl > len(node) {
			break
		}
		k := node[q+16 : q+16+kl]
		if kl < 0x42 || 0x42+2*int(k[0x40]) > kl {
			q += el
			continue
		}
		n := int(k[0x40])
		if k[0x41] != 2 && utf16Name(k[0x42:0x42+2*n]) == name {
			return node[q : q+el], nil
		}
		q += el
	}
	return nil, fmt.Errorf("no entry %q in the node", name)
}

func utf16Name(b []byte) string {
	var sb strings.Builder
	for i := 0; i+1 < len(b); i += 2 {
		sb.WriteRune(rune(binary.LittleEndian.Uint16(b[i:])))
	}
	return sb.String()
}

// setName changes the name in an index entry's key, same length.
func setName(e []byte, name string) error {
	k := e[0x10:]
	if int(k[0x40]) != len(name) {
		return fmt.Errorf("new name %q has another length", name)
	}
	for i, c := range name {
		binary.LittleEndian.PutUint16(k[0x42+2*i:], uint16(c))
	}
	return nil
}

type fatVol struct {
	fs *volume.FATFS
	f  *os.File
}

// fatEntry applies change to the 32-byte directory entry of p (in the
// first cluster of its directory, or in the fixed root).
func fatEntry(p string, change func(*fatVol, []byte) error) func(string) error {
	return func(file string) error {
		f, err := os.OpenFile(file, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		ffs, err := volume.OpenFATFS(f, st.Size())
		if err != nil {
			return err
		}
		v := &fatVol{fs: ffs, f: f}
		ent, err := ffs.Stat(p)
		if err != nil {
			return err
		}
		bs := ffs.Boot()
		var off, n int64
		if d := path.Dir(p); d == "/" && bs.Type != volume.FAT32 {
			off, n = bs.RootDirOffset(), int64(bs.RootEntries)*32
		} else {
			c := bs.RootCluster
			if d != "/" {
				dst, err := ffs.Stat(d)
				if err != nil {
					return err
				}
				c = dst.Cluster
			}
			info := ffs.Info()
			off, n = info.ClusterOffset(uint64(c-2)), int64(info.ClusterSize)
		}
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil {
			return err
		}
		want := raw83(ent.ShortName)
		for i := 0; i+32 <= len(buf); i += 32 {
			e := buf[i : i+32]
			if string(e[:11]) == want && e[11]&0x3F != 0x0F {
				if err := change(v, e); err != nil {
					return err
				}
				_, err = f.WriteAt(e, off+int64(i))
				return err
			}
		}
		return fmt.Errorf("%s: 8.3 entry %q not in the first cluster of its directory", p, want)
	}
}

// raw83 turns a displayed 8.3 name into its 11 stored bytes.
func raw83(s string) string {
	base, ext, _ := strings.Cut(strings.ToUpper(s), ".")
	return fmt.Sprintf("%-8s%-3s", base, ext)
}

// NTFSNodeLoop makes the first INDX block of /Data a parent of itself: its
// end entry gains a child pointer to its own VCN. A reader that follows
// child pointers loops; the listing must stay complete with nothing
// damaged (Entry is "").
func NTFSNodeLoop() Shape {
	return Shape{Name: "ntfs index node pointing to itself", Apply: func(file string) error {
		v, err := openNTFS(file)
		if err != nil {
			return err
		}
		defer v.f.Close()
		rec, _, err := v.dirRecord("/Data")
		if err != nil {
			return err
		}
		blocks, err := v.indexBlocks(rec)
		if err != nil || len(blocks) == 0 {
			return fmt.Errorf("/Data has no INDX block: %v", err)
		}
		b := blocks[0]
		le := binary.LittleEndian
		node := b.data[0x18:]
		vcn := le.Uint64(b.data[0x10:])
		end, alloc := int(le.Uint32(node[4:])), int(le.Uint32(node[8:]))
		for q := int(le.Uint32(node[0:])); q+16 <= end; {
			el, fl := int(le.Uint16(node[q+8:])), le.Uint16(node[q+12:])
			if fl&2 == 0 {
				q += el
				continue
			}
			if fl&1 != 0 || q+el+8 > alloc {
				return fmt.Errorf("end entry already has a child, or no room")
			}
			le.PutUint16(node[q+8:], uint16(el+8))
			le.PutUint16(node[q+12:], fl|1)
			le.PutUint64(node[q+el:], vcn)
			le.PutUint32(node[4:], uint32(end+8))
			node[0x0C] |= 1 // the node has children
			if err := fixups(b.data, true); err != nil {
				return err
			}
			_, err = v.f.WriteAt(b.data, b.off)
			return err
		}
		return fmt.Errorf("no end entry in /Data's first INDX block")
	}}
}
