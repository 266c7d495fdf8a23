// Command cbimg backs up, restores, verifies and mounts cluster-based images
// of NTFS and FAT partitions. See README.md for usage and exit codes.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/foreign/clonezilla"
	"github.com/cbimg/cbimg/image"
	_ "github.com/cbimg/cbimg/internal/noquery" // before Bubble Tea: no terminal queries
	"github.com/cbimg/cbimg/restorecore"
	"github.com/cbimg/cbimg/vdisk"
	"github.com/cbimg/cbimg/volume"
	"github.com/spf13/cobra"
)

// Exit codes; documented in the root command's long help and README.md.
const (
	exitOK        = 0
	exitError     = 1 // anything not listed below
	exitUsage     = 2 // bad command line
	exitDamaged   = 3 // the image is damaged, truncated or of an unknown version
	exitRefused   = 4 // refused for safety: mounted, too small, not confirmed
	exitFS        = 5 // the source file system is unrecognized, damaged or unsupported
	exitCancelled = 130
)

const exitHelp = `Exit codes:
  0   success
  1   error (I/O and everything not listed below)
  2   bad command line
  3   the image is damaged, truncated, or of a version this cbimg cannot read
  4   refused for safety (target or source mounted, target too small, not confirmed
      or no terminal to ask: --yes or --overwrite consents, mountpoint busy or not
      empty)
  5   the source file system is unrecognized, damaged or unsupported
  130 cancelled (Ctrl-C)`

// globalOptions are flags every command takes.
type globalOptions struct {
	Quiet bool
	JSON  bool
}

func (g *globalOptions) addFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().BoolVarP(&g.Quiet, "quiet", "q", false, "print nothing but errors")
	cmd.PersistentFlags().BoolVar(&g.JSON, "json", false, "print one JSON summary object on stdout")
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "cbimg",
		Short: "Cluster-based images of NTFS and FAT partitions",
		Long:  "cbimg backs up an NTFS, FAT or exFAT partition by copying only the clusters the file system uses,\nrestores it, verifies images and mounts them read-only. Every command takes --help.\n\n" + exitHelp,
		Example: `  cbimg backup /dev/sdb1 sdb1.cbi
  cbimg verify sdb1.cbi
  cbimg restore sdb1.cbi /dev/sdc1
  cbimg ui`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       backupcore.Version,
		RunE:          rootHint,
	}
	g.addFlags(root)
	addStreamFlags(root, g)
	root.AddCommand(newBackupCommand(g), newRestoreCommand(g), newInfoCommand(g), newVerifyCommand(g))
	for _, add := range extraCommands {
		root.AddCommand(add(g))
	}
	usageArgs(root)
	noteExitCodes(root)
	return root
}

// extraCommands lets platform- or feature-specific files add commands.
var extraCommands []func(*globalOptions) *cobra.Command

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The live heap is mostly one large pointer-free bitmap (64 MiB for
	// 2 TiB), so collections are cheap; collecting at 1.5× rather than 2×
	// the live heap keeps peak memory low for very large volumes.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// CBIMG_CPUPROFILE=FILE writes a CPU profile (see BENCHMARKS.md).
	if p := os.Getenv("CBIMG_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	root := newRootCommand()
	cmd, err := root.ExecuteContextC(ctx)
	code := exitCode(ctx, err)
	if err != nil {
		printError(os.Stderr, root, cmd, err, code)
	}
	pprof.StopCPUProfile()
	os.Exit(code)
}

// usageError marks command-line mistakes.
type usageError struct{ error }

// exitCode is the one place that maps errors to exit codes.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	var fe *image.FormatError
	var ve *volume.FormatError
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitCancelled
	case errors.As(err, &ue) || isCobraUsage(err) || errors.Is(err, clonezilla.ErrIsDir):
		return exitUsage
	case errors.Is(err, errDamaged) || errors.As(err, &fe) || errors.Is(err, image.ErrFormat) || errors.Is(err, image.ErrChecksum) || errors.Is(err, image.ErrTruncated) || errors.Is(err, image.ErrVersion):
		return exitDamaged
	case errors.Is(err, vdisk.ErrFormat) || errors.Is(err, vdisk.ErrMissing) || errors.Is(err, vdisk.ErrUnsupported):
		return exitDamaged
	case errors.Is(err, restorecore.ErrTargetMounted) || errors.Is(err, restorecore.ErrTargetTooSmall) || errors.Is(err, restorecore.ErrSameFile) ||
		errors.Is(err, backupcore.ErrSourceMounted) || errors.Is(err, backupcore.ErrInPlaceUnsafe) || errors.Is(err, restorecore.ErrInPlaceUnsafe) || errors.Is(err, errNotConfirmed) || errors.Is(err, disk.ErrMounted) || errors.Is(err, restorecore.ErrJournal) || errors.Is(err, disk.ErrVirtualWrite):

		return exitRefused
	case errors.As(err, &ve) || errors.Is(err, volume.ErrUnknownFS) || errors.Is(err, volume.ErrCorrupt) || errors.Is(err, volume.ErrUnsupported):
		return exitFS
	}
	return exitError
}

var (
	errDamaged      = errors.New("image verification failed")
	errNotConfirmed = errors.New("not confirmed")
)
