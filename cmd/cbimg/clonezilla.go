package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cbimg/cbimg/foreign/clonezilla"
	"github.com/cbimg/cbimg/seekz"
	"github.com/spf13/cobra"
)

// addStreamFlags adds --cache-dir, where seek indexes and cache files of
// compressed images (Clonezilla, partclone | gzip …) are kept, and shows the
// indexing pass on the progress bar.
func addStreamFlags(root *cobra.Command, g *globalOptions) {
	var dir string
	root.PersistentFlags().StringVar(&dir, "cache-dir", "", "where seek indexes of compressed images are kept (default "+seekz.DefaultCacheDir()+")")
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) {
		clonezilla.Defaults.CacheDir = dir
		clonezilla.Defaults.Context = cmd.Context()
		if cmd.Name() != "ui" { // the menu owns the terminal
			p := newProgress(g)
			clonezilla.Defaults.Progress = p.update
		}
	}
}

type czDirJSON struct {
	Image      string        `json:"image"`
	Format     string        `json:"format"`
	Saved      string        `json:"saved"`
	Disks      []string      `json:"disks"`
	Parts      []string      `json:"parts"`
	Partitions []czPartJSON  `json:"partitions"`
	Tables     []czTableJSON `json:"tables"`
	Other      []string      `json:"other_files"`
}

type czPartJSON struct {
	Name        string   `json:"name"`
	Open        string   `json:"open_as"`
	FS          string   `json:"file_system"`
	Tool        string   `json:"tool"`
	Compression string   `json:"compression"`
	Pieces      []string `json:"pieces"`
	Bytes       int64    `json:"bytes"`
	Disk        string   `json:"disk"`
	StartSector int64    `json:"start_sector"`
	Sectors     int64    `json:"sectors"`
	Type        string   `json:"type"`
	Problem     string   `json:"problem,omitempty"`
}

type czTableJSON struct {
	Disk  string   `json:"disk"`
	Label string   `json:"label"`
	Files []string `json:"files"`
}

// runInfoDir lists a Clonezilla image directory.
func runInfoDir(w io.Writer, g *globalOptions, name string) error {
	d, err := clonezilla.OpenDir(name)
	if err != nil {
		return err
	}
	j := czDirJSON{Image: name, Format: "clonezilla", Saved: d.Saved, Disks: nonNil(d.Disks), Parts: nonNil(d.Parts),
		Partitions: []czPartJSON{}, Tables: []czTableJSON{}, Other: nonNil(d.Other)}
	for _, p := range d.Partitions {
		pj := czPartJSON{Name: p.Name, Open: name + "@" + p.Name, FS: p.FS, Tool: p.Tool, Compression: p.Suffix,
			Pieces: p.Pieces, Bytes: p.Bytes, Disk: p.Disk}
		if p.Err != nil {
			pj.Problem = p.Err.Error()
		}
		if p.Entry != nil {
			pj.StartSector, pj.Sectors, pj.Type = p.Entry.Start, p.Entry.Size, p.Entry.Type
		}
		j.Partitions = append(j.Partitions, pj)
	}
	for _, disk := range append(d.Disks, d.Parts...) {
		if t := d.Tables[disk]; t != nil {
			j.Tables = append(j.Tables, czTableJSON{Disk: t.Disk, Label: t.Label, Files: t.Files})
			delete(d.Tables, disk)
		}
	}
	for _, t := range d.Tables {
		j.Tables = append(j.Tables, czTableJSON{Disk: t.Disk, Label: t.Label, Files: t.Files})
	}
	if g.JSON {
		return printJSON(w, j)
	}
	if g.Quiet {
		return nil
	}
	fmt.Fprintf(w, "Clonezilla image: %s\n", name)
	if j.Saved != "" {
		fmt.Fprintf(w, "Saved:            %s\n", j.Saved)
	}
	if len(j.Disks) > 0 {
		fmt.Fprintf(w, "Disks:            %s\n", strings.Join(j.Disks, " "))
	}
	for _, t := range j.Tables {
		fmt.Fprintf(w, "Table of %s:      %s (%s)\n", t.Disk, orNone(t.Label), strings.Join(t.Files, ", "))
	}
	for _, p := range j.Partitions {
		fmt.Fprintf(w, "Partition:        %s  %s via %s, %s, %d piece(s), %s", p.Open, p.FS, p.Tool, orNone(p.Compression), len(p.Pieces), human(p.Bytes))
		if p.Sectors > 0 {
			fmt.Fprintf(w, ", sectors %d+%d type %s", p.StartSector, p.Sectors, p.Type)
		}
		fmt.Fprintln(w)
		if p.Problem != "" {
			fmt.Fprintf(w, "  problem:        %s\n", p.Problem)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
