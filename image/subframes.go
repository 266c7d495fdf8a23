package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A FrameSubFrames chunk stores its logical bytes as independent zstd
// frames of sub bytes each, then an index of 8 bytes per frame (stored
// length, CRC32C of the stored bytes). A random read of a few KiB decodes
// one frame instead of the whole chunk.

// encodeSubFrames compresses src in frames of sub bytes with e and appends
// the frames and their index to dst.
func encodeSubFrames(e *zstd.Encoder, src []byte, sub int, dst []byte) []byte {
	k := (len(src) + sub - 1) / sub
	var small [64 * 8]byte
	idx := small[:0]
	if 8*k > len(small) {
		idx = make([]byte, 0, 8*k)
	}
	for o := 0; o < len(src); o += sub {
		start := len(dst)
		dst = e.EncodeAll(src[o:min(o+sub, len(src))], dst)
		idx = binary.LittleEndian.AppendUint32(idx, uint32(len(dst)-start))
		idx = binary.LittleEndian.AppendUint32(idx, crc(dst[start:]))
	}
	return append(dst, idx...)
}

// subIndex splits the stored bytes of a FrameSubFrames chunk into frame
// data and index, checking that the index's lengths tile the data exactly.
func subIndex(stored []byte, fr *frame) (data, idx []byte, err error) {
	k := subFrameCount(fr.LogicalLen, fr.sub)
	if !fr.storedLenOK() || len(stored) != int(fr.StoredLen) {
		return nil, nil, fr.subError(-1, ErrFormat, "%d stored bytes for %d zstd frames", len(stored), k)
	}
	data, idx = stored[:len(stored)-8*k], stored[len(stored)-8*k:]
	var total int64
	for j := 0; j < k; j++ {
		n := int64(le32(idx[8*j:]))
		if n == 0 || n > int64(len(data)) {
			return nil, nil, fr.subError(j, ErrFormat, "zstd frame of %d bytes", n)
		}
		total += n
	}
	if total != int64(len(data)) {
		return nil, nil, fr.subError(-1, ErrFormat, "zstd frames of %d bytes in %d", total, len(data))
	}
	return data, idx, nil
}

// decodeSubFrames decodes a whole FrameSubFrames chunk into out, which has
// room for its logical bytes. With full, every frame's CRC32C is checked too
// (the chunk's CRC32C covers them all already).
func decodeSubFrames(stored []byte, fr *frame, full bool, out []byte) ([]byte, error) {
	data, idx, err := subIndex(stored, fr)
	if err != nil {
		return nil, err
	}
	out = out[:fr.LogicalLen]
	pos := 0
	for j, lo := 0, 0; lo < len(out); j, lo = j+1, lo+int(fr.sub) {
		n := int(le32(idx[8*j:]))
		comp := data[pos : pos+n]
		if full {
			if c := crc(comp); c != le32(idx[8*j+4:]) {
				return nil, fr.subError(j, ErrChecksum, "CRC32C %08x, stored %08x", c, le32(idx[8*j+4:]))
			}
		}
		if err := decodeInto(comp, out[lo:min(lo+int(fr.sub), len(out))]); err != nil {
			return nil, fr.subError(j, ErrFormat, "%v", err)
		}
		pos += n
	}
	return out, nil
}

// decodeInto decodes one zstd frame into exactly dst.
func decodeInto(comp, dst []byte) error {
	got, err := decoder.DecodeAll(comp, dst[:0:len(dst)])
	switch {
	case err != nil:
		return fmt.Errorf("zstd: %v", err)
	case len(got) != len(dst):
		return fmt.Errorf("zstd frame decodes to %d bytes, expected %d", len(got), len(dst))
	case len(got) > 0 && &got[0] != &dst[0]:
		copy(dst, got) // DecodeAll appends; len(dst) bytes fit in place, so this is only a guard
	}
	return nil
}

// subError describes damage in frame j (-1: the chunk as a whole) of a
// FrameSubFrames chunk.
func (f *frame) subError(j int, kind error, format string, a ...any) error {
	where := fmt.Sprintf("chunk %d", f.Index)
	if j >= 0 {
		where += fmt.Sprintf(" zstd frame %d", j)
	}
	return &FormatError{Region: "chunk", Offset: f.Offset + frameHeaderLen, Msg: where + ": " + fmt.Sprintf(format, a...), Err: kind}
}

// subPool holds buffers of one frame's stored or decoded bytes.
var subPool sync.Pool

func getSubBuf(n int) *[]byte {
	bp, _ := subPool.Get().(*[]byte)
	if bp == nil || cap(*bp) < n {
		b := make([]byte, n)
		bp = &b
	}
	*bp = (*bp)[:n]
	return bp
}

// readSubFrames fills dst with the logical bytes at within.. of a
// FrameSubFrames chunk, reading and decoding only the frames they lie in,
// each checked against its CRC32C: damage fails only reads of its frame.
func (r *Reader) readSubFrames(dst []byte, fr *frame, within int64) error {
	s := int64(fr.sub)
	k := int64(subFrameCount(fr.LogicalLen, fr.sub))
	dataLen := int64(fr.StoredLen) - 8*k
	base := fr.Offset + frameHeaderLen
	end := within + int64(len(dst))
	first, last := within/s, (end-1)/s
	// The index up to the last frame read: lengths give the offsets.
	var small [64 * 8]byte
	var idx []byte
	if n := 8 * (last + 1); n <= int64(len(small)) {
		idx = small[:n]
	} else {
		idx = make([]byte, n)
	}
	if err := r.readAt(idx, base+dataLen, "chunk"); err != nil {
		return err
	}
	var pos int64
	for j := int64(0); j < first; j++ {
		pos += int64(le32(idx[8*j:]))
	}
	for j := first; j <= last; j++ {
		n := int64(le32(idx[8*j:]))
		if n == 0 || pos+n > dataLen {
			return fr.subError(int(j), ErrFormat, "zstd frame of %d bytes at %d of %d", n, pos, dataLen)
		}
		cp := getSubBuf(int(n))
		comp := *cp
		if err := r.readAt(comp, base+pos, "chunk"); err != nil {
			subPool.Put(cp)
			return err
		}
		if c, want := crc(comp), le32(idx[8*j+4:]); c != want {
			subPool.Put(cp)
			return &FormatError{Region: "chunk", Offset: base + pos, Msg: fmt.Sprintf("chunk %d zstd frame %d: CRC32C %08x, stored %08x", fr.Index, j, c, want), Err: ErrChecksum}
		}
		lo, hi := j*s, min((j+1)*s, int64(fr.LogicalLen))
		var err error
		if within <= lo && hi <= end {
			err = decodeInto(comp, dst[lo-within:hi-within])
		} else {
			op := getSubBuf(int(hi - lo))
			if err = decodeInto(comp, *op); err == nil {
				a, b := max(lo, within), min(hi, end)
				copy(dst[a-within:b-within], (*op)[a-lo:b-lo])
			}
			subPool.Put(op)
		}
		subPool.Put(cp)
		if err != nil {
			return fr.subError(int(j), ErrFormat, "%v", err)
		}
		pos += n
	}
	return nil
}

// checkSubFrames is the writer's decode-after-encode check of a
// FrameSubFrames chunk.
func checkSubFrames(stored, want []byte, fr *frame) error {
	back, err := decodeSubFrames(stored, fr, true, make([]byte, len(want)))
	if err != nil {
		return err
	}
	if !bytes.Equal(back, want) {
		return fmt.Errorf("decodes to different bytes")
	}
	return nil
}
