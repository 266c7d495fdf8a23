#!/bin/bash
# foreign.sh: times cbimg against the other tools on their own images: cbimg
# restore vs partclone.restore of a partclone image and vs ntfsclone -r of an
# ntfsclone image, and sequential reads of volume.raw mounted from the raw
# partclone image vs from an uncompressed .cbi of the same volume. Checks
# that every restore gives back the source.
#
# Usage: bench/foreign.sh [--source VOLUME] [--workdir DIR] [--runs N]
#          [--cbimg PATH] [--out DIR]
# --source defaults to WORKDIR/source.ntfs, the 8 GiB reference NTFS volume
# that `bench/backup.sh --keep` leaves there. Needs root (FUSE), Go (unless
# --cbimg) and: apt-get install ntfs-3g partclone hyperfine fuse3
# Writes OUT/foreign.md (hyperfine's markdown tables); OUT defaults to bench/out.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
workdir=/var/tmp/cbimg-bench
src=
runs=3
cbimg=
out=$here/out

die() { echo "foreign.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--source) src=${2:?}; shift 2 ;;
	--workdir) workdir=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--cbimg) cbimg=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
src=${src:-$workdir/source.ntfs}
[ -f "$src" ] || [ -b "$src" ] || die "no source volume $src: run bench/backup.sh --keep first, or give --source"
for t in partclone.ntfs partclone.restore ntfsclone hyperfine fusermount sha256sum; do
	command -v "$t" >/dev/null 2>&1 || die "missing $t; install with: apt-get install ntfs-3g partclone hyperfine fuse3"
done

work=$workdir/foreign
mkdir -p "$work" "$out"
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
	for m in "$mnt"/*; do
		mountpoint -q "$m" 2>/dev/null && fusermount -u "$m" || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$cbimg" ]; then
	go=$(command -v go || echo /usr/local/go/bin/go)
	(cd "$repo" && "$go" build -o "$work/cbimg" ./cmd/cbimg)
	cbimg=$work/cbimg
fi

log "images of $src"
partclone.ntfs -c -q -s "$src" -o "$work/pc.img" -L "$work/pc.log" >/dev/null 2>&1 || die "partclone.ntfs failed: see $work/pc.log"
ntfsclone -q -s -O "$work/nc.img" "$src" >/dev/null 2>&1 || die "ntfsclone --save-image failed"
"$cbimg" backup -q --compress none --no-default-excludes "$src" "$work/raw.cbi"

fshash() { ntfsclone -q --save-image -o - "$1" 2>/dev/null | sha256sum | cut -d' ' -f1; }
want=$(fshash "$src")

report=$out/foreign.md
{
	echo "# cbimg and the other tools on their own images"
	echo
	echo "Source: $src ($(stat -c %s "$src") bytes), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), page cache warm."
	echo
} >"$report"

bench() { # TITLE ARGS...: hyperfine, markdown appended to the report
	local title=$1
	shift
	log "$title"
	hyperfine --runs "$runs" --style basic --export-markdown "$work/h.md" "$@" >&2
	{ echo "## $title"; echo; cat "$work/h.md"; echo; } >>"$report"
}

t=$work/target
bench "restore of a partclone image" \
	--prepare "rm -f $t" \
	-n partclone.restore "partclone.restore -q -C --restore_raw_file -s $work/pc.img -o $t -L $work/r.log" \
	-n "cbimg restore" "$cbimg restore -q --yes --journal none $work/pc.img $t"
[ "$(fshash "$t")" = "$want" ] || die "cbimg restore of the partclone image does not give back the source"

bench "restore of an ntfsclone image" \
	--prepare "rm -f $t" \
	-n "ntfsclone -r" "ntfsclone -q -r -O $t $work/nc.img" \
	-n "cbimg restore" "$cbimg restore -q --yes --journal none $work/nc.img $t"
[ "$(fshash "$t")" = "$want" ] || die "cbimg restore of the ntfsclone image does not give back the source"
rm -f "$t"

# Sequential read of volume.raw: the partclone image mounted as it is, and
# an uncompressed .cbi of the same volume.
read_cmds=()
for img in pc.img raw.cbi; do
	m=$mnt/$img
	mkdir -p "$m"
	"$cbimg" mount -q "$work/$img" "$m"
	read_cmds+=(-n "read volume.raw of $img" "cat $m/volume.raw >/dev/null")
done
bench "sequential read of volume.raw" "${read_cmds[@]}"
for img in pc.img raw.cbi; do "$cbimg" umount "$mnt/$img"; done

log "results in $report"
cat "$report"
