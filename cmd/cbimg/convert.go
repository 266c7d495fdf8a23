package main

import (
	"fmt"
	"os"
	"time"

	"github.com/cbimg/cbimg/anyimage"
	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/restorecore"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newConvertCommand) }

type convertOptions struct {
	Compress  string
	ChunkSize string
	ZstdFrame string
}

func newConvertCommand(g *globalOptions) *cobra.Command {
	o := &convertOptions{}
	cmd := &cobra.Command{
		Use:   "convert SOURCE IMAGE",
		Short: "Make a .cbi image from a partclone, ntfsclone or other image",
		Long: `convert reads SOURCE — a partclone image (format 0001 or 0002), an ntfsclone
image (--save-image), a .cbi image, or any other kind cbimg reads, detected by
content — and writes IMAGE, a checksummed, compressed, seekable .cbi image of
the same partition. Every checksum SOURCE has is checked on the way. IMAGE's
header records where it came from (info shows it as "origin"). As with
backup, IMAGE is written as IMAGE.partial and renamed when complete.

` + exitHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvert(cmd, g, o, args[0], args[1])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Compress, "compress", "zstd", "none, zstd or zstd:LEVEL (1-19)")
	f.StringVar(&o.ChunkSize, "chunk-size", "1M", "logical bytes per chunk (64K to 64M)")
	f.StringVar(&o.ZstdFrame, "zstd-frame", "32K", "logical bytes per independent zstd frame in a compressed chunk; 0 = one frame per chunk")
	return cmd
}

func runConvert(cmd *cobra.Command, g *globalOptions, o *convertOptions, source, imagePath string) error {
	codec, level, err := parseCompress(o.Compress)
	if err != nil {
		return err
	}
	chunk, err := parseUserSize(o.ChunkSize)
	if err != nil {
		return err
	}
	if chunk < 64<<10 || chunk > 64<<20 {
		return usageError{fmt.Errorf("--chunk-size %s: use 64K to 64M", o.ChunkSize)}
	}
	frame := -1
	if o.ZstdFrame != "0" {
		n, err := parseUserSize(o.ZstdFrame)
		if err != nil {
			return err
		}
		if n < 4<<10 || n > chunk || n&(n-1) != 0 {
			return usageError{fmt.Errorf("--zstd-frame %s: use a power of two from 4K to the chunk size, or 0", o.ZstdFrame)}
		}
		frame = int(n)
	}
	if imagePath == "-" {
		return usageError{fmt.Errorf("convert writes a file; name one")}
	}
	if a, err := os.Stat(source); err == nil {
		if b, err := os.Stat(imagePath); err == nil && os.SameFile(a, b) {
			return fmt.Errorf("%w: %s", restorecore.ErrSameFile, imagePath)
		}
	}
	start := time.Now()
	p := newProgress(g)
	img, err := anyimage.Open(source, &anyimage.Options{Progress: func(ph string, d, t int64) { p.update(ph, d, t) }})
	if err != nil {
		p.done()
		return err
	}
	defer img.Close()
	if !g.Quiet {
		for _, n := range img.Info().Notes {
			fmt.Fprintln(os.Stderr, "cbimg: note:", n)
		}
	}
	out, err := image.Create(imagePath, 0)
	if err != nil {
		p.done()
		return fmt.Errorf("create image: %w", err)
	}
	defer out.Abort() // no-op after Commit
	res, err := anyimage.Convert(cmd.Context(), img, out, anyimage.ConvertOptions{
		Codec: codec, Level: level, ChunkSize: uint32(chunk), ZstdFrame: frame, ToolVersion: "cbimg " + backupcore.Version,
		Progress: func(d, t int64) { p.update("convert", d, t) },
	})
	p.done()
	if err != nil {
		return err
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	j := makeInfo(imagePath, res.Header, res.Written, res.Digest)
	j.Origin = res.Header.Origin
	secs := time.Since(start).Seconds()
	w := cmd.OutOrStdout()
	if g.JSON {
		return printJSON(w, struct {
			infoJSON
			Seconds float64 `json:"seconds"`
		}{j, secs})
	}
	say(g, w, "Converted %s (%s %s, %s, %s used) to %s: %s in %.1fs\n", source, img.Info().Format, img.Info().Version,
		j.FileSystem, human(j.DataBytes), imagePath, human(res.Written), secs)
	return nil
}
