package image

import (
	"errors"
	"testing"
)

// Storage.Complete applies the defaults of new images and refuses what the
// format or the writer cannot take; SetStorage puts the result in a header.
func TestStorageComplete(t *testing.T) {
	zstd := func(level int, chunk uint32, frame int) Storage { return Storage{CodecZstd, level, chunk, frame} }
	good := map[Storage]Storage{
		{}:                              {CodecNone, 0, DefaultChunkSize, -1},
		{Level: 7, ZstdFrame: 16 << 10}: {CodecNone, 0, DefaultChunkSize, -1},
		zstd(0, 0, 0):                   zstd(DefaultLevel, DefaultChunkSize, DefaultSubFrameSize),
		zstd(19, 64<<10, 4<<10):         zstd(19, 64<<10, 4<<10),
		zstd(0, 0, -1):                  zstd(DefaultLevel, DefaultChunkSize, -1),
		zstd(0, 0, DefaultChunkSize):    zstd(DefaultLevel, DefaultChunkSize, -1),
	}
	for in, want := range good {
		got, err := in.Complete()
		if err != nil || got != want {
			t.Errorf("%+v: got %+v, %v; want %+v", in, got, err, want)
			continue
		}
		h := Header{SubFrameSize: 99}
		if err := h.SetStorage(in); err != nil {
			t.Fatal(err)
		}
		if h.Codec != want.Codec || int(h.Level) != want.Level || h.ChunkSize != want.ChunkSize || int(h.SubFrameSize) != max(want.ZstdFrame, 0) {
			t.Errorf("%+v: header %s/%d/%d/%d", in, h.Codec, h.Level, h.ChunkSize, h.SubFrameSize)
		}
	}
	bad := map[Storage]string{
		{Codec: 2}:               "Codec",
		zstd(20, 0, 0):           "Level",
		zstd(-1, 0, 0):           "Level",
		{ChunkSize: 32 << 10}:    "ChunkSize",
		{ChunkSize: 128 << 20}:   "ChunkSize",
		zstd(0, 0, 2<<10):        "ZstdFrame",
		zstd(0, 0, 48<<10):       "ZstdFrame",
		zstd(0, 64<<10, 128<<10): "ZstdFrame",
	}
	for in, field := range bad {
		_, err := in.Complete()
		var se *StorageError
		if !errors.As(err, &se) || se.Field != field {
			t.Errorf("%+v: error %v, want one about %s", in, err, field)
		}
	}
}
