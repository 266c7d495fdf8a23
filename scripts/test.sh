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
# The tests run verbose into a log; the screen shows each package's result
# and every failure, and the run ends with one summary line.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
go test -v -timeout 60m "$@" ./... 2>&1 | tee "$log" | grep --line-buffered -E '^(ok |FAIL|\?|--- FAIL|panic:)'
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^\s*--- PASS:' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL:' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP:' "$log" || true)
summary() { echo "tests: $passed passed, $failed failed, $skipped skipped"; }
if [ "$rc" != 0 ]; then
	echo "failures (full log: go test -v ./PKG):" >&2
	grep -E '^\s*--- FAIL|_test\.go:[0-9]+:|^panic:|^FAIL' "$log" >&2 || true
	[ "$failed" != 0 ] || failed=1
	summary
	exit 1
fi
# Every fuzz target briefly beyond its seeds (longer: FUZZTIME=10m scripts/test.sh).
fuzztime=${FUZZTIME:-5s}
# fuzz PKG TARGET: one run; a finding writes its input under testdata/fuzz.
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" 2>&1; }
# Go 1.26's fuzz coordinator can end a run that found nothing with a bare
# "context deadline exceeded" when -fuzztime expires on a busy machine
# (go.dev/issue/75804); such a run is repeated once. Any other failure, or a
# written failing input, fails the tests.
flake() { grep -q 'context deadline exceeded' <<<"$1" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' <<<"$1"; }
for pkg in ./image ./volume ./disk ./foreign/partclone ./foreign/ntfsclone ./anyimage ./browse ./vdisk/vhd ./vdisk/vhdx ./vdisk/qcow2 ./vdisk/vmdk ./vdisk/ewf ./seekz ./foreign/clonezilla ./nbd; do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		echo "fuzz $pkg $target for $fuzztime"
		if ! flog=$(fuzz "$pkg" "$target"); then
			if flake "$flog"; then
				echo "fuzz $pkg $target: the coordinator stopped early (a known Go fuzz flake); once more"
			fi
			flake "$flog" && flog=$(fuzz "$pkg" "$target") || {
				echo "$flog" >&2
				failed=$((failed + 1))
				summary
				exit 1
			}
		fi
		passed=$((passed + 1))
	done
done
summary
