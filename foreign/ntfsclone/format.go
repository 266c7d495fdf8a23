package ntfsclone

// The on-disk truth of ntfsclone's special image format (ntfsclone
// --save-image, to a file or to standard output).
//
// Sources of the facts: ntfs-3g's ntfsprogs/ntfsclone.c (struct image_hdr,
// packed and little-endian since version 10.0; IMAGE_MAGIC; CMD_GAP and
// CMD_NEXT; image_skip_clusters writes a gap as the command byte and a signed
// 64-bit cluster count; copy_cluster writes CMD_NEXT and one cluster;
// restore_image reads records until the cluster position passes nr_clusters,
// and since version 10.1 "Alternate boot sector now saved": one more CMD_NEXT
// record for cluster nr_clusters holding min(cluster size, device size −
// nr_clusters × cluster size) bytes; open_image: before 10.0 the header has
// no offset_to_image_data and the records start right after its 46 bytes),
// ntfsclone's manual page (the image has no index and no checksums), and the
// bytes ntfsclone 2022.10.3 writes.

import (
	"encoding/binary"
	"fmt"
)

const (
	magic       = "\x00ntfsclone-image"
	oldHdrLen   = 46 // through inuse; versions before 10.0
	hdrLen      = 50 // with offset_to_image_data
	cmdGap      = 0
	cmdNext     = 1
	gapLen      = 9 // command byte + signed 64-bit count
	maxCluster  = 2 << 20
	maxClusters = 1 << 32 // NTFS's own limit (2^32 − 1 clusters); caps the bitmap at 512 MiB
)

// Header is an ntfsclone image header.
type Header struct {
	Major, Minor uint8
	ClusterSize  uint32
	DeviceSize   int64 // bytes of the source device
	Clusters     int64 // NTFS clusters (nr_clusters)
	InUse        int64 // clusters stored (the last partial one not counted)
	DataOffset   int64 // where the records start
}

// HasTail reports whether the image ends with the partial cluster past the
// volume's last one, which holds the NTFS backup boot sector (10.1 on).
func (h *Header) HasTail() bool { return h.Major > 10 || h.Major == 10 && h.Minor >= 1 }

// TailLen is the length of that partial cluster: 0 when the device ends
// with the last cluster (the record is then there, empty).
func (h *Header) TailLen() int64 {
	if !h.HasTail() {
		return 0
	}
	return min(int64(h.ClusterSize), h.DeviceSize-h.Clusters*int64(h.ClusterSize))
}

// Probe reports whether head starts like an ntfsclone image.
func Probe(head []byte) bool { return len(head) >= len(magic)+2 && string(head[:len(magic)]) == magic }

// parseHeader decodes the header at the start of b (at least hdrLen bytes,
// or oldHdrLen for a short old image) and checks its fields.
func parseHeader(b []byte, size int64) (*Header, error) {
	if len(b) < oldHdrLen || string(b[:len(magic)]) != magic {
		return nil, errFormat(0, "not an ntfsclone image (no \"\\0ntfsclone-image\" magic)")
	}
	le := binary.LittleEndian
	h := &Header{Major: b[16], Minor: b[17], ClusterSize: le.Uint32(b[18:]), DeviceSize: int64(le.Uint64(b[22:])),
		Clusters: int64(le.Uint64(b[30:])), InUse: int64(le.Uint64(b[38:]))}
	switch {
	case h.Major > 10:
		return nil, errVersion(16, "ntfsclone image version %d.%d: this reader knows up to 10.x", h.Major, h.Minor)
	case h.Major < 10:
		// Host-endian images of old ntfsclone; little-endian hosts made them all.
		h.DataOffset = oldHdrLen
	default:
		if len(b) < hdrLen {
			return nil, errTrunc(int64(len(b)), "header of %d bytes, %d needed", len(b), hdrLen)
		}
		h.DataOffset = int64(le.Uint32(b[46:]))
		if h.DataOffset < hdrLen || h.DataOffset > 1<<20 {
			return nil, errFormat(46, "records start at byte %d", h.DataOffset)
		}
	}
	cs := int64(h.ClusterSize)
	if cs < 256 || cs > maxCluster || cs&(cs-1) != 0 {
		return nil, errFormat(18, "cluster size %d", cs)
	}
	if h.Clusters <= 0 || h.Clusters > maxClusters {
		return nil, errFormat(30, "%d clusters", h.Clusters)
	}
	if h.InUse < 0 || h.InUse > h.Clusters {
		return nil, errFormat(38, "%d clusters in use of %d", h.InUse, h.Clusters)
	}
	if h.DeviceSize < h.Clusters*cs || h.DeviceSize > 1<<62 {
		return nil, errFormat(22, "device of %d bytes is smaller than %d clusters of %d bytes", h.DeviceSize, h.Clusters, cs)
	}
	// Every cluster in use takes cs+1 bytes: the header cannot claim more
	// than the image holds.
	if h.InUse > (size-h.DataOffset)/(cs+1) {
		return nil, errTrunc(size, "%d clusters in use need more than the image's %d bytes", h.InUse, size)
	}
	return h, nil
}

// Version is the format version as ntfsclone prints it.
func (h *Header) Version() string { return fmt.Sprintf("%d.%d", h.Major, h.Minor) }
