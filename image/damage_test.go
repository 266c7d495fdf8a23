package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func damageHeader() *Header {
	h := &Header{FSType: 4, SectorSize: 512, ClusterSize: 4096, ChunkSize: 1 << 20, FSSectors: 2048, FSSize: 1 << 20,
		ClusterCount: 256, BitmapBits: 256, PartLength: 1 << 20}
	h.Finish()
	return h
}

// withRecord inserts a TLV record before the header's CRC and fixes the
// length and CRC.
func withRecord(b []byte, tag uint16, val []byte) []byte {
	out := bytes.Clone(b[:len(b)-4])
	out = binary.LittleEndian.AppendUint16(out, tag)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(val)))
	out = append(out, val...)
	binary.LittleEndian.PutUint32(out[8:], uint32(len(out)+4))
	return binary.LittleEndian.AppendUint32(out, crc(out))
}

// Damage records survive encoding; long strings are cut at a character
// boundary; a header without damage has no such record, so images of
// earlier versions and of this one read alike.
func TestHeaderDamageRecords(t *testing.T) {
	h := damageHeader()
	plain, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	h.Damage = []Damage{
		{Kind: "cross-linked", Path: "/Data/1MiB.bin", What: "cluster chain of /Data/1MiB.bin", Offset: 24628, Msg: "cluster 2061 is also part of another chain"},
		{Kind: "bitmap mismatch", What: "$Bitmap", Offset: -1, Msg: long},
	}
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Only the header length (bytes 8-11) changes in the fixed part.
	if !bytes.Equal(b[12:fixedHeaderLen], plain[12:fixedHeaderLen]) || len(b) <= len(plain) {
		t.Fatal("damage records changed the fixed header")
	}
	got, err := DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]Damage(nil), h.Damage...)
	want[1].Msg = strings.Repeat("é", 512)
	if !reflect.DeepEqual(got.Damage, want) {
		t.Fatalf("decoded %+v\nwant %+v", got.Damage, want)
	}
	if p, err := DecodeHeader(plain); err != nil || p.Damage != nil {
		t.Fatalf("header without damage: %v %v", err, p.Damage)
	}

	// An optional record this reader does not know is skipped (that is how
	// a reader from before damage records treats tag 8); a critical one
	// is refused.
	if _, err := DecodeHeader(withRecord(b, 0x0009, []byte("later"))); err != nil {
		t.Fatalf("unknown optional record: %v", err)
	}
	if _, err := DecodeHeader(withRecord(b, 0x8009, []byte("later"))); !errors.Is(err, ErrVersion) {
		t.Fatalf("unknown critical record: %v", err)
	}
	// A damage record with bytes left over, or cut short, is refused.
	var v writeBuf
	v.u8(4)
	v.bytes([]byte("kind"))
	v.str16("/p")
	v.str16("w")
	v.u64(1)
	v.str16("m")
	if _, err := DecodeHeader(withRecord(plain, TagDamage, v)); err != nil {
		t.Fatalf("hand-made damage record: %v", err)
	}
	if _, err := DecodeHeader(withRecord(plain, TagDamage, append(bytes.Clone(v), 0))); !errors.Is(err, ErrFormat) {
		t.Fatalf("record with a byte left over: %v", err)
	}
	if _, err := DecodeHeader(withRecord(plain, TagDamage, v[:len(v)-1])); !errors.Is(err, ErrFormat) {
		t.Fatalf("truncated record: %v", err)
	}
}
