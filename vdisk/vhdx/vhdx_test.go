package vhdx

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/vdisk/internal/seeds"
	"github.com/cbimg/cbimg/vdisk/internal/vdio"
)

// TestHostile: a log to replay is refused with a message saying how to
// apply it; a BAT entry past the end and damaged headers are ErrFormat.
func TestHostile(t *testing.T) {
	good := seeds.Make(t, "a.vhdx", []string{"qemu-img", "create", "-f", "vhdx", "-o", "block_size=1M", "{}", "8M"},
		[]string{"qemu-io", "-f", "vhdx", "-c", "write -P 0x44 0 1M", "{}"})
	if good == nil {
		t.Fatal("qemu-img is needed (apt-get install qemu-utils)")
	}
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	resum := func(b []byte, off, n int) {
		binary.LittleEndian.PutUint32(b[off+4:], 0)
		binary.LittleEndian.PutUint32(b[off+4:], crc32.Checksum(b[off:off+n], castagnoli))
	}
	open := func(b []byte) error {
		d, err := Open(seeds.File(t, "x.vhdx", b))
		if err == nil {
			d.Close()
		}
		return err
	}
	if err := open(good); err != nil {
		t.Fatal(err)
	}
	logged := edit(func(b []byte) {
		for _, off := range []int{header1Off, header2Off} {
			b[off+48] = 1
			resum(b, off, headerLen)
		}
	})
	if err := open(logged); !errors.Is(err, vdio.ErrUnsupported) || !strings.Contains(err.Error(), "log") {
		t.Errorf("log to replay: %v", err)
	}
	if err := open(edit(func(b []byte) { b[header1Off+100] ^= 1; b[header2Off+100] ^= 1 })); !errors.Is(err, vdio.ErrFormat) {
		t.Errorf("both headers damaged: %v", err)
	}
	// The BAT region's offset from the region table, then entry 0 moved
	// past the end.
	rs, _ := parseRegions(good[region1Off:])
	var bat uint64
	for _, r := range rs {
		if r.guid == guidBAT {
			bat = r.offset
		}
	}
	if err := open(edit(func(b []byte) { binary.LittleEndian.PutUint64(b[bat:], payloadFullyPresent|1<<40) })); !errors.Is(err, vdio.ErrFormat) {
		t.Errorf("BAT entry past the end: %v", err)
	}
}
