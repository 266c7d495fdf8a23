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
	text    string // what follows "DAMAGED REGION at byte N: "
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Check every checksum of an image and its digest",
		Long:  "verify reads every chunk, checks its CRC32C and chunk sum, and recomputes the image digest.\nIt exits 0 when everything checks and 3 otherwise, naming each damaged region and its byte offset once.",
		Example: `  cbimg verify sdb1.cbi
  cbimg verify --json sdb1.cbi
  cbimg verify /dev/sdb1:/Backups/c.cbi`,
		Args: cobra.ExactArgs(1),
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
			j.Problems = append(j.Problems, problemJSON{fe.Region, fe.Offset, userMessage(err), fe.Msg})
		} else {
			j.Problems = append(j.Problems, problemJSON{"io", -1, userMessage(err), userMessage(err)})
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
			return imageErr(name, err)
		}
		j.Chunks, j.BytesChecked = rep.Units, rep.Logical
		j.Format, j.Units, j.Checksummed = r.Info().Format, rep.UnitName, rep.Checksummed
		for _, u := range r.Header().Unreadable {
			j.Unreadable += u.Count
		}
		for _, e := range rep.Problems {
			addProblem(e)
		}
	} else if isImageProblem(err) {
		addProblem(err)
	} else {
		return imageErr(name, err) // missing, unreadable: not a damaged image
	}
	j.OK = len(j.Problems) == 0
	if g.JSON {
		printJSON(w, j)
	} else if !g.Quiet {
		reportVerify(w, j)
	}
	if !j.OK {
		if !g.JSON && !g.Quiet {
			// Each problem was printed once above.
			return damagedError(fmt.Sprintf("%s: the image is damaged (%s, listed above)", name, plural(len(j.Problems), "problem", "problems")))
		}
		msg := fmt.Sprintf("%s: the image is damaged: %s", name, j.Problems[0].Message)
		if n := len(j.Problems) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %s)", plural(n, "more problem", "more problems"))
		}
		return damagedError(msg)
	}
	return nil
}

// damagedError exits with the "damaged image" code.
type damagedError string

func (e damagedError) Error() string        { return string(e) }
func (e damagedError) Is(target error) bool { return target == errDamaged }

// isImageProblem tells an image's own damage from failing to reach it.
func isImageProblem(err error) bool {
	var fe *image.FormatError
	return errors.As(err, &fe) || errors.Is(err, image.ErrFormat) || errors.Is(err, image.ErrChecksum) || errors.Is(err, image.ErrTruncated) || errors.Is(err, image.ErrVersion)
}

func reportVerify(w io.Writer, j verifyJSON) {
	for _, p := range j.Problems {
		if p.Offset < 0 {
			fmt.Fprintf(w, "DAMAGED %s: %s\n", p.Region, p.text)
		} else {
			fmt.Fprintf(w, "DAMAGED %s at byte %d: %s\n", p.Region, p.Offset, p.text)
		}
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
		fmt.Fprintf(w, "NOTE: %s unreadable at backup, stored as zeros (see info)\n", plural(int(j.Unreadable), "cluster", "clusters"))
	}
}
