package main

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newCheckCommand) }

// checkJSON is the --json form of a file-system check; README.md lists the
// keys.
type checkJSON struct {
	Target     string       `json:"target"`
	Kind       string       `json:"kind"` // "image" or "source"
	FileSystem string       `json:"file_system"`
	OK         bool         `json:"ok"`
	Damage     []damageJSON `json:"damage"`
	Recorded   []damageJSON `json:"recorded_at_backup,omitempty"`
}

// damageJSON is one damaged file-system structure (check, info).
type damageJSON struct {
	Kind      string `json:"kind"`
	Path      string `json:"path"`
	Structure string `json:"structure"`
	Offset    int64  `json:"offset"`
	Message   string `json:"message"`
}

func damageList(ds []image.Damage) []damageJSON {
	out := []damageJSON{}
	for _, d := range ds {
		out = append(out, damageJSON{d.Kind, d.Path, d.What, d.Offset, d.Msg})
	}
	return out
}

func (d damageJSON) String() string {
	return volume.Damage{Kind: d.Kind, Path: d.Path, What: d.Structure, Offset: d.Offset, Msg: d.Message}.String()
}

// errFSDamaged is what check returns when it finds damage (exit 5).
var errFSDamaged = fmt.Errorf("%w: file-system damage found", volume.ErrCorrupt)

func newCheckCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use: "check IMAGE|SOURCE",
		Example: `  cbimg check /dev/sdb1
  cbimg check --json sdb1.cbi
  cbimg check disk.img@2`,
		Short: "Report file-system damage in an image or a partition, read-only (like fsck.fat -n / chkdsk)",
		Long: `check reads the NTFS or FAT file system in IMAGE (as a restore would write it)
or in SOURCE (a partition, DISK@N or a volume file), read-only, and lists every
damaged structure with its byte offset in the partition: chains that are lost,
cross-linked or do not fit their file's size, directory loops, wrong "." and
".." entries, 0-byte files that keep a cluster chain, FAT copies that
disagree, unreadable MFT records, index entries to records not in use and
records missing from their directory's index, a $MFTMirr that differs from
$MFT, and $Bitmap against the clusters files use.
It exits 0 when it finds nothing, 5 when it finds damage (or cannot read the
file system), 3 when the image itself is damaged.

` + exitHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, g, args[0])
		},
	}
}

func runCheck(cmd *cobra.Command, g *globalOptions, name string) error {
	j := checkJSON{Target: name, Damage: []damageJSON{}}
	ra, size, h, closeFn, err := openCheckTarget(name)
	if err != nil {
		return err
	}
	defer closeFn()
	j.Kind = "source"
	if h != nil {
		j.Kind = "image"
		if len(h.Damage) > 0 {
			j.Recorded = damageList(h.Damage)
		}
	}
	// A damaged image is not a damaged file system: its read errors are
	// kept apart and end the check (exit 3).
	ir := &imageReads{r: ra}
	vol, err := volume.Open(ir, size)
	if err == nil {
		j.FileSystem = vol.Info.Type.String()
		err = vol.Check(cmd.Context(), func(d volume.Damage) {
			j.Damage = append(j.Damage, damageJSON{d.Kind, d.Path, d.What, d.Offset, d.Msg})
		})
	}
	if ierr := ir.failed(); ierr != nil {
		return fmt.Errorf("%s: the image is damaged (cbimg verify names every damaged chunk): %w", name, ierr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	j.OK = len(j.Damage) == 0
	w := cmd.OutOrStdout()
	if g.JSON {
		if err := printJSON(w, j); err != nil {
			return err
		}
	} else if !g.Quiet {
		printCheck(w, j, vol.Info.Label)
	}
	if !j.OK {
		return fmt.Errorf("%s: %d problems: %w", name, len(j.Damage), errFSDamaged)
	}
	return nil
}

func printCheck(w io.Writer, j checkJSON, label string) {
	fmt.Fprintf(w, "Checking %s (%s, %s, label %q), read-only\n", j.Target, j.Kind, j.FileSystem, label)
	for _, d := range j.Damage {
		fmt.Fprintf(w, "DAMAGE %s\n", d)
	}
	if j.OK {
		fmt.Fprintln(w, "No damage found.")
	} else {
		fmt.Fprintf(w, "%d problems found; nothing was changed. Repair a copy (a restored image), not the only one.\n", len(j.Damage))
	}
	if len(j.Recorded) > 0 {
		fmt.Fprintf(w, "The image records %d damaged structures found at backup (cbimg info lists them).\n", len(j.Recorded))
	}
}

// imageReads passes reads through and keeps the first error that says
// the image itself is damaged.
type imageReads struct {
	r   io.ReaderAt
	mu  sync.Mutex
	err error
}

func (x *imageReads) ReadAt(p []byte, off int64) (int, error) {
	n, err := x.r.ReadAt(p, off)
	var fe *image.FormatError
	if err != nil && errors.As(err, &fe) {
		x.mu.Lock()
		if x.err == nil {
			x.err = err
		}
		x.mu.Unlock()
	}
	return n, err
}

func (x *imageReads) failed() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// openCheckTarget opens name as an image when it starts with the image
// magic (or is PARTITION:PATH), else as a partition read-only. It returns
// the partition's bytes and size, and the image header for an image.
func openCheckTarget(name string) (io.ReaderAt, int64, *image.Header, func(), error) {
	src, err := disk.OpenPartition(name, false)
	if err == nil {
		var magic [8]byte
		if _, err := src.ReadAt(magic[:], 0); err != nil || string(magic[:]) != image.Magic {
			return src, src.Size(), nil, func() { src.Close() }, nil
		}
		src.Close()
	}
	r, err := locate.OpenImage(name)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	return r, r.Header.PartLength, r.Header, func() { r.Close() }, nil
}
