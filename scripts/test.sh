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
# fuzz PKG TARGET: one run; a finding writes its input under testdata/fuzz.
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" 2>&1; }
# Go 1.26's fuzz coordinator can end a run that found nothing with a bare
# "context deadline exceeded" when -fuzztime expires on a busy machine
# (go.dev/issue/75804); such a run is repeated once. Any other failure, or a
# written failing input, fails the tests.
flake() { grep -q 'context deadline exceeded' <<<"$1" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' <<<"$1"; }
for pkg in ./image ./volume ./disk ./foreign/partclone ./foreign/ntfsclone ./anyimage ./seekz ./foreign/clonezilla; do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		if ! log=$(fuzz "$pkg" "$target"); then
			flake "$log" && log=$(fuzz "$pkg" "$target") || { echo "$log" >&2; exit 1; }
		fi
	done
done
