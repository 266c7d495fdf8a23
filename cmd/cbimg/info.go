package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/foreign/clonezilla"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/units"
	"github.com/spf13/cobra"
)

// infoJSON is the stable --json form of an image header; README.md lists
// the keys.
type infoJSON struct {
	Image            string          `json:"image"`
	Format           string          `json:"format"`
	FormatVersion    int             `json:"format_version"`
	FormatRelease    string          `json:"format_version_text"`
	FileSystem       string          `json:"file_system"`
	Label            string          `json:"label"`
	Serial           string          `json:"serial"`
	Source           string          `json:"source"`
	Created          string          `json:"created"`
	ToolVersion      string          `json:"tool_version"`
	PartitionBytes   int64           `json:"partition_bytes"`
	FileSystemBytes  int64           `json:"file_system_bytes"`
	SectorSize       uint32          `json:"sector_size"`
	ClusterSize      uint32          `json:"cluster_size"`
	ClustersTotal    uint64          `json:"clusters_total"`
	ClustersStored   uint64          `json:"clusters_stored"`
	DataBytes        int64           `json:"data_bytes"`
	UsedBytes        int64           `json:"used_bytes"` // data_bytes plus the excluded files' clusters
	ImageBytes       int64           `json:"image_bytes"`
	Compression      string          `json:"compression"`
	CompressionLevel int             `json:"compression_level"`
	CompressionRatio float64         `json:"compression_ratio"`
	ChunkSize        uint32          `json:"chunk_size"`
	ZstdFrameSize    uint32          `json:"zstd_frame_size,omitempty"`
	Chunks           uint32          `json:"chunks"`
	SplitSize        int64           `json:"split_size"`
	Dirty            bool            `json:"dirty"`
	Hibernated       bool            `json:"hibernated"`
	Digest           string          `json:"digest"`
	Partition        partitionJSON   `json:"partition"`
	SystemExtents    []extentJSON    `json:"system_extents"`
	Exclusions       []exclusionJSON `json:"exclusions"`
	Unreadable       []runJSON       `json:"unreadable"`
	Damage           []damageJSON    `json:"damage"`
	Pieces           []string        `json:"pieces"`
	Origin           string          `json:"origin"`
	Checksums        string          `json:"checksums"`
	Notes            []string        `json:"notes"`
	FSClusterSize    uint32          `json:"fs_cluster_size"`
}

type runJSON struct {
	Start uint64 `json:"start"`
	Count uint64 `json:"count"`
}

type partitionJSON struct {
	Start         int64  `json:"start"`
	Length        int64  `json:"length"`
	Scheme        string `json:"scheme"`
	MBRType       uint8  `json:"mbr_type"`
	HiddenSectors uint64 `json:"hidden_sectors"`
}

type extentJSON struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

type exclusionJSON struct {
	Path     string `json:"path"`
	Reason   string `json:"reason"`
	Clusters uint64 `json:"clusters"`
	Bytes    int64  `json:"bytes"`
}

func makeInfo(name string, h *image.Header, imageBytes int64, digest [32]byte) infoJSON {
	j := infoJSON{
		Image: name, Format: "cbi", FormatVersion: int(h.Version), FormatRelease: fmt.Sprint(h.Version), FileSystem: h.FSName(), Label: h.Label,
		Serial: fmt.Sprintf("%016X", h.Serial), Source: h.SourceName, Created: h.Created.UTC().Format(time.RFC3339),
		ToolVersion: h.ToolVersion, PartitionBytes: h.PartLength, FileSystemBytes: h.FSSize, SectorSize: h.SectorSize,
		ClusterSize: h.ClusterSize, ClustersTotal: h.ClusterCount, ClustersStored: h.ImageClusters, DataBytes: h.LogicalLen,
		ImageBytes: imageBytes, Compression: h.Codec.String(), CompressionLevel: int(h.Level), ChunkSize: h.ChunkSize, ZstdFrameSize: h.SubFrameSize,
		Chunks: h.ChunkCount, SplitSize: h.SplitSize, Dirty: h.Flags&image.FlagDirty != 0, Hibernated: h.Flags&image.FlagHibernated != 0,
		Digest:    hex.EncodeToString(digest[:]),
		Partition: partitionJSON{Start: h.PartStart, Length: h.PartLength, Scheme: [...]string{"none", "mbr", "gpt"}[min(int(h.Scheme), 2)], MBRType: h.MBRType, HiddenSectors: h.HiddenSectors},
	}
	if imageBytes > 0 {
		j.CompressionRatio = float64(h.LogicalLen) / float64(imageBytes)
	}
	for _, e := range h.SysExtents {
		j.SystemExtents = append(j.SystemExtents, extentJSON{e.Offset, e.Length})
	}
	j.Exclusions = []exclusionJSON{}
	for _, x := range h.Exclusions {
		j.Exclusions = append(j.Exclusions, exclusionJSON{x.Path, x.Reason, x.Clusters, int64(x.Clusters) * int64(h.ClusterSize)})
	}
	j.UsedBytes = j.DataBytes
	for _, x := range j.Exclusions {
		j.UsedBytes += x.Bytes
	}
	j.Damage = damageList(h.Damage)
	j.Unreadable = []runJSON{}
	for _, r := range h.Unreadable {
		j.Unreadable = append(j.Unreadable, runJSON{r.Start, r.Count})
	}
	j.Pieces, j.Notes, j.Origin, j.FSClusterSize = []string{name}, []string{}, h.Origin, h.ClusterSize
	return j
}

// imageInfo is makeInfo for an image of any kind.
func imageInfo(name string, img anyimage.Image) infoJSON {
	inf := img.Info()
	j := makeInfo(name, img.Header(), inf.ImageBytes, [32]byte{})
	j.Digest = inf.Digest
	j.Format, j.FormatRelease, j.Compression = inf.Format, inf.Version, inf.Compression
	j.FormatVersion, _ = strconv.Atoi(strings.TrimLeft(strings.SplitN(inf.Version, ".", 2)[0], "0"))
	j.Pieces, j.Checksums = append([]string{}, inf.Pieces...), inf.Checksums
	if inf.Format != "cbi" {
		j.Origin = inf.Origin
	}
	j.Notes = append([]string{}, inf.Notes...)
	j.FSClusterSize = inf.FSClusterSize
	if inf.Format != "cbi" {
		j.Created = inf.Created.UTC().Format(time.RFC3339)
		j.ToolVersion = inf.Origin
	}
	return j
}

func printInfo(w io.Writer, j infoJSON) {
	fmt.Fprintf(w, "Image:            %s\n", j.Image)
	if j.Format != "cbi" {
		printForeign(w, j)
		return
	}
	fmt.Fprintf(w, "File system:      %s, label %q, serial %s\n", j.FileSystem, j.Label, j.Serial)
	fmt.Fprintf(w, "Source:           %s\n", j.Source)
	fmt.Fprintf(w, "Created:          %s by %s\n", j.Created, j.ToolVersion)
	if j.Origin != "" {
		fmt.Fprintf(w, "Converted from:   %s\n", j.Origin)
	}
	fmt.Fprintf(w, "Partition:        %s (%d bytes), file system %s\n", human(j.PartitionBytes), j.PartitionBytes, human(j.FileSystemBytes))
	fmt.Fprintf(w, "Sector / cluster: %d / %d bytes\n", j.SectorSize, j.ClusterSize)
	fmt.Fprintf(w, "Clusters:         %d stored of %d (%.1f%%)\n", j.ClustersStored, j.ClustersTotal, 100*float64(j.ClustersStored)/float64(max(j.ClustersTotal, 1)))
	fmt.Fprintf(w, "Used:             %s (allocated clusters and system areas, excluded files included)\n", human(j.UsedBytes))
	fmt.Fprintf(w, "Stored:           %s in %d chunks of %s, %s", human(j.DataBytes), j.Chunks, human(int64(j.ChunkSize)), j.Compression)
	if j.Compression == "zstd" {
		fmt.Fprintf(w, " level %d", j.CompressionLevel)
		if j.ZstdFrameSize > 0 {
			fmt.Fprintf(w, " in frames of %s", human(int64(j.ZstdFrameSize)))
		}
	}
	fmt.Fprintf(w, "\nImage size:       %s (ratio %.2f)\n", human(j.ImageBytes), j.CompressionRatio)
	if j.SplitSize > 0 {
		fmt.Fprintf(w, "Split:            volumes of %s\n", human(j.SplitSize))
	}
	if j.Dirty {
		fmt.Fprintf(w, "Warning:          the file system was marked dirty at backup\n")
	}
	if j.Hibernated {
		fmt.Fprintf(w, "Warning:          Windows was hibernated (or Fast Startup) at backup\n")
	}
	for _, r := range j.Unreadable {
		fmt.Fprintf(w, "Unreadable:       clusters %d-%d could not be read at backup; stored as zeros\n", r.Start, r.Start+r.Count-1)
	}
	for _, d := range j.Damage {
		fmt.Fprintf(w, "Damage:           %s\n", d)
	}
	fmt.Fprintf(w, "Digest:           %s\n", j.Digest)
	if len(j.Exclusions) == 0 {
		fmt.Fprintf(w, "Excluded:         nothing\n")
	}
	for _, x := range j.Exclusions {
		fmt.Fprintf(w, "Excluded:         %s (%s, %s, %s)\n", x.Path, exclusionRule(x.Reason), plural(int(x.Clusters), "cluster", "clusters"), human(x.Bytes))
	}
}

func newInfoCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "info IMAGE",
		Short: "Show an image's header: file system, sizes, exclusions",
		Long: `info prints what IMAGE's header records: the file system, where it came
from, sizes, compression and what was left out. "Used" is what the file
system had allocated (clusters and system areas, excluded files included);
"Stored" is what the image holds (used minus the excluded files). info reads
the header, bitmap, chunk table and footer; "cbimg verify" checks every byte.`,
		Example: `  cbimg info sdb1.cbi
  cbimg info --json sdb1.cbi | jq .exclusions
  cbimg info /dev/sdb1:/Backups/c.cbi`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInfo(cmd.OutOrStdout(), g, args[0])
		},
	}
}

func runInfo(w io.Writer, g *globalOptions, name string) error {
	if clonezilla.IsDir(name) {
		return runInfoDir(w, g, name)
	}
	r, err := openAny(g, name, 0) // a path, PARTITION:PATH, or any kind's name
	if err != nil {
		return imageErr(name, err)
	}
	defer r.Close()
	j := imageInfo(name, r)
	if g.JSON {
		return printJSON(w, j)
	}
	if !g.Quiet {
		printInfo(w, j)
	}
	return nil
}

func human(n int64) string { return units.Human(n) }

// printForeign prints what an image made by another tool says.
func printForeign(w io.Writer, j infoJSON) {
	if j.Format == "partition" {
		fmt.Fprintf(w, "Format:           a partition of a disk, read as it is (not an image)\n")
	} else {
		fmt.Fprintf(w, "Format:           %s %s, made by %s\n", j.Format, j.FormatRelease, j.Origin)
	}
	fmt.Fprintf(w, "File system:      %s, label %q, serial %s\n", j.FileSystem, j.Label, j.Serial)
	fmt.Fprintf(w, "Partition:        %s (%d bytes), file system %s\n", human(j.PartitionBytes), j.PartitionBytes, human(j.FileSystemBytes))
	fmt.Fprintf(w, "Sector / cluster: %d / %d bytes; the image stores blocks of %d\n", j.SectorSize, j.FSClusterSize, j.ClusterSize)
	fmt.Fprintf(w, "Stored:           %d of %d blocks (%.1f%%)\n", j.ClustersStored, j.ClustersTotal, 100*float64(j.ClustersStored)/float64(max(j.ClustersTotal, 1)))
	fmt.Fprintf(w, "Data:             %s, compression %s\n", human(j.DataBytes), j.Compression)
	fmt.Fprintf(w, "Image size:       %s in %d piece(s)\n", human(j.ImageBytes), len(j.Pieces))
	for _, p := range j.Pieces {
		fmt.Fprintf(w, "Piece:            %s\n", p)
	}
	fmt.Fprintf(w, "Checksums:        %s\n", j.Checksums)
	for _, n := range j.Notes {
		fmt.Fprintf(w, "Note:             %s\n", n)
	}
}

// openAny opens an image of any kind, with a progress bar for the passes
// some kinds make when opened (an ntfsclone image is read once to index it).
func openAny(g *globalOptions, name string, cacheBytes int64) (anyimage.Image, error) {
	p := newProgress(g)
	defer p.done()
	return anyimage.Open(name, &anyimage.Options{CacheBytes: cacheBytes, Progress: func(phase string, d, t int64) { p.update(phase, d, t) }})
}
