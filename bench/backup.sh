#!/bin/bash
# backup.sh: times cbimg backup/restore/verify against ntfsclone and
# partclone.ntfs on one NTFS volume, page cache warm, and checks that every
# full restore gives back the source volume.
#
# Usage: bench/backup.sh [--size GiB] [--runs N] [--workdir DIR] [--keep]
#                        [--files N] [--cbimg PATH] [--out DIR]
# See bench/README.md. Needs root (ntfs-3g mount), Go (unless --cbimg) and
#   apt-get install ntfs-3g partclone zstd time openssl perl fuse3
# Writes OUT/results.md (markdown table), OUT/results.tsv (one line per
# row) and OUT/runs.tsv (one line per timed run); OUT defaults to bench/out.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

size_gib=4
runs=3
workdir=/var/tmp/cbimg-bench
keep=0
nfiles=10000
cbimg=
out=$here/out

die() { echo "backup.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

usage() {
	sed -n '2,11s/^# \{0,1\}//p' "$0"
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--size) size_gib=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--workdir) workdir=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--files) nfiles=${2:?}; shift 2 ;;
	--cbimg) cbimg=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "backup.sh: unknown option $1" >&2; usage 2 ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
[[ $nfiles =~ ^[0-9]+$ ]] || die "--files wants a number"
[[ $size_gib =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--size wants GiB, e.g. 4 or 0.5"
size_mib=$(awk -v g="$size_gib" 'BEGIN { printf "%d", g * 1024 }')
[ "$size_mib" -ge 256 ] || die "--size must be at least 0.25 GiB"

# --- tools -------------------------------------------------------------

missing=()
pkgs=()
for spec in mkntfs:ntfs-3g ntfs-3g:ntfs-3g ntfsclone:ntfs-3g ntfscat:ntfs-3g \
	partclone.ntfs:partclone partclone.chkimg:partclone zstd:zstd \
	/usr/bin/time:time openssl:openssl perl:perl sha256sum:coreutils \
	fusermount:fuse3 mountpoint:util-linux; do
	t=${spec%%:*} p=${spec#*:}
	if ! command -v "$t" >/dev/null 2>&1; then
		missing+=("$t")
		[[ " ${pkgs[*]-} " == *" $p "* ]] || pkgs+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	die "missing ${missing[*]}; install with: apt-get install ${pkgs[*]}"
fi
[ "$(id -u)" = 0 ] || die "needs root (mounts the volume with ntfs-3g to fill it)"

mkdir -p "$workdir" "$out"
workdir=$(cd "$workdir" && pwd)
need_mib=$((size_mib * 3))
avail_mib=$(df -Pm "$workdir" | awk 'NR == 2 { print $4 }')
src=$workdir/source.ntfs
stamp=$workdir/source.stamp
want_stamp="v1 size_mib=$size_mib files=$nfiles"
reuse=0
if [ -f "$src" ] && [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$want_stamp" ]; then
	reuse=1
fi
if [ "$reuse" = 0 ] && [ "$avail_mib" -lt "$need_mib" ]; then
	die "$workdir has ${avail_mib} MiB free, needs about ${need_mib} MiB (3x the volume)"
fi

if [ -z "$cbimg" ]; then
	go=$(command -v go || echo /usr/local/go/bin/go)
	[ -x "$go" ] || die "no Go toolchain for building cbimg (or pass --cbimg PATH)"
	log "building cbimg"
	(cd "$repo" && "$go" build -o "$workdir/cbimg" ./cmd/cbimg)
	cbimg=$workdir/cbimg
fi
[ -x "$cbimg" ] || die "$cbimg is not executable"

mnt=$workdir/mnt
ntfs_pid=
cleanup() {
	if [ -n "$ntfs_pid" ]; then
		# A failed fill may leave us holding a file open on the mount.
		if ! fusermount -u "$mnt" 2>/dev/null && ! umount "$mnt" 2>/dev/null; then
			fusermount -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
			kill "$ntfs_pid" 2>/dev/null || true
		fi
		wait "$ntfs_pid" 2>/dev/null || true
	fi
	rmdir "$mnt" 2>/dev/null || true
	rm -f "$workdir"/img.* "$workdir"/target.ntfs "$workdir"/time.out "$workdir"/*.log
	if [ "$keep" = 0 ]; then
		rm -f "$src" "$stamp"
		[ "$cbimg" = "$workdir/cbimg" ] && rm -f "$cbimg"
		rmdir "$workdir" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the volume ---------------------------------------------------------

# rnd SEED BYTES: deterministic pseudo-random bytes (AES-128-CTR keystream).
# head feeds openssl, not the other way round: no SIGPIPE under pipefail.
rnd() {
	head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$1")" \
		-iv 00000000000000000000000000000000
}

# words SEED BYTES: deterministic text from a 1024-word vocabulary picked by
# the keystream, so it compresses like prose (zstd -3: about 3:1), not like
# a repeated line.
words() {
	rnd "$1" $(($2 / 2 + 65536)) | perl -e '
		my $n = shift;
		read STDIN, my $v, 8192;
		my @w;
		for my $i (0 .. 1023) {
			my @b = unpack "C8", substr($v, $i * 8, 8);
			my $len = 1 + $b[0] % 9;
			my $s = join "", map { chr(97 + $_ % 26) } @b[1 .. 7], @b[1 .. 7];
			$s = substr($s, 0, $len);
			$s = ucfirst($s) if $i % 17 == 0;
			push @w, $s . ($i % 61 == 0 ? ".\n" : $i % 13 == 0 ? ", " : " ");
		}
		while ($n > 0) {
			read(STDIN, my $buf, 65536) == 65536 or die "short keystream\n";
			my $t = join "", @w[map { $_ & 1023 } unpack "n*", $buf];
			$t = substr($t, 0, $n) if length($t) > $n;
			print $t;
			$n -= length $t;
		}
		1 while read STDIN, my $rest, 1 << 20;
	' "$2"
}

# fill DIR: the bench content; sizes scale with the volume (4 GiB volume:
# 1.5 GiB random, 0.5 GiB text, small files, 256 MiB pagefile and hiberfil).
fill() {
	local d=$1 i n left
	local rand=$((size_mib * 3 / 8 * 1048576)) text=$((size_mib / 8 * 1048576))
	local sys=$((size_mib / 16 * 1048576)) chunk=$((32 * 1048576))
	mkdir -p "$d/Random" "$d/Text" "$d/Small"
	# Random: one file of a quarter, the rest in 32 MiB files.
	rnd 1000 $((rand / 4)) >"$d/Random/big.bin"
	left=$((rand - rand / 4)) i=0
	while [ "$left" -gt 0 ]; do
		n=$((left < chunk ? left : chunk))
		rnd $((1001 + i)) "$n" >"$d/Random/$(printf 'r%03d.bin' "$i")"
		left=$((left - n)) i=$((i + 1))
	done
	left=$text i=0
	while [ "$left" -gt 0 ]; do
		n=$((left < chunk ? left : chunk))
		words $((2000 + i)) "$n" >"$d/Text/$(printf 't%03d.txt' "$i")"
		left=$((left - n)) i=$((i + 1))
	done
	# Small files, 1 B to 16 KiB (a few resident in the MFT record), 100
	# per directory, written by one process.
	words 3000 65536 | perl -e '
		my ($top, $n) = @ARGV;
		local $/; my $src = <STDIN>;
		for my $i (0 .. $n - 1) {
			my $dir = sprintf "%s/d%03d", $top, int($i / 100);
			mkdir $dir unless -d $dir;
			my $len = 1 + ($i * 7919) % 16384;
			my $off = ($i * 104729) % (length($src) - $len);
			open my $f, ">", sprintf("%s/f%05d.txt", $dir, $i) or die "$!";
			print $f substr($src, $off, $len) or die "$!";
			close $f or die "$!";
		}
	' "$d/Small" "$nfiles"
	# Incompressible like real ones; not starting with "hibr" (hibernated).
	rnd 4000 "$sys" >"$d/pagefile.sys"
	{ printf 'wake'; rnd 4001 $((sys - 4)); } >"$d/hiberfil.sys"
}

build_volume() {
	rm -f "$src" "$stamp"
	truncate -s "${size_mib}M" "$src"
	mkntfs -F -f -q -L cbimg-bench "$src" >"$workdir/mkntfs.log" 2>&1 ||
		{ cat "$workdir/mkntfs.log" >&2; die "mkntfs failed"; }
	mkdir -p "$mnt"
	# no_detach: wait for ntfs-3g to finish writing after the unmount.
	ntfs-3g -o no_detach,big_writes,noatime "$src" "$mnt" >"$workdir/ntfs-3g.log" 2>&1 &
	ntfs_pid=$!
	for _ in $(seq 1 250); do
		mountpoint -q "$mnt" && break
		kill -0 "$ntfs_pid" 2>/dev/null || { cat "$workdir/ntfs-3g.log" >&2; die "ntfs-3g failed"; }
		sleep 0.02
	done
	mountpoint -q "$mnt" || die "ntfs-3g mount timed out"
	fill "$mnt"
	sync
	local used files
	used=$(df -PB1 "$mnt" | awk 'NR == 2 { print $3 }')
	files=$(find "$mnt" -type f | wc -l)
	fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
	wait "$ntfs_pid"
	ntfs_pid=
	rmdir "$mnt"
	printf '%s\nused=%s\nfiles=%s\n' "$want_stamp" "$used" "$files" >"$stamp"
}

if [ "$reuse" = 1 ]; then
	log "reusing $src"
else
	log "building a ${size_gib} GiB NTFS volume in $src"
	t0=$(date +%s)
	build_volume
	log "built in $(($(date +%s) - t0)) s"
fi
used_bytes=$(sed -n 's/^used=//p' "$stamp")
file_count=$(sed -n 's/^files=//p' "$stamp")

# --- timing -------------------------------------------------------------

runs_tsv=$out/runs.tsv
res_tsv=$out/results.tsv
printf 'op\tname\tclass\trun\twall_s\tuser_s\tsys_s\tmaxrss_kib\n' >"$runs_tsv"
printf 'op\tname\tclass\tcommand\truns\twall_median_s\twall_min_s\twall_max_s\tcpu_median_s\tmaxrss_kib\tout_bytes\tout_alloc_bytes\tcheck\n' >"$res_tsv"

img=$workdir/img
tgt=$workdir/target.ntfs
tf=$workdir/time.out

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# measure OP NAME CLASS PRE CMD: runs CMD (bash -c) $runs times under
# /usr/bin/time after PRE (untimed: removes the output) and a sync, and
# remembers the figures in ROW_* for record.
measure() {
	local op=$1 name=$2 class=$3 pre=$4 cmd=$5 i walls=() cpus=() rss=0
	log "$op: $name"
	for i in $(seq 1 "$runs"); do
		bash -c "$pre"
		sync
		if ! /usr/bin/time -o "$tf" -f '%e %U %S %M' bash -c "$cmd" >"$workdir/cmd.log" 2>&1; then
			cat "$workdir/cmd.log" >&2
			die "failed: $cmd"
		fi
		read -r w u s m < <(tail -1 "$tf")
		printf '%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n' "$op" "$name" "$class" "$i" "$w" "$u" "$s" "$m" >>"$runs_tsv"
		walls+=("$w")
		cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')")
		[ "$m" -gt "$rss" ] && rss=$m
		echo "   run $i: wall ${w}s user ${u}s sys ${s}s rss ${m}KiB" >&2
	done
	ROW_OP=$op ROW_NAME=$name ROW_CLASS=$class ROW_CMD=$cmd ROW_RSS=$rss
	ROW_WALL=$(printf '%s\n' "${walls[@]}" | median)
	ROW_MIN=$(printf '%s\n' "${walls[@]}" | sort -g | head -1)
	ROW_MAX=$(printf '%s\n' "${walls[@]}" | sort -g | tail -1)
	ROW_CPU=$(printf '%s\n' "${cpus[@]}" | median)
}

# record OUTFILE CHECK: writes the last measured row with the size of
# OUTFILE ("-" for none).
record() {
	local f=$1 check=$2 bytes=- alloc=-
	if [ "$f" != - ]; then
		bytes=$(stat -c %s "$f")
		alloc=$(($(stat -c %b "$f") * $(stat -c %B "$f")))
	fi
	local cmd=${ROW_CMD//$workdir\//}
	cmd=${cmd//$cbimg/cbimg}
	printf '%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROW_OP" "$ROW_NAME" "$ROW_CLASS" \
		"$cmd" "$runs" "$ROW_WALL" "$ROW_MIN" "$ROW_MAX" "$ROW_CPU" "$ROW_RSS" "$bytes" "$alloc" "$check" >>"$res_tsv"
}

# fshash FILE: sha256 of ntfsclone's image of the volume in FILE: equal for
# volumes with the same used clusters and metadata, whatever the free space.
fshash() { ntfsclone -q --save-image -o - "$1" 2>/dev/null | sha256sum | cut -d' ' -f1; }

fails=0
# check_full: the restored target must hash like the source; sets CHECK.
check_full() {
	local h first
	h=$(fshash "$tgt") || true
	if [ "$h" = "$src_hash" ]; then
		CHECK="same fs hash"
		return
	fi
	# Only cbimg's own differences fail the run.
	[[ $ROW_NAME == cbimg* ]] && fails=$((fails + 1))
	local ss ts n
	ss=$(stat -c %s "$src") ts=$(stat -c %s "$tgt")
	n=$((ss < ts ? ss : ts))
	first=$(cmp -n "$n" "$src" "$tgt" 2>/dev/null | awk '{ print $5 }' | tr -d ,) || true
	if [ -z "$first" ] && [ "$ts" -lt "$ss" ]; then
		CHECK="DIFFERS: target $((ss - ts)) B short (backup boot sector missing)"
	elif [ -n "$first" ] && [ "$first" -gt $((ss - 512)) ]; then
		CHECK="DIFFERS: last sector (backup boot sector) not restored"
	else
		CHECK="DIFFERS from byte ${first:-?}"
	fi
	echo "!! restored volume differs from the source: $CHECK" >&2
}

# check_excluded: pagefile.sys and hiberfil.sys read back as zeros, a text
# file is intact, and ntfsclone accepts the volume; sets CHECK.
check_excluded() {
	local f ok=1 sys=$((size_mib / 16 * 1048576))
	for f in pagefile.sys hiberfil.sys; do
		cmp -s <(ntfscat "$tgt" "/$f") <(head -c "$sys" /dev/zero) || ok=0
	done
	cmp -s <(ntfscat "$tgt" /Text/t000.txt) <(ntfscat "$src" /Text/t000.txt) || ok=0
	ntfsclone -q --save-image -o - "$tgt" >/dev/null 2>&1 || ok=0
	if [ "$ok" = 1 ]; then
		CHECK="pagefile+hiberfil zeroed, rest ok"
	else
		fails=$((fails + 1))
		CHECK="FAILED"
		echo "!! excluding restore check failed" >&2
	fi
}

# check_verify IMAGE: cbimg verify; sets CHECK.
check_verify() {
	if "$cbimg" -q verify "$1" >/dev/null 2>&1; then
		CHECK="verify ok"
	else
		fails=$((fails + 1))
		CHECK="VERIFY FAILED"
		echo "!! cbimg verify $1 failed" >&2
	fi
}

warm() { cat "$@" >/dev/null; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "hashing the source (ntfsclone --save-image | sha256sum)"
warm "$src"
src_hash=$(fshash "$src")
cb=$cbimg
q=-q
pc_log="-L $workdir/partclone.log"

# cbimg, no exclusions, uncompressed.
measure backup "cbimg --compress none --no-default-excludes" file "rm -f $img.cbi" \
	"$cb $q backup --compress none --no-default-excludes $src $img.cbi"
check_verify "$img.cbi"
record "$img.cbi" "$CHECK"
data_bytes=$("$cb" --json info "$img.cbi" | sed -n 's/^ *"data_bytes": *\([0-9]*\).*/\1/p')
measure restore "cbimg restore (none)" file "rm -f $tgt" "$cb $q restore $img.cbi $tgt --yes"
check_full
record "$tgt" "$CHECK"
measure verify "cbimg verify (none)" verify "" "$cb $q verify $img.cbi"
record - ok
rm -f "$img.cbi" "$tgt"

# cbimg, no exclusions, zstd (default level).
measure backup "cbimg (zstd) --no-default-excludes" zstd "rm -f $img.cbi" \
	"$cb $q backup --no-default-excludes $src $img.cbi"
check_verify "$img.cbi"
record "$img.cbi" "$CHECK"
measure restore "cbimg restore (zstd)" zstd "rm -f $tgt" "$cb $q restore $img.cbi $tgt --yes"
check_full
record "$tgt" "$CHECK"
measure restore "cbimg restore - < (zstd)" zstd "rm -f $tgt" "$cb $q restore - $tgt --yes < $img.cbi"
check_full
record "$tgt" "$CHECK"
measure verify "cbimg verify (zstd)" verify "" "$cb $q verify $img.cbi"
record - ok
rm -f "$img.cbi" "$tgt"

# cbimg as shipped: zstd, pagefile/hiberfil left out.
measure backup "cbimg (zstd, default excludes)" zstd "rm -f $img.cbi" "$cb $q backup $src $img.cbi"
check_verify "$img.cbi"
record "$img.cbi" "$CHECK"
measure restore "cbimg restore (zstd, excludes)" zstd "rm -f $tgt" "$cb $q restore $img.cbi $tgt --yes"
check_excluded
record "$tgt" "$CHECK"
rm -f "$img.cbi" "$tgt"

# To a pipe: no file system writes, no fsync.
measure backup "cbimg --compress none --no-default-excludes - | cat" pipe "" \
	"$cb $q backup --compress none --no-default-excludes $src - | cat >/dev/null"
record - -
measure backup "cbimg (zstd) --no-default-excludes - | cat" pipe "" \
	"$cb $q backup --no-default-excludes $src - | cat >/dev/null"
record - -

# ntfsclone.
measure backup "ntfsclone -s -o IMG" file "rm -f $img.ntfsclone" "ntfsclone -q -s -o $img.ntfsclone $src"
record "$img.ntfsclone" -
measure restore "ntfsclone -r -O" file "rm -f $tgt" "ntfsclone -q -r -O $tgt $img.ntfsclone"
check_full
record "$tgt" "$CHECK"
rm -f "$img.ntfsclone" "$tgt"
measure backup "ntfsclone -s -o - | cat" pipe "" "ntfsclone -q -s -o - $src | cat >/dev/null"
record - -
measure backup "ntfsclone -s -o - | zstd -T0 -3" zstd "rm -f $img.ntfsclone.zst" \
	"ntfsclone -q -s -o - $src | zstd -q -T0 -3 >$img.ntfsclone.zst && sync $img.ntfsclone.zst"
record "$img.ntfsclone.zst" -
measure restore "zstd -d | ntfsclone -r -O" zstd "rm -f $tgt" \
	"zstd -q -dc $img.ntfsclone.zst | ntfsclone -q -r -O $tgt -"
check_full
record "$tgt" "$CHECK"
rm -f "$img.ntfsclone.zst" "$tgt"

# partclone.ntfs (default: CRC32 checksums in the image).
measure backup "partclone.ntfs -c -o IMG" file "rm -f $img.partclone" \
	"partclone.ntfs -q -c -s $src -o $img.partclone $pc_log"
record "$img.partclone" -
measure restore "partclone.ntfs -r -W" file "rm -f $tgt" \
	"partclone.ntfs -q -r -W -s $img.partclone -o $tgt $pc_log"
check_full
record "$tgt" "$CHECK"
measure verify "partclone.chkimg" verify "" "partclone.chkimg -s $img.partclone $pc_log"
record - ok
rm -f "$img.partclone" "$tgt"
measure backup "partclone.ntfs -c -o - | cat" pipe "" \
	"partclone.ntfs -q -c -s $src -o - $pc_log | cat >/dev/null"
record - -
measure backup "partclone.ntfs -c -o - | zstd -T0 -3" zstd "rm -f $img.partclone.zst" \
	"partclone.ntfs -q -c -s $src -o - $pc_log | zstd -q -T0 -3 >$img.partclone.zst && sync $img.partclone.zst"
record "$img.partclone.zst" -
measure restore "zstd -d | partclone.ntfs -r -W" zstd "rm -f $tgt" \
	"zstd -q -dc $img.partclone.zst | partclone.ntfs -q -r -W -s - -o $tgt $pc_log"
check_full
record "$tgt" "$CHECK"
rm -f "$img.partclone.zst" "$tgt"

# --- report -------------------------------------------------------------

md=$out/results.md
{
	echo "# cbimg backup benchmark"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); $runs runs per row, median wall time; page cache warm"
	echo "- volume: ${size_gib} GiB NTFS, $(awk -v b="$used_bytes" 'BEGIN { printf "%.2f GiB", b / 2^30 }') used" \
		"(data clusters $(awk -v b="${data_bytes:-0}" 'BEGIN { printf "%.2f GiB", b / 2^30 }')), $file_count files"
	echo "- machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))," \
		"$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 2^20 }' /proc/meminfo) RAM, kernel $(uname -r)," \
		"workdir on $(df -PT "$workdir" | awk 'NR == 2 { print $2 }'); load average before/after: $load0 / $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- $("$cb" --version 2>/dev/null | head -1) ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'))," \
		"$(ntfsclone --version 2>&1 | head -1 | awk '{ print $1, $2 }'), $(partclone.ntfs -v 2>&1 | grep -o 'v[0-9.]*' | head -1 | sed 's/^/partclone /')," \
		"$(zstd --version | grep -o 'v[0-9.]*' | head -1 | sed 's/^/zstd /')"
	echo
	echo "wall: median seconds (min-max); CPU: median user+sys seconds; CPU/wall > 1: more than one core busy;"
	echo "RSS: peak resident set of the largest process; out: image size, or for restores the target's allocated size;"
	echo "MB/s: data clusters per wall second; ×ntfsclone, ×partclone: wall (and size) over the same-kind row of that tool"
	echo "(file: uncompressed image to a file; zstd: compressed to a file; pipe: to a pipe; <1 = faster/smaller)."
	echo
	echo "| op | command | kind | wall s | CPU s | CPU/wall | RSS MiB | out MiB | MB/s | wall ×ntfsclone | wall ×partclone | size ×ntfsclone | size ×partclone | check |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F'\t' -v data="${data_bytes:-0}" '
		function ratio(a, b) { return (a == "" || b == "" || b == 0 || a == "-" || b == "-") ? "–" : sprintf("%.2f", a / b) }
		NR == FNR {
			if (FNR == 1) next
			k = $1 "/" $3
			if ($2 ~ /^ntfsclone/ || $2 ~ /\| ntfsclone/) { nw[k] = $6; ns[k] = $11 }
			if ($2 ~ /partclone/) { pw[k] = $6; ps[k] = $11 }
			next
		}
		FNR == 1 { next }
		{
			k = $1 "/" $3
			name = $2
			gsub(/\|/, "\\|", name)
			size = $1 == "restore" ? $12 : $11
			outm = size == "-" ? "–" : sprintf("%.0f", size / 1048576)
			sn = $1 == "backup" ? ratio($11, ns[k]) : "–"
			sp = $1 == "backup" ? ratio($11, ps[k]) : "–"
			mbs = $6 > 0 ? sprintf("%.0f", data / $6 / 1e6) : "–"
			printf "| %s | `%s` | %s | %.2f (%.2f-%.2f) | %.2f | %.2f | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
				$1, name, $3, $6, $7, $8, $9, ($6 > 0 ? $9 / $6 : 0), $10 / 1024, outm, mbs,
				ratio($6, nw[k]), ratio($6, pw[k]), sn, sp, $13
		}' "$res_tsv" "$res_tsv"
	echo
	echo "Commands as run (in the workdir):"
	echo
	awk -F'\t' 'NR > 1 { printf "- %s `%s`: `%s`\n", $1, $2, $4 }' "$res_tsv"
} >"$md"

cat "$md"
echo
log "wrote $md, $res_tsv, $runs_tsv"
[ "$fails" = 0 ] || die "$fails correctness check(s) failed (see the check column)"
