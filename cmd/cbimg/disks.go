package main

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"text/tabwriter"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, newDisksCommand, newPartitionsCommand)
}

// disksJSON is the stable --json form of "cbimg disks".
type disksJSON struct {
	Disks []diskJSON `json:"disks"`
}

type diskJSON struct {
	Path        string `json:"path"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	SectorSize  int    `json:"sector_size"`
	Model       string `json:"model"`
	Removable   bool   `json:"removable"`
	ReadOnly    bool   `json:"read_only"`
	BackingFile string `json:"backing_file"`
}

// partitionsJSON is the stable --json form of "cbimg partitions".
type partitionsJSON struct {
	Disk       string     `json:"disk"`
	Size       int64      `json:"size"`
	Scheme     string     `json:"scheme"` // "none", "mbr", "gpt"
	SectorSize int        `json:"sector_size"`
	DiskID     string     `json:"disk_id"`          // GPT disk GUID, MBR signature as 0x…, "" without a table
	Format     string     `json:"format,omitempty"` // a virtual disk's format, e.g. "VHDX (dynamic)"; omitted for raw disks
	Warnings   []string   `json:"warnings"`
	Partitions []partJSON `json:"partitions"`
}

type partJSON struct {
	Number      int    `json:"number"`
	Spec        string `json:"spec"` // what backup and restore take: DISK@N
	Start       int64  `json:"start"`
	Size        int64  `json:"size"`
	Type        string `json:"type"` // "0x07" (MBR) or the type GUID (GPT)
	TypeName    string `json:"type_name"`
	GUID        string `json:"guid"` // GPT unique partition GUID, "" for MBR
	Name        string `json:"name"` // GPT partition name
	Bootable    bool   `json:"bootable"`
	Extended    bool   `json:"extended"`
	FileSystem  string `json:"file_system"` // ntfs, fat12, fat16, fat32, or "-"
	Label       string `json:"label"`
	ClusterSize uint32 `json:"cluster_size"`
	UsedBytes   *int64 `json:"used_bytes"` // null when there is no readable file system
	Problem     string `json:"problem,omitempty"`
}

func newDisksCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "disks",
		Short: "List whole disks (name a partition of one as DISK@N)",
		Long: `disks lists the whole disks this system has, with size, model and whether
they are removable. RAM disks, zram and unused loop devices are left out.
Back up partition N of a disk by naming it DISK@N, e.g. /dev/sda@2; list the
partitions with "cbimg partitions DISK".`,
		Example: `  cbimg disks
  cbimg disks --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDisks(cmd.OutOrStdout(), g)
		},
	}
}

func runDisks(w io.Writer, g *globalOptions) error {
	list, err := disk.ListDisks()
	if err != nil {
		return err
	}
	j := disksJSON{Disks: []diskJSON{}}
	for _, d := range list {
		j.Disks = append(j.Disks, diskJSON(d))
	}
	if g.JSON {
		return printJSON(w, j)
	}
	if g.Quiet {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DISK\tSIZE\tSECTOR\tMODEL\tREMOVABLE")
	for _, d := range j.Disks {
		model := d.Model
		if d.BackingFile != "" {
			model = "loop: " + d.BackingFile
		}
		if model == "" {
			model = "-"
		}
		if d.ReadOnly {
			model += " (read-only)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.Path, human(d.Size), d.SectorSize, model, yesNo(d.Removable))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newPartitionsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "partitions DISK",
		Short: "List the partitions of a disk or disk image, with file systems and used space",
		Long: `partitions reads the partition table of DISK (a whole disk such as /dev/sda, or
a disk image file): MBR with extended and logical partitions (numbered from 5,
as Linux does) or GPT, whose backup copy is used with a warning when the
primary is damaged. For each partition it shows start and size in bytes, the
type, the file system cbimg recognizes in it, the label and the space in use.
The SPEC column (DISK@N) is what backup and restore take.`,
		Example: `  cbimg partitions /dev/sda
  cbimg partitions disk.img --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPartitions(cmd.OutOrStdout(), cmd.ErrOrStderr(), g, args[0])
		},
	}
}

func runPartitions(w, errw io.Writer, g *globalOptions, path string) error {
	d, err := disk.OpenDisk(path)
	if err != nil {
		return err
	}
	defer d.Close()
	j := describeDisk(d)
	if g.JSON {
		return printJSON(w, j)
	}
	for _, s := range j.Warnings {
		fmt.Fprintln(errw, "cbimg: warning:", s)
	}
	if g.Quiet {
		return nil
	}
	fmt.Fprintf(w, "%s: ", path)
	if j.Format != "" {
		fmt.Fprintf(w, "%s, ", j.Format)
	}
	fmt.Fprintf(w, "%s, %s, %d-byte sectors", schemeTitle(j.Scheme), human(j.Size), j.SectorSize)
	if j.DiskID != "" {
		fmt.Fprintf(w, ", disk id %s", j.DiskID)
	}
	fmt.Fprintln(w)
	if len(j.Partitions) == 0 {
		fmt.Fprintln(w, "no partitions")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTART\tSIZE\tTYPE\tFS\tLABEL\tUSED\tNAME\tSPEC")
	for _, p := range j.Partitions {
		typ := p.TypeName
		if typ == "" {
			typ = p.Type
		}
		if p.Bootable {
			typ += " *"
		}
		used := "-"
		if p.UsedBytes != nil {
			used = human(*p.UsedBytes)
		}
		label := p.Label
		if label == "" {
			label = "-"
		}
		name := p.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Number, p.Start, human(p.Size), typ, p.FileSystem, label, used, name, p.Spec)
	}
	return tw.Flush()
}

func schemeTitle(s string) string {
	switch s {
	case "mbr":
		return "MBR"
	case "gpt":
		return "GPT"
	}
	return "no partition table"
}

// describeDisk reads the table and looks into every partition for a file
// system; a partition without one is listed with file system "-".
func describeDisk(d *disk.Disk) partitionsJSON {
	t := d.Table
	j := partitionsJSON{Disk: d.Path, Size: d.Size, Scheme: t.Scheme.String(), SectorSize: t.SectorSize,
		Warnings: append([]string{}, t.Warnings...), Partitions: []partJSON{}, Format: d.VirtualFormat()}
	switch t.Scheme {
	case disk.GPT:
		j.DiskID = disk.GUIDString(t.DiskGUID)
	case disk.MBR:
		j.DiskID = fmt.Sprintf("0x%08x", t.DiskID)
	}
	for _, p := range t.Partitions {
		pj := partJSON{Number: p.Number, Spec: fmt.Sprintf("%s@%d", d.Path, p.Number), Start: p.Start, Size: p.Length,
			Type: p.TypeString(), TypeName: p.TypeName(), Name: p.Name, Bootable: p.Bootable, Extended: p.IsExtended(), FileSystem: "-"}
		if p.Scheme == disk.GPT {
			pj.GUID = disk.GUIDString(p.GUID)
		}
		if p.IsExtended() {
			j.Partitions = append(j.Partitions, pj)
			continue
		}
		if p.End() > d.Size {
			pj.Problem = "runs past the end of the disk"
			j.Partitions = append(j.Partitions, pj)
			continue
		}
		vol, err := volume.Open(d.Section(p), p.Length)
		if err == nil {
			pj.FileSystem, pj.Label, pj.ClusterSize = vol.Info.Type.String(), vol.Info.Label, vol.Info.ClusterSize
			if bm, err := vol.Bitmap(); err == nil {
				// "used" as everywhere: allocated clusters and the system
				// areas, files a backup would exclude included.
				used := int64(popcountBytes(bm)) * int64(vol.Info.ClusterSize)
				for _, e := range vol.SystemExtents() {
					used += e.Length
				}
				pj.UsedBytes = &used
			} else {
				pj.Problem = err.Error()
			}
		} else if !isUnknownFS(err) {
			pj.Problem = err.Error()
		}
		j.Partitions = append(j.Partitions, pj)
	}
	return j
}

// isUnknownFS reports whether err only says "no NTFS or FAT here", which
// is normal for swap, Linux or reserved partitions.
func isUnknownFS(err error) bool {
	return errors.Is(err, volume.ErrUnknownFS)
}

func popcountBytes(b []byte) uint64 {
	var n uint64
	for len(b) >= 8 {
		n += uint64(bits.OnesCount64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56))
		b = b[8:]
	}
	for _, c := range b {
		n += uint64(bits.OnesCount8(c))
	}
	return n
}
