package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newVersionCommand) }

// versionJSON is the stable --json form of "cbimg version".
type versionJSON struct {
	Version       string `json:"version"`
	Commit        string `json:"commit"`   // VCS revision the binary was built from, "" when unknown
	Modified      bool   `json:"modified"` // built from a work tree with uncommitted changes
	Go            string `json:"go"`
	FormatRead    []int  `json:"format_read"` // image format versions this binary reads
	FormatWritten int    `json:"format_written"`
}

func buildVersion() versionJSON {
	v := versionJSON{Version: backupcore.Version, Go: runtime.Version(), FormatRead: []int{image.Version}, FormatWritten: image.Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the version, the commit it was built from and the image formats it reads and writes",
		Example: `  cbimg version
  cbimg version --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := buildVersion()
			w := cmd.OutOrStdout()
			if g.JSON {
				return printJSON(w, v)
			}
			commit := v.Commit
			switch {
			case commit == "":
				commit = "unknown"
			case v.Modified:
				commit += " (modified)"
			}
			fmt.Fprintf(w, "cbimg %s\ncommit:       %s\ngo:           %s\nimage format: reads %v, writes %d\n", v.Version, commit, v.Go, v.FormatRead, v.FormatWritten)
			return nil
		},
	}
}
