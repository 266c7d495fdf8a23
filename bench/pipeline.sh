#!/bin/bash
# pipeline.sh: how fast cbimg moves bytes when the source is not the limit:
# page cache warm, output to /dev/null or a local file, against the peer tool
# on the same volume in the same run, runs interleaved.
#
# Usage: bench/pipeline.sh [--volume FILE] [--runs N] [--workdir DIR] [--cbimg PATH]
#   --volume FILE  an NTFS volume to use (e.g. the reference volume that
#                  bench/backup.sh --keep leaves in /var/tmp/cbimg-bench/source.ntfs);
#                  without it a 3 GiB volume is built: four 200 MB random
#                  files, two 100 MB text logs, 2,000 small files (1.1 GB used).
# Rows (median wall seconds over N runs, ratio to the peer):
#   backup --compress none VOL - >/dev/null   vs  ntfsclone -s -o - VOL >/dev/null
#   backup (default zstd) VOL IMG             vs  ntfsclone -s -o - VOL | zstd -T0 -3 >IMG
#   verify IMG (uncompressed)                 vs  cat IMG >/dev/null
#   restore IMG (uncompressed) to a new file  vs  cp of a file of the same bytes
# Needs root (ntfs-3g), ntfs-3g, zstd, openssl, time. Writes the table to stdout.

set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=5
workdir=/var/tmp/cbimg-pipeline
vol=
cbimg=
while [ $# -gt 0 ]; do
	case $1 in
	--volume) vol=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--workdir) workdir=${2:?}; shift 2 ;;
	--cbimg) cbimg=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "pipeline.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
die() { echo "pipeline.sh: $*" >&2; exit 1; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
for t in mkntfs ntfs-3g ntfsclone zstd openssl /usr/bin/time; do
	command -v "$t" >/dev/null || die "missing $t (apt-get install ntfs-3g zstd openssl time)"
done
mkdir -p "$workdir"
if [ -z "$cbimg" ]; then
	(cd "$repo" && go build -o "$workdir/cbimg" ./cmd/cbimg)
	cbimg=$workdir/cbimg
fi
trap 'rm -f "$workdir"/img.* "$workdir"/out.* "$workdir"/time.out' EXIT

if [ -z "$vol" ]; then
	vol=$workdir/vol3g.ntfs
	if [ ! -f "$vol.done" ]; then
		rm -f "$vol"
		truncate -s 3G "$vol"
		mkntfs -q -F -f -L pipeline "$vol" >/dev/null 2>&1
		mkdir -p "$workdir/mnt"
		ntfs-3g -o big_writes "$vol" "$workdir/mnt"
		for i in 1 2 3 4; do
			head -c 200M /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$i")" -iv 0 >"$workdir/mnt/rnd$i.bin"
		done
		for i in 1 2; do
			yes "2026-12-07 02:50:0$i INFO request served id=$i status=200 bytes=5120 path=/api/v1/items" | head -c 100M >"$workdir/mnt/log$i.txt"
		done
		mkdir "$workdir/mnt/small"
		for i in $(seq 1 2000); do head -c $((i * 37 % 20000 + 100)) /dev/urandom >"$workdir/mnt/small/f$i"; done
		umount "$workdir/mnt"
		touch "$vol.done"
	fi
fi

tf=$workdir/time.out
# t CMD: wall seconds of one run of CMD (bash -c).
t() {
	/usr/bin/time -o "$tf" -f '%e' bash -c "$1" >/dev/null 2>&1 || die "failed: $1"
	tail -1 "$tf"
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# pair NAME CBIMG_CMD PEER_CMD [PRE]: both commands interleaved, runs times each.
pair() {
	local a=() b=() i
	for i in $(seq 1 "$runs"); do
		[ -z "${4-}" ] || bash -c "$4"
		a+=("$(t "$2")")
		[ -z "${4-}" ] || bash -c "$4"
		b+=("$(t "$3")")
	done
	local ma mb
	ma=$(printf '%s\n' "${a[@]}" | median) mb=$(printf '%s\n' "${b[@]}" | median)
	printf '| %s | %s | %s | %.2f× |\n' "$1" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN { print a / b }')"
}

cat "$vol" >/dev/null
"$cbimg" backup --quiet --compress none "$vol" "$workdir/img.none.cbi"
cat "$workdir/img.none.cbi" >/dev/null
echo "Volume: $vol ($(du -h "$vol" | cut -f1) allocated), $runs runs each, interleaved, page cache warm; $(nproc) cores"
echo
echo "| row | cbimg s | peer s | ratio |"
echo "|---|---|---|---|"
pair "backup --compress none to /dev/null vs ntfsclone -s -o - > /dev/null" \
	"$cbimg backup --quiet --compress none $vol - >/dev/null" "ntfsclone -s -o - $vol 2>/dev/null >/dev/null"
pair "backup (zstd) to a file vs ntfsclone -s -o - \| zstd -T0 -3" \
	"$cbimg backup --quiet $vol - >$workdir/out.cbi" "ntfsclone -s -o - $vol 2>/dev/null | zstd -q -T0 -3 >$workdir/out.zst"
echo "| image sizes: cbimg $(stat -c %s "$workdir/out.cbi") B, ntfsclone\|zstd $(stat -c %s "$workdir/out.zst") B | | | $(awk -v a="$(stat -c %s "$workdir/out.cbi")" -v b="$(stat -c %s "$workdir/out.zst")" 'BEGIN { printf "%.3f×", a / b }') |"
pair "verify (uncompressed image) vs cat IMAGE > /dev/null" \
	"$cbimg verify --quiet $workdir/img.none.cbi" "cat $workdir/img.none.cbi >/dev/null"
bytes=$(stat -c %s "$workdir/img.none.cbi")
pair "restore (uncompressed) to a new file vs cp of $bytes bytes" \
	"$cbimg restore --quiet --yes $workdir/img.none.cbi $workdir/out.vol" "cp $workdir/img.none.cbi $workdir/out.copy" \
	"rm -f $workdir/out.vol $workdir/out.copy; sync"
