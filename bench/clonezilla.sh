#!/bin/bash
# clonezilla.sh: random access into a Clonezilla image (partclone.fat32 |
# pigz, split in pieces, named as ocs-sr names them). Times, on one volume:
#   zcat        cat PIECES | gzip -dc > /dev/null (one plain decompression)
#   index       the first `cbimg info DIR@sda1` (builds the seek index)
#   reopen      the second one (reuses it)
#   rand p50    random 4 KiB reads of allocated data from volume.raw of a
#               fresh `cbimg mount DIR@sda1` after indexing (first pass:
#               nothing decoded yet; bench/randread)
#
#   --compare OLD  the same timings with another cbimg binary OLD, in the
#               same run on the same image (before/after a change)
#
# Usage: bench/clonezilla.sh [--size MiB] [--reads N] [--workdir DIR] [--cbimg PATH] [--compare OLD] [--keep]
# Needs root (FUSE mount), Go (unless --cbimg), and
#   apt-get install partclone pigz dosfstools mtools fuse3 openssl
# Prints a markdown table; numbers on a busy machine are not comparable.

set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
size=1024
reads=2000
workdir=/var/tmp/cbimg-bench-clonezilla
cbimg=
keep=0
old=
die() { echo "clonezilla.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=${2:?}; shift 2 ;;
	--reads) reads=${2:?}; shift 2 ;;
	--workdir) workdir=${2:?}; shift 2 ;;
	--cbimg) cbimg=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--compare) old=${2:?}; shift 2 ;;
	-h|--help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
done
for t in partclone.fat32 partclone.restore pigz mkfs.fat mcopy fusermount3 openssl; do
	command -v "$t" >/dev/null || die "$t is missing"
done
[ "$(id -u)" = 0 ] || die "run as root (FUSE mount)"
mkdir -p "$workdir"
mnt=$workdir/mnt
cleanup() {
	for _ in $(seq 1 50); do mountpoint -q "$mnt" 2>/dev/null || break; fusermount3 -u "$mnt" 2>/dev/null || sleep 0.2; done
	[ "$keep" = 1 ] || rm -rf "$workdir"
}
trap cleanup EXIT
if [ -z "$cbimg" ]; then
	cbimg=$workdir/cbimg
	(cd "$repo" && go build -o "$cbimg" ./cmd/cbimg)
	(cd "$repo" && go build -o "$workdir/randread" ./bench/randread)
else
	(cd "$repo" && go build -o "$workdir/randread" ./bench/randread)
fi

vol=$workdir/vol.img
dir=$workdir/2026-01-01-img
if [ ! -s "$dir/parts" ]; then
	echo "== building a ${size} MiB FAT32 volume, 80% full (half random, half text)" >&2
	rm -f "$vol"; truncate -s "${size}M" "$vol"
	mkfs.fat -F 32 "$vol" >/dev/null
	stage=$workdir/stage; mkdir -p "$stage"
	n=$(( size * 8 / 10 / 16 ))
	for i in $(seq 1 "$n"); do
		if [ $((i % 2)) = 0 ]; then
			head -c 8M < <(openssl enc -aes-128-ctr -nosalt -pass pass:$i -in /dev/zero 2>/dev/null) > "$stage/r$i.bin"
			head -c 8M < <(seq "$((i * 1000000))" "$((i * 1000000 + 1000000))") > "$stage/t$i.txt"
		else
			head -c 16M < <(seq "$((i * 1000000))" "$((i * 1000000 + 2000000))") > "$stage/t$i.txt"
		fi
		mcopy -i "$vol" "$stage"/* ::/ && rm -f "$stage"/*
	done
	mkdir -p "$dir"
	echo "This image was saved by Clonezilla." > "$dir/clonezilla-img"
	echo sda1 > "$dir/parts"
	partclone.fat32 -q -c -L /dev/null -s "$vol" -O - 2>/dev/null | pigz -c | split -b 256MB - "$dir/sda1.vfat-ptcl-img.gz."
	partclone.fat32 -q -c -L /dev/null -s "$vol" -O - 2>/dev/null | partclone.restore -q -C --restore_raw_file -L /dev/null -s - -o "$workdir/restored.raw" >/dev/null 2>&1
	truncate -s "${size}M" "$workdir/restored.raw"
fi
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
cache=$workdir/cache
zcat_s=$(secs bash -c "cat '$dir'/sda1.vfat-ptcl-img.gz.* | gzip -dc > /dev/null")
comp=$(du -ck "$dir"/sda1.vfat-ptcl-img.gz.* | tail -1 | cut -f1)
# run BINARY: one column of timings, as "index reopen idx c50 c99 w50 w99"
run() {
	local bin=$1 index_s reopen_s res idx
	rm -rf "$cache"
	index_s=$(secs "$bin" -q --cache-dir "$cache" info "$dir@sda1")
	reopen_s=$(secs "$bin" -q --cache-dir "$cache" info "$dir@sda1")
	mkdir -p "$mnt"
	"$bin" -q --cache-dir "$cache" mount "$dir@sda1" "$mnt"
	res=$("$workdir/randread" -n "$reads" -used "$workdir/restored.raw" "$mnt/volume.raw")
	for _ in $(seq 1 50); do fusermount3 -u "$mnt" 2>/dev/null && break; sleep 0.2; done
	idx=$(du -sk "$cache" | cut -f1)
	echo "$index_s $reopen_s $idx $res"
}
read -r index_s reopen_s idx c50 c99 w50 w99 _ <<<"$(run "$cbimg")"
if [ -n "$old" ]; then
	read -r oindex_s oreopen_s oidx oc50 oc99 ow50 ow99 _ <<<"$(run "$old")"
	# The new binary again, after the old: load that changed during the run shows.
	read -r index2_s _ _ c50b _ _ _ _ <<<"$(run "$cbimg")"
	cat <<TABLE
| ${size} MiB FAT32, pigz ($((comp / 1024)) MiB in $(ls "$dir"/sda1.vfat-ptcl-img.gz.* | wc -l) pieces) | $old | $cbimg |
|---|---|---|
| zcat > /dev/null | ${zcat_s} s | |
| first open (index) | ${oindex_s} s ($(echo "scale=2; $oindex_s / $zcat_s" | bc)× zcat) | ${index_s} s ($(echo "scale=2; $index_s / $zcat_s" | bc)× zcat); again after: ${index2_s} s |
| second open | ${oreopen_s} s | ${reopen_s} s |
| index on disk | ${oidx} KiB | ${idx} KiB |
| random 4 KiB reads, first pass p50 / p99 | ${oc50} / ${oc99} µs | ${c50} / ${c99} µs; again after: p50 ${c50b} µs |
| same offsets again p50 / p99 | ${ow50} / ${ow99} µs | ${w50} / ${w99} µs |
TABLE
	exit 0
fi
cat <<TABLE
| ${size} MiB FAT32, pigz ($((comp / 1024)) MiB in $(ls "$dir"/sda1.vfat-ptcl-img.gz.* | wc -l) pieces) | |
|---|---|
| zcat > /dev/null | ${zcat_s} s |
| first open (index) | ${index_s} s ($(echo "scale=2; $index_s / $zcat_s" | bc)× zcat) |
| second open | ${reopen_s} s |
| index on disk | ${idx} KiB |
| random 4 KiB reads, first pass p50 / p99 | ${c50} / ${c99} µs |
| same offsets again p50 / p99 | ${w50} / ${w99} µs |
TABLE
