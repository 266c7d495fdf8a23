package restorecore

import (
	"encoding/binary"
	"fmt"

	"github.com/cbimg/cbimg/volume"
)

// exFAT keeps the partition's start (in sectors) in its boot sector, under
// the boot region's checksum: moving the partition means a new offset and
// a new checksum sector in both boot regions.

// exfatBootRegion is the length of one exFAT boot region.
func exfatBootRegion(ss int64) int64 { return 12 * ss }

// exfatSetOffset rewrites the held boot regions (guards 0 and 1, each one
// whole region) with a new partition offset and checksum.
func (w *guardWriter) exfatSetOffset(ss int64, offset uint64) error {
	var kept []heldBytes
	for _, g := range w.guards {
		buf := make([]byte, g.Length)
		have := int64(0)
		for _, h := range w.held {
			if h.off >= g.Offset && h.off+int64(len(h.data)) <= g.Offset+g.Length {
				copy(buf[h.off-g.Offset:], h.data)
				have += int64(len(h.data))
			}
		}
		if have != g.Length {
			return fmt.Errorf("exFAT boot region at %d: %d of %d bytes held", g.Offset, have, g.Length)
		}
		binary.LittleEndian.PutUint64(buf[volume.ExFATPartitionOffset:], offset)
		sum := volume.ExFATBootChecksum(buf, int(ss))
		for i := 11 * ss; i < 12*ss; i += 4 {
			binary.LittleEndian.PutUint32(buf[i:], sum)
		}
		kept = append(kept, heldBytes{off: g.Offset, data: buf})
	}
	w.held = kept
	return nil
}
