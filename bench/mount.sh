#!/usr/bin/env bash
# Benchmark of cbimg mount: sequential read of volume.raw (dd, 1 MiB reads)
# against reading the restored raw file, and random 4 KiB read latency
# (p50/p99), for a zstd and an uncompressed image, in one run.
#
#   bench/mount.sh [SIZE_MIB]        (default 1536; needs root, ntfs-3g,
#                                     mkntfs, fuse3, hyperfine, python3)
#
# It builds an NTFS volume of SIZE_MIB with about 2/3 of it used (a copy of
# the Go tree, 350 MB of text, 400 MB of random bytes), backs it up twice,
# restores it once, and prints a table. "cold" drops the page cache of the
# files involved (dd iflag=nocache: only those files, not the machine's) and
# mounts afresh; "warm" has the raw file or the image in the page cache, but
# a fresh mount (nothing of volume.raw cached). WORK (default
# /var/tmp/cbimg-bench-mount) holds about 4 GiB while it runs.
set -euo pipefail

size=${1:-1536}
work=${WORK:-/var/tmp/cbimg-bench-mount}
runs=${RUNS:-5}
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
(cd "$root" && go build -o "$cbimg" ./cmd/cbimg)

# --- the source volume -------------------------------------------------
if [ ! -f "$src.done-$size" ]; then
	echo "building a $size MiB NTFS volume ..." >&2
	rm -f "$src" "$src".done-*
	truncate -s "${size}M" "$src"
	mkntfs -q -F -Q -L bench "$src"
	mkdir -p "$work/ntfs"
	ntfs-3g -o big_writes "$src" "$work/ntfs"
	cp -r /usr/local/go "$work/ntfs/go"
	seq 1 42000000 >"$work/ntfs/numbers.txt"
	head -c 400M /dev/urandom >"$work/ntfs/random.bin"
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
remount() { # remount IMAGE
	mountpoint -q "$mnt" 2>/dev/null && "$cbimg" umount -q "$mnt"
	mkdir -p "$mnt"
	"$cbimg" mount -q "$1" "$mnt"
}
export -f uncache warm remount
export cbimg mnt

randpy=$work/randread.py
cat >"$randpy" <<'EOF'
# randread.py FILE N: N preads of 4 KiB at random 4 KiB-aligned offsets;
# prints p50 and p99 latency in microseconds.
import os, random, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
pages = os.fstat(fd).st_size // 4096
rng = random.Random(1)
lat = []
for _ in range(n):
    off = rng.randrange(pages) * 4096
    t = time.perf_counter_ns()
    if len(os.pread(fd, 4096, off)) != 4096:
        sys.exit("short read")
    lat.append(time.perf_counter_ns() - t)
lat.sort()
print(lat[len(lat) // 2] / 1000, lat[len(lat) * 99 // 100] / 1000)
EOF

# seq TARGET PREPARE -> MB/s (median of $runs)
seqread() {
	local target=$1 prepare=$2 json=$work/hf.json
	hyperfine -N --style none --runs "$runs" --prepare "bash -c '$prepare'" \
		--export-json "$json" "dd if=$target of=/dev/null bs=1M status=none" >/dev/null 2>&1 ||
		hyperfine --style none --runs "$runs" --prepare "bash -c '$prepare'" \
			--export-json "$json" "dd if=$target of=/dev/null bs=1M status=none" >/dev/null
	python3 -c "import json,sys; m=json.load(open('$json'))['results'][0]['median']; print(round($(stat -c %s "$raw")/m/1e6))"
}

# rand TARGET PREPARE -> "p50 p99"
randread() {
	bash -c "$2"
	python3 "$randpy" "$1" "$nrand"
}

declare -A R
echo "measuring ..." >&2
R[raw,seqc]=$(seqread "$raw" "uncache $raw")
R[raw,seqw]=$(seqread "$raw" "warm $raw")
R[raw,rand]=$(randread "$raw" "uncache $raw")
for c in zstd none; do
	img=$work/$c.cbi
	R[$c,seqc]=$(seqread "$mnt/volume.raw" "uncache $img; remount $img")
	R[$c,seqw]=$(seqread "$mnt/volume.raw" "warm $img; remount $img")
	R[$c,rand]=$(randread "$mnt/volume.raw" "uncache $img; remount $img")
	# Time to mount (index build) and the server's memory after a full read.
	"$cbimg" umount -q "$mnt"
	t0=$(date +%s%N)
	out=$("$cbimg" mount --json "$img" "$mnt")
	R[$c,mountms]=$(( ($(date +%s%N) - t0) / 1000000 ))
	pid=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['pid'])" "$out")
	dev=$(stat -c '%d' "$mnt")
	R[$c,ra]=$(cat "/sys/class/bdi/$((dev >> 8)):$((dev & 255))/read_ahead_kb" 2>/dev/null || echo '?')
	dd if="$mnt/volume.raw" of=/dev/null bs=1M status=none
	R[$c,rss]=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status")
	"$cbimg" umount -q "$mnt"
done

# --- table ---------------------------------------------------------------
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
p() { echo "${R[$1,rand]}" | cut -d' ' -f"$2"; }
echo
echo "cbimg mount benchmark: NTFS $size MiB, $(du -m "$work/zstd.cbi" | cut -f1) MiB zstd image, $(du -m "$work/none.cbi" | cut -f1) MiB uncompressed; $(nproc) cores; kernel $(uname -r)"
echo "sequential: dd bs=1M, median of $runs; random: $nrand preads of 4 KiB, µs"
echo
printf '%-22s %12s %12s %12s %12s %10s %10s %10s\n' "read from" "seq cold" "vs raw" "seq warm" "vs raw" "rand p50" "rand p99" "p50 vs raw"
printf '%-22s %12s %12s %12s %12s %10s %10s %10s\n' "restored raw file" "${R[raw,seqc]} MB/s" "1.00" "${R[raw,seqw]} MB/s" "1.00" "$(p raw 1)" "$(p raw 2)" "1.00"
for c in zstd none; do
	printf '%-22s %12s %12s %12s %12s %10s %10s %10s\n' "mount ($c image)" "${R[$c,seqc]} MB/s" "$(ratio "${R[$c,seqc]}" "${R[raw,seqc]}")" \
		"${R[$c,seqw]} MB/s" "$(ratio "${R[$c,seqw]}" "${R[raw,seqw]}")" "$(p "$c" 1)" "$(p "$c" 2)" "$(ratio "$(p "$c" 1)" "$(p raw 1)")"
done
echo
for c in zstd none; do
	echo "mount ($c): ready in ${R[$c,mountms]} ms (cbimg mount, background); server peak RSS ${R[$c,rss]} MiB after reading all of volume.raw; read_ahead_kb ${R[$c,ra]}"
done
