#!/bin/bash
# fat.sh OUT BITS SIZE_MIB [CLUSTER [SECTOR [CONTENT]]]
#
# Builds a FAT12/16/32 volume file with mkfs.fat and fills it with mtools.
#   BITS     12, 16 or 32
#   CLUSTER  cluster size in bytes, 0 = mkfs.fat default
#   SECTOR   logical sector size in bytes, 0 = 512
#   CONTENT  empty | basic | full (see testdata/mkvol/README.md)
# File data is deterministic; timestamps are not.
# Needs: mkfs.fat (dosfstools), mcopy mmd mdel (mtools), openssl, perl, awk.
# basic needs about 4 MiB, full about 24 MiB.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

[ $# -ge 3 ] || die "usage: fat.sh OUT BITS SIZE_MIB [CLUSTER [SECTOR [CONTENT]]]"
out=$1 bits=$2 size=$3 cluster=${4:-0} sector=${5:-0} content=${6:-basic}
[ "$sector" = 0 ] && sector=512
case $bits in 12 | 16 | 32) ;; *) die "bits must be 12, 16 or 32" ;; esac
case $content in empty | basic | full) ;; *) die "unknown content $content" ;; esac

need mkfs.fat mcopy mmd mdel openssl perl awk
export MTOOLS_SKIP_CHECK=1

tmp=$(mktemp -d "$(stagedir)/mkvol-fat.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage

rm -f "$out"
truncate -s "${size}M" "$out"
opt=(-F "$bits" -S "$sector" -n CBIMGTEST -i 1234ABCD)
if [ "$cluster" != 0 ]; then
	[ $((cluster % sector)) = 0 ] || die "cluster size $cluster is not a multiple of sector size $sector"
	opt+=(-s $((cluster / sector)))
fi
mkfs.fat "${opt[@]}" "$out" >"$tmp/mkfs.log" 2>&1 || { cat "$tmp/mkfs.log" >&2; die "mkfs.fat failed"; }

# Cluster size as formatted.
cs=$(od -An -j11 -N3 -tu1 "$out" | awk '{ print ($1 + 256 * $2) * $3 }')

stage_basic() {
	local s=$1
	mkdir -p "$s/DOCS" "$s/Data" "$s/Deep/Level 1/Level 2/Level 3/Level 4/Level 5"
	: >"$s/DOCS/EMPTY.TXT"
	printf x >"$s/DOCS/ONE.TXT"
	rnd 1 700 >"$s/DOCS/SMALL.BIN"
	text 500 >"$s/DOCS/README.TXT"
	rnd 2 4095 >"$s/Data/4095.bin"
	rnd 3 4097 >"$s/Data/4097.bin"
	rnd 4 102400 >"$s/Data/100KiB.bin"
	rnd 5 1048576 >"$s/Data/1MiB.bin"
	text 10 >"$s/Data/A Long File Name With Spaces.txt"
	text 10 >"$s/Data/mixedCase.Txt"
	text 10 >"$s/Deep/Level 1/Level 2/Level 3/Level 4/Level 5/deep file.txt"
}

stage_full() {
	local s=$1
	mkdir -p "$s/Backups" "$s/Grüße" "$s/Many"
	cbimagic 262136 >"$s/Backups/old.cbi"
	text 20 >"$s/Grüße/日本語.txt"
	rnd 6 3000 >"$s/Grüße/Ελληνικά — ünïcödé.bin"
	rnd 7 2097152 >"$s/pagefile.sys"
	manyfiles "$s/Many" 15 100
}

if [ "$content" != empty ]; then
	mkdir -p "$stage"
	stage_basic "$stage"
	[ "$content" = full ] && stage_full "$stage"
	(cd "$stage" && mcopy -i "$out" -s -Q -m ./* ::/)
	if [ "$content" = full ]; then
		# Fragmented file: write one-cluster files, delete every other one,
		# then write a big file that has to fill the holes.
		mkdir -p "$tmp/frag"
		head -c "$cs" /dev/zero | tr '\0' F >"$tmp/one"
		for i in $(seq -w 0 127); do cp "$tmp/one" "$tmp/frag/F$i.BIN"; done
		mmd -i "$out" ::/Frag
		(cd "$tmp/frag" && mcopy -i "$out" -Q ./* ::/Frag/)
		mdel -i "$out" $(for i in $(seq 1 2 127); do printf '::/Frag/F%03d.BIN ' "$i"; done)
		# mtools continues after the FAT32 FSInfo "next free" hint; make the
		# hint unknown so that allocation starts at the first hole.
		if [ "$bits" = 32 ]; then
			perl -e 'open F, "+<", $ARGV[0] or die; read F, $b, 512;
				my ($bps) = unpack "x11 v", $b; my ($fsi) = unpack "x48 v", $b;
				seek F, $fsi * $bps + 0x1ec, 0; print F pack("V", 0xffffffff); close F or die' "$out"
		fi
		rnd 8 $((cs * 80)) >"$tmp/fragmented.bin"
		mcopy -i "$out" -Q "$tmp/fragmented.bin" ::/Frag/
	fi
fi
