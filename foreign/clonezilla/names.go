package clonezilla

import (
	"strings"

	"github.com/cbimg/cbimg/seekz"
)

// File names in a Clonezilla image directory, as ocs-sr (drbl's
// ocs-functions) writes them:
//
//	parts                         the saved partitions, space-separated ("sda1 sda2")
//	disk                          the saved disks (savedisk only)
//	clonezilla-img                the log of the save
//	Info-*.txt                    facts about the machine and the save
//	blkdev.list, blkid.list, dev-fs.list
//	sda-pt.sf                     sfdisk --dump of the disk's table
//	sda-pt.parted                 parted's view of it
//	sda-mbr                       the first 512 bytes of the disk
//	sda-hidden-data-after-mbr     the sectors between the MBR and the first partition
//	sda-gpt-1st, sda-gpt-2nd      the GPT's primary and backup copies
//	swappt-sda5.info              a swap partition's UUID and label (no data)
//
// and per partition one image, split by split(1) into NAME.aa, NAME.ab, …
// (NAME.aaa… with -a 3) or left whole as NAME:
//
//	sda1.ntfs-ptcl-img.gz         partclone.ntfs | gzip (or pigz); the current form
//	sda1.vfat-ptcl-img.zst        … | zstd (or zstdmt)
//	sda1.dd-ptcl-img.xz           partclone.dd (a partclone image of every block)
//	sda1.ntfs-img                 ntfsclone, compressed as its content shows (older form)
//	sda1.vfat-img                 partclone, compressed as its content shows (older form)
//	sda1.dd-img                   dd output, compressed as its content shows
//
// The compression suffixes are those of ocs-get-comp-suffix: gz, bz2, lzo,
// lz4, lzma, xz, lzip, lrz, zst and uncomp.

// suffixCodecs maps ocs-sr's compression suffix to a codec; "" means the
// suffix is known but cbimg cannot decode it.
var suffixCodecs = map[string]seekz.Codec{
	"gz": seekz.Gzip, "bz2": seekz.Bzip2, "xz": seekz.Xz, "zst": seekz.Zstd, "lz4": seekz.Lz4, "uncomp": seekz.None,
	"lzo": "", "lzma": "", "lzip": "", "lrz": "",
}

// imageName is a partition image file name taken apart.
type imageName struct {
	part   string      // "sda1"
	fs     string      // "ntfs", "vfat", "dd", …
	tool   string      // "partclone", "ntfsclone", "dd"
	suffix string      // compression suffix as named, "" for the older forms
	codec  seekz.Codec // from the suffix; "" when the content decides or cbimg cannot decode it
	stem   string      // the name without a piece suffix
}

// parseImageName recognizes a partition image name (whole or a piece).
func parseImageName(base string) (imageName, bool) {
	stem := base
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		s := base[i+1:]
		if (len(s) == 2 || len(s) == 3) && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz") == "" {
			if _, isCodec := suffixCodecs[s]; !isCodec {
				stem = base[:i]
			}
		}
	}
	dot := strings.IndexByte(stem, '.')
	if dot <= 0 {
		return imageName{}, false
	}
	n := imageName{part: stem[:dot], stem: stem}
	rest := stem[dot+1:]
	if fs, comp, ok := strings.Cut(rest, "-ptcl-img."); ok {
		codec, known := suffixCodecs[comp]
		if !known || fs == "" {
			return imageName{}, false
		}
		n.fs, n.tool, n.suffix, n.codec = fs, "partclone", comp, codec
		return n, true
	}
	fs, ok := strings.CutSuffix(rest, "-img")
	if !ok || fs == "" || strings.Contains(fs, ".") || strings.HasSuffix(fs, "-ptcl") {
		return imageName{}, false
	}
	n.fs = fs
	switch fs {
	case "ntfs":
		n.tool = "ntfsclone"
	case "dd":
		n.tool = "dd"
	default:
		n.tool = "partclone"
	}
	return n, true
}
