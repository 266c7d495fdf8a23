#!/usr/bin/env bash
# Runs cbimg's whole test suite: unit tests, real NTFS/FAT volumes built with
# mkntfs + ntfs-3g and mkfs.fat + mtools, real FUSE mounts, fuzz seeds.
# Needs root (ntfs-3g and FUSE mounts, loop devices).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin
gofmt_out=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$gofmt_out" ] || { echo "gofmt needed: $gofmt_out" >&2; exit 1; }
go vet ./...
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -o /dev/null ./...
go test -timeout 60m "$@" ./...
# Every fuzz target briefly beyond its seeds (longer: FUZZTIME=10m scripts/test.sh).
fuzztime=${FUZZTIME:-5s}
for pkg in ./image ./volume ./disk; do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		log=$(go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg" 2>&1) || { echo "$log" >&2; exit 1; }
	done
done
