#!/usr/bin/env bash
# Benchmark of how backup time and memory scale with volume size: the same
# 1 GiB of used data (random bytes and text) on sparse NTFS volumes of 8 GiB,
# 256 GiB and 2 TiB (4 KiB clusters).
#
#   bench/scale.sh                   (needs root, mkntfs, ntfs-3g, fuse3,
#                                     hyperfine, /usr/bin/time)
#
# Prints backup wall time (median of RUNS, default 3) for 8 GiB and 256 GiB
# and their ratio, and the peak RSS of `cbimg backup` and of the `cbimg
# mount` server (after reading 3 GiB of volume.raw) for 2 TiB, next to what
# the formulas in BENCHMARKS.md predict. WORK (default
# /var/tmp/cbimg-bench-scale) holds about 4 GiB while it runs: the volumes
# are sparse files.
set -euo pipefail

work=${WORK:-/var/tmp/cbimg-bench-scale}
runs=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
for t in mkntfs ntfs-3g fusermount3 hyperfine python3 go /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bench/scale.sh: $t is missing" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench/scale.sh: run as root (ntfs-3g on a file)" >&2; exit 1; }
mkdir -p "$work"
cbimg=$work/cbimg
mnt=$work/mnt
cleanup() {
	for d in "$mnt" "$work/ntfs"; do
		mountpoint -q "$d" 2>/dev/null && fusermount3 -u "$d" 2>/dev/null || true
	done
}
trap cleanup EXIT
(cd "$root" && go build -o "$cbimg" ./cmd/cbimg)

# build NAME SIZE: a sparse NTFS volume of SIZE with 1 GiB used.
build() {
	local v=$work/$1.ntfs
	[ -f "$v.done" ] && return 0
	echo "building $1 ($2) ..." >&2
	rm -f "$v"
	truncate -s "$2" "$v"
	mkntfs -q -F -Q -c 4096 -L scale "$v" 2>/dev/null
	mkdir -p "$work/ntfs"
	ntfs-3g -o big_writes "$v" "$work/ntfs"
	head -c 768M /dev/urandom >"$work/ntfs/random.bin"
	seq 1 35000000 >"$work/ntfs/numbers.txt"
	fusermount3 -u "$work/ntfs"
	touch "$v.done"
}
build 8g 8G
build 256g 256G
build 2t 2T

median() { # hyperfine median of a backup of $1
	hyperfine -N --style none --runs "$runs" --export-json "$work/hf.json" \
		"$cbimg -q backup --compress none $work/$1.ntfs $work/out.cbi" >/dev/null
	python3 -c "import json; print(round(json.load(open('$work/hf.json'))['results'][0]['median'], 2))"
}
cat "$work/8g.ntfs" "$work/256g.ntfs" >/dev/null 2>&1 || true
t8=$(median 8g)
t256=$(median 256g)

# Peak RSS of a 2 TiB backup (zstd, the default) and of its mount.
/usr/bin/time -f %M -o "$work/rss" "$cbimg" -q backup "$work/2t.ntfs" "$work/2t.cbi"
brss=$(( $(cat "$work/rss") / 1024 ))
mkdir -p "$mnt"
mountpoint -q "$mnt" && fusermount3 -u "$mnt"
out=$("$cbimg" mount --json "$work/2t.cbi" "$mnt")
pid=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['pid'])" "$out")
dd if="$mnt/volume.raw" of=/dev/null bs=1M count=3072 status=none
mrss=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status")
"$cbimg" umount -q "$mnt"
chunks=$("$cbimg" info --json "$work/2t.cbi" | python3 -c "import json,sys; print(json.load(sys.stdin)['chunks'])" 2>/dev/null || echo '?')
rm -f "$work/out.cbi"

B=$(( 2 * 1024 * 1024 * 1024 * 1024 / 4096 / 8 / 1048576 )) # bitmap MiB
echo
echo "| volume (1 GiB used) | backup --compress none, median of $runs | ratio to 8 GiB |"
echo "|---|---|---|"
echo "| 8 GiB | ${t8} s | 1.00 |"
echo "| 256 GiB | ${t256} s | $(python3 -c "print(f'{$t256/$t8:.2f}')") |"
echo
echo "2 TiB volume, 4 KiB clusters (bitmap B = ${B} MiB), ${chunks} chunks:"
echo "- cbimg backup (zstd) peak RSS: ${brss} MiB"
echo "- cbimg mount server peak RSS after reading 3 GiB of volume.raw: ${mrss} MiB (index B + B/8 + 64 B per chunk, plus the 64 MiB chunk cache)"
