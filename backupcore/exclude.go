package backupcore

import (
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/cbimg/cbimg/image"
	"github.com/cbimg/cbimg/volume"
)

// DefaultExcludes are left out unless Options.NoDefaultExcludes: Windows'
// hibernation, paging and swap files in the volume root.
var DefaultExcludes = []string{"/hiberfil.sys", "/pagefile.sys", "/swapfile.sys"}

// ImageRule is the reason recorded for cbimg images found on the volume.
const ImageRule = "cbimg image"

type rule struct {
	pattern string
	lower   string
}

func rules(opts Options) []rule {
	var pats []string
	if !opts.NoDefaultExcludes {
		pats = append(pats, DefaultExcludes...)
	}
	pats = append(pats, opts.Excludes...)
	var out []rule
	for _, p := range pats {
		out = append(out, rule{p, strings.ToLower(p)})
	}
	return out
}

// Match reports whether a volume path matches an exclusion glob, ignoring
// case as NTFS and FAT do. A pattern with a "/" matches the whole path
// (a leading "/" is optional); one without matches the base name anywhere.
func Match(pattern, p string) bool {
	pattern, p = strings.ToLower(pattern), strings.ToLower(p)
	if strings.Contains(pattern, "/") {
		if !strings.HasPrefix(pattern, "/") {
			pattern = "/" + pattern
		}
		ok, _ := path.Match(pattern, p)
		return ok
	}
	ok, _ := path.Match(pattern, path.Base(p))
	return ok
}

// ValidatePattern reports a malformed glob.
func ValidatePattern(p string) error {
	if _, err := path.Match(strings.ToLower(p), ""); err != nil {
		return fmt.Errorf("exclude pattern %q: %w", p, err)
	}
	return nil
}

var splitPart = regexp.MustCompile(`\.[0-9]{3}$`)

// notApplied is the reason recorded for an exclusion left undone.
const notApplied = "exclusion not applied"

// findExclusions walks the volume, picks the files to leave out and clears
// their clusters in bitmap. File-system metadata is never excluded. With
// no rules and no image detection nothing is walked. Damage met on the way
// goes to dmg and the walk goes on; a file that matches but whose chain is
// damaged or shares clusters with another file is not excluded (dmg says
// so): clearing its clusters could zero another file's data.
func findExclusions(ctx context.Context, vol *volume.Volume, src io.ReaderAt, bitmap []byte, rs []rule, detectImages bool, dmg *damageLog) ([]image.Exclusion, error) {
	if len(rs) == 0 && !detectImages {
		return nil, nil
	}
	var picked []image.Exclusion
	images := map[string]bool{}
	var parts []volume.File
	var shared []volume.Run
	skip := func(rule, name, why string) {
		dmg.add(volume.Damage{Kind: notApplied, Path: name, What: "exclusion " + rule, Offset: -1,
			Msg: why + ": not applied, the file is imaged in full"})
	}
	err := vol.WalkTolerant(ctx, func(f volume.File) error {
		if f.Dir || isMetafile(vol, f.Path) || len(f.Runs) == 0 && !f.Damaged {
			return nil
		}
		name := f.Path
		if f.Stream != "" {
			name += ":" + f.Stream
		}
		for _, r := range rs {
			if Match(r.pattern, name) || f.Stream == "" && Match(r.pattern, f.Path) {
				if f.Damaged {
					skip(r.pattern, name, "its cluster chain or runs are damaged")
				} else {
					picked = append(picked, exclusion(r.pattern, name, f.Runs))
				}
				return nil
			}
		}
		if f.Damaged {
			return nil
		}
		if f.Stream == "" && detectImages && f.Size >= image.FooterLen {
			var magic [8]byte
			if err := readFull(src, magic[:], vol.Info.ClusterOffset(f.Runs[0].Start)); err != nil {
				dmg.add(volume.Damage{Kind: volume.DamageChain, Path: name, What: "first cluster", Offset: vol.Info.ClusterOffset(f.Runs[0].Start),
					Msg: fmt.Sprintf("cannot be read to look for an image: %v", err)})
				return nil
			}
			if string(magic[:]) == image.Magic {
				picked = append(picked, exclusion(ImageRule, name, f.Runs))
				images[strings.ToLower(f.Path)] = true
				return nil
			}
		}
		if f.Stream == "" && splitPart.MatchString(f.Path) {
			parts = append(parts, f)
		}
		return nil
	}, func(d volume.Damage) {
		shared = append(shared, d.Clusters...)
		dmg.add(d)
	})
	if err != nil {
		return nil, fmt.Errorf("scan files for exclusions: %w", err)
	}
	// Later volumes of a split image have no magic of their own.
	for _, f := range parts {
		if images[strings.ToLower(f.Path[:len(f.Path)-4])] {
			picked = append(picked, exclusion(ImageRule, f.Path, f.Runs))
		}
	}
	kept := picked[:0]
	for _, x := range picked {
		if overlaps(x.Runs, shared) {
			skip(x.Reason, x.Path, "its clusters are cross-linked with another file")
			continue
		}
		kept = append(kept, x)
	}
	for i := range kept {
		kept[i].Clusters = clearRuns(bitmap, kept[i].Runs, vol.Info.ClusterCount)
	}
	return kept, nil
}

// overlaps reports whether any run of a meets any run of b.
func overlaps(a []image.Run, b []volume.Run) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Start < y.Start+y.Count && y.Start < x.Start+x.Count {
				return true
			}
		}
	}
	return false
}

func exclusion(reason, p string, runs []volume.Run) image.Exclusion {
	x := image.Exclusion{Reason: reason, Path: p}
	for _, r := range runs {
		x.Runs = append(x.Runs, image.Run{Start: r.Start, Count: r.Count})
	}
	return x
}

// isMetafile protects NTFS system files ($MFT, $LogFile, …) from globs.
func isMetafile(vol *volume.Volume, p string) bool {
	return vol.Info.Type == volume.NTFS && strings.HasPrefix(p, "/$")
}

// clearRuns clears the runs' bits and returns how many were set.
func clearRuns(bitmap []byte, runs []image.Run, total uint64) uint64 {
	var n uint64
	for _, r := range runs {
		for c := r.Start; c < r.Start+r.Count && c < total; c++ {
			if bitmap[c/8]&(1<<(c%8)) != 0 {
				bitmap[c/8] &^= 1 << (c % 8)
				n++
			}
		}
	}
	return n
}
