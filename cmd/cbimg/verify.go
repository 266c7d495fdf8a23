package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/foreign/clonezilla"
	"github.com/cbimg/cbimg/image"
	"github.com/spf13/cobra"
)

type verifyJSON struct {
	Image        string        `json:"image"`
	OK           bool          `json:"ok"`
	Chunks       int           `json:"chunks"`
	BytesChecked int64         `json:"bytes_checked"`
	Problems     []problemJSON `json:"problems"`
	Unreadable   uint64        `json:"unreadable_clusters"`
	Format       string        `json:"format"`
	Units        string        `json:"units"`       // what "chunks" counts: chunks, checksums, clusters
	Checksummed  bool          `json:"checksummed"` // false: the format has no checksums; structure only
}

type problemJSON struct {
	Region  string `json:"region"`
	Offset  int64  `json:"offset"`
	Message string `json:"message"`
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Check every checksum of an image and its digest",
		Long:  "verify reads every chunk, checks its CRC32C and BLAKE3 sum, and recomputes the image digest.\nIt exits 0 when everything checks and 3 otherwise, naming each damaged region and its byte offset.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, g, args[0])
		},
	}
}

func runVerify(cmd *cobra.Command, g *globalOptions, name string) error {
	w := cmd.OutOrStdout()
	j := verifyJSON{Image: name, Problems: []problemJSON{}}
	addProblem := func(err error) {
		var fe *image.FormatError
		if errors.As(err, &fe) {
			j.Problems = append(j.Problems, problemJSON{fe.Region, fe.Offset, err.Error()})
		} else {
			j.Problems = append(j.Problems, problemJSON{"io", -1, err.Error()})
		}
	}
	r, err := openAny(g, name, 0) // a path, PARTITION:PATH, or any kind's name
	if errors.Is(err, clonezilla.ErrIsDir) {
		return err // a usage mistake, not damage
	}
	if err == nil {
		defer r.Close()
		p := newProgress(g)
		var rep *anyimage.Report
		rep, err = r.Verify(cmd.Context(), func(d int64) { p.update("verify", d, r.Info().VerifyBytes) })
		p.done()
		if err != nil {
			return err
		}
		j.Chunks, j.BytesChecked = rep.Units, rep.Logical
		j.Format, j.Units, j.Checksummed = r.Info().Format, rep.UnitName, rep.Checksummed
		for _, u := range r.Header().Unreadable {
			j.Unreadable += u.Count
		}
		for _, e := range rep.Problems {
			addProblem(e)
		}
	} else {
		addProblem(err)
	}
	j.OK = len(j.Problems) == 0
	if g.JSON {
		printJSON(w, j)
	} else if !g.Quiet {
		reportVerify(w, j)
	}
	if !j.OK {
		return fmt.Errorf("%w: %s", errDamaged, j.Problems[0].Message)
	}
	return nil
}

func reportVerify(w io.Writer, j verifyJSON) {
	for _, p := range j.Problems {
		fmt.Fprintf(w, "DAMAGED %s at byte %d: %s\n", p.Region, p.Offset, p.Message)
	}
	switch {
	case j.OK && j.Format == "cbi":
		fmt.Fprintf(w, "OK: %d chunks, %s checked, digest matches\n", j.Chunks, human(j.BytesChecked))
	case j.OK && j.Checksummed:
		fmt.Fprintf(w, "OK: %s image, %d %s checked over %s of data\n", j.Format, j.Chunks, j.Units, human(j.BytesChecked))
	case j.OK:
		fmt.Fprintf(w, "OK: %s image, %d %s read (%s); the format has no checksums: only its structure and that the stream is whole were checked\n", j.Format, j.Chunks, j.Units, human(j.BytesChecked))
	}
	if j.Unreadable > 0 {
		fmt.Fprintf(w, "NOTE: %d clusters could not be read at backup and are stored as zeros (see info)\n", j.Unreadable)
	}
}
