#!/usr/bin/env bash
# Installs the Debian packages cbimg's tests and demo need (as root), unless
# they are all present already, and fetches the Go modules.
set -euo pipefail
pkgs=(ntfs-3g dosfstools mtools sleuthkit partclone fuse3 zstd openssl perl python3 util-linux gawk attr fdisk gdisk time hyperfine wine wine64 gcc-mingw-w64-x86-64 tmux fusefat e2fsprogs exfatprogs exfat-fuse qemu-utils libnbd-bin nbd-client ewf-tools pigz xz-utils bzip2 lz4)
# Clonezilla's ocs-sr makes real image directories for the tests; its
# recommended packages (a whole DRBL server) are not needed.
norec=(clonezilla)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}" >&2
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
missing=()
for p in "${norec[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}" >&2
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "Go 1.26 or newer is needed (https://go.dev/dl/, unpacked to /usr/local/go)" >&2; exit 1; }
go mod download
