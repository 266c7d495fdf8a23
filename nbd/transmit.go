package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// maxDescriptors bounds one block-status reply.
const maxDescriptors = 1 << 16

// writeTimeout bounds the sending of one reply.
const writeTimeout = 2 * time.Minute

type request struct {
	flags, typ uint16
	cookie     uint64
	off        uint64
	length     uint32
}

// transmit is the "Transmission" phase: requests until NBD_CMD_DISC, EOF
// or a protocol violation.
func (cn *conn) transmit(ex *Export) error {
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	var h [requestLen]byte
	for {
		if err := cn.readFull(h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // gone without NBD_CMD_DISC: only this connection ends
			}
			return err
		}
		if binary.BigEndian.Uint32(h[0:]) != magicRequest {
			return fmt.Errorf("%w: bad request magic", ErrProtocol)
		}
		rq := request{
			flags: binary.BigEndian.Uint16(h[4:]), typ: binary.BigEndian.Uint16(h[6:]),
			cookie: binary.BigEndian.Uint64(h[8:]), off: binary.BigEndian.Uint64(h[16:]),
			length: binary.BigEndian.Uint32(h[24:]),
		}
		switch rq.typ {
		case cmdDisc:
			return nil
		case cmdWrite:
			// The payload must be consumed to stay in step; too large a
			// one is not worth reading.
			if rq.length > MaxRead {
				return fmt.Errorf("%w: write of %d bytes", ErrProtocol, rq.length)
			}
			if ex.Writer == nil {
				if _, err := io.CopyN(io.Discard, cn.r, int64(rq.length)); err != nil {
					return err
				}
				cn.simple(rq.cookie, errPerm, nil)
				continue
			}
			cn.s.budget.acquire(int64(rq.length))
			buf := make([]byte, rq.length)
			err := cn.readFull(buf)
			if err == nil {
				cn.write(ex, rq, buf)
			}
			cn.s.budget.release(int64(rq.length))
			if err != nil {
				return err
			}
		case cmdTrim, cmdWriteZeroes, cmdResize:
			cn.simple(rq.cookie, errPerm, nil)
		case cmdFlush:
			if ex.Writer != nil {
				if err := ex.Writer.Sync(); err != nil {
					cn.s.logf("nbd: flush: %v", err)
					cn.fail(rq.cookie, errIO, err.Error())
					continue
				}
			}
			cn.simple(rq.cookie, 0, nil)
		case cmdCache:
			cn.simple(rq.cookie, 0, nil)
		case cmdRead, cmdBlockStatus:
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if rq.typ == cmdRead {
					cn.read(ex, rq)
				} else {
					cn.blockStatus(ex, rq)
				}
			}()
		default:
			cn.simple(rq.cookie, errInval, nil)
		}
	}
}

// send writes one reply under the lock; a failed write closes the
// connection, which ends the request loop.
func (cn *conn) send(parts ...[]byte) {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	// A client that stops reading its replies must not hold buffers for
	// ever.
	cn.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, p := range parts {
		if _, err := cn.w.Write(p); err != nil {
			cn.c.Close()
			return
		}
	}
	if err := cn.w.Flush(); err != nil {
		cn.c.Close()
	}
}

// simple sends a "Simple reply message" (data only on success).
func (cn *conn) simple(cookie uint64, errno uint32, data []byte) {
	var h [16]byte
	binary.BigEndian.PutUint32(h[0:], magicSimpleReply)
	binary.BigEndian.PutUint32(h[4:], errno)
	binary.BigEndian.PutUint64(h[8:], cookie)
	cn.send(h[:], data)
}

// chunkHeader is a "Structured reply chunk message" header.
func chunkHeader(cookie uint64, flags, typ uint16, length int) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint32(h[0:], magicStructuredReply)
	binary.BigEndian.PutUint16(h[4:], flags)
	binary.BigEndian.PutUint16(h[6:], typ)
	binary.BigEndian.PutUint64(h[8:], cookie)
	binary.BigEndian.PutUint32(h[16:], uint32(length))
	return h
}

// fail answers a request with an error, structured when negotiated
// (NBD_REPLY_TYPE_ERROR).
func (cn *conn) fail(cookie uint64, errno uint32, msg string) {
	if !cn.structured {
		cn.simple(cookie, errno, nil)
		return
	}
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	p := binary.BigEndian.AppendUint32(nil, errno)
	p = binary.BigEndian.AppendUint16(p, uint16(len(msg)))
	p = append(p, msg...)
	cn.send(chunkHeader(cookie, replyFlagDone, replyTypeError, len(p)), p)
}

// inRange reports whether a request lies within the export.
func inRange(ex *Export, rq request) bool {
	return rq.length > 0 && rq.off <= uint64(ex.Size) && uint64(rq.length) <= uint64(ex.Size)-rq.off
}

// read answers NBD_CMD_READ.
func (cn *conn) read(ex *Export, rq request) {
	if rq.length > MaxRead {
		cn.fail(rq.cookie, errInval, fmt.Sprintf("read of %d bytes exceeds the maximum %d", rq.length, MaxRead))
		return
	}
	if !inRange(ex, rq) {
		cn.fail(rq.cookie, errInval, "read outside the export")
		return
	}
	cn.s.budget.acquire(int64(rq.length))
	defer cn.s.budget.release(int64(rq.length))
	buf := make([]byte, rq.length)
	n, err := ex.Data.ReadAt(buf, int64(rq.off))
	if n == len(buf) {
		err = nil
	} else if err == nil {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		cn.s.logf("nbd: read %d bytes at %d: %v", rq.length, rq.off, err)
		cn.fail(rq.cookie, errIO, err.Error())
		return
	}
	if !cn.structured {
		cn.simple(rq.cookie, 0, buf)
		return
	}
	off := binary.BigEndian.AppendUint64(nil, rq.off)
	cn.send(chunkHeader(rq.cookie, replyFlagDone, replyTypeOffsetData, 8+len(buf)), off, buf)
}

// blockStatus answers NBD_CMD_BLOCK_STATUS for "base:allocation".
func (cn *conn) blockStatus(ex *Export, rq request) {
	if !cn.meta {
		cn.fail(rq.cookie, errInval, "no metadata context negotiated")
		return
	}
	if rq.off >= uint64(ex.Size) || rq.length == 0 {
		cn.fail(rq.cookie, errInval, "block status outside the export")
		return
	}
	n := min(int64(rq.length), ex.Size-int64(rq.off))
	var ext []Extent
	if ex.Extents != nil {
		ext = ex.Extents(int64(rq.off), n)
	}
	p := binary.BigEndian.AppendUint32(nil, baseAllocationID)
	var done int64
	for i, e := range ext {
		if done >= n || i >= maxDescriptors || (i > 0 && rq.flags&cmdFlagReqOne != 0) {
			break
		}
		if e.Length <= 0 {
			break
		}
		l := min(e.Length, n-done)
		var st uint32
		if e.Hole {
			st = stateHole | stateZero
		}
		p = binary.BigEndian.AppendUint32(p, uint32(l))
		p = binary.BigEndian.AppendUint32(p, st)
		done += l
	}
	if done == 0 { // nothing known: all data
		p = binary.BigEndian.AppendUint32(p, uint32(n))
		p = binary.BigEndian.AppendUint32(p, 0)
	}
	cn.send(chunkHeader(rq.cookie, replyFlagDone, replyTypeBlockStatus, len(p)), p)
}

// write answers NBD_CMD_WRITE on a writable export.
func (cn *conn) write(ex *Export, rq request, buf []byte) {
	if !inRange(ex, rq) {
		cn.fail(rq.cookie, errInval, "write outside the export")
		return
	}
	if _, err := ex.Writer.WriteAt(buf, int64(rq.off)); err != nil {
		cn.s.logf("nbd: write %d bytes at %d: %v", rq.length, rq.off, err)
		cn.fail(rq.cookie, errIO, err.Error())
		return
	}
	cn.simple(rq.cookie, 0, nil)
}
