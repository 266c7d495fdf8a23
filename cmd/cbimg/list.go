package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cbimg/cbimg/catalog"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newListCommand) }

// listJSON is the stable --json form of one image found by "cbimg list".
type listJSON struct {
	Location   string   `json:"location"`  // what info/verify/restore take: PARTITION:/path or a file path
	Partition  string   `json:"partition"` // partition holding it, "" for a file
	Path       string   `json:"path"`
	Size       int64    `json:"size"`
	Format     string   `json:"format"`      // "cbi", "partclone", "ntfsclone", ...
	FileSystem string   `json:"file_system"` // of the partition it was made from
	Source     string   `json:"source"`
	Label      string   `json:"label"`
	Created    string   `json:"created"`
	DataBytes  int64    `json:"data_bytes"`
	FSBytes    int64    `json:"file_system_bytes"`
	Error      string   `json:"error"`    // the header could not be read
	Targets    []string `json:"targets"`  // partitions of the scanned disk it fits
	InPlace    []string `json:"in_place"` // … whose file system is the one it was made from
}

func newListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list DISK|PARTITION|DIR",
		Short: "Find cbimg images on a disk's partitions (read raw, unmounted) or in a directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			found, err := catalog.Scan(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := make([]listJSON, 0, len(found))
			for _, f := range found {
				j := listJSON{Location: f.Location, Partition: f.Partition, Path: f.Path, Size: f.Size, Format: f.Format,
					Targets: append([]string{}, f.Targets...), InPlace: append([]string{}, f.InPlace...)}
				if h := f.Header; h != nil {
					j.FileSystem, j.Source, j.Label = volume.Type(h.FSType).String(), h.SourceName, h.Label
					j.Created, j.DataBytes, j.FSBytes = h.Created.UTC().Format(time.RFC3339), h.LogicalLen, h.FSSize
				} else if f.Err != nil {
					j.Error = f.Err.Error()
				}
				out = append(out, j)
			}
			if g.JSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			if !g.Quiet {
				printList(cmd.OutOrStdout(), out)
			}
			return nil
		},
	}
}

func printList(w io.Writer, list []listJSON) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no cbimg images found")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSIZE\tMADE FROM\tFS\tCREATED\tRESTORES")
	for _, j := range list {
		if j.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t(damaged: %s)\t\t\t\n", j.Location, human(j.Size), j.Error)
			continue
		}
		restores := "-"
		if len(j.Targets) > 0 {
			restores = fmt.Sprint(j.Targets)
		}
		if len(j.InPlace) > 0 {
			restores += fmt.Sprintf(" (in place: %v)", j.InPlace)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %q\t%s\t%s\t%s\n", j.Location, human(j.Size), j.Source, j.Label, j.FileSystem, j.Created, restores)
	}
	tw.Flush()
}
