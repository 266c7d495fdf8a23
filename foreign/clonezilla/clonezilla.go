// Package clonezilla reads image directories as Clonezilla's ocs-sr writes
// them (names in names.go): which partitions and disks they hold, the
// partition table facts, and for each partition its image as one
// decompressed stream with random access (package seekz) that the partclone
// or ntfsclone reader then opens.
//
// A partition is named DIR@PART (for example /images/2024-img@sda1), or by
// the image's file itself (its first piece, NAME.aa, or NAME when it is not
// split). Naming the directory alone lists what it holds.
package clonezilla

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cbimg/cbimg/seekz"
)

// Errors.
var (
	ErrNotDir    = errors.New("clonezilla: not a Clonezilla image directory")
	ErrNoPart    = errors.New("clonezilla: no such partition in the image directory")
	ErrCodec     = errors.New("clonezilla: compression not supported")
	ErrMismatch  = errors.New("clonezilla: the file's name and content disagree")
	ErrNoMembers = errors.New("clonezilla: the image directory names no partition images")
)

// Dir is a Clonezilla image directory.
type Dir struct {
	Path       string
	Disks      []string // from "disk"
	Parts      []string // from "parts"
	Partitions []*Partition
	Tables     map[string]*Table // by disk name
	Saved      string            // the first line of clonezilla-img ("This image was saved by …")
	Other      []string          // further files (Info-*, *.list, …)
}

// Partition is one partition image in a directory.
type Partition struct {
	Name   string      // "sda1"
	FS     string      // as Clonezilla names it: "ntfs", "vfat", "ext4", "dd", …
	Tool   string      // "partclone", "ntfsclone" or "dd"
	Suffix string      // the compression suffix in the name ("gz", "zst", "uncomp"), "" for older names
	Codec  seekz.Codec // what the name promises; "" when the content decides
	Pieces []string    // the files, in order
	Bytes  int64       // their total size
	Disk   string      // the disk it is on ("sda"), "" when unknown
	Entry  *TableEntry // its row of the disk's sfdisk table, nil when absent
	Err    error       // why its pieces cannot be read (a piece missing), or nil
}

// Table is what the directory says about one disk's partition table.
type Table struct {
	Disk    string
	Label   string // "dos" or "gpt" from sda-pt.sf
	Entries []TableEntry
	Files   []string // which of sda-pt.sf, sda-pt.parted, sda-mbr, … exist
}

// TableEntry is one partition row of an sfdisk dump.
type TableEntry struct {
	Name     string // "sda1"
	Start    int64  // sectors
	Size     int64  // sectors
	Type     string // MBR type in hex ("7") or GPT type GUID
	Bootable bool
}

// IsDir reports whether path is a Clonezilla image directory: a directory
// holding "parts" or "disk" and "clonezilla-img".
func IsDir(path string) bool {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return false
	}
	has := func(n string) bool {
		s, err := os.Stat(filepath.Join(path, n))
		return err == nil && s.Mode().IsRegular()
	}
	return has("clonezilla-img") && (has("parts") || has("disk"))
}

// ParseName splits DIR@PART when DIR is a Clonezilla image directory.
func ParseName(name string) (dir, part string, ok bool) {
	i := strings.LastIndexByte(name, '@')
	if i <= 0 || i == len(name)-1 || strings.ContainsAny(name[i+1:], `/\`) {
		return "", "", false
	}
	if !IsDir(name[:i]) {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

const maxListFile = 1 << 20 // parts, disk and table files are small text

func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, maxListFile+1)
	n, err := f.Read(b)
	if n > maxListFile {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxListFile)
	}
	if err != nil && n == 0 {
		return "", nil
	}
	return string(b[:n]), nil
}

// OpenDir reads a Clonezilla image directory. It does not open the images.
func OpenDir(path string) (*Dir, error) {
	if !IsDir(path) {
		return nil, fmt.Errorf("%w: %s (no clonezilla-img and parts or disk file)", ErrNotDir, path)
	}
	d := &Dir{Path: path, Tables: map[string]*Table{}}
	if s, err := readSmall(filepath.Join(path, "parts")); err == nil {
		d.Parts = strings.Fields(s)
	}
	if s, err := readSmall(filepath.Join(path, "disk")); err == nil {
		d.Disks = strings.Fields(s)
	}
	if s, err := readSmall(filepath.Join(path, "clonezilla-img")); err == nil {
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				d.Saved = l
				break
			}
		}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	byStem := map[string]*Partition{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		n := e.Name()
		if in, ok := parseImageName(n); ok {
			if byStem[in.stem] == nil {
				p := &Partition{Name: in.part, FS: in.fs, Tool: in.tool, Suffix: in.suffix, Codec: in.codec}
				pieces, err := seekz.Pieces(filepath.Join(path, n))
				if err != nil {
					p.Err = fmt.Errorf("partition %s: %w", in.part, err)
					pieces = []string{filepath.Join(path, n)}
				}
				p.Pieces = pieces
				byStem[in.stem] = p
			}
			continue
		}
		d.Other = append(d.Other, n)
	}
	for _, p := range byStem {
		for _, f := range p.Pieces {
			if st, err := os.Stat(f); err == nil {
				p.Bytes += st.Size()
			}
		}
		d.Partitions = append(d.Partitions, p)
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Name < d.Partitions[j].Name })
	// Partition tables: one per disk named in "disk", or the disk of each partition.
	disks := append([]string(nil), d.Disks...)
	for _, p := range d.Partitions {
		p.Disk = diskOf(p.Name, d.Disks)
		if p.Disk != "" && !contains(disks, p.Disk) {
			disks = append(disks, p.Disk)
		}
	}
	for _, disk := range disks {
		t := &Table{Disk: disk}
		for _, suffix := range []string{"-pt.sf", "-pt.parted", "-mbr", "-hidden-data-after-mbr", "-gpt-1st", "-gpt-2nd", "-gpt.sgdisk", "-chs.sf"} {
			if _, err := os.Stat(filepath.Join(path, disk+suffix)); err == nil {
				t.Files = append(t.Files, disk+suffix)
			}
		}
		if s, err := readSmall(filepath.Join(path, disk+"-pt.sf")); err == nil {
			t.Label, t.Entries = parseSfdisk(s)
		}
		if len(t.Files) > 0 {
			d.Tables[disk] = t
		}
	}
	for _, p := range d.Partitions {
		if t := d.Tables[p.Disk]; t != nil {
			for i := range t.Entries {
				if t.Entries[i].Name == p.Name {
					p.Entry = &t.Entries[i]
				}
			}
		}
	}
	if len(d.Partitions) == 0 {
		return d, fmt.Errorf("%w: %s", ErrNoMembers, path)
	}
	return d, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// diskOf names the disk a partition is on: a listed disk that prefixes it,
// or the name without its partition number (sda1 → sda, nvme0n1p2 → nvme0n1).
func diskOf(part string, disks []string) string {
	for _, d := range disks {
		if strings.HasPrefix(part, d) && len(part) > len(d) {
			return d
		}
	}
	t := strings.TrimRight(part, "0123456789")
	if t == part || t == "" {
		return ""
	}
	if strings.HasSuffix(t, "p") && len(t) > 1 && t[len(t)-2] >= '0' && t[len(t)-2] <= '9' {
		t = t[:len(t)-1] // nvme0n1p2, mmcblk0p1
	}
	return t
}

// parseSfdisk reads "label:" and the partition rows of an sfdisk dump.
func parseSfdisk(s string) (string, []TableEntry) {
	var label string
	var out []TableEntry
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "label:"); ok {
			label = strings.TrimSpace(v)
			continue
		}
		dev, rest, ok := strings.Cut(l, " : ")
		if !ok || !strings.HasPrefix(dev, "/dev/") {
			continue
		}
		e := TableEntry{Name: strings.TrimPrefix(strings.TrimSpace(dev), "/dev/")}
		for _, f := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			v = strings.TrimSpace(v)
			switch strings.TrimSpace(k) {
			case "start":
				e.Start, _ = strconv.ParseInt(v, 10, 64)
			case "size":
				e.Size, _ = strconv.ParseInt(v, 10, 64)
			case "type":
				e.Type = v
			case "bootable":
				e.Bootable = true
			}
		}
		out = append(out, e)
	}
	return label, out
}

// Partition finds a partition image by name ("sda1").
func (d *Dir) Partition(name string) (*Partition, error) {
	var names []string
	for _, p := range d.Partitions {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return nil, fmt.Errorf("%w: %s has %s, not %s", ErrNoPart, d.Path, strings.Join(names, ", "), name)
}

// PartitionOfFile describes the partition image whose file (a piece or the
// whole image) is path; ok is false when the name is not Clonezilla's.
func PartitionOfFile(path string) (*Partition, bool, error) {
	in, ok := parseImageName(filepath.Base(path))
	if !ok {
		return nil, false, nil
	}
	p := &Partition{Name: in.part, FS: in.fs, Tool: in.tool, Suffix: in.suffix, Codec: in.codec}
	pieces, err := seekz.Pieces(path)
	if err != nil {
		return nil, true, err
	}
	p.Pieces = pieces
	for _, f := range pieces {
		if st, err := os.Stat(f); err == nil {
			p.Bytes += st.Size()
		}
	}
	return p, true, nil
}

// Open opens the partition's image as one decompressed stream. The codec is
// taken from the content and must agree with the name's suffix.
func (p *Partition) Open(ctx context.Context, opt seekz.Options) (*seekz.Reader, error) {
	if p.Err != nil {
		return nil, p.Err
	}
	if p.Suffix != "" && p.Codec == "" && p.Suffix != "uncomp" {
		return nil, fmt.Errorf("%w: %s is compressed with %s, which cbimg does not decode (decompress it and name the result)", ErrCodec, p.Pieces[0], p.Suffix)
	}
	f, err := os.Open(p.Pieces[0])
	if err != nil {
		return nil, err
	}
	head := make([]byte, 16)
	n, _ := f.Read(head)
	f.Close()
	got := seekz.Detect(head[:n])
	if p.Suffix != "" && got != p.Codec {
		return nil, fmt.Errorf("%w: %s is named .%s but its content is %s", ErrMismatch, p.Pieces[0], p.Suffix, got)
	}
	opt.Codec = got
	return seekz.Open(ctx, p.Pieces, opt)
}
