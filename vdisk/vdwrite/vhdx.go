package vdwrite

import (
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// VHDX (dynamic) after [MS-VHDX]: file identifier, two headers, two
// region tables, an empty 1 MiB log, the metadata region, the BAT, then
// 2 MiB payload blocks, all at 1 MiB boundaries.
const (
	vhdxMiB       = 1 << 20
	vhdxBlock     = 2 * vhdxMiB
	vhdxLogOff    = 1 * vhdxMiB
	vhdxLogLen    = 1 * vhdxMiB
	vhdxMetaOff   = 2 * vhdxMiB
	vhdxMetaLen   = 1 * vhdxMiB
	vhdxBATOff    = 3 * vhdxMiB
	vhdxSector    = 512
	vhdxFullBlock = 6 // PAYLOAD_BLOCK_FULLY_PRESENT
)

var vhdxCRC = crc32.MakeTable(crc32.Castagnoli)

// putGUID stores a GUID given as text in the on-disk order (first three
// fields little-endian).
func putGUID(b []byte, s string) {
	var raw [16]byte
	j := 0
	for i := 0; i < len(s); i += 2 {
		if s[i] == '-' {
			i--
			continue
		}
		raw[j] = unhex(s[i])<<4 | unhex(s[i+1])
		j++
	}
	b[0], b[1], b[2], b[3] = raw[3], raw[2], raw[1], raw[0]
	b[4], b[5] = raw[5], raw[4]
	b[6], b[7] = raw[7], raw[6]
	copy(b[8:16], raw[8:])
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func putCRC(b []byte) {
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b, vhdxCRC))
}

func writeVHDX(w *writer, src *Source) error {
	le := binary.LittleEndian
	size := (src.Size + vhdxSector - 1) / vhdxSector * vhdxSector
	nblocks := (size + vhdxBlock - 1) / vhdxBlock
	ratio := int64(1<<23) * vhdxSector / vhdxBlock
	nbat := nblocks + (nblocks-1)/ratio
	batLen := (nbat*8 + vhdxMiB - 1) / vhdxMiB * vhdxMiB
	dataOff := int64(vhdxBATOff) + batLen

	id := make([]byte, 64<<10)
	copy(id, "vhdxfile")
	for i, c := range utf16.Encode([]rune("cbimg")) {
		le.PutUint16(id[8+2*i:], c)
	}
	if err := w.at(id, 0); err != nil {
		return err
	}
	var fileWrite, dataWrite [16]byte
	rand.Read(fileWrite[:])
	rand.Read(dataWrite[:])
	for i, off := range []int64{64 << 10, 128 << 10} {
		h := make([]byte, 4<<10)
		copy(h, "head")
		le.PutUint64(h[8:], uint64(i+1))
		copy(h[16:], fileWrite[:])
		copy(h[32:], dataWrite[:])
		le.PutUint16(h[66:], 1) // version
		le.PutUint32(h[68:], vhdxLogLen)
		le.PutUint64(h[72:], vhdxLogOff)
		putCRC(h)
		if err := w.at(h, off); err != nil {
			return err
		}
	}
	rt := make([]byte, 64<<10)
	copy(rt, "regi")
	le.PutUint32(rt[8:], 2)
	putGUID(rt[16:], "2dc27766-f623-4200-9d64-115e9bfd4a08") // BAT
	le.PutUint64(rt[32:], vhdxBATOff)
	le.PutUint32(rt[40:], uint32(batLen))
	le.PutUint32(rt[44:], 1)
	putGUID(rt[48:], "8b7ca206-4790-4b9a-b8fe-575f050f886e") // metadata
	le.PutUint64(rt[64:], vhdxMetaOff)
	le.PutUint32(rt[72:], vhdxMetaLen)
	le.PutUint32(rt[76:], 1)
	putCRC(rt)
	for _, off := range []int64{192 << 10, 256 << 10} {
		if err := w.at(rt, off); err != nil {
			return err
		}
	}
	if err := w.at(make([]byte, vhdxLogLen), vhdxLogOff); err != nil {
		return err
	}
	meta := make([]byte, vhdxMetaLen)
	copy(meta, "metadata")
	items := []struct {
		guid  string
		data  []byte
		flags uint32 // IsVirtualDisk 2, IsRequired 4
	}{
		{"caa16737-fa36-4d43-b3b6-33f0aa44e76b", le.AppendUint32(le.AppendUint32(nil, vhdxBlock), 0), 4},
		{"2fa54224-cd1b-4876-b211-5dbed83bf4b8", le.AppendUint64(nil, uint64(size)), 6},
		{"beca12ab-b2e6-4523-93ef-c309e000c746", dataWrite[:], 6},
		{"8141bf1d-a96f-4709-ba47-f233a8faab5f", le.AppendUint32(nil, vhdxSector), 6},
		{"cda348c7-445d-4471-9cc9-e9885251c556", le.AppendUint32(nil, vhdxSector), 6},
	}
	le.PutUint16(meta[10:], uint16(len(items)))
	at := 64 << 10
	for i, it := range items {
		e := meta[32+32*i:]
		putGUID(e, it.guid)
		le.PutUint32(e[16:], uint32(at))
		le.PutUint32(e[20:], uint32(len(it.data)))
		le.PutUint32(e[24:], it.flags)
		copy(meta[at:], it.data)
		at += 4096
	}
	if err := w.at(meta, vhdxMetaOff); err != nil {
		return err
	}
	bat := make([]byte, batLen)
	next := dataOff
	var used []int64
	if err := blocks(src, vhdxBlock, func(b int64) error {
		j := b + b/ratio
		le.PutUint64(bat[8*j:], uint64(next/vhdxMiB)<<20|vhdxFullBlock)
		used = append(used, b)
		next += vhdxBlock
		return nil
	}); err != nil {
		return err
	}
	if err := w.at(bat, vhdxBATOff); err != nil {
		return err
	}
	buf := make([]byte, vhdxBlock)
	for i, b := range used {
		if err := readBlock(src, buf, b); err != nil {
			return err
		}
		if err := w.at(buf, dataOff+int64(i)*vhdxBlock); err != nil {
			return err
		}
	}
	return nil
}
