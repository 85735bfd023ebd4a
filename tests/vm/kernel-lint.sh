#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   kernel-lint.sh [OUTDIR]
#
# The kernel's own checks on kernel/ (vfio_select, its headers and the test fixtures):
# scripts/checkpatch.pl --file of the same 6.12 kernel the VM suite boots, and sparse
# (make C=2) against that kernel's headers. Any error or warning of either fails.
#
# checkpatch.pl ships in Debian's linux-source-6.12, not in the headers: fetch-source.sh
# unpacks its scripts/ folder of the same build into the shared cache (VFIOD_VM_CACHE,
# default /var/tmp/vfiod-vm).
# VFIOD_VM_OFFLINE=1 uses the cache only.
set -euo pipefail

die() {
	echo "kernel-lint: $*" >&2
	exit 1
}

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
OUT=${1:-${TMPDIR:-/tmp}/vfiod-kernel-lint-$(id -u)}
command -v sparse >/dev/null || die "sparse is not installed (tests/setup.sh)"

"$HERE/fetch-kernel.sh"
KV=$(cat "$CACHE/KV")
KDIR="$CACHE/root/usr/src/linux-headers-$KV"
LINT="$CACHE/lint"
# checkpatch.pl of that exact build, unpacked once.
"$HERE/fetch-source.sh" "$LINT" scripts
SRCVER=$(cut -d' ' -f1,2 "$LINT/.unpacked") # "linux-source-X.Y VERSION"

rc=0
mapfile -t files < <(cd "$TOP" && find kernel -type f -name '*.[ch]' | sort)
[ ${#files[@]} -gt 0 ] || die "no sources under kernel/"

echo "# checkpatch.pl --file of $SRCVER on ${#files[@]} files"
out=$(cd "$TOP" && perl "$LINT/scripts/checkpatch.pl" --no-tree --file --terse --show-types \
	--no-summary "${files[@]}" 2>&1) || true
if [ -n "$out" ]; then
	printf '%s\n' "$out"
	echo "not ok - checkpatch.pl: $(grep -c . <<<"$out") findings"
	rc=1
else
	echo "ok - checkpatch.pl: no error, no warning"
fi

# sparse on a copy of the sources (build products stay out of the tree).
rm -rf "$OUT"
mkdir -p "$OUT"
cp -pR "$TOP/kernel/." "$OUT/"
for d in vfio_select fixtures; do
	log="$OUT/$d/sparse.log"
	if ! make -C "$KDIR" M="$OUT/$d" C=2 CHECK=sparse CONFIG_DEBUG_INFO_BTF_MODULES= \
		-j2 modules >"$log" 2>&1; then
		cat "$log" >&2
		die "building kernel/$d for sparse failed"
	fi
	found=$(grep -E '(warning|error):' "$log" || true)
	if [ -n "$found" ]; then
		printf '%s\n' "$found"
		echo "not ok - sparse on kernel/$d: $(grep -c . <<<"$found") findings"
		rc=1
	else
		echo "ok - sparse on kernel/$d: no error, no warning"
	fi
done
rm -rf "$OUT"
exit $rc
