#!/bin/bash
# exfat.sh: times cbimg backup/restore against partclone.exfat on one exFAT
# volume (page cache warm), in one run, and checks every restore.
#
# Usage: bench/exfat.sh [--size GiB] [--runs N] [--workdir DIR] [--keep]
#          [--files N] [--cbimg PATH] [--out DIR]
# See bench/README.md. Needs root (the volume is filled through exfat-fuse
# on a loop device), Go (unless --cbimg) and
#   apt-get install exfatprogs exfat-fuse partclone zstd time openssl fuse3
# Writes OUT/exfat-results.md and OUT/exfat-results.tsv; OUT defaults to
# bench/out.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

size_gib=4
runs=3
workdir=/var/tmp/cbimg-bench-exfat
keep=0
nfiles=5000
cbimg=
out=$here/out

die() { echo "exfat.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--size) size_gib=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--workdir) workdir=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--files) nfiles=${2:?}; shift 2 ;;
	--cbimg) cbimg=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
[[ $size_gib =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--size wants GiB, e.g. 4 or 0.5"
size_mib=$(awk -v g="$size_gib" 'BEGIN { printf "%d", g * 1024 }')
[ "$size_mib" -ge 256 ] || die "--size must be at least 0.25 GiB"

missing=()
for t in mkfs.exfat fsck.exfat mount.exfat-fuse partclone.exfat losetup fusermount zstd openssl perl /usr/bin/time sha256sum; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ ${#missing[@]} = 0 ] || die "missing ${missing[*]}; install with: apt-get install exfatprogs exfat-fuse partclone zstd time openssl perl fuse3"
[ "$(id -u)" = 0 ] || die "needs root (fills the volume through exfat-fuse on a loop device)"

mkdir -p "$workdir" "$out"
workdir=$(cd "$workdir" && pwd)
src=$workdir/source.exfat
stamp=$workdir/source.stamp
want_stamp="v1 size_mib=$size_mib files=$nfiles"
tgt=$workdir/target.exfat
img=$workdir/img
tf=$workdir/time.out
mnt=$workdir/mnt

if [ -z "$cbimg" ]; then
	go=$(command -v go || echo /usr/local/go/bin/go)
	[ -x "$go" ] || die "no Go toolchain for building cbimg (or pass --cbimg PATH)"
	log "building cbimg"
	(cd "$repo" && "$go" build -o "$workdir/cbimg" ./cmd/cbimg)
	cbimg=$workdir/cbimg
fi

pid= loop=
cleanup() {
	if [ -n "$pid" ]; then
		fusermount -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	rmdir "$mnt" 2>/dev/null || true
	rm -f "$img".* "$tgt" "$tf" "$workdir"/*.log
	if [ "$keep" = 0 ]; then
		rm -f "$src" "$stamp"
		[ "$cbimg" = "$workdir/cbimg" ] && rm -f "$cbimg"
		rmdir "$workdir" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rnd() {
	head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$1")" \
		-iv 00000000000000000000000000000000
}

# Content, like the FAT32 bench volume: for 4 GiB, 1 GiB random data,
# 0.375 GiB text and 5,000 small files: about 1.4 GiB used.
rand=$((size_mib / 4 * 1048576))
text=$((size_mib * 3 / 32 * 1048576))

build() {
	rm -f "$src" "$stamp"
	truncate -s "${size_mib}M" "$src"
	loop=$(losetup -f --show "$src")
	mkfs.exfat -L CBIMGBENCH "$loop" >"$workdir/mkfs.log" 2>&1 || { cat "$workdir/mkfs.log" >&2; die "mkfs.exfat failed"; }
	mkdir -p "$mnt"
	mount.exfat-fuse -d "$loop" "$mnt" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1 250); do
		mountpoint -q "$mnt" && break
		kill -0 "$pid" 2>/dev/null || die "mount.exfat-fuse failed"
		sleep 0.02
	done
	mountpoint -q "$mnt" || die "mount.exfat-fuse timed out"
	local chunk=$((32 * 1048576)) left i n
	mkdir -p "$mnt/Random" "$mnt/Text" "$mnt/Small"
	rnd 1000 $((rand / 4)) >"$mnt/Random/big.bin"
	left=$((rand - rand / 4)) i=0
	while [ "$left" -gt 0 ]; do
		n=$((left < chunk ? left : chunk))
		rnd $((1001 + i)) "$n" >"$mnt/Random/$(printf 'r%03d.bin' "$i")"
		left=$((left - n)) i=$((i + 1))
	done
	left=$text i=0
	while [ "$left" -gt 0 ]; do
		n=$((left < chunk ? left : chunk))
		# Text that compresses about 3:1: words from a keystream.
		# perl reads all of its input: no SIGPIPE under pipefail.
		rnd $((2000 + i)) $((n / 2 + 65536)) | perl -e '
			my $n = shift;
			while (read STDIN, my $b, 65536) {
				next if $n <= 0;
				my $t = join(" ", map { sprintf "%x", $_ & 0xfff } unpack("n*", $b)) . "\n";
				$t = substr($t, 0, $n) if length($t) > $n;
				print $t;
				$n -= length $t;
			}' "$n" >"$mnt/Text/$(printf 't%03d.txt' "$i")"
		left=$((left - n)) i=$((i + 1))
	done
	perl -e '
		my ($top, $n) = @ARGV;
		for my $i (0 .. $n - 1) {
			my $dir = sprintf "%s/d%03d", $top, int($i / 100);
			mkdir $dir unless -d $dir;
			open my $f, ">", sprintf("%s/f%05d.txt", $dir, $i) or die "$!";
			print $f "file $i " x (1 + ($i * 7919) % 1500) or die "$!";
			close $f or die "$!";
		}' "$mnt/Small" "$nfiles"
	sync
	local used
	used=$(df -PB1 "$mnt" | awk 'NR == 2 { print $3 }')
	fusermount -u "$mnt"
	wait "$pid"
	pid=
	losetup -d "$loop"
	loop=
	fsck.exfat -n "$src" >"$workdir/fsck.log" 2>&1 || { cat "$workdir/fsck.log" >&2; die "the new volume is not clean"; }
	printf '%s\nused=%s\n' "$want_stamp" "$used" >"$stamp"
}

if [ -f "$src" ] && [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$want_stamp" ]; then
	log "reusing $src"
else
	log "building a ${size_gib} GiB exFAT volume in $src"
	t0=$(date +%s)
	build
	log "built in $(($(date +%s) - t0)) s"
fi
used=$(sed -n 's/^used=//p' "$stamp")

res=$out/exfat-results.tsv
printf 'op\tname\twall_median_s\tcpu_median_s\tmaxrss_kib\tout_bytes\tcheck\n' >"$res"
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# measure OP NAME PRE CMD: CMD $runs times under /usr/bin/time, after PRE.
measure() {
	local i walls=() cpus=() rss=0 w u s m
	log "$1: $2"
	for i in $(seq 1 "$runs"); do
		bash -c "$3"
		sync
		/usr/bin/time -o "$tf" -f '%e %U %S %M' bash -c "$4" >"$workdir/cmd.log" 2>&1 || { cat "$workdir/cmd.log" >&2; die "failed: $4"; }
		read -r w u s m < <(tail -1 "$tf")
		walls+=("$w")
		cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')")
		[ "$m" -gt "$rss" ] && rss=$m
		echo "   run $i: wall ${w}s user ${u}s sys ${s}s rss ${m}KiB" >&2
	done
	ROW="$1	$2	$(printf '%s\n' "${walls[@]}" | median)	$(printf '%s\n' "${cpus[@]}" | median)	$rss"
}
record() {
	local bytes=-
	[ "$1" = - ] || bytes=$(stat -c %s "$1")
	printf '%s\t%s\t%s\n' "$ROW" "$bytes" "$2" >>"$res"
}

fails=0
src_hash=$(sha256sum <"$src" | cut -d' ' -f1)
# check: the restored file equals the source byte for byte (free clusters
# are zero in both) and fsck.exfat finds it clean.
check() {
	if [ "$(sha256sum <"$tgt" | cut -d' ' -f1)" = "$src_hash" ] && fsck.exfat -n "$tgt" >/dev/null 2>&1; then
		CHECK="identical, fsck.exfat clean"
	else
		CHECK="DIFFERS or not clean"
		[[ $1 == cbimg* ]] && fails=$((fails + 1))
		echo "!! $1: $CHECK" >&2
	fi
}
cat "$src" >/dev/null
cb=$cbimg
pc_log="-L $workdir/partclone.log"

measure backup "cbimg --compress none" "rm -f $img.cbi" "$cb -q backup --compress none $src $img.cbi"
record "$img.cbi" -
measure restore "cbimg restore (none)" "rm -f $tgt" "$cb -q restore $img.cbi $tgt --yes"
check cbimg
record "$tgt" "$CHECK"
rm -f "$img.cbi" "$tgt"
measure backup "cbimg (zstd)" "rm -f $img.cbi" "$cb -q backup $src $img.cbi"
record "$img.cbi" -
measure restore "cbimg restore (zstd)" "rm -f $tgt" "$cb -q restore $img.cbi $tgt --yes"
check cbimg
record "$tgt" "$CHECK"
rm -f "$img.cbi" "$tgt"
measure backup "partclone.exfat -c -o IMG" "rm -f $img.partclone" "partclone.exfat -q -c -s $src -o $img.partclone $pc_log"
record "$img.partclone" -
measure restore "partclone.exfat -r -W" "rm -f $tgt" "partclone.exfat -q -r -W -s $img.partclone -o $tgt $pc_log"
check partclone
record "$tgt" "$CHECK"
rm -f "$img.partclone" "$tgt"
measure backup "partclone.exfat -c -o - | zstd -T0 -3" "rm -f $img.partclone.zst" \
	"partclone.exfat -q -c -s $src -o - $pc_log | zstd -q -T0 -3 >$img.partclone.zst && sync $img.partclone.zst"
record "$img.partclone.zst" -
measure restore "zstd -d | partclone.exfat -r -W" "rm -f $tgt" \
	"zstd -q -dc $img.partclone.zst | partclone.exfat -q -r -W -s - -o $tgt $pc_log"
check partclone
record "$tgt" "$CHECK"
rm -f "$img.partclone.zst" "$tgt"

md=$out/exfat-results.md
{
	echo "# cbimg exFAT benchmark"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); $runs runs per row, median wall time, page cache warm;" \
		"$(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- volume: ${size_gib} GiB exFAT (mkfs.exfat defaults), $(awk -v b="$used" 'BEGIN { printf "%.2f GiB", b / 2^30 }') used," \
		"filled through exfat-fuse; $("$cb" --version 2>/dev/null | head -1); $(partclone.exfat -v 2>&1 | grep -o 'v[0-9.]*' | head -1 | sed 's/^/partclone /')"
	echo
	echo "| op | command | wall s | CPU s | RSS MiB | out MiB | wall ×partclone | check |"
	echo "|---|---|---|---|---|---|---|---|"
	awk -F'\t' '
		NR == FNR { if (FNR > 1 && $2 ~ /^partclone/ && $2 !~ /zstd/) pw[$1] = $3; if (FNR > 1 && $2 ~ /zstd/ && $2 ~ /partclone/) pz[$1] = $3; next }
		FNR > 1 {
			ref = ($2 ~ /zstd/) ? pz[$1] : pw[$1]
			name = $2
			gsub(/\|/, "\\|", name)
			printf "| %s | `%s` | %.2f | %.2f | %.0f | %s | %s | %s |\n", $1, name, $3, $4, $5 / 1024,
				($6 == "-" ? "–" : sprintf("%.0f", $6 / 1048576)), (ref > 0 ? sprintf("%.2f", $3 / ref) : "–"), $7
		}' "$res" "$res"
} >"$md"
cat "$md"
log "wrote $md, $res"
[ "$fails" = 0 ] || die "$fails cbimg check(s) failed"
