package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/internal/units"
	"github.com/cbimg/cbimg/locate"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type backupOptions struct {
	Compress          string
	Split             string
	Excludes          []string
	NoDefaultExcludes bool
	Force             bool
	Overwrite         bool
	Mode              string
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
	f.StringVar(&o.Mode, "mode", "0600", "file mode of the finished image and its split volumes, in octal (0600: the owner only)")
	f.BoolVar(&o.Overwrite, "overwrite", false, "replace an existing IMAGE (without it: asked on a terminal, refused otherwise)")
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

An existing IMAGE is replaced only with --overwrite (on a terminal cbimg asks
instead); without a terminal and without --overwrite backup refuses (exit 4).
The old image stays whole until the new one is complete. A leftover
IMAGE.partial of an interrupted backup is replaced without asking. Images are
created with mode 0600 (readable by the owner only): they hold every file of
the partition; --mode 0640 (say) opens the finished image to a group.`,
		Example: `  cbimg backup /dev/sdb1 sdb1.cbi
  cbimg backup --exclude '*.tmp' --split 4G /dev/sda@2 /mnt/usb/c.cbi
  cbimg backup --overwrite /dev/sdb1 sdb1.cbi     # replace last week's image
  cbimg backup /dev/sdb1 - | ssh host 'cat > sdb1.cbi'`,
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
			if err != nil || n == 0 {
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
	frame := int64(-1)
	if o.ZstdFrame != "0" {
		if frame, err = parseUserSize(o.ZstdFrame); err != nil {
			return err
		}
	}
	storage := image.Storage{Codec: codec, Level: level, ChunkSize: uint32(min(chunk, 1<<32-1)), ZstdFrame: int(frame)}
	if _, err := storage.Complete(); err != nil {
		var se *image.StorageError
		if errors.As(err, &se) {
			flag := map[string]string{"Level": "--compress " + o.Compress, "ChunkSize": "--chunk-size " + o.ChunkSize, "ZstdFrame": "--zstd-frame " + o.ZstdFrame}[se.Field]
			err = fmt.Errorf("%s: %s", flag, se.Want)
		}
		return usageError{err}
	}
	for _, p := range o.Excludes {
		if err := backupcore.ValidatePattern(p); err != nil {
			return usageError{err}
		}
	}
	mode, err := strconv.ParseUint(o.Mode, 8, 32)
	if err != nil || mode > 0o777 || mode&0o600 != 0o600 {
		return usageError{fmt.Errorf("--mode %s: an octal mode from 0600 to 0777 (the owner must read and write)", o.Mode)}
	}
	if mode != 0o600 {
		if _, _, inPart := locate.Split(imagePath); inPart || imagePath == "-" {
			return usageError{fmt.Errorf("--mode applies to an image file, not to %s", imagePath)}
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
	if imagePath != "-" {
		if err := confirmImageOverwrite(o, imagePath); err != nil {
			return err
		}
	}
	p := newProgress(g)
	opts := backupcore.Options{
		Source: source, Image: imagePath, Output: stdout, Codec: storage.Codec, Level: storage.Level, Split: split,
		Excludes: o.Excludes, NoDefaultExcludes: o.NoDefaultExcludes, Force: o.Force, SectorBySector: o.SectorBySector, Rescue: o.Rescue, ChunkSize: storage.ChunkSize, ZstdFrame: storage.ZstdFrame,
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
	if mode != 0o600 {
		// The image was written 0600 and opened up only once complete.
		for n := 1; ; n++ {
			if err := os.Chmod(image.PartName(imagePath, n), os.FileMode(mode)); err != nil {
				if n == 1 || !errors.Is(err, fs.ErrNotExist) {
					// The image is complete and whole; only its mode is not.
					opts.Warn(fmt.Sprintf("--mode: %v", err))
				}
				break
			}
		}
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
	say(g, out, "Backed up %s (%s, %s used, %s stored) to %s: %s in %s\n", source, info.FileSystem, human(info.UsedBytes), human(info.DataBytes), imagePath, human(res.ImageBytes), seconds(res.Duration))
	for _, x := range info.Exclusions {
		say(g, out, "  excluded %s (%s, %s)\n", x.Path, exclusionRule(x.Reason), human(x.Bytes))
	}
	return nil
}

// confirmImageOverwrite asks before a backup replaces an existing image.
func confirmImageOverwrite(o *backupOptions, imagePath string) error {
	st, err := os.Stat(imagePath)
	if err != nil || !st.Mode().IsRegular() {
		return nil // missing (or not a plain file: backupcore says why)
	}
	what := fmt.Sprintf("%s exists (%s, %s)", imagePath, human(st.Size()), st.ModTime().Format("2006-01-02 15:04"))
	return overwrite{Yes: o.Overwrite, Flag: "--overwrite"}.ask(what, "Backup would replace "+what+".", "")
}

// exclusionRule says which rule left a file out, as the user would write
// it: "default: page file", "--exclude '*.tmp'".
func exclusionRule(reason string) string {
	switch strings.ToLower(reason) {
	case "/hiberfil.sys":
		return "default: hibernation file"
	case "/pagefile.sys":
		return "default: page file"
	case "/swapfile.sys":
		return "default: swap file"
	case strings.ToLower(backupcore.ImageRule):
		return "default: a cbimg image"
	case strings.ToLower(backupcore.InPlaceRule):
		return "the image itself, written in place"
	}
	return "--exclude '" + reason + "'"
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
