package main

import (
	"fmt"
	"os"

	"github.com/cbimg/cbimg/ui"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { extraCommands = append(extraCommands, newUICommand) }

func newUICommand(g *globalOptions) *cobra.Command {
	var dirs []string
	cmd := &cobra.Command{
		Use:   "ui [DISK|FILE ...]",
		Short: "Menu for a technician at a console: back up, restore, verify, mount, browse",
		Long: `ui scans disks and offers what can be done with what it finds: back up a
partition, restore one from an image, verify, mount or browse an image. It
asks only for what is missing, shows a summary naming what will be
overwritten (a restore needs the target's name typed), runs the action with a
live view that Esc cancels cleanly, and ends with the command line that does
the same from a script.

Without arguments it scans every disk; with arguments, just those (disks, disk
images, partitions as DISK@N, or partition/volume files). --images adds a
directory whose images are offered and where new backups go (default for new
backups: the current directory).

Keys: Up/Down, Enter, Esc, and the letters shown on each screen; the mouse
selects too. Works on an 80x25 console without colours and in a Windows
console.`,
		Example: `  cbimg ui
  cbimg ui /dev/sdb disk.img --images /mnt/usb/backups`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(os.Stdout.Fd())) {
				return usageError{fmt.Errorf("ui needs a terminal; use the other commands from scripts")}
			}
			return ui.Run(cmd.Context(), ui.Config{Disks: args, ImageDirs: dirs})
		},
	}
	cmd.Flags().StringArrayVar(&dirs, "images", nil, "a `DIR` of images to offer, where new backups go; repeatable")
	return cmd
}

// rootHint is plain "cbimg": the usage, and on a terminal a pointer to the
// menu.
func rootHint(cmd *cobra.Command, args []string) error {
	if err := cmd.Help(); err != nil {
		return err
	}
	if f, ok := cmd.OutOrStdout().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(f, "\nAt a console? Run \"cbimg ui\" for a menu of what can be backed up, restored,\nverified, mounted and browsed here.")
	}
	return nil
}
