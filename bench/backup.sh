#!/bin/bash
# backup.sh: times cbimg backup/restore/verify against ntfsclone and
# partclone on one NTFS and one FAT32 volume, page cache warm (and cold for
# a few rows), and checks that every full restore gives back the source.
#
# Usage: bench/backup.sh [--size GiB] [--fat-size GiB] [--runs N] [--workdir DIR]
#          [--keep] [--files N] [--cbimg PATH] [--out DIR] [--no-cold] [--no-fat]
# See bench/README.md. Needs root (ntfs-3g mount), Go (unless --cbimg) and
#   apt-get install ntfs-3g partclone zstd time openssl perl fuse3 dosfstools mtools
# Writes OUT/results.md (markdown table), OUT/results.tsv (one line per
# row) and OUT/runs.tsv (one line per timed run); OUT defaults to bench/out.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

size_gib=8
fat_gib=4
cold=1
fat=1
runs=3
workdir=/var/tmp/cbimg-bench
keep=0
nfiles=10000
cbimg=
out=$here/out

die() { echo "backup.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

usage() {
	sed -n '2,12s/^# \{0,1\}//p' "$0"
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--size) size_gib=${2:?}; shift 2 ;;
	--fat-size) fat_gib=${2:?}; shift 2 ;;
	--no-cold) cold=0; shift ;;
	--no-fat) fat=0; shift ;;
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
[[ $fat_gib =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--fat-size wants GiB, e.g. 4 or 0.5"
fat_mib=$(awk -v g="$fat_gib" 'BEGIN { printf "%d", g * 1024 }')
[ "$fat" = 0 ] || [ "$fat_mib" -ge 256 ] || die "--fat-size must be at least 0.25 GiB"

# --- tools -------------------------------------------------------------

missing=()
pkgs=()
for spec in mkntfs:ntfs-3g ntfs-3g:ntfs-3g ntfsclone:ntfs-3g ntfscat:ntfs-3g \
	partclone.ntfs:partclone partclone.chkimg:partclone zstd:zstd \
	/usr/bin/time:time openssl:openssl perl:perl sha256sum:coreutils \
	fusermount:fuse3 mountpoint:util-linux mkfs.fat:dosfstools fsck.fat:dosfstools \
	mcopy:mtools partclone.fat32:partclone; do
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
need_mib=$((size_mib * 3 + fat * fat_mib * 3))
avail_mib=$(df -Pm "$workdir" | awk 'NR == 2 { print $4 }')
src=$workdir/source.ntfs
stamp=$workdir/source.stamp
want_stamp="v2 size_mib=$size_mib files=$nfiles"
fsrc=$workdir/source.fat
fstamp=$workdir/source-fat.stamp
want_fstamp="v1 size_mib=$fat_mib files=$nfiles"
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
	rm -rf "$workdir"/img.* "$workdir"/target.ntfs "$workdir"/target.fat "$workdir"/time.out "$workdir"/*.log "$workdir/fatfill"
	if [ "$keep" = 0 ]; then
		rm -f "$src" "$stamp" "$fsrc" "$fstamp"
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

# Sizes of the NTFS content: the reference volume (8 GiB) holds 2 GiB random
# data, 0.5 GiB text, 10,000 small files and pagefile.sys + hiberfil.sys of
# 384 MiB each (0.75 GiB); --size scales all but the file count.
ntfs_rand=$((size_mib / 4 * 1048576))
ntfs_text=$((size_mib / 16 * 1048576))
ntfs_sys=$((size_mib * 3 / 64 * 1048576))
# FAT32 (4 GiB): 1 GiB random, 0.375 GiB text, half as many small files:
# 1.4 GiB used.
fat_rand=$((fat_mib / 4 * 1048576))
fat_text=$((fat_mib * 3 / 32 * 1048576))
fat_files=$((nfiles / 2))

# fill DIR RAND TEXT SYS NFILES: the bench content: RAND bytes of random
# data, TEXT bytes of text, NFILES small files, and when SYS > 0 a
# pagefile.sys and a hiberfil.sys of SYS bytes each.
fill() {
	local d=$1 rand=$2 text=$3 sys=$4 nf=$5 i n left
	local chunk=$((32 * 1048576))
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
	' "$d/Small" "$nf"
	[ "$sys" -gt 0 ] || return 0
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
	fill "$mnt" "$ntfs_rand" "$ntfs_text" "$ntfs_sys" "$nfiles"
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

# build_fat: mkfs.fat -F 32 on a sparse file, filled with mcopy from a
# staging directory (no kernel vfat needed). The free clusters stay zero, so
# a restore to a new file must equal the source byte for byte.
build_fat() {
	rm -rf "$fsrc" "$fstamp" "$workdir/fatfill"
	truncate -s "${fat_mib}M" "$fsrc"
	mkfs.fat -F 32 -n CBIMGBENCH -i 12345678 "$fsrc" >"$workdir/mkfs.log" 2>&1 ||
		{ cat "$workdir/mkfs.log" >&2; die "mkfs.fat failed"; }
	fill "$workdir/fatfill" "$fat_rand" "$fat_text" 0 "$fat_files"
	MTOOLS_SKIP_CHECK=1 mcopy -s -Q -i "$fsrc" "$workdir/fatfill/Random" "$workdir/fatfill/Text" "$workdir/fatfill/Small" ::/ ||
		die "mcopy failed"
	rm -rf "$workdir/fatfill"
	fsck.fat -n "$fsrc" >"$workdir/fsck.log" 2>&1 || { cat "$workdir/fsck.log" >&2; die "fsck.fat: the new FAT32 volume is not clean"; }
	local used files
	# "NAME: F files, U/T clusters" and "B bytes per cluster"
	used=$(fsck.fat -n -v "$fsrc" 2>/dev/null | awk '
		/bytes per cluster/ { cs = $1 }
		/ files, .*clusters/ { split($(NF - 1), u, "/"); n = u[1] }
		END { print n * cs }')
	files=$(MTOOLS_SKIP_CHECK=1 mdir -/ -b -i "$fsrc" ::/ 2>/dev/null | grep -vc '/$' || true)
	printf '%s\nused=%s\nfiles=%s\n' "$want_fstamp" "$used" "$files" >"$fstamp"
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
if [ "$fat" = 1 ]; then
	if [ -f "$fsrc" ] && [ -f "$fstamp" ] && [ "$(head -1 "$fstamp")" = "$want_fstamp" ]; then
		log "reusing $fsrc"
	else
		log "building a ${fat_gib} GiB FAT32 volume in $fsrc"
		t0=$(date +%s)
		build_fat
		log "built in $(($(date +%s) - t0)) s"
	fi
fi

# --- timing -------------------------------------------------------------

runs_tsv=$out/runs.tsv
res_tsv=$out/results.tsv
printf 'vol\top\tname\tclass\trun\twall_s\tuser_s\tsys_s\tmaxrss_kib\n' >"$runs_tsv"
printf 'vol\top\tname\tclass\tcommand\truns\twall_median_s\twall_min_s\twall_max_s\tcpu_median_s\tmaxrss_kib\tout_bytes\tout_alloc_bytes\tcheck\tdata_bytes\n' >"$res_tsv"
# VOL names the volume of the rows that follow; DATA its data bytes (for MB/s).
VOL=ntfs
DATA=0

img=$workdir/img
tgt=$workdir/target.ntfs
tf=$workdir/time.out

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# measure OP NAME CLASS PRE CMD: runs CMD (bash -c) $runs times under
# /usr/bin/time after PRE (untimed: removes the output) and a sync, and
# remembers the figures in ROW_* for record. A CLASS ending in "-cold"
# empties the page cache (drop_caches) before each run.
measure() {
	local op=$1 name=$2 class=$3 pre=$4 cmd=$5 i walls=() cpus=() rss=0
	log "$op: $name"
	for i in $(seq 1 "$runs"); do
		bash -c "$pre"
		sync
		[[ $class == *-cold ]] && echo 3 >/proc/sys/vm/drop_caches
		if ! /usr/bin/time -o "$tf" -f '%e %U %S %M' bash -c "$cmd" >"$workdir/cmd.log" 2>&1; then
			cat "$workdir/cmd.log" >&2
			die "failed: $cmd"
		fi
		read -r w u s m < <(tail -1 "$tf")
		printf '%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n' "$VOL" "$op" "$name" "$class" "$i" "$w" "$u" "$s" "$m" >>"$runs_tsv"
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
	printf '%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$VOL" "$ROW_OP" "$ROW_NAME" "$ROW_CLASS" \
		"$cmd" "$runs" "$ROW_WALL" "$ROW_MIN" "$ROW_MAX" "$ROW_CPU" "$ROW_RSS" "$bytes" "$alloc" "$check" "$DATA" >>"$res_tsv"
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
	local f ok=1
	for f in pagefile.sys hiberfil.sys; do
		cmp -s <(ntfscat "$tgt" "/$f") <(head -c "$ntfs_sys" /dev/zero) || ok=0
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
data_bytes=$("$cb" --json info "$img.cbi" | sed -n 's/^ *"data_bytes": *\([0-9]*\).*/\1/p')
DATA=$data_bytes
record "$img.cbi" "$CHECK"
measure restore "cbimg restore (none)" file "rm -f $tgt" "$cb $q restore $img.cbi $tgt --yes"
check_full
record "$tgt" "$CHECK"
if [ "$cold" = 1 ]; then
	measure restore "cbimg restore (none), cold cache" file-cold "rm -f $tgt" "$cb $q restore $img.cbi $tgt --yes"
	check_full
	record "$tgt" "$CHECK"
fi
measure verify "cbimg verify (none)" verify "" "$cb $q verify $img.cbi"
record - ok
rm -f "$img.cbi" "$tgt"

# cbimg, no exclusions, zstd (default level).
measure backup "cbimg (zstd) --no-default-excludes" zstd "rm -f $img.cbi" \
	"$cb $q backup --no-default-excludes $src $img.cbi"
check_verify "$img.cbi"
record "$img.cbi" "$CHECK"
if [ "$cold" = 1 ]; then
	measure backup "cbimg (zstd) --no-default-excludes, cold cache" zstd-cold "rm -f $img.cbi" \
		"$cb $q backup --no-default-excludes $src $img.cbi"
	record "$img.cbi" -
fi
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

# To /dev/null: no file system writes, no fsync; the image goes to standard
# output, which is /dev/null itself (no pipe).
measure backup "cbimg --compress none --no-default-excludes - > /dev/null" null "" \
	"$cb $q backup --compress none --no-default-excludes $src - >/dev/null"
record - -
measure backup "cbimg --compress none - > /dev/null" null "" \
	"$cb $q backup --compress none $src - >/dev/null"
record - -
measure backup "cbimg (zstd) --no-default-excludes - > /dev/null" null "" \
	"$cb $q backup --no-default-excludes $src - >/dev/null"
record - -

# ntfsclone.
measure backup "ntfsclone -s -o IMG" file "rm -f $img.ntfsclone" "ntfsclone -q -s -o $img.ntfsclone $src"
record "$img.ntfsclone" -
measure restore "ntfsclone -r -O" file "rm -f $tgt" "ntfsclone -q -r -O $tgt $img.ntfsclone"
check_full
record "$tgt" "$CHECK"
if [ "$cold" = 1 ]; then
	measure restore "ntfsclone -r -O, cold cache" file-cold "rm -f $tgt" "ntfsclone -q -r -O $tgt $img.ntfsclone"
	check_full
	record "$tgt" "$CHECK"
fi
rm -f "$img.ntfsclone" "$tgt"
measure backup "ntfsclone -s -o - > /dev/null" null "" "ntfsclone -q -s -o - $src >/dev/null"
record - -
measure backup "ntfsclone -s -o - | zstd -T0 -3" zstd "rm -f $img.ntfsclone.zst" \
	"ntfsclone -q -s -o - $src | zstd -q -T0 -3 >$img.ntfsclone.zst && sync $img.ntfsclone.zst"
record "$img.ntfsclone.zst" -
if [ "$cold" = 1 ]; then
	measure backup "ntfsclone -s -o - | zstd -T0 -3, cold cache" zstd-cold "rm -f $img.ntfsclone.zst" \
		"ntfsclone -q -s -o - $src | zstd -q -T0 -3 >$img.ntfsclone.zst && sync $img.ntfsclone.zst"
	record "$img.ntfsclone.zst" -
fi
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
measure backup "partclone.ntfs -c -o - > /dev/null" null "" \
	"partclone.ntfs -q -c -s $src -o - $pc_log >/dev/null"
record - -
measure backup "partclone.ntfs -c -o - | zstd -T0 -3" zstd "rm -f $img.partclone.zst" \
	"partclone.ntfs -q -c -s $src -o - $pc_log | zstd -q -T0 -3 >$img.partclone.zst && sync $img.partclone.zst"
record "$img.partclone.zst" -
measure restore "zstd -d | partclone.ntfs -r -W" zstd "rm -f $tgt" \
	"zstd -q -dc $img.partclone.zst | partclone.ntfs -q -r -W -s - -o $tgt $pc_log"
check_full
record "$tgt" "$CHECK"
rm -f "$img.partclone.zst" "$tgt"

# --- FAT32 ----------------------------------------------------------------

if [ "$fat" = 1 ]; then
	VOL=fat32
	tgt=$workdir/target.fat
	log "hashing the FAT32 source"
	warm "$fsrc"
	fsrc_hash=$(sha256sum <"$fsrc" | cut -d' ' -f1)
	fsrc_size=$(stat -c %s "$fsrc")
	fused_bytes=$(sed -n 's/^used=//p' "$fstamp")
	ffile_count=$(sed -n 's/^files=//p' "$fstamp")

	# check_fat: the restored file (a new file, free clusters as holes)
	# must equal the source byte for byte (its free clusters are zero) and
	# fsck.fat -n must find it clean; sets CHECK.
	check_fat() {
		local h first ts
		ts=$(stat -c %s "$tgt")
		h=$(sha256sum <"$tgt" | cut -d' ' -f1)
		if [ "$h" = "$fsrc_hash" ]; then
			CHECK="identical"
		elif [ "$ts" -lt "$fsrc_size" ] && cmp -s -n "$ts" "$fsrc" "$tgt"; then
			CHECK="DIFFERS: target $((fsrc_size - ts)) B short"
		else
			first=$(cmp "$fsrc" "$tgt" 2>/dev/null | awk '{ print $5 }' | tr -d ,) || true
			CHECK="DIFFERS from byte ${first:-?}"
		fi
		if fsck.fat -n "$tgt" >"$workdir/fsck.log" 2>&1; then
			CHECK="$CHECK, fsck.fat clean"
		else
			CHECK="$CHECK, FSCK.FAT FAILED"
		fi
		if [[ $ROW_NAME == cbimg* ]] && [ "$CHECK" != "identical, fsck.fat clean" ]; then
			fails=$((fails + 1))
			echo "!! restored FAT32 volume: $CHECK" >&2
		fi
	}

	measure backup "cbimg --compress none" file "rm -f $img.cbi" "$cb $q backup --compress none $fsrc $img.cbi"
	check_verify "$img.cbi"
	DATA=$("$cb" --json info "$img.cbi" | sed -n 's/^ *"data_bytes": *\([0-9]*\).*/\1/p')
	record "$img.cbi" "$CHECK"
	measure restore "cbimg restore (none)" file "rm -f $tgt" "$cb $q restore $img.cbi $tgt --yes"
	check_fat
	record "$tgt" "$CHECK"
	measure verify "cbimg verify (none)" verify "" "$cb $q verify $img.cbi"
	record - ok
	rm -f "$img.cbi" "$tgt"

	measure backup "cbimg (zstd)" zstd "rm -f $img.cbi" "$cb $q backup $fsrc $img.cbi"
	check_verify "$img.cbi"
	record "$img.cbi" "$CHECK"
	measure restore "cbimg restore (zstd)" zstd "rm -f $tgt" "$cb $q restore $img.cbi $tgt --yes"
	check_fat
	record "$tgt" "$CHECK"
	measure verify "cbimg verify (zstd)" verify "" "$cb $q verify $img.cbi"
	record - ok
	rm -f "$img.cbi" "$tgt"

	measure backup "partclone.fat32 -c -o IMG" file "rm -f $img.partclone" \
		"partclone.fat32 -q -c -s $fsrc -o $img.partclone $pc_log"
	record "$img.partclone" -
	measure restore "partclone.fat32 -r -W" file "rm -f $tgt" \
		"partclone.fat32 -q -r -W -s $img.partclone -o $tgt $pc_log"
	check_fat
	record "$tgt" "$CHECK"
	measure verify "partclone.chkimg" verify "" "partclone.chkimg -s $img.partclone $pc_log"
	record - ok
	rm -f "$img.partclone" "$tgt"
	measure backup "partclone.fat32 -c -o - | zstd -T0 -3" zstd "rm -f $img.partclone.zst" \
		"partclone.fat32 -q -c -s $fsrc -o - $pc_log | zstd -q -T0 -3 >$img.partclone.zst && sync $img.partclone.zst"
	record "$img.partclone.zst" -
	measure restore "zstd -d | partclone.fat32 -r -W" zstd "rm -f $tgt" \
		"zstd -q -dc $img.partclone.zst | partclone.fat32 -q -r -W -s - -o $tgt $pc_log"
	check_fat
	record "$tgt" "$CHECK"
	rm -f "$img.partclone.zst" "$tgt"
fi

# --- report -------------------------------------------------------------

md=$out/results.md
# table VOL: the markdown table of that volume's rows.
table() {
	echo "| op | command | kind | wall s | CPU s | CPU/wall | RSS MiB | out MiB | MB/s | wall ×ntfsclone | wall ×partclone | size ×ntfsclone | size ×partclone | check |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F'\t' -v vol="$1" '
		function ratio(a, b) { return (a == "" || b == "" || b == 0 || a == "-" || b == "-") ? "–" : sprintf("%.2f", a / b) }
		FNR == 1 || $1 != vol { next }
		NR == FNR {
			k = $2 "/" $4
			if ($3 ~ /^ntfsclone/ || $3 ~ /\| ntfsclone/) { nw[k] = $7; ns[k] = $12 }
			if ($3 ~ /partclone/) { pw[k] = $7; ps[k] = $12 }
			next
		}
		{
			k = $2 "/" $4
			name = $3
			gsub(/\|/, "\\|", name)
			size = $2 == "restore" ? $13 : $12
			outm = size == "-" ? "–" : sprintf("%.0f", size / 1048576)
			sn = $2 == "backup" ? ratio($12, ns[k]) : "–"
			sp = $2 == "backup" ? ratio($12, ps[k]) : "–"
			mbs = $7 > 0 && $15 > 0 ? sprintf("%.0f", $15 / $7 / 1e6) : "–"
			printf "| %s | `%s` | %s | %.2f (%.2f-%.2f) | %.2f | %.2f | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
				$2, name, $4, $7, $8, $9, $10, ($7 > 0 ? $10 / $7 : 0), $11 / 1024, outm, mbs,
				ratio($7, nw[k]), ratio($7, pw[k]), sn, sp, $14
		}' "$res_tsv" "$res_tsv"
}
{
	echo "# cbimg backup benchmark"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); $runs runs per row, median wall time; page cache warm except the \"cold cache\" rows"
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
	echo "(file: uncompressed image to a file; zstd: compressed to a file; null: to /dev/null; -cold: page cache emptied first;"
	echo "<1 = faster/smaller)."
	echo
	echo "## NTFS: ${size_gib} GiB, $(awk -v b="$used_bytes" 'BEGIN { printf "%.2f GiB", b / 2^30 }') used" \
		"(data clusters $(awk -v b="${data_bytes:-0}" 'BEGIN { printf "%.2f GiB", b / 2^30 }')), $file_count files"
	echo
	echo "$(awk -v b="$ntfs_rand" 'BEGIN { printf "%.2f", b / 2^30 }') GiB random, $(awk -v b="$ntfs_text" 'BEGIN { printf "%.2f", b / 2^30 }') GiB text," \
		"$nfiles small files, pagefile.sys and hiberfil.sys of $((ntfs_sys / 1048576)) MiB each."
	echo
	table ntfs
	if [ "$fat" = 1 ]; then
		echo
		echo "## FAT32: ${fat_gib} GiB, $(awk -v b="$fused_bytes" 'BEGIN { printf "%.2f GiB", b / 2^30 }') used, $ffile_count files"
		echo
		echo "$(awk -v b="$fat_rand" 'BEGIN { printf "%.2f", b / 2^30 }') GiB random, $(awk -v b="$fat_text" 'BEGIN { printf "%.2f", b / 2^30 }') GiB text," \
			"$fat_files small files (mkfs.fat -F 32, mcopy)."
		echo
		table fat32
	fi
	echo
	echo "Commands as run (in the workdir):"
	echo
	awk -F'\t' 'NR > 1 { printf "- %s %s `%s`: `%s`\n", $1, $2, $3, $5 }' "$res_tsv"
} >"$md"

cat "$md"
echo
log "wrote $md, $res_tsv, $runs_tsv"
[ "$fails" = 0 ] || die "$fails correctness check(s) failed (see the check column)"
