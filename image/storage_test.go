package image

import (
	"errors"
	"testing"
)

// Storage.Complete applies the defaults of new images and refuses what the
// format or the writer cannot take; SetStorage puts the result in a header.
func TestStorageComplete(t *testing.T) {
	for _, tc := range []struct {
		in    Storage
		want  Storage
		field string // the StorageError field, "" for success
		sub   uint32 // Header.SubFrameSize after SetStorage
	}{
		{in: Storage{}, want: Storage{CodecNone, 0, DefaultChunkSize, -1}},
		{in: Storage{Codec: CodecNone, Level: 7, ZstdFrame: 16 << 10}, want: Storage{CodecNone, 0, DefaultChunkSize, -1}},
		{in: Storage{Codec: CodecZstd}, want: Storage{CodecZstd, DefaultLevel, DefaultChunkSize, DefaultSubFrameSize}, sub: DefaultSubFrameSize},
		{in: Storage{Codec: CodecZstd, Level: 19, ChunkSize: 64 << 10, ZstdFrame: 4 << 10}, want: Storage{CodecZstd, 19, 64 << 10, 4 << 10}, sub: 4 << 10},
		{in: Storage{Codec: CodecZstd, ZstdFrame: -1}, want: Storage{CodecZstd, DefaultLevel, DefaultChunkSize, -1}},
		{in: Storage{Codec: CodecZstd, ZstdFrame: DefaultChunkSize}, want: Storage{CodecZstd, DefaultLevel, DefaultChunkSize, -1}},
		{in: Storage{Codec: 2}, field: "Codec"},
		{in: Storage{Codec: CodecZstd, Level: 20}, field: "Level"},
		{in: Storage{Codec: CodecZstd, Level: -1}, field: "Level"},
		{in: Storage{ChunkSize: 32 << 10}, field: "ChunkSize"},
		{in: Storage{ChunkSize: 128 << 20}, field: "ChunkSize"},
		{in: Storage{Codec: CodecZstd, ZstdFrame: 2 << 10}, field: "ZstdFrame"},
		{in: Storage{Codec: CodecZstd, ZstdFrame: 48 << 10}, field: "ZstdFrame"},
		{in: Storage{Codec: CodecZstd, ChunkSize: 64 << 10, ZstdFrame: 128 << 10}, field: "ZstdFrame"},
	} {
		got, err := tc.in.Complete()
		var se *StorageError
		if tc.field != "" {
			if !errors.As(err, &se) || se.Field != tc.field {
				t.Errorf("%+v: error %v, want one about %s", tc.in, err, tc.field)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		h := Header{SubFrameSize: 99}
		if err := h.SetStorage(tc.in); err != nil {
			t.Fatal(err)
		}
		if h.Codec != got.Codec || int(h.Level) != got.Level || h.ChunkSize != got.ChunkSize || h.SubFrameSize != tc.sub {
			t.Errorf("%+v: header %s/%d/%d/%d", tc.in, h.Codec, h.Level, h.ChunkSize, h.SubFrameSize)
		}
	}
}
