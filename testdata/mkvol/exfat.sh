#!/bin/bash
# exfat.sh OUT SIZE_MIB [CLUSTER [SECTOR [CONTENT [ALIGN]]]]
#
# Builds an exFAT volume file with mkfs.exfat (exfatprogs) and fills it
# through an exfat-fuse mount.
#   CLUSTER  cluster size in bytes, 0 = mkfs.exfat default
#   SECTOR   logical sector size in bytes (512 or 4096; formatted through a
#            loop device with that sector size), 0 = 512
#   CONTENT  empty | basic | full (see testdata/mkvol/README.md)
#   ALIGN    boundary alignment of the FAT and heap in bytes, 0 = mkfs.exfat
#            default (1 MiB); small values give compact fuzz seeds
# File data is deterministic; timestamps and the serial number are not.
# Needs: mkfs.exfat (exfatprogs), mount.exfat-fuse (exfat-fuse), fusermount,
# losetup (root), openssl, awk.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

[ $# -ge 2 ] || die "usage: exfat.sh OUT SIZE_MIB [CLUSTER [SECTOR [CONTENT [ALIGN]]]]"
out=$1 size=$2 cluster=${3:-0} sector=${4:-0} content=${5:-basic} align=${6:-0}
[ "$sector" = 0 ] && sector=512
case $content in empty | basic | full) ;; *) die "unknown content $content" ;; esac
case $sector in 512 | 4096) ;; *) die "sector size must be 512 or 4096" ;; esac

need mkfs.exfat mount.exfat-fuse fusermount losetup openssl awk

tmp=$(mktemp -d "$(stagedir)/mkvol-exfat.XXXXXX")
mnt=$tmp/mnt
pid=
loop=
cleanup() {
	if [ -n "$pid" ]; then
		fusermount -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

rm -f "$out"
truncate -s "${size}M" "$out"
opt=(-L CBIMGTEST)
[ "$cluster" != 0 ] && opt+=(-c "$cluster")
[ "$align" != 0 ] && opt+=(-b "$align")
# exfat-fuse run as root wants a block device: a loop device with the
# wanted sector size serves both mkfs.exfat and the mount.
loop=$(losetup -f --show -b "$sector" "$out")
mkfs.exfat "${opt[@]}" "$loop" >"$tmp/mkfs.log" 2>&1 || { cat "$tmp/mkfs.log" >&2; die "mkfs.exfat failed"; }

# Cluster size as formatted.
cs=$(od -An -j108 -N2 -tu1 "$out" | awk '{ print 2 ^ ($1 + $2) }')

mount_vol() {
	mkdir -p "$mnt"
	# -d keeps the driver in the foreground so that we can wait for it to
	# finish writing after the unmount.
	mount.exfat-fuse -d "$loop" "$mnt" >"$tmp/fuse.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$tmp/fuse.log" >&2; die "mount.exfat-fuse failed"; }
		sleep 0.02
	done
	die "mount.exfat-fuse timed out"
}

umount_vol() {
	sync
	fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
	wait "$pid"
	pid=
}

long=$(printf 'L%.0s' $(seq 1 251))

stage_basic() {
	local s=$1
	mkdir -p "$s/Documents" "$s/Data" "$s/Deep/Level 1/Level 2/Level 3/Level 4/Level 5"
	: >"$s/Documents/empty.txt"
	printf x >"$s/Documents/one.txt"
	rnd 1 700 >"$s/Documents/small.bin"
	text 500 >"$s/Documents/readme.txt"
	rnd 2 4095 >"$s/Data/4095.bin"
	rnd 3 4097 >"$s/Data/4097.bin"
	rnd 4 102400 >"$s/Data/100KiB.bin"
	rnd 5 1048576 >"$s/Data/1MiB.bin"
	text 10 >"$s/Data/A Long File Name With Spaces.txt"
	text 10 >"$s/Data/$long.txt"
	text 10 >"$s/Deep/Level 1/Level 2/Level 3/Level 4/Level 5/deep file.txt"
}

stage_full() {
	local s=$1
	mkdir -p "$s/Backups" "$s/Grüße" "$s/Many"
	cbimagic 262136 >"$s/Backups/old.cbi"
	text 20 >"$s/Grüße/日本語.txt"
	rnd 6 3000 >"$s/Grüße/Ελληνικά — ünïcödé 😀.bin"
	rnd 7 2097152 >"$s/pagefile.sys"
	rnd 9 8388608 >"$s/Data/8MiB.bin"
	manyfiles "$s/Many" 10 100
}

mount_vol
if [ "$content" != empty ]; then
	stage_basic "$mnt"
	[ "$content" = full ] && stage_full "$mnt"
	if [ "$content" = full ]; then
		# Fragmented file: write one-cluster files, delete every other one,
		# then grow a file cluster by cluster so that it fills the holes.
		mkdir -p "$mnt/Frag"
		head -c "$cs" /dev/zero | tr '\0' F >"$tmp/one"
		for i in $(seq -w 0 127); do cp "$tmp/one" "$mnt/Frag/F$i.BIN"; done
		sync
		for i in $(seq 1 2 127); do rm "$mnt/Frag/F$(printf %03d "$i").BIN"; done
		sync
		rnd 8 $((cs * 80)) >"$tmp/fragmented.bin"
		: >"$mnt/Frag/fragmented.bin"
		for i in $(seq 0 79); do
			dd if="$tmp/fragmented.bin" of="$mnt/Frag/fragmented.bin" bs="$cs" skip="$i" seek="$i" count=1 conv=notrunc status=none
		done
	fi
fi
umount_vol
losetup -d "$loop"
loop=
