#!/usr/bin/env bash
# Benchmark of cbimg mount: sequential read of volume.raw (dd, 1 MiB reads)
# and random 4 KiB read latency (p50/p99), for a zstd and an uncompressed
# image, against the same bytes served from memory through the same FUSE
# layer (bench/memfile: the FUSE ceiling) and against the restored raw file,
# all in one run.
#
#   bench/mount.sh [SIZE_MIB]        (default 4096; needs root, ntfs-3g,
#                                     mkntfs, fuse3, hyperfine, python3)
#
# It builds an NTFS volume of SIZE_MIB with about 60 % of it used (a copy of
# the Go tree, text, random bytes), backs it up twice, restores it once, and
# prints a markdown table. "seq" and "rand cold" are read from a fresh mount
# (nothing of volume.raw in the page cache) with the image in the page cache;
# "image uncached" drops the page cache of the image as well (dd
# iflag=nocache: only those files, not the machine's); "re-read" and "warm"
# read again in the same mount. WORK (default
# /var/tmp/cbimg-bench-mount) holds about 2.5 × SIZE_MIB while it runs, and
# memfile holds SIZE_MIB of memory.
set -euo pipefail

size=${1:-4096}
work=${WORK:-/var/tmp/cbimg-bench-mount}
runs=${RUNS:-5}
randruns=${RANDRUNS:-5}
nrand=${NRAND:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)

for t in mkntfs ntfs-3g fusermount3 hyperfine python3 go dd; do
	command -v "$t" >/dev/null || { echo "bench/mount.sh: $t is missing" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench/mount.sh: run as root (ntfs-3g on a file, readahead setting)" >&2; exit 1; }

mkdir -p "$work"
cbimg=$work/cbimg
mnt=$work/mnt
src=$work/source.ntfs
raw=$work/restored.raw
cleanup() {
	for d in "$mnt" "$work/ntfs"; do
		mountpoint -q "$d" 2>/dev/null && fusermount3 -u "$d" 2>/dev/null || true
	done
}
trap cleanup EXIT
(cd "$root" && go build -o "$cbimg" ./cmd/cbimg && go build -o "$work/memfile" ./bench/memfile && go build -o "$work/randread" ./bench/randread)

# --- the source volume -------------------------------------------------
if [ ! -f "$src.done-$size" ]; then
	echo "building a $size MiB NTFS volume ..." >&2
	rm -f "$src" "$src".done-*
	truncate -s "${size}M" "$src"
	mkntfs -q -F -Q -L bench "$src"
	mkdir -p "$work/ntfs"
	ntfs-3g -o big_writes "$src" "$work/ntfs"
	if [ "$size" -ge 2048 ]; then
		cp -r /usr/local/go "$work/ntfs/go"
	else
		cp -r /usr/local/go/src/net "$work/ntfs/net"
	fi
	# About 60 % used: a source tree, text, random bytes.
	seq 1 $((size * 16000)) >"$work/ntfs/numbers.txt"
	head -c $((size * 45 / 100))M /dev/urandom >"$work/ntfs/random.bin"
	fusermount3 -u "$work/ntfs"
	touch "$src.done-$size"
fi
for c in zstd none; do
	if [ ! -f "$work/$c.cbi" ] || [ "$src" -nt "$work/$c.cbi" ]; then
		"$cbimg" backup -q --compress "$c" "$src" "$work/$c.cbi"
	fi
done
if [ ! -f "$raw" ] || [ "$src" -nt "$raw" ]; then
	rm -f "$raw"
	"$cbimg" restore -q -y "$work/none.cbi" "$raw"
fi

# --- helpers -------------------------------------------------------------
uncache() { for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done; }
warm() { for f in "$@"; do cat "$f" >/dev/null; done; }
umnt() {
	mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
	for _ in $(seq 1 50); do mountpoint -q "$mnt" || return 0; sleep 0.1; done
}
remount() { # remount IMAGE|memfile: a fresh mount of volume.raw at $mnt
	umnt
	mkdir -p "$mnt"
	if [ "$1" = memfile ]; then
		"$work/memfile" "$raw" "$mnt" >/dev/null 2>&1 &
		for _ in $(seq 1 300); do [ -e "$mnt/volume.raw" ] && return 0; sleep 0.1; done
		echo "memfile did not come up" >&2
		return 1
	fi
	"$cbimg" mount -q "$1" "$mnt"
}
export -f uncache warm remount umnt
export cbimg mnt work raw

# seqread TARGET PREPARE -> MB/s (median of $runs)
seqread() {
	local target=$1 prepare=$2 json=$work/hf.json
	hyperfine -N --style none --runs "$runs" --prepare "bash -c '$prepare'" \
		--export-json "$json" "dd if=$target of=/dev/null bs=1M status=none" >/dev/null 2>&1 ||
		hyperfine --style none --runs "$runs" --prepare "bash -c '$prepare'" \
			--export-json "$json" "dd if=$target of=/dev/null bs=1M status=none" >/dev/null
	python3 -c "import json,sys; m=json.load(open('$json'))['results'][0]['median']; print(round($(stat -c %s "$raw")/m/1e6))"
}

# randread TARGET PREPARE [used] -> "cold-p50 cold-p99 reread-p50 reread-p99
# hit-p50 hit-p99": three passes over the same offsets (bench/randread).
randread() {
	bash -c "$2"
	"$work/randread" -n "$nrand" ${3:+-used "$raw"} "$1"
}

declare -A R
echo "measuring ..." >&2
uncache "$src" # the source volume is not read again
warm "$raw" "$work/zstd.cbi" "$work/none.cbi"
R[raw,seqd]=$(seqread "$raw" "uncache $raw")
R[raw,seq]=$(seqread "$raw" "warm $raw")
# srcof NAME: what remount takes for a row.
srcof() { if [ "$1" = memfile ]; then echo memfile; else echo "$work/$1.cbi"; fi; }
# timed: nanoseconds of one dd of volume.raw.
timed() {
	local t0
	t0=$(date +%s%N)
	dd if="$mnt/volume.raw" of=/dev/null bs=1M status=none
	echo $(($(date +%s%N) - t0))
}
# Sequential reads, the three sources in turn in every round, so that the
# machine's drift hits them alike.
declare -A T
for _ in $(seq 1 "$runs"); do
	for c in memfile zstd none; do
		src=$(srcof "$c")
		warm "$raw"
		[ "$c" = memfile ] || warm "$src"
		remount "$src"
		T[$c,seq]+="$(timed) "
		T[$c,re]+="$(timed) " # the same mount: volume.raw's page cache
		if [ "$c" != memfile ]; then
			uncache "$src"
			remount "$src"
			T[$c,seqd]+="$(timed) "
		fi
	done
done
umnt
mbps() { python3 -c "import statistics,sys; print(round(int(sys.argv[1]) / statistics.median(map(int, sys.argv[2:])) * 1e3))" "$(stat -c %s "$raw")" $1; }
for c in memfile zstd none; do
	R[$c,seq]=$(mbps "${T[$c,seq]}")
	R[$c,re]=$(mbps "${T[$c,re]}")
	[ "$c" = memfile ] || R[$c,seqd]=$(mbps "${T[$c,seqd]}")
done
# Random reads: rounds of all sources in turn, a fresh mount (or, for the
# raw file, its page cache dropped) for every pass; each figure is the median
# over the rounds.
declare -A RR
for _ in $(seq 1 "$randruns"); do
	RR[raw,rand]+="$(randread "$raw" "uncache $raw")"$'\n'
	RR[raw,used]+="$(randread "$raw" "uncache $raw" used)"$'\n'
	for c in memfile zstd none; do
		src=$(srcof "$c")
		RR[$c,rand]+="$(randread "$mnt/volume.raw" "remount $src")"$'\n'
		RR[$c,used]+="$(randread "$mnt/volume.raw" "remount $src" used)"$'\n'
	done
done
umnt
medians() { python3 -c "import statistics,sys; rows=[list(map(float,l.split())) for l in sys.stdin if l.strip()]; print(' '.join(f'{statistics.median(c):.1f}' for c in zip(*rows)))"; }
for c in raw memfile zstd none; do
	for k in rand used; do
		R[$c,$k]=$(printf '%s' "${RR[$c,$k]}" | medians)
		R[$c,${k}all]=$(printf '%s' "${RR[$c,$k]}" | awk '{printf "%s%s", sep, $1; sep=", "}')
	done
done
for c in zstd none; do
	src=$(srcof "$c")
	umnt
	t0=$(date +%s%N)
	out=$("$cbimg" mount --json "$src" "$mnt")
	R[$c,mountms]=$(( ($(date +%s%N) - t0) / 1000000 ))
	pid=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['pid'])" "$out")
	dev=$(stat -c '%d' "$mnt")
	R[$c,ra]=$(cat "/sys/class/bdi/$((dev >> 8)):$((dev & 255))/read_ahead_kb" 2>/dev/null || echo '?')
	dd if="$mnt/volume.raw" of=/dev/null bs=1M status=none
	R[$c,rss]=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status")
	umnt
done

# --- table ---------------------------------------------------------------
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
f() { echo "${R[$1,$2]}" | cut -d' ' -f"$3"; }
echo
echo "cbimg mount benchmark: NTFS $size MiB, $(du -m "$work/zstd.cbi" | cut -f1) MiB zstd image, $(du -m "$work/none.cbi" | cut -f1) MiB uncompressed; $(nproc) cores; kernel $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sequential: dd bs=1M of volume.raw, median of $runs rounds (memfile, zstd, none in turn), fresh mount (seq) and again in the same mount (re-read);"
echo "random: $nrand preads of 4 KiB over the whole volume and over allocated pages only, fresh mount (cold), then the same offsets twice more: the first re-read (the kernel moves each page to its active list) and page-cache hits; µs, medians of $randruns rounds (all sources in turn)"
echo
echo "| read from | seq MB/s | × memfile | re-read MB/s | seq, image uncached | × raw uncached | rand cold p50 / p99 | × memfile p50 | allocated pages: cold p50 / p99 | × memfile p50 | first re-read p50 / p99 | page-cache hits p50 / p99 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
echo "| raw file | ${R[raw,seq]} | – | – | ${R[raw,seqd]} | 1.00 | $(f raw rand 1) / $(f raw rand 2) | – | $(f raw used 1) / $(f raw used 2) | – | $(f raw rand 3) / $(f raw rand 4) | $(f raw rand 5) / $(f raw rand 6) |"
for c in memfile zstd none; do
	name="cbimg mount ($c image)"
	[ "$c" = memfile ] && name="memfile (same FUSE layer, bytes in memory)"
	d="–"
	dr="–"
	if [ "$c" != memfile ]; then
		d=${R[$c,seqd]}
		dr=$(ratio "$d" "${R[raw,seqd]}")
	fi
	echo "| $name | ${R[$c,seq]} | $(ratio "${R[$c,seq]}" "${R[memfile,seq]}") | ${R[$c,re]} | $d | $dr | $(f "$c" rand 1) / $(f "$c" rand 2) | $(ratio "$(f "$c" rand 1)" "$(f memfile rand 1)") | $(f "$c" used 1) / $(f "$c" used 2) | $(ratio "$(f "$c" used 1)" "$(f memfile used 1)") | $(f "$c" rand 3) / $(f "$c" rand 4) | $(f "$c" rand 5) / $(f "$c" rand 6) |"
done
echo
echo "cold random p50 of each round, µs (whole volume / allocated pages):"
for c in raw memfile zstd none; do
	echo "- $c: ${R[$c,randall]} / ${R[$c,usedall]}"
done
echo
for c in zstd none; do
	echo "mount ($c): ready in ${R[$c,mountms]} ms (cbimg mount, background); server peak RSS ${R[$c,rss]} MiB after reading all of volume.raw; read_ahead_kb ${R[$c,ra]}"
done
