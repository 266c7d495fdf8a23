package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func init() { extraCommands = append(extraCommands, newManCommand) }

func newManCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write a man page for every command into DIR (section 1)",
		Long: `man writes cbimg.1 and one page per command (cbimg-backup.1, ...) into DIR,
created when missing, from the same text as --help. Read one with
"man -l DIR/cbimg-restore.1" or install them under /usr/local/share/man/man1.`,
		Example: `  cbimg man /usr/local/share/man/man1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "CBIMG", Section: "1", Source: "cbimg " + buildVersion().Version, Manual: "cbimg manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			say(g, cmd.OutOrStdout(), "Wrote man pages to %s\n", dir)
			return nil
		},
	}
}
