package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/locate"
	"github.com/spf13/cobra"
)

type verifyJSON struct {
	Image        string        `json:"image"`
	OK           bool          `json:"ok"`
	Chunks       int           `json:"chunks"`
	BytesChecked int64         `json:"bytes_checked"`
	Problems     []problemJSON `json:"problems"`
	Unreadable   uint64        `json:"unreadable_clusters"`
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
			if isVirtualDisk(args[0]) {
				return runVerifyDisk(cmd, g, args[0])
			}
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
	r, err := locate.OpenImage(name) // a path, or PARTITION:PATH
	if err == nil {
		defer r.Close()
		p := newProgress(g)
		var rep *image.VerifyReport
		rep, err = r.Verify(cmd.Context(), func(d int64) { p.update("verify", d, r.Header.LogicalLen) })
		p.done()
		if err != nil {
			return err
		}
		j.Chunks, j.BytesChecked = rep.Chunks, rep.Logical
		for _, u := range r.Header.Unreadable {
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
	if j.OK {
		fmt.Fprintf(w, "OK: %d chunks, %s checked, digest matches\n", j.Chunks, human(j.BytesChecked))
	}
	if j.Unreadable > 0 {
		fmt.Fprintf(w, "NOTE: %d clusters could not be read at backup and are stored as zeros (see info)\n", j.Unreadable)
	}
}
