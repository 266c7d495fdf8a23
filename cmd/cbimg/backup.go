package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/units"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type backupOptions struct {
	Compress          string
	Split             string
	Excludes          []string
	NoDefaultExcludes bool
	Force             bool
	SectorBySector    bool
	Rescue            bool
	ChunkSize         string
	ZstdFrame         string
}

func (o *backupOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Compress, "compress", "zstd", "none, zstd or zstd:LEVEL (1-19)")
	f.StringVar(&o.Split, "split", "", "split the image into volumes of SIZE (e.g. 4000M, 2G): IMAGE, IMAGE.002, ...")
	f.StringArrayVar(&o.Excludes, "exclude", nil, "leave out files matching GLOB (case-insensitive; with a / it matches the whole path); repeatable")
	f.BoolVar(&o.NoDefaultExcludes, "no-default-excludes", false, "also image hiberfil.sys, pagefile.sys, swapfile.sys and cbimg images on the volume")
	f.BoolVar(&o.Force, "force", false, "back up a source that is mounted read-write")
	f.StringVar(&o.ChunkSize, "chunk-size", "1M", "logical bytes per chunk (64K to 64M): the unit of checksums, parallel compression and verify")
	f.StringVar(&o.ZstdFrame, "zstd-frame", "32K", "logical bytes per independent zstd frame in a compressed chunk (4K to the chunk size, a power of two): a random read of a mounted image decodes one frame; 0 = one frame per chunk, about 5-10 % smaller for text-like data but each random read decodes a whole chunk")
	f.BoolVar(&o.Rescue, "rescue", false, "store unreadable clusters as zeros, list them in the image, and go on")
	f.BoolVar(&o.SectorBySector, "sector-by-sector", false, "copy every sector without reading the file system (BitLocker or unknown volumes)")
}

func newBackupCommand(g *globalOptions) *cobra.Command {
	o := &backupOptions{}
	cmd := &cobra.Command{
		Use:   "backup SOURCE IMAGE",
		Short: "Back up the used clusters of an NTFS or FAT partition into an image",
		Long: `backup reads SOURCE (a block device such as /dev/sdb1, or a file holding one
partition), recognizes NTFS, FAT12/16/32 or exFAT from its boot record, and writes
the used clusters plus the file system's system areas to IMAGE ("-" for
standard output). hiberfil.sys, pagefile.sys, swapfile.sys in the volume root
and cbimg images found on the volume are left out: they keep their size and
read as zeros after a restore.

` + exitHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackup(cmd, g, o, args[0], args[1])
		},
	}
	o.addFlags(cmd)
	return cmd
}

func parseCompress(s string) (image.Codec, int, error) {
	name, lvl, hasLevel := strings.Cut(s, ":")
	switch name {
	case "none":
		if hasLevel {
			return 0, 0, usageError{fmt.Errorf("--compress none takes no level")}
		}
		return image.CodecNone, 0, nil
	case "zstd":
		level := 3
		if hasLevel {
			n, err := strconv.Atoi(lvl)
			if err != nil || n < 1 || n > 19 {
				return 0, 0, usageError{fmt.Errorf("--compress zstd:LEVEL needs a level from 1 to 19, not %q", lvl)}
			}
			level = n
		}
		return image.CodecZstd, level, nil
	}
	return 0, 0, usageError{fmt.Errorf("--compress %q: use none, zstd or zstd:LEVEL", s)}
}

func runBackup(cmd *cobra.Command, g *globalOptions, o *backupOptions, source, imagePath string) error {
	codec, level, err := parseCompress(o.Compress)
	if err != nil {
		return err
	}
	var split int64
	if o.Split != "" {
		if split, err = parseUserSize(o.Split); err != nil {
			return err
		}
		if split < 1<<20 {
			return usageError{fmt.Errorf("--split %s: volumes must be at least 1 MiB", o.Split)}
		}
	}
	chunk, err := parseUserSize(o.ChunkSize)
	if err != nil {
		return err
	}
	if chunk < 64<<10 || chunk > 64<<20 {
		return usageError{fmt.Errorf("--chunk-size %s: use 64K to 64M", o.ChunkSize)}
	}
	frame := int64(-1)
	if o.ZstdFrame != "0" {
		frame, err = parseUserSize(o.ZstdFrame)
		if err != nil {
			return err
		}
		if frame < 4<<10 || frame > chunk || frame&(frame-1) != 0 {
			return usageError{fmt.Errorf("--zstd-frame %s: use a power of two from 4K to the chunk size (%s), or 0", o.ZstdFrame, o.ChunkSize)}
		}
	}
	for _, p := range o.Excludes {
		if err := backupcore.ValidatePattern(p); err != nil {
			return usageError{err}
		}
	}
	stdout := cmd.OutOrStdout()
	if imagePath == "-" {
		if g.JSON {
			return usageError{fmt.Errorf("--json needs stdout, which carries the image; write the image to a file")}
		}
		if f, ok := stdout.(*os.File); ok && isTerminal(f) {
			return usageError{fmt.Errorf("refusing to write an image to a terminal; redirect standard output")}
		}
	}
	p := newProgress(g)
	opts := backupcore.Options{
		Source: source, Image: imagePath, Output: stdout, Codec: codec, Level: level, Split: split,
		Excludes: o.Excludes, NoDefaultExcludes: o.NoDefaultExcludes, Force: o.Force, SectorBySector: o.SectorBySector, Rescue: o.Rescue, ChunkSize: uint32(chunk), ZstdFrame: int(frame),
		Progress: func(pr backupcore.Progress) { p.update(pr.Phase, pr.Done, pr.Total) },
		Warn: func(s string) {
			if !g.Quiet {
				fmt.Fprintln(os.Stderr, "cbimg: warning:", s)
			}
		},
	}
	res, err := backupcore.Backup(cmd.Context(), opts)
	p.done()
	if err != nil {
		return err
	}
	info := makeInfo(imagePath, res.Header, res.ImageBytes, res.Digest)
	out := stdout
	if imagePath == "-" {
		out = os.Stderr
	}
	if g.JSON {
		return printJSON(out, struct {
			infoJSON
			Seconds  float64  `json:"seconds"`
			Warnings []string `json:"warnings"`
		}{info, res.Duration.Seconds(), append([]string{}, res.Warnings...)})
	}
	say(g, out, "Backed up %s (%s, %s used) to %s: %s in %.1fs\n", source, info.FileSystem, human(info.DataBytes), imagePath, human(res.ImageBytes), res.Duration.Seconds())
	for _, x := range info.Exclusions {
		say(g, out, "  excluded %s (%s, %s)\n", x.Path, x.Reason, human(x.Bytes))
	}
	return nil
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// parseUserSize is units.ParseSize with a command-line error.
func parseUserSize(s string) (int64, error) {
	n, err := units.ParseSize(s)
	if err != nil {
		return 0, usageError{err}
	}
	return n, nil
}
