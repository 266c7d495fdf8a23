package image

import (
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
	idx := make([]byte, 0, 8*((len(src)+sub-1)/sub))
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

// readSubFrame reads zstd frame j of chunk fr (n stored bytes at image
// offset at, CRC32C sum), checks and decodes it, and copies its logical
// bytes from skip on into dst; frameLen is its logical length.
func (r *Reader) readSubFrame(dst []byte, fr *frame, j, at, n int64, sum uint32, skip, frameLen int64) error {
	cp := getBuf(&subPool, int(n))
	defer subPool.Put(cp)
	comp := *cp
	if err := r.readAt(comp, at, "chunk"); err != nil {
		return err
	}
	if c := crc(comp); c != sum {
		return &FormatError{Region: "chunk", Offset: at, Msg: fmt.Sprintf("chunk %d zstd frame %d: CRC32C %08x, stored %08x", fr.Index, j, c, sum), Err: ErrChecksum}
	}
	var err error
	if skip == 0 && int64(len(dst)) == frameLen {
		err = decodeInto(comp, dst) // the whole frame is wanted
	} else {
		op := getBuf(&subPool, int(frameLen))
		defer subPool.Put(op)
		if err = decodeInto(comp, *op); err == nil {
			copy(dst, (*op)[skip:])
		}
	}
	if err != nil {
		return fr.subError(int(j), ErrFormat, "%v", err)
	}
	return nil
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
	idx := make([]byte, 8*(last+1))
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
		lo, hi := j*s, min((j+1)*s, int64(fr.LogicalLen))
		a, b := max(lo, within), min(hi, end)
		if err := r.readSubFrame(dst[a-within:b-within], fr, j, base+pos, n, le32(idx[8*j+4:]), a-lo, hi-lo); err != nil {
			return err
		}
		pos += n
	}
	return nil
}
