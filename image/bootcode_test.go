package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestHeaderBootCode: the boot code record round-trips, and one of another
// length is refused.
func TestHeaderBootCode(t *testing.T) {
	h := damageHeader()
	h.BootCode = bytes.Repeat([]byte{0xfa, 0x33}, BootCodeLen/2)
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.BootCode, h.BootCode) {
		t.Fatalf("boot code %x", got.BootCode)
	}
	// Find the record (tag 10, length 440) and claim 439 bytes.
	i := bytes.Index(b, append(binary.LittleEndian.AppendUint16(nil, TagBootCode), binary.LittleEndian.AppendUint32(nil, BootCodeLen)...))
	if i < 0 {
		t.Fatal("no boot code record")
	}
	binary.LittleEndian.PutUint32(b[i+2:], BootCodeLen-1)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc(b[:len(b)-4]))
	if _, err := DecodeHeader(b); !errors.Is(err, ErrFormat) {
		t.Fatalf("a 439-byte boot code record: %v", err)
	}
}
