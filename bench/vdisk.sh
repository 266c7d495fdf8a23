#!/bin/bash
# vdisk.sh: reading a partition out of a virtual disk against the raw disk.
#   1. sequential read of the partition: part1.raw of `cbimg mount` over a
#      dynamic VHDX and a qcow2, against part1.raw over a fixed VHD (the
#      raw disk's bytes plus a footer: the raw disk through the same mount)
#      and against the raw disk file read directly with dd;
#   2. `cbimg backup DISK@1` out of the qcow2 against out of the raw disk.
# Usage: sudo bench/vdisk.sh [--size GiB] [--runs N] [--workdir DIR] [--cbimg PATH]
# A benchmark, not a test; it installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
size=1 runs=3 work=/var/tmp/cbimg-bench-vdisk cbimg=""
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift ;;
	--runs) runs=$2; shift ;;
	--workdir) work=$2; shift ;;
	--cbimg) cbimg=$2; shift ;;
	*) echo "usage: $0 [--size GiB] [--runs N] [--workdir DIR] [--cbimg PATH]" >&2; exit 2 ;;
	esac
	shift
done
for t in qemu-img mkntfs ntfs-3g sfdisk openssl fusermount3; do
	command -v $t >/dev/null || { echo "missing $t (apt-get install qemu-utils ntfs-3g fdisk openssl fuse3)" >&2; exit 1; }
done
mkdir -p "$work"
if [ -z "$cbimg" ]; then
	cbimg=$work/cbimg
	go build -o "$cbimg" ./cmd/cbimg
fi
mib=$(awk -v s="$size" 'BEGIN { printf "%d", s * 1024 }')
disk=$work/disk.raw vol=$work/vol.ntfs mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { "$cbimg" umount "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
if [ ! -f "$disk" ] || [ "$(stat -c %s "$disk")" != $(((mib + 1) << 20)) ]; then
	rm -f "$disk" "$vol"
	truncate -s "${mib}M" "$vol"
	mkntfs -q -F -f "$vol" >/dev/null 2>&1
	ntfs-3g "$vol" "$mnt"
	# Files fill about 60% of the volume: random data, so that nothing
	# compresses and every cluster is read.
	n=$((mib * 6 / 10 / 16))
	for i in $(seq 1 "$n"); do openssl rand -out "$mnt/f$i" $((16 << 20)); done
	fusermount3 -u "$mnt"
	truncate -s $(((mib + 1) << 20)) "$disk"
	printf 'label: dos\nstart=2048, type=7\n' | sfdisk -q "$disk"
	dd if="$vol" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
	rm -f "$vol"
fi
qemu-img convert -f raw -O vhdx "$disk" "$work/disk.vhdx"
qemu-img convert -f raw -O qcow2 "$disk" "$work/disk.qcow2"
# A fixed VHD is the raw bytes and a 512-byte footer; qemu-img writes one.
qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$disk" "$work/disk.vhd"
now() { date +%s.%N; }
# best of N runs, in seconds
best() {
	local b=""
	for _ in $(seq 1 "$runs"); do
		local s e
		s=$(now)
		"$@" >/dev/null
		e=$(now)
		b=$(awk -v b="$b" -v d="$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')" 'BEGIN{ if (b=="" || d<b) print d; else print b }')
	done
	echo "$b"
}
part=$((mib << 20))
readraw() { dd if="$disk" bs=1M skip=1 count="$mib" status=none of=/dev/null; }
readmount() { dd if="$mnt/part1.raw" bs=1M status=none of=/dev/null; }
echo "partition: $mib MiB NTFS, about 60% used, $runs runs each (best shown); machine load not controlled"
t_raw=$(best readraw)
printf '%-44s %8.2f s  %7.1f MiB/s\n' "read partition from the raw disk file" "$t_raw" "$(awk -v m="$mib" -v t="$t_raw" 'BEGIN{print m/t}')"
t_base=""
for f in vhd vhdx qcow2; do
	"$cbimg" mount "$work/disk.$f" "$mnt" >/dev/null
	t=$(best readmount)
	"$cbimg" umount "$mnt" >/dev/null
	[ -n "$t_base" ] || t_base=$t
	printf '%-44s %8.2f s  %7.1f MiB/s  %.2fx the fixed VHD (raw) mount\n' "read part1.raw of cbimg mount disk.$f" "$t" "$(awk -v m="$mib" -v t="$t" 'BEGIN{print m/t}')" "$(awk -v a="$t_base" -v b="$t" 'BEGIN{print a/b}')"
done
bk() { rm -f "$work/b.cbi"; "$cbimg" backup -q "$1" "$work/b.cbi"; }
t_braw=$(best bk "$disk@1")
t_bq=$(best bk "$work/disk.qcow2@1")
printf '%-44s %8.2f s\n' "cbimg backup disk.raw@1" "$t_braw"
printf '%-44s %8.2f s  %.2fx raw\n' "cbimg backup disk.qcow2@1" "$t_bq" "$(awk -v a="$t_braw" -v b="$t_bq" 'BEGIN{print b/a}')"
rm -f "$work/b.cbi"
