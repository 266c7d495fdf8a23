# Shared helpers for ntfs.sh and fat.sh (sourced, not run).

set -eu
export LC_ALL=C.UTF-8

die() { echo "$0: $*" >&2; exit 1; }

need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || die "missing tool $t"
	done
}

# stagedir: where to put scratch files; tmpfs makes creating thousands of
# small files about ten times faster than a disk file system.
stagedir() {
	if [ -n "${MKVOL_STAGE:-}" ]; then
		echo "$MKVOL_STAGE"
	elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
		echo /dev/shm
	else
		echo "${TMPDIR:-/tmp}"
	fi
}

# rnd SEED BYTES: deterministic pseudo-random bytes (AES-128-CTR keystream of
# a key derived from SEED), so fixtures are the same on every machine.
rnd() {
	head -c "$2" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$1")" -iv 00000000000000000000000000000000
}

# text LINES: compressible, deterministic text.
text() {
	awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) printf "%06d the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs\n", i }'
}

# magic BYTES: an old cbimg image: the magic "CBIMG\x1a\n\0", then random data.
cbimagic() {
	printf 'CBIMG\032\n\000'
	rnd 77 "$1"
}

# manyfiles DIR NDIRS PERDIR: small files spread over subdirectories, made by
# one awk process (much faster than one shell command per file).
manyfiles() {
	awk -v top="$1" -v nd="$2" -v per="$3" 'BEGIN {
		for (d = 0; d < nd; d++) {
			dir = sprintf("%s/d%03d", top, d)
			system("mkdir -p \"" dir "\"")
			for (f = 0; f < per; f++) {
				p = sprintf("%s/f%04d.txt", dir, f)
				printf "file %d of dir %d\n", f, d > p
				close(p)
			}
		}
	}'
}
