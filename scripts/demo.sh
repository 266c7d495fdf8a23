#!/usr/bin/env bash
# The main job on a sample: builds a small NTFS volume with mkntfs + ntfs-3g,
# backs it up with cbimg, verifies the image, shows its header and files,
# restores it and proves the restore equal with ntfsclone, then mounts the
# image and lists the volume through ntfs-3g. Needs root (ntfs-3g and FUSE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin
work=${CBIMG_DEMO_DIR:-$(mktemp -d /var/tmp/cbimg-demo.XXXXXX)}
mkdir -p "$work"
go build -o "$work/cbimg" ./cmd/cbimg
cbimg=$work/cbimg
echo "== building a sample NTFS volume in $work/sample.ntfs"
testdata/mkvol/ntfs.sh "$work/sample.ntfs" 64 0 basic
echo "== cbimg backup"
$cbimg backup --overwrite "$work/sample.ntfs" "$work/sample.cbi"   # CBIMG_DEMO_DIR may hold an earlier run
echo "== cbimg verify"
$cbimg verify "$work/sample.cbi"
echo "== cbimg info"
$cbimg info "$work/sample.cbi"
echo "== cbimg ls (files inside the image, no restore needed)"
$cbimg ls -r --long "$work/sample.cbi" | head -20
echo "== cbimg restore (of an image without exclusions, to compare byte for byte)"
$cbimg backup -q --overwrite --no-default-excludes "$work/sample.ntfs" "$work/all.cbi"
rm -f "$work/restored.ntfs"
$cbimg restore --yes "$work/all.cbi" "$work/restored.ntfs"
a=$(ntfsclone --save-image --force -o - "$work/sample.ntfs" 2>/dev/null | sha256sum | cut -c1-16)
b=$(ntfsclone --save-image --force -o - "$work/restored.ntfs" 2>/dev/null | sha256sum | cut -c1-16)
echo "ntfsclone image of the source: $a, of the restored volume: $b"
[ "$a" = "$b" ] && echo "restored volume equals the source" || { echo "MISMATCH" >&2; exit 1; }
if $cbimg mount --help >/dev/null 2>&1; then
	echo "== cbimg mount"
	mkdir -p "$work/mnt" "$work/ntfs"
	$cbimg mount "$work/sample.cbi" "$work/mnt"
	ls -l "$work/mnt"
	ntfs-3g -o ro "$work/mnt/volume.raw" "$work/ntfs"
	find "$work/ntfs" -maxdepth 2 | head -20
	fusermount -u "$work/ntfs"
	$cbimg umount "$work/mnt"
fi
echo "== done; files are in $work"
