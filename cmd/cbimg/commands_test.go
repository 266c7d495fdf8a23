//go:build linux

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/disk/disktest"
	"github.com/cbimg/cbimg/image"
	"github.com/spf13/cobra"
)

// Every command has examples in its help, and the exit-code table is in
// "cbimg --help" only.
func TestHelpExamplesAndExitTable(t *testing.T) {
	root := newRootCommand()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.Hidden || s.Name() == "help" || s.Name() == "completion" {
				continue
			}
			if s.Example == "" {
				t.Errorf("%s has no Examples", s.CommandPath())
			}
			if strings.Contains(s.Long, "Exit codes:") {
				t.Errorf("%s repeats the exit-code table", s.CommandPath())
			}
			walk(s)
		}
	}
	walk(root)
	out, _, code := cbimg(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "Exit codes:") || !strings.Contains(out, "130 cancelled") {
		t.Fatalf("cbimg --help: exit %d\n%s", code, out)
	}
}

// "cbimg man DIR" writes one page per command, and each one renders.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := cbimg(t, nil, "man", dir); code != 0 {
		t.Fatalf("man: exit %d %s", code, stderr)
	}
	for _, name := range []string{"cbimg", "cbimg-backup", "cbimg-restore", "cbimg-verify", "cbimg-extract", "cbimg-version", "cbimg-man"} {
		p := filepath.Join(dir, name+".1")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.HasPrefix(s, ".nh") && !strings.Contains(s, ".TH") || !strings.Contains(s, "EXAMPLE") {
			t.Errorf("%s: not a man page with examples:\n%.300s", p, s)
		}
		if _, err := exec.LookPath("man"); err == nil {
			out, err := exec.Command("man", "-l", "-Tutf8", p).CombinedOutput()
			if err != nil || !strings.Contains(string(out), name) {
				t.Errorf("man -l %s: %v\n%.300s", p, err, out)
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cbimg-restore.1"))
	if !strings.Contains(string(b), "--yes") {
		t.Error("cbimg-restore.1 lacks --yes")
	}
}

// "cbimg version --json" names the version, commit, Go version and the
// image formats read and written, taken from the image package.
func TestVersion(t *testing.T) {
	out, _, code := cbimg(t, nil, "version", "--json")
	var v versionJSON
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("version --json: exit %d %v\n%s", code, err, out)
	}
	if v.Version != backupcore.Version || !strings.HasPrefix(v.Go, "go") || v.FormatWritten != image.Version || len(v.FormatRead) == 0 || v.FormatRead[0] != image.Version {
		t.Fatalf("version: %+v", v)
	}
	// The commit comes from the build's VCS stamp (absent with
	// -buildvcs=false); when present it is the checked-out one.
	if v.Commit != "" {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err == nil && strings.TrimSpace(string(head)) != v.Commit {
			t.Fatalf("commit %q, HEAD %s", v.Commit, head)
		}
	}
	out, _, code = cbimg(t, nil, "version")
	if code != 0 || !strings.Contains(out, "cbimg "+backupcore.Version) || !strings.Contains(out, "image format") {
		t.Fatalf("version: exit %d\n%s", code, out)
	}
}

// "used" is one number everywhere: partitions, backup and info give the
// same bytes (allocated clusters and system areas, excluded files
// included) for each file system of a disk.
func TestUsedMeansTheSame(t *testing.T) {
	d := disktest.MBR(t)
	out, stderr, code := cbimg(t, nil, "partitions", "--json", d)
	if code != 0 {
		t.Fatalf("partitions: %d %s", code, stderr)
	}
	var pj partitionsJSON
	if err := json.Unmarshal([]byte(out), &pj); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range pj.Partitions {
		if p.UsedBytes == nil {
			continue
		}
		img := filepath.Join(t.TempDir(), "u.cbi")
		out, stderr, code := cbimg(t, nil, "backup", "--json", p.Spec, img)
		if code != 0 {
			t.Fatalf("backup %s: %d %s", p.Spec, code, stderr)
		}
		var b, i infoJSON
		json.Unmarshal([]byte(out), &b)
		out, _, _ = cbimg(t, nil, "info", "--json", img)
		json.Unmarshal([]byte(out), &i)
		if b.UsedBytes != *p.UsedBytes || i.UsedBytes != *p.UsedBytes || b.UsedBytes == b.DataBytes && len(b.Exclusions) > 0 {
			t.Errorf("%s (%s): partitions says %d used, backup %d, info %d (stored %d)", p.Spec, p.FileSystem, *p.UsedBytes, b.UsedBytes, i.UsedBytes, b.DataBytes)
		}
		checked++
	}
	if checked < 2 {
		t.Fatalf("only %d partitions with a file system", checked)
	}
}
