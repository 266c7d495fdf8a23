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

// findExclusions walks the volume, picks the files to leave out and clears
// their clusters in bitmap. File-system metadata is never excluded.
func findExclusions(ctx context.Context, vol *volume.Volume, src io.ReaderAt, bitmap []byte, rs []rule, detectImages bool) ([]image.Exclusion, error) {
	var picked []image.Exclusion
	images := map[string]bool{}
	var parts []volume.File
	err := vol.Walk(ctx, func(f volume.File) error {
		if f.Dir || len(f.Runs) == 0 || isMetafile(vol, f.Path) {
			return nil
		}
		name := f.Path
		if f.Stream != "" {
			name += ":" + f.Stream
		}
		for _, r := range rs {
			if Match(r.pattern, name) || f.Stream == "" && Match(r.pattern, f.Path) {
				picked = append(picked, exclusion(r.pattern, name, f.Runs))
				return nil
			}
		}
		if f.Stream == "" && detectImages && f.Size >= image.FooterLen {
			var magic [8]byte
			if err := readFull(src, magic[:], vol.Info.ClusterOffset(f.Runs[0].Start)); err != nil {
				return err
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
	for i := range picked {
		picked[i].Clusters = clearRuns(bitmap, picked[i].Runs, vol.Info.ClusterCount)
	}
	return picked, nil
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
