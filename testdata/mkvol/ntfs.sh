#!/bin/bash
# ntfs.sh OUT SIZE_MIB [CLUSTER [CONTENT [dirty] [hibernated]]]
#
# Builds an NTFS volume file with mkntfs and fills it through an ntfs-3g mount.
#   CLUSTER  cluster size in bytes, 0 = mkntfs default
#   CONTENT  empty | basic | full (see testdata/mkvol/README.md)
#   dirty       set the dirty flag in $Volume (and its $MFTMirr copy)
#   hibernated  hiberfil.sys begins with "hibr"
# File data is deterministic; volume serials and timestamps are not.
# Needs: mkntfs ntfs-3g (package ntfs-3g), openssl, perl, fusermount (fuse3).
# basic needs about 48 MiB, full about 128 MiB (256 MiB recommended).

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

[ $# -ge 2 ] || die "usage: ntfs.sh OUT SIZE_MIB [CLUSTER [CONTENT [dirty] [hibernated]]]"
out=$1 size=$2 cluster=${3:-0} content=${4:-basic}
shift $(($# < 4 ? $# : 4))
dirty=0 hibernated=0
for o in "$@"; do
	case $o in
	dirty) dirty=1 ;;
	hibernated) hibernated=1 ;;
	*) die "unknown option $o" ;;
	esac
done
case $content in empty | basic | full) ;; *) die "unknown content $content" ;; esac

need mkntfs ntfs-3g openssl perl awk

tmp=$(mktemp -d "$(stagedir)/mkvol-ntfs.XXXXXX")
mnt=$tmp/mnt
stage=$tmp/stage
pid=
cleanup() {
	if [ -n "$pid" ]; then
		fusermount -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

rm -f "$out"
truncate -s "${size}M" "$out"
copt=()
[ "$cluster" != 0 ] && copt=(-c "$cluster")
mkntfs -F -f -q "${copt[@]}" -L cbimg-test "$out" >"$tmp/mkntfs.log" 2>&1 ||
	{ cat "$tmp/mkntfs.log" >&2; die "mkntfs failed"; }

# Cluster size as formatted (for chunked writes below).
cs=$(perl -e 'open F, "<", $ARGV[0] or die; read F, $b, 512;
	my ($bps, $spc) = unpack "x11 v C", $b;
	$spc = 1 << (256 - $spc) if $spc > 0x80; print $bps * $spc' "$out")

mount_vol() {
	mkdir -p "$mnt"
	# no_detach keeps ntfs-3g in the foreground so that we can wait for it to
	# finish writing after the unmount.
	ntfs-3g -o "no_detach,streams_interface=windows,compression,noatime" "$out" "$mnt" >"$tmp/ntfs-3g.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$tmp/ntfs-3g.log" >&2; die "ntfs-3g failed"; }
		sleep 0.02
	done
	die "ntfs-3g mount timed out"
}

umount_vol() {
	sync
	fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
	wait "$pid"
	pid=
}

# fragment DIR PIECE: makes DIR/fragmented.bin (64 fragments) and
# DIR/attrlist.bin (600 fragments of PIECE bytes: its runlist no longer fits
# in one MFT record, so it gets an $ATTRIBUTE_LIST). ntfs-3g places new files
# in its own order and grows a file at its end when it can, so: reserve a
# region with one file, fill all other free space, free the region, and grow
# each target file in turn with a filler file, so that the two alternate
# through the region; then delete fillers and padding.
fragment() {
	local d=$1 piece=$2
	mkdir -p "$d"
	for f in fragmented.bin attrlist.bin filler1 filler2; do : >"$d/$f"; done
	dd if=/dev/zero of="$d/reserve" bs="$piece" count=1400 status=none
	dd if=/dev/zero of="$d/pad" bs=1M status=none 2>/dev/null || true
	dd if=/dev/zero of="$d/pad" bs=64K oflag=append conv=notrunc status=none 2>/dev/null || true
	dd if=/dev/zero of="$d/pad" bs="$piece" oflag=append conv=notrunc status=none 2>/dev/null || true
	rm "$d/reserve"
	perl -e '
		my ($d, $cs) = @ARGV;
		for my $x (["fragmented.bin", "filler1", 64, 40], ["attrlist.bin", "filler2", 600, 41]) {
			my ($name, $filler, $n, $seed) = @$x;
			open my $r, "-|", "head -c " . ($cs * $n) . " /dev/zero | openssl enc -aes-128-ctr -nosalt -K " .
				sprintf("%032x", $seed) . " -iv 00000000000000000000000000000000" or die;
			open my $f, ">>", "$d/$name" or die "$name: $!";
			open my $g, ">>", "$d/$filler" or die "$filler: $!";
			for my $i (1 .. $n) {
				read($r, my $buf, $cs) == $cs or die "short keystream";
				syswrite($f, $buf) == $cs or die "write $name: $!";
				syswrite($g, $buf) == $cs or die "write $filler: $!";
			}
			close $f or die "$name: $!";
			close $g or die "$filler: $!";
		}
	' "$d" "$piece"
	rm "$d/pad" "$d/filler1" "$d/filler2"
}

# reparse FILE TAG SUBST PRINT [FLAGS]: gives FILE a Windows reparse point
# (symlink 0xA000000C, junction 0xA0000003); ntfs-3g itself makes
# Interix-style symlinks.
reparse() {
	python3 - "$@" <<'PY'
import os, struct, sys
path, tag, subst, prnt = sys.argv[1], int(sys.argv[2], 0), sys.argv[3], sys.argv[4]
s, p = subst.encode("utf-16-le"), prnt.encode("utf-16-le")
body = struct.pack("<HHHH", 0, len(s), len(s), len(p))
if tag == 0xA000000C:
    body += struct.pack("<I", int(sys.argv[5], 0) if len(sys.argv) > 5 else 0)
body += s + p
if tag == 0xA0000003:
    body += b"\0\0"
os.setxattr(path, "system.ntfs_reparse_data", struct.pack("<IHH", tag, len(body), 0) + body)
PY
}

stage_basic() {
	local s=$1
	mkdir -p "$s/Documents" "$s/Data/Nested/a/b/c/d"
	: >"$s/Documents/empty.txt"
	printf x >"$s/Documents/one.txt"
	rnd 1 600 >"$s/Documents/resident-600.bin"
	rnd 2 4095 >"$s/Data/4095.bin"
	rnd 3 4097 >"$s/Data/4097.bin"
	rnd 4 1048576 >"$s/Data/1MiB.bin"
	rnd 5 10485760 >"$s/Data/10MiB.bin"
	text 3000 >"$s/Documents/readme.txt"
	text 10 >"$s/Data/Nested/a/b/c/d/deep.txt"
	rnd 6 8388608 >"$s/pagefile.sys"
	if [ "$hibernated" = 1 ]; then
		{ printf hibr; rnd 7 8388604; } >"$s/hiberfil.sys"
	else
		{ printf wake; rnd 7 8388604; } >"$s/hiberfil.sys"
	fi
	rnd 8 1048576 >"$s/swapfile.sys"
}

stage_full() {
	local s=$1
	mkdir -p "$s/Backups" "$s/Sparse" "$s/Links" "$s/Unicode/Grüße" "$s/Many" "$s/BigDir"
	cbimagic 1048568 >"$s/Backups/old.cbi"
	# Sparse: data at 0, 3 MiB and 7 MiB in an 8 MiB file.
	f=$s/Sparse/sparse.bin
	rnd 20 65536 >"$f"
	rnd 21 65536 | dd of="$f" bs=65536 seek=48 conv=notrunc status=none
	rnd 22 65536 | dd of="$f" bs=65536 seek=112 conv=notrunc status=none
	truncate -s 8M "$f"
	text 100 >"$s/Links/target.txt"
	ln "$s/Links/target.txt" "$s/Links/hardlink.txt"
	ln -s target.txt "$s/Links/symlink.txt"
	ln -s ../Documents "$s/Links/dirlink"
	text 20 >"$s/Unicode/Grüße/日本語.txt"
	rnd 23 5000 >"$s/Unicode/Ελληνικά — ünïcödé.bin"
	manyfiles "$s/Many" 30 100
	awk -v d="$s/BigDir" 'BEGIN { for (i = 0; i < 12500; i++) { p = sprintf("%s/entry-%05d.txt", d, i); printf "" > p; close(p) } }'
}

if [ "$content" != empty ]; then
	mkdir -p "$stage"
	stage_basic "$stage"
	[ "$content" = full ] && stage_full "$stage"
	mount_vol
	cp -a --no-preserve=ownership,mode "$stage/." "$mnt/"
	if [ "$content" = full ]; then
		# Alternate data streams.
		text 5 >"$mnt/Documents/readme.txt:summary"
		rnd 30 20000 >"$mnt/Data/4097.bin:big stream"
		# Compressed files: new files in a directory with
		# FILE_ATTRIBUTE_COMPRESSED (0x800) are compressed (clusters <= 4 KiB).
		mkdir "$mnt/Compressed"
		python3 -c 'import os, sys; os.setxattr(sys.argv[1], "system.ntfs_attrib_be", bytes.fromhex("00000810"))' "$mnt/Compressed"
		text 20000 >"$mnt/Compressed/text.txt"
		# Compressed with unwritten (sparse) compression units between data.
		f=$tmp/sparse-text.bin
		text 1000 >"$f"
		text 1000 | dd of="$f" bs=65536 seek=48 conv=notrunc status=none
		text 1000 | dd of="$f" bs=65536 seek=112 conv=notrunc status=none
		truncate -s 8M "$f"
		cp --sparse=always "$f" "$mnt/Compressed/sparse-compressed.txt"
		# Windows reparse points: a relative symlink and a junction.
		: >"$mnt/Links/winsymlink.txt"
		reparse "$mnt/Links/winsymlink.txt" 0xA000000C target.txt target.txt 1
		mkdir "$mnt/Links/junction"
		reparse "$mnt/Links/junction" 0xA0000003 '\??\C:\Documents' 'C:\Documents'
		# Files under ~1 KiB stay resident: use at least 1 KiB pieces.
		fragment "$mnt/Fragmented" $((cs < 1024 ? 1024 : cs))
	fi
	umount_vol
	# Give back the disk space of the zeros written by fragment.
	[ "$content" = full ] && fallocate --dig-holes "$out"
fi

if [ "$dirty" = 1 ]; then
	# Set VOLUME_IS_DIRTY in $VOLUME_INFORMATION of MFT record 3, in $MFT
	# and in $MFTMirr (ntfs-3g compares the two).
	perl -e '
		open F, "+<", $ARGV[0] or die "$ARGV[0]: $!"; binmode F;
		read F, my $b, 512;
		my ($bps, $spc) = unpack "x11 v C", $b;
		$spc = 1 << (256 - $spc) if $spc > 0x80;
		my $cs = $bps * $spc;
		my ($mft, $mirr, $cpr) = unpack "x48 Q< Q< c", $b;
		my $rs = $cpr < 0 ? 1 << -$cpr : $cpr * $cs;
		for my $base ($mft * $cs, $mirr * $cs) {
			my $pos = $base + 3 * $rs;
			seek F, $pos, 0; read(F, my $r, $rs) == $rs or die "short read";
			substr($r, 0, 4) eq "FILE" or die "record 3 at $pos is not FILE";
			my $off = unpack "v", substr($r, 0x14, 2);
			my $done = 0;
			while ($off + 8 <= $rs) {
				my ($type, $len) = unpack "V V", substr($r, $off, 8);
				last if $type == 0xffffffff || $len == 0;
				if ($type == 0x70) {
					my $vo = unpack "v", substr($r, $off + 0x14, 2);
					my $fo = $off + $vo + 0x0a;
					die "flags under the update sequence" if $fo % $bps == $bps - 2;
					my $fl = unpack("v", substr($r, $fo, 2)) | 1;
					seek F, $pos + $fo, 0; print F pack("v", $fl); $done = 1;
					last;
				}
				$off += $len;
			}
			$done or die "no \$VOLUME_INFORMATION in record 3";
		}
		close F or die;
	' "$out"
fi
