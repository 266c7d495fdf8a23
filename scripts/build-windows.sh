#!/usr/bin/env bash
# Builds cbimg.exe for 64-bit Windows and WinPE: pure Go, no cgo, one file.
# Usage: scripts/build-windows.sh [OUTPUT]     (default: dist/cbimg.exe)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
out=${1:-dist/cbimg.exe}
mkdir -p "$(dirname "$out")"
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out" ./cmd/cbimg
echo "$out"
