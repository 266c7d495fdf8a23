//go:build linux

package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/cbimg/cbimg/internal/testvol"
)

func TestAllocationExtents(t *testing.T) {
	// Units 0-3 used, 4-11 free, 12 used, 13-15 free; 512-byte units
	// from 1024; a system range inside the free run at 6.
	a := &Allocation{Bitmap: []byte{0x0f, 0x10}, Bits: 16, Unit: 512, Origin: 1024,
		Always: []Range{{Off: 1024 + 6*512, Len: 100}}}
	size := int64(1024 + 16*512 + 300)
	got := a.Extents(0, size)
	// Unit 6 holds the system range: data up to its end, then free again;
	// neighbours of one kind merge.
	want := []Extent{{1024 + 4*512, false}, {2 * 512, true}, {100, false}, {412 + 5*512, true}, {512, false}, {3 * 512, true}, {300, false}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	var sum int64
	for _, e := range got {
		sum += e.Length
	}
	if sum != size {
		t.Errorf("extents cover %d of %d bytes", sum, size)
	}
	// A query inside one run, and a bitmap shorter than its bit count.
	if got := a.Extents(1024+5*512+10, 20); !reflect.DeepEqual(got, []Extent{{20, true}}) {
		t.Errorf("inside a hole: %v", got)
	}
	short := &Allocation{Bitmap: []byte{0}, Bits: 1 << 20, Unit: 512}
	if got := short.Extents(0, 1<<20); !reflect.DeepEqual(got, []Extent{{8 * 512, true}, {1<<20 - 8*512, false}}) {
		t.Errorf("short bitmap: %v", got)
	}
}

// pipeConn is a connection fed from fixed client bytes; replies are kept.
type pipeConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *pipeConn) Read(b []byte) (int, error)       { return c.in.Read(b) }
func (c *pipeConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *pipeConn) Close() error                     { return nil }
func (c *pipeConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "test"} }
func (c *pipeConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "test"} }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }

// session builds client bytes: options, then requests.
type session struct{ b []byte }

func (s *session) opt(opt uint32, data []byte) *session {
	s.b = binary.BigEndian.AppendUint64(s.b, magicIHaveOpt)
	s.b = binary.BigEndian.AppendUint32(s.b, opt)
	s.b = binary.BigEndian.AppendUint32(s.b, uint32(len(data)))
	s.b = append(s.b, data...)
	return s
}

func (s *session) req(flags, typ uint16, off uint64, n uint32) *session {
	s.b = binary.BigEndian.AppendUint32(s.b, magicRequest)
	s.b = binary.BigEndian.AppendUint16(s.b, flags)
	s.b = binary.BigEndian.AppendUint16(s.b, typ)
	s.b = binary.BigEndian.AppendUint64(s.b, 42)
	s.b = binary.BigEndian.AppendUint64(s.b, off)
	s.b = binary.BigEndian.AppendUint32(s.b, n)
	return s
}

func goData(name string, infos ...uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(infos)))
	for _, i := range infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}

func metaData(name string, queries ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(queries)))
	for _, q := range queries {
		b = binary.BigEndian.AppendUint32(b, uint32(len(q)))
		b = append(b, q...)
	}
	return b
}

// fixture is a server exporting a real FAT volume file, with a bitmap
// that marks its first half used.
func fixture(t testing.TB) (*Server, []byte) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 16, Content: "basic"})
	data, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	bits := uint64(len(data) / 4096)
	bm := make([]byte, bits/8)
	for i := range bm[:len(bm)/2] {
		bm[i] = 0xff
	}
	a := &Allocation{Bitmap: bm, Bits: bits, Unit: 4096}
	return &Server{Exports: []Export{{Size: int64(len(data)), Data: bytes.NewReader(data), Extents: a.Extents}}}, data
}

// replies splits a server's output after the 18-byte greeting into option
// replies (type, data) until the transmission phase.
func optReplies(t *testing.T, out []byte) (reps [][2]any, rest []byte) {
	t.Helper()
	if len(out) < 18 || binary.BigEndian.Uint64(out) != magicNBD {
		t.Fatalf("no greeting: %x", out[:min(len(out), 18)])
	}
	out = out[18:]
	for len(out) >= 20 && binary.BigEndian.Uint64(out) == magicOptReply {
		typ, n := binary.BigEndian.Uint32(out[12:]), binary.BigEndian.Uint32(out[16:])
		reps = append(reps, [2]any{typ, out[20 : 20+n]})
		out = out[20+n:]
	}
	return reps, out
}

func TestHandshakeAndRequests(t *testing.T) {
	srv, data := fixture(t)
	c := &session{b: binary.BigEndian.AppendUint32(nil, clientFlagFixedNewstyle|clientFlagNoZeroes)}
	c.opt(optSetMetaContext, metaData("", metaBaseAllocation)). // before structured replies: invalid
									opt(optStructuredReply, nil).
									opt(optGo, goData("nope")).
									opt(optExtendedHeaders, nil).
									opt(optSetMetaContext, metaData("", "other:x", metaBaseAllocation)).
									opt(optGo, goData("", infoName)).
									req(0, cmdRead, 4096, 512).
									req(cmdFlagReqOne, cmdBlockStatus, 0, uint32(len(data))).
									req(0, cmdBlockStatus, 0, uint32(len(data))).
									req(0, cmdWrite, 0, 4)
	c.b = append(c.b, 1, 2, 3, 4)
	c.req(0, cmdFlush, 0, 0).req(0, cmdRead, MaxRead, MaxRead+1).req(0, cmdDisc, 0, 0)
	conn := &pipeConn{in: bytes.NewReader(c.b)}
	if err := srv.ServeConn(conn); err != nil {
		t.Fatal(err)
	}
	reps, rest := optReplies(t, conn.out.Bytes())
	var types []uint32
	for _, r := range reps {
		types = append(types, r[0].(uint32))
	}
	want := []uint32{repErrInvalid, repAck, repErrUnknown, repErrUnsup, repMetaContext, repAck,
		repInfo, repInfo, repInfo, repAck}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("option replies %x, want %x", types, want)
	}
	// Transmission: the replies of reads and block status come from
	// workers in any order; gather them by type.
	type chunk struct {
		typ     uint16
		payload []byte
	}
	var chunks []chunk
	var simple []uint32
	for len(rest) > 0 {
		switch binary.BigEndian.Uint32(rest) {
		case magicStructuredReply:
			n := binary.BigEndian.Uint32(rest[16:])
			chunks = append(chunks, chunk{binary.BigEndian.Uint16(rest[6:]), rest[20 : 20+n]})
			rest = rest[20+n:]
		case magicSimpleReply:
			simple = append(simple, binary.BigEndian.Uint32(rest[4:]))
			rest = rest[16:]
		default:
			t.Fatalf("bad reply magic: %x", rest[:4])
		}
	}
	if !reflect.DeepEqual(simple, []uint32{errPerm, 0}) {
		t.Errorf("write and flush: errnos %v, want EPERM then 0", simple)
	}
	var reads, statuses, errs int
	for _, ch := range chunks {
		switch ch.typ {
		case replyTypeOffsetData:
			reads++
			if binary.BigEndian.Uint64(ch.payload) != 4096 || !bytes.Equal(ch.payload[8:], data[4096:4096+512]) {
				t.Error("read returned other bytes than the volume's")
			}
		case replyTypeBlockStatus:
			statuses++
			d := ch.payload[4:]
			if len(d) == 8 { // REQ_ONE
				if binary.BigEndian.Uint32(d) != uint32(len(data)/2) || binary.BigEndian.Uint32(d[4:]) != 0 {
					t.Errorf("REQ_ONE block status %x", d)
				}
			} else if len(d) != 16 || binary.BigEndian.Uint32(d[12:]) != stateHole|stateZero {
				t.Errorf("block status %x", d)
			}
		case replyTypeError:
			errs++
			if binary.BigEndian.Uint32(ch.payload) != errInval {
				t.Errorf("oversized read: errno %d", binary.BigEndian.Uint32(ch.payload))
			}
		}
	}
	if reads != 1 || statuses != 2 || errs != 1 {
		t.Errorf("%d reads, %d block statuses, %d errors; want 1, 2, 1", reads, statuses, errs)
	}
}

// Serve stops on cancel with clients still connected; a client that only
// connects does not hold the others up.
func TestServeCancel(t *testing.T) {
	srv, _ := fixture(t)
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, l) }()
	idle, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello := make([]byte, 18)
	if _, err := io.ReadFull(c, hello); err != nil || binary.BigEndian.Uint64(hello) != magicNBD {
		t.Fatalf("greeting %x %v", hello, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve did not stop")
	}
	io.ReadFull(idle, hello)
	if _, err := idle.Read(hello[:1]); err == nil {
		t.Error("connection still open after Serve returned")
	}
}

func FuzzServeConn(f *testing.F) {
	srv, data := fixture(f)
	hs := binary.BigEndian.AppendUint32(nil, clientFlagFixedNewstyle|clientFlagNoZeroes)
	f.Add((&session{b: hs}).opt(optStructuredReply, nil).opt(optSetMetaContext, metaData("", metaBaseAllocation)).
		opt(optGo, goData("")).req(0, cmdRead, 0, 4096).req(0, cmdBlockStatus, 0, uint32(len(data))).b)
	f.Add((&session{b: hs}).opt(optExportName, nil).req(0, cmdRead, 100, 1000).req(0, cmdDisc, 0, 0).b)
	f.Add((&session{b: hs}).opt(optList, nil).opt(optListMetaContext, metaData("")).opt(optInfo, goData("", 1, 2, 3)).opt(optAbort, nil).b)
	f.Fuzz(func(t *testing.T, in []byte) {
		srv.ServeConn(&pipeConn{in: bytes.NewReader(in)})
	})
}

// Overlay writes (unaligned, across blocks, into the short last block) read
// back over the base, survive reopening, never reach the base, and an
// overlay file of another base is refused.
func TestOverlay(t *testing.T) {
	vol := testvol.FAT(t, testvol.FATSpec{Bits: 16, SizeMiB: 16, Content: "basic"})
	f, err := os.Open(vol)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(16<<20 - 1000) // the last block is short
	base := io.NewSectionReader(f, 0, size)
	want := make([]byte, size)
	if _, err := base.ReadAt(want, 0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ov")
	o, err := OpenOverlay(path, base, size, "vol-a")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []struct{ off, n int64 }{{100, 10}, {4000, 9000}, {size - 5000, 5000}, {8192, 4096}} {
		p := bytes.Repeat([]byte{byte(0xa0 + i)}, int(w.n))
		if _, err := o.WriteAt(p, w.off); err != nil {
			t.Fatal(err)
		}
		copy(want[w.off:], p)
	}
	if _, err := o.WriteAt([]byte{1}, size); err == nil {
		t.Error("a write past the end succeeded")
	}
	check := func(o *Overlay) {
		t.Helper()
		got := make([]byte, size)
		if n, err := o.ReadAt(got, 0); n != len(got) || err != nil {
			t.Fatalf("read %d: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Error("overlay reads differ from the base with the writes")
		}
		// A read across the end is short with io.EOF.
		if n, err := o.ReadAt(make([]byte, 100), size-10); n != 10 || err != io.EOF {
			t.Errorf("read across the end: %d, %v", n, err)
		}
	}
	check(o)
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if o, err = OpenOverlay(path, base, size, "vol-a"); err != nil {
		t.Fatal(err)
	}
	check(o)
	ext := o.Extents(func(off, n int64) []Extent { return []Extent{{n, true}} })(0, size)
	if ext[0] != (Extent{4 * 4096, false}) || !ext[1].Hole { // blocks 0-3 written
		t.Errorf("extents over all-hole base: %v", ext[:2])
	}
	o.Close()
	if _, err := OpenOverlay(path, base, size, "vol-b"); !errors.Is(err, ErrOverlayMismatch) {
		t.Errorf("overlay of another base: %v", err)
	}
	if _, err := OpenOverlay(path, base, size-1, "vol-a"); !errors.Is(err, ErrOverlayMismatch) {
		t.Errorf("overlay of another size: %v", err)
	}
	other := filepath.Join(t.TempDir(), "boot")
	os.WriteFile(other, want[:8192], 0o644)
	if _, err := OpenOverlay(other, base, size, "vol-a"); err == nil {
		t.Error("a file that is not an overlay opened as one")
	}
}
