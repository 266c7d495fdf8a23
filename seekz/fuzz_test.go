package seekz

import (
	"bytes"
	"compress/gzip"
	"hash/crc32"
	"io"
	"testing"
)

// FuzzInflate: any bytes as a gzip stream end in output or an error, never
// a panic or a hang; whatever both decode, our decoder and compress/gzip
// decode alike.
func FuzzInflate(f *testing.F) {
	// Long runs at distances 1 and 2 cross the decoder's circular window
	// many times (matches copied in doubling pieces).
	runs := string(bytes.Repeat([]byte{0}, 300<<10)) + string(bytes.Repeat([]byte("ab"), 100<<10))
	for _, s := range []string{"", "hello hello hello hello", string(bytes.Repeat([]byte("abc"), 5000)), runs} {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		w.Write([]byte(s))
		w.Close()
		f.Add(b.Bytes())
		f.Add(append(b.Bytes(), b.Bytes()...))
	}
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := newInflater(bytes.NewReader(data), int64(len(data)), 0)
		got, err := io.ReadAll(io.LimitReader(in, 64<<20))
		zr, zerr := gzip.NewReader(bytes.NewReader(data))
		var want []byte
		if zerr == nil {
			want, zerr = io.ReadAll(io.LimitReader(zr, 64<<20))
		}
		if err == nil && zerr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decoders differ: %d vs %d bytes", len(got), len(want))
		}
		// Starting mid-stream with a made-up history must not panic either.
		for _, bit := range []int64{3, 80, int64(len(data)) * 4} {
			if f2, err := newInflaterAt(bytes.NewReader(data), int64(len(data)), bit, data[:min(len(data), 100)]); err == nil {
				io.Copy(io.Discard, io.LimitReader(f2, 1<<20))
			}
		}
	})
}

// FuzzIndex: any bytes as a seek index are refused or give checked
// checkpoints, never a panic or an allocation beyond the file.
func FuzzIndex(f *testing.F) {
	// A history of 10 bytes, then two segments' sub-sums (32 each).
	cps := []checkpoint{{In: 0, Out: 0, A: 1, B: 10}, {In: 9000, Out: 1 << 20, B: 138, WinOff: 0, WinLen: 10, WinRaw: 32768}}
	tab := encodeTable(cps)
	payload := make([]byte, 10+2*32*4)
	tr := trailer{codec: Gzip, strategy: Checkpoints, size: 2 << 20, csize: 5000, count: 2, tableOff: int64(len(payload))}
	tr.tableCRC = crc32.Checksum(tab, castagnoli)
	f.Add(append(append(payload, tab...), tr.encode()...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < trailerSize {
			return
		}
		tr, err := parseTrailer(b[len(b)-trailerSize:], int64(len(b)))
		if err != nil {
			return
		}
		cps, err := parseTable(b[tr.tableOff:tr.tableOff+tr.count*cpBytes], tr)
		if err != nil {
			return
		}
		for i, c := range cps {
			if c.Out > tr.size || c.WinOff+c.WinLen > tr.tableOff || (i > 0 && c.Out <= cps[i-1].Out) {
				t.Fatalf("checkpoint %d accepted out of range: %+v", i, c)
			}
			end := tr.size
			if i+1 < len(cps) {
				end = cps[i+1].Out
			}
			if tr.codec == Gzip && c.B+4*subCount(end-c.Out) > tr.tableOff {
				t.Fatalf("checkpoint %d: sub-sums beyond the payload: %+v", i, c)
			}
		}
	})
}
