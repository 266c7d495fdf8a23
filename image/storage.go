package image

import "fmt"

// Storage is how a new image stores its chunks, as a caller asks for it;
// a zero field means the default. Complete resolves it and SetStorage puts
// it into a header, so that every writer (backup, in-place backup, the
// command line and the menu) applies the same defaults and limits.
type Storage struct {
	Codec     Codec  // CodecNone (the zero value) or CodecZstd
	Level     int    // zstd level MinLevel..MaxLevel; 0 = DefaultLevel; ignored without compression
	ChunkSize uint32 // logical bytes per chunk, MinWriteChunkSize..64 MiB; 0 = DefaultChunkSize
	// ZstdFrame is the logical bytes per independent zstd frame of a
	// compressed chunk (a power of two from BlockSize to the chunk size):
	// a random read decodes one frame. 0 = DefaultSubFrameSize; negative,
	// or the chunk size itself, = one frame per chunk.
	ZstdFrame int
}

// Limits and defaults of new images.
const (
	DefaultLevel = 3
	MinLevel     = 1
	MaxLevel     = 19
	// MinWriteChunkSize is the smallest chunk of a new image: smaller
	// chunks cost a frame header and table entry per few blocks. Readers
	// accept chunks from 4 KiB.
	MinWriteChunkSize = 64 << 10
)

// StorageError names the Storage field that is out of range.
type StorageError struct {
	Field string // "Codec", "Level", "ChunkSize" or "ZstdFrame"
	Value int64
	Want  string // the accepted values, in words
}

func (e *StorageError) Error() string {
	return fmt.Sprintf("image: %s %d: %s", e.Field, e.Value, e.Want)
}

// Complete fills in the defaults of s and checks its limits. In the result
// Level is 0 without compression, and ZstdFrame is either a size below
// ChunkSize or -1 (one frame per chunk, or no compression).
func (s Storage) Complete() (Storage, error) {
	if s.Codec != CodecNone && s.Codec != CodecZstd {
		return s, &StorageError{"Codec", int64(s.Codec), "use none or zstd"}
	}
	if s.ChunkSize == 0 {
		s.ChunkSize = DefaultChunkSize
	}
	if s.ChunkSize < MinWriteChunkSize || s.ChunkSize > maxChunkSize {
		return s, &StorageError{"ChunkSize", int64(s.ChunkSize), "use 64K to 64M"}
	}
	frame := s.ZstdFrame
	if frame == 0 {
		frame = DefaultSubFrameSize
	} else if frame > 0 && (frame < BlockSize || frame > int(s.ChunkSize) || frame&(frame-1) != 0) {
		return s, &StorageError{"ZstdFrame", int64(frame), "use a power of two from 4K to the chunk size, or 0"}
	}
	if s.Codec == CodecNone {
		s.Level, s.ZstdFrame = 0, -1
		return s, nil
	}
	if s.Level == 0 {
		s.Level = DefaultLevel
	}
	if s.Level < MinLevel || s.Level > MaxLevel {
		return s, &StorageError{"Level", int64(s.Level), "use a zstd level from 1 to 19"}
	}
	if frame < 0 || frame >= int(s.ChunkSize) {
		frame = -1
	}
	s.ZstdFrame = frame
	return s, nil
}

// SetStorage completes s and sets the header's codec, level, chunk size
// and zstd frame size from it.
func (h *Header) SetStorage(s Storage) error {
	s, err := s.Complete()
	if err != nil {
		return err
	}
	h.Codec, h.Level, h.ChunkSize, h.SubFrameSize = s.Codec, uint8(s.Level), s.ChunkSize, 0
	if s.ZstdFrame > 0 {
		h.SubFrameSize = uint32(s.ZstdFrame)
	}
	return nil
}
