#!/usr/bin/env bash
# Benchmark of cbimg serve: nbdcopy of the NBD export to null: against
# `cat volume.raw` through cbimg mount of the same image, in one run. Both
# start cold each time (a fresh server, a fresh mount) with the image in the
# page cache. nbdcopy asks for block status and skips free clusters; cat
# reads every byte, zeros included; nbdcopy --no-extents, run second on the
# same server, reads every byte too.
#
#   bench/nbd.sh [SIZE_MIB]     (default 1024; needs root, mkntfs, ntfs-3g,
#                                fuse3, nbdcopy)
#
# It builds an NTFS volume of SIZE_MIB about 60 % used (a source tree and
# random bytes), backs it up (zstd), and prints a markdown table with the
# median of RUNS (default 3) runs. WORK (default /var/tmp/cbimg-bench-nbd)
# holds about 2 × SIZE_MIB while it runs.
set -euo pipefail

size=${1:-1024}
work=${WORK:-/var/tmp/cbimg-bench-nbd}
runs=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)

for t in mkntfs ntfs-3g fusermount3 nbdcopy python3 go; do
	command -v "$t" >/dev/null || { echo "bench/nbd.sh: $t is missing" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench/nbd.sh: run as root (ntfs-3g on a file)" >&2; exit 1; }

mkdir -p "$work"
cbimg=$work/cbimg
mnt=$work/mnt
src=$work/source.ntfs
img=$work/source.cbi
sock=$work/nbd.sock
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null || true
	for d in "$mnt" "$work/ntfs"; do
		mountpoint -q "$d" 2>/dev/null && fusermount3 -u "$d" 2>/dev/null || true
	done
}
trap cleanup EXIT
(cd "$root" && go build -o "$cbimg" ./cmd/cbimg)

if [ ! -f "$src.done-$size" ]; then
	echo "building a $size MiB NTFS volume ..." >&2
	rm -f "$src" "$src".done-* "$img"
	truncate -s "${size}M" "$src"
	mkntfs -q -F -Q -L bench "$src" 2>/dev/null
	mkdir -p "$work/ntfs"
	ntfs-3g -o big_writes "$src" "$work/ntfs"
	cp -r /usr/local/go/src "$work/ntfs/src"
	used=$(du -sm "$work/ntfs" | cut -f1)
	fill=$((size * 6 / 10 - used))
	[ "$fill" -gt 0 ] && head -c "${fill}M" /dev/urandom >"$work/ntfs/random.bin"
	fusermount3 -u "$work/ntfs"
	touch "$src.done-$size"
fi
[ -f "$img" ] || "$cbimg" backup -q "$src" "$img"
cat "$img" >/dev/null # the image in the page cache for both

now() { date +%s.%N; }
nbd=()
full=()
mnt_t=()
mkdir -p "$mnt"
for _ in $(seq "$runs"); do
	rm -f "$sock"
	"$cbimg" serve -q "$img" --nbd "unix:$sock" &
	server=$!
	for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
	t0=$(now)
	nbdcopy "nbd+unix:///?socket=$sock" null:
	t1=$(now)
	nbdcopy --no-extents "nbd+unix:///?socket=$sock" null:
	t2=$(now)
	kill "$server"
	wait "$server" || true
	server=
	nbd+=("$(python3 -c "print($t1 - $t0)")")
	full+=("$(python3 -c "print($t2 - $t1)")")

	"$cbimg" mount -q "$img" "$mnt"
	t0=$(now)
	cat "$mnt/volume.raw" >/dev/null
	t1=$(now)
	"$cbimg" umount -q "$mnt"
	mnt_t+=("$(python3 -c "print($t1 - $t0)")")
done

python3 - "$size" "${nbd[*]}" "${mnt_t[*]}" "${full[*]}" <<'PY'
import statistics, sys
size = int(sys.argv[1])
nbd = statistics.median(map(float, sys.argv[2].split()))
mnt = statistics.median(map(float, sys.argv[3].split()))
full = statistics.median(map(float, sys.argv[4].split()))
print(f"| {size} MiB NTFS, ~60 % used | seconds (median) | MiB/s of the volume |")
print("|---|---|---|")
print(f"| nbdcopy export → null: | {nbd:.2f} | {size / nbd:.0f} |")
print(f"| nbdcopy --no-extents (every byte, same server) | {full:.2f} | {size / full:.0f} |")
print(f"| cat volume.raw (cbimg mount) | {mnt:.2f} | {size / mnt:.0f} |")
print(f"\nnbdcopy / cat speed ratio: {mnt / nbd:.2f} (≥ 0.8 wanted)")
PY
