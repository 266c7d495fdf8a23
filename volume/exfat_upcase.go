package volume

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// The up-case table (specification section 7.2) maps each UTF-16 unit to
// its upper case, for name hashes and case-insensitive lookups. It may be
// compressed: 0xFFFF followed by a count stands for that many units that
// map to themselves.

// exfatMaxUpcaseBytes bounds the table: 65536 two-byte units uncompressed.
const exfatMaxUpcaseBytes = 2 * 65536

type exfatUpcase struct {
	table []uint16 // table[u] is the upper case of u; units past the end map to themselves
}

// upper returns the up-cased copy of s.
func (t *exfatUpcase) upper(s []uint16) []uint16 {
	out := make([]uint16, len(s))
	for i, u := range s {
		if int(u) < len(t.table) {
			u = t.table[u]
		}
		out[i] = u
	}
	return out
}

// key returns the up-cased form of a name, for comparing names as exFAT
// does.
func (t *exfatUpcase) key(name string) string {
	return string(utf16.Decode(t.upper(utf16.Encode([]rune(name)))))
}

// exfatTableChecksum is the up-case table checksum over its stored bytes.
func exfatTableChecksum(b []byte) uint32 {
	var sum uint32
	for _, c := range b {
		sum = (sum>>1 | sum<<31) + uint32(c)
	}
	return sum
}

// parseExFATUpcase checks the stored table against its checksum and
// expands it. off is its partition offset, for errors.
func parseExFATUpcase(b []byte, checksum uint32, off int64) (*exfatUpcase, error) {
	bad := func(format string, args ...any) error {
		return &FormatError{What: "exFAT up-case table", Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
	}
	if len(b)%2 != 0 || len(b) == 0 {
		return nil, bad("length %d is not a positive even number", len(b))
	}
	if got := exfatTableChecksum(b); got != checksum {
		return nil, bad("checksum %#08x, the directory entry says %#08x", got, checksum)
	}
	t := &exfatUpcase{table: make([]uint16, 0, 65536)}
	for i := 0; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		if u == 0xFFFF && i+3 < len(b) {
			n := int(binary.LittleEndian.Uint16(b[i+2:]))
			if len(t.table)+n > 65536 {
				return nil, bad("identity run of %d units past unit 65535", n)
			}
			for k := 0; k < n; k++ {
				t.table = append(t.table, uint16(len(t.table)))
			}
			i += 2
			continue
		}
		if len(t.table) == 65536 {
			return nil, bad("more than 65536 entries")
		}
		t.table = append(t.table, u)
	}
	return t, nil
}
