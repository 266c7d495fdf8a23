#!/usr/bin/env bash
# Prepares Wine on Debian for running cbimg.exe on Linux: installs wine64 and
# the MinGW-w64 compiler when they are missing (as root; pass --no-install to
# only check), creates a Wine prefix, and builds the bcryptprimitives.dll
# stand-in from testdata/wine into its system32 (Wine 8 lacks it, and Go
# programs need its ProcessPrng). Only 64-bit Wine is needed.
# Usage: scripts/wine-setup.sh [--no-install] [PREFIX]   (default: a new temp dir)
# Prints the prefix; then run: WINEPREFIX=PREFIX WINEDEBUG=-all wine cbimg.exe ...
set -euo pipefail
cd "$(dirname "$0")/.."
install=1
if [ "${1:-}" = --no-install ]; then install=0; shift; fi
prefix=${1:-$(mktemp -d /tmp/cbimg-wine.XXXXXX)}

pkgs=(wine wine64 gcc-mingw-w64-x86-64)
if ! command -v wine >/dev/null || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
	if [ $install = 0 ]; then
		echo "wine-setup: wine or x86_64-w64-mingw32-gcc is missing: apt-get install ${pkgs[*]}" >&2
		exit 1
	fi
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${pkgs[@]}"
fi

mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml=;winemenubuilder.exe=d'
unset DISPLAY WAYLAND_DISPLAY
# The first start creates the prefix (about 10 s); wine32 is not needed.
wineboot --init >/dev/null 2>&1 || { echo "wine-setup: wineboot failed in $prefix" >&2; exit 1; }
sys32=$prefix/drive_c/windows/system32
[ -d "$sys32" ] || { echo "wine-setup: $sys32 was not created" >&2; exit 1; }
x86_64-w64-mingw32-gcc -O2 -shared -s -o "$sys32/bcryptprimitives.dll" \
	testdata/wine/bcryptprimitives.c testdata/wine/bcryptprimitives.def -ladvapi32
# wineboot returns before the prefix is complete: wait for its processes
# (and the server) to finish, or the next start redoes the work.
wineserver -w
echo "$prefix"
