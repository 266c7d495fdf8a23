// Package nbd serves read-only block devices over the Network Block Device
// protocol (doc/proto.md of the NetworkBlockDevice/nbd project; comments
// name its sections): the fixed newstyle handshake, NBD_OPT_INFO and
// NBD_OPT_GO with block size constraints, structured replies, the
// "base:allocation" metadata context for NBD_CMD_BLOCK_STATUS, reads,
// flush and disconnect. Writes are refused with EPERM unless the export has
// a Writer (a copy-on-write Overlay).
//
// Every connection is on its own: a client that sends garbage or goes away
// mid-transfer ends only its connection. Requests are bounded (MaxRead) and
// several are served at once per connection.
package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"
)

// MaxRead is the largest read (and block-status or discarded write length)
// a client may ask for; it is also the maximum block size advertised.
const MaxRead = 32 << 20

// inFlight is how many requests of one connection are served at once.
const inFlight = 4

// handshakeTimeout bounds the option haggling of one client.
const handshakeTimeout = 30 * time.Second

// maxConns bounds the connections served at once; more are closed.
const maxConns = 128

// bufferBudget bounds the memory of request buffers of all connections.
const bufferBudget = 256 << 20

// budget hands out request-buffer bytes, waiting while bufferBudget is
// spent (one request always passes, so none waits forever).
type budget struct {
	mu   sync.Mutex
	cond *sync.Cond
	used int64
}

func (b *budget) acquire(n int64) {
	b.mu.Lock()
	if b.cond == nil {
		b.cond = sync.NewCond(&b.mu)
	}
	for b.used > 0 && b.used+n > bufferBudget {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.cond != nil {
		b.cond.Broadcast()
	}
	b.mu.Unlock()
}

// Extent is a run of an export: Hole runs read as zeros and hold no data.
type Extent struct {
	Length int64
	Hole   bool
}

// Export is one block device the server offers.
type Export struct {
	Name        string // "" is the default export
	Description string
	Size        int64
	Data        io.ReaderAt // safe for concurrent use
	// BlockSize is the preferred I/O size (a power of two ≥ 512); 0 = 4096.
	BlockSize uint32
	// Extents, when set, describes [off, off+n) as consecutive runs
	// starting at off (they may end early); nil reports all as data.
	Extents func(off, n int64) []Extent
	// Writer, when set, makes the export writable (an Overlay); nil
	// refuses writes with EPERM.
	Writer Writer
}

// Writer takes an export's writes; Sync makes them durable.
type Writer interface {
	io.WriterAt
	Sync() error
}

// Server serves Exports to every connection of a listener.
type Server struct {
	Exports []Export
	Log     *log.Logger // nil: discard

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	budget budget
}

// ErrProtocol marks a client that broke the protocol; its connection closes.
var ErrProtocol = errors.New("nbd: protocol violation")

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log.Printf(format, args...)
	}
}

// Serve accepts connections until ctx ends or the listener fails, then
// closes the listener and every connection.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = map[net.Conn]struct{}{}
		}
		if len(s.conns) >= maxConns {
			s.mu.Unlock()
			s.logf("nbd: %d connections already: closing a new one", maxConns)
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		if ctx.Err() != nil {
			c.Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ServeConn(c); err != nil {
				s.logf("nbd: %s: %v", c.RemoteAddr(), err)
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// ServeConn runs the handshake and transmission phases on c and closes it.
// It returns nil when the client disconnected cleanly.
func (s *Server) ServeConn(c net.Conn) error {
	defer c.Close()
	cn := &conn{s: s, c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	ex, err := cn.handshake()
	if err != nil || ex == nil {
		return err
	}
	c.SetDeadline(time.Time{})
	return cn.transmit(ex)
}

type conn struct {
	s          *Server
	c          net.Conn
	r          *bufio.Reader
	w          *bufio.Writer
	wmu        sync.Mutex // one reply at a time on w
	noZeroes   bool
	structured bool
	meta       bool // base:allocation negotiated
}

func (cn *conn) export(name string) *Export {
	for i := range cn.s.Exports {
		if cn.s.Exports[i].Name == name {
			return &cn.s.Exports[i]
		}
	}
	return nil
}

func (ex *Export) flags() uint16 {
	f := uint16(tflagHasFlags | tflagSendFlush | tflagSendCache | tflagCanMultiConn)
	if ex.Writer == nil {
		f |= tflagReadOnly
	}
	return f
}

func (ex *Export) blockSize() uint32 {
	b := ex.BlockSize
	if b < 512 || b > MaxRead || b&(b-1) != 0 {
		b = 4096
	}
	return b
}

func (cn *conn) readFull(b []byte) error {
	_, err := io.ReadFull(cn.r, b)
	return err
}

// handshake is "Fixed newstyle negotiation": it returns the export chosen
// with NBD_OPT_GO or NBD_OPT_EXPORT_NAME, or nil when the client aborted.
func (cn *conn) handshake() (*Export, error) {
	var hello [18]byte
	binary.BigEndian.PutUint64(hello[0:], magicNBD)
	binary.BigEndian.PutUint64(hello[8:], magicIHaveOpt)
	binary.BigEndian.PutUint16(hello[16:], flagFixedNewstyle|flagNoZeroes)
	if _, err := cn.c.Write(hello[:]); err != nil {
		return nil, err
	}
	var cf [4]byte
	if err := cn.readFull(cf[:]); err != nil {
		return nil, err
	}
	flags := binary.BigEndian.Uint32(cf[:])
	if flags&^(clientFlagFixedNewstyle|clientFlagNoZeroes) != 0 {
		return nil, fmt.Errorf("%w: unknown client flags %#x", ErrProtocol, flags)
	}
	cn.noZeroes = flags&clientFlagNoZeroes != 0
	for n := 0; n < maxOptionsPerClient; n++ {
		var h [16]byte
		if err := cn.readFull(h[:]); err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint64(h[0:]) != magicIHaveOpt {
			return nil, fmt.Errorf("%w: bad option magic", ErrProtocol)
		}
		opt, length := binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
		if length > maxOptionLen {
			return nil, fmt.Errorf("%w: option %d of %d bytes", ErrProtocol, opt, length)
		}
		data := make([]byte, length)
		if err := cn.readFull(data); err != nil {
			return nil, err
		}
		ex, done, err := cn.option(opt, data)
		if err == nil {
			err = cn.w.Flush()
		}
		if err != nil || done {
			return ex, err
		}
	}
	return nil, fmt.Errorf("%w: more than %d options", ErrProtocol, maxOptionsPerClient)
}

// reply writes an option reply ("Option reply types").
func (cn *conn) reply(opt, typ uint32, data ...[]byte) error {
	n := 0
	for _, d := range data {
		n += len(d)
	}
	var h [20]byte
	binary.BigEndian.PutUint64(h[0:], magicOptReply)
	binary.BigEndian.PutUint32(h[8:], opt)
	binary.BigEndian.PutUint32(h[12:], typ)
	binary.BigEndian.PutUint32(h[16:], uint32(n))
	cn.w.Write(h[:])
	for _, d := range data {
		cn.w.Write(d)
	}
	return nil
}

func (cn *conn) replyErr(opt, typ uint32, msg string) error {
	return cn.reply(opt, typ, []byte(msg))
}

// option answers one option; done is true when the handshake ends.
func (cn *conn) option(opt uint32, data []byte) (ex *Export, done bool, err error) {
	switch opt {
	case optExportName:
		// "NBD_OPT_EXPORT_NAME": no error reply exists; an unknown name
		// closes the connection.
		ex := cn.export(string(data))
		if ex == nil {
			return nil, true, fmt.Errorf("unknown export %q", data)
		}
		b := make([]byte, 10, 10+124)
		binary.BigEndian.PutUint64(b[0:], uint64(ex.Size))
		binary.BigEndian.PutUint16(b[8:], ex.flags())
		if !cn.noZeroes {
			b = b[:10+124]
		}
		cn.w.Write(b)
		return ex, true, cn.w.Flush()
	case optAbort:
		cn.reply(opt, repAck)
		return nil, true, cn.w.Flush()
	case optList:
		if len(data) != 0 {
			return nil, false, cn.replyErr(opt, repErrInvalid, "NBD_OPT_LIST takes no data")
		}
		for _, e := range cn.s.Exports {
			b := binary.BigEndian.AppendUint32(nil, uint32(len(e.Name)))
			cn.reply(opt, repServer, b, []byte(e.Name), []byte(e.Description))
		}
		return nil, false, cn.reply(opt, repAck)
	case optInfo, optGo:
		return cn.infoGo(opt, data)
	case optStructuredReply:
		if len(data) != 0 {
			return nil, false, cn.replyErr(opt, repErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data")
		}
		cn.structured = true
		return nil, false, cn.reply(opt, repAck)
	case optListMetaContext, optSetMetaContext:
		return nil, false, cn.metaContext(opt, data)
	case optStartTLS:
		return nil, false, cn.replyErr(opt, repErrUnsup, "TLS is not offered")
	default: // including NBD_OPT_EXTENDED_HEADERS
		return nil, false, cn.replyErr(opt, repErrUnsup, "option not supported")
	}
}

// cursor reads option data in spec order, failing on a short field.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) take(n uint64) []byte {
	if c.bad || uint64(len(c.b)) < n {
		c.bad = true
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u16() uint16 {
	if b := c.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (c *cursor) u32() uint32 {
	if b := c.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// infoGo answers "NBD_OPT_INFO and NBD_OPT_GO".
func (cn *conn) infoGo(opt uint32, data []byte) (*Export, bool, error) {
	c := &cursor{b: data}
	name := string(c.take(uint64(c.u32())))
	n := c.u16()
	reqs := c.take(2 * uint64(n))
	if c.bad || len(c.b) != 0 {
		return nil, false, cn.replyErr(opt, repErrInvalid, "malformed request")
	}
	ex := cn.export(name)
	if ex == nil {
		return nil, false, cn.replyErr(opt, repErrUnknown, "no such export")
	}
	b := binary.BigEndian.AppendUint16(nil, infoExport)
	b = binary.BigEndian.AppendUint64(b, uint64(ex.Size))
	b = binary.BigEndian.AppendUint16(b, ex.flags())
	cn.reply(opt, repInfo, b)
	// "Block size constraints": any alignment works, the cluster is
	// preferred, reads are capped.
	b = binary.BigEndian.AppendUint16(nil, infoBlockSize)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, ex.blockSize())
	b = binary.BigEndian.AppendUint32(b, MaxRead)
	cn.reply(opt, repInfo, b)
	for i := 0; i+1 < len(reqs); i += 2 {
		switch binary.BigEndian.Uint16(reqs[i:]) {
		case infoName:
			cn.reply(opt, repInfo, binary.BigEndian.AppendUint16(nil, infoName), []byte(ex.Name))
		case infoDescription:
			cn.reply(opt, repInfo, binary.BigEndian.AppendUint16(nil, infoDescription), []byte(ex.Description))
		}
	}
	cn.reply(opt, repAck)
	if opt == optGo {
		return ex, true, cn.w.Flush()
	}
	return nil, false, nil
}

// metaContext answers NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT
// ("Metadata querying"): only "base:allocation" exists.
func (cn *conn) metaContext(opt uint32, data []byte) error {
	if opt == optSetMetaContext && !cn.structured {
		return cn.replyErr(opt, repErrInvalid, "structured replies not negotiated")
	}
	c := &cursor{b: data}
	name := string(c.take(uint64(c.u32())))
	nq := c.u32()
	if c.bad || uint64(nq)*4 > uint64(len(c.b)) {
		return cn.replyErr(opt, repErrInvalid, "malformed request")
	}
	var found bool
	for i := uint32(0); i < nq; i++ {
		q := string(c.take(uint64(c.u32())))
		if q == metaBaseAllocation || (opt == optListMetaContext && q == "base:") {
			found = true
		}
	}
	if c.bad || len(c.b) != 0 {
		return cn.replyErr(opt, repErrInvalid, "malformed request")
	}
	if cn.export(name) == nil {
		return cn.replyErr(opt, repErrUnknown, "no such export")
	}
	if opt == optListMetaContext && nq == 0 {
		found = true
	}
	if opt == optSetMetaContext {
		cn.meta = found
	}
	if found {
		cn.reply(opt, repMetaContext, binary.BigEndian.AppendUint32(nil, baseAllocationID), []byte(metaBaseAllocation))
	}
	return cn.reply(opt, repAck)
}
