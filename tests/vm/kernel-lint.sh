#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   kernel-lint.sh [OUTDIR]
#
# The kernel's own checks on kernel/ (vfio_select, its headers and the test fixtures):
# scripts/checkpatch.pl --file of the same 6.12 kernel the VM suite boots, and sparse
# (make C=2) against that kernel's headers. Any error or warning of either fails.
#
# checkpatch.pl ships in Debian's linux-source-6.12, not in the headers: it is fetched
# the way fetch-kernel.sh fetches the kernel (the private apt configuration it writes,
# the archive URI read from the system's own sources at run time), and only its scripts/
# folder is kept, in the shared cache (VFIOD_VM_CACHE, default /var/tmp/vfiod-vm).
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
ver=$(cut -d' ' -f2 "$CACHE/root/.unpacked")
series=${KV%%.*}.$(cut -d. -f2 <<<"$KV")
SRCPKG=linux-source-$series
LINT="$CACHE/lint"

# checkpatch.pl of that exact build, unpacked once.
exec 9>"$CACHE/.lint-lock"
flock 9
if [ "$(cat "$LINT/.unpacked" 2>/dev/null)" != "$SRCPKG $ver" ]; then
	[ "${VFIOD_VM_OFFLINE:-0}" != 1 ] || die "VFIOD_VM_OFFLINE=1 but no $SRCPKG $ver in $LINT"
	APT="$CACHE/apt"
	[ -s "$APT/sources.list" ] || die "no $APT/sources.list (fetch-kernel.sh writes it)"
	# shellcheck source=kernel-apt.sh
	. "$HERE/kernel-apt.sh"
	rm -rf "$LINT.new"
	mkdir -p "$LINT.new/deb"
	(cd "$LINT.new/deb" && apt-get "${APT_OPTS[@]}" -qq download "$SRCPKG=$ver") \
		>"$LINT.new/download.log" 2>&1 || {
		cat "$LINT.new/download.log" >&2
		die "downloading $SRCPKG $ver failed"
	}
	deb=$(echo "$LINT.new"/deb/*.deb)
	[ -f "$deb" ] || die "no $SRCPKG .deb downloaded"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO "./usr/src/$SRCPKG.tar.xz" |
		tar -xJ -C "$LINT.new" --strip-components=1 "$SRCPKG/scripts" ||
		die "unpacking scripts/ of $SRCPKG failed"
	[ -f "$LINT.new/scripts/checkpatch.pl" ] || die "no checkpatch.pl in $SRCPKG"
	rm -rf "$LINT.new/deb"
	echo "$SRCPKG $ver" >"$LINT.new/.unpacked"
	rm -rf "$LINT"
	mv "$LINT.new" "$LINT"
fi
exec 9>&-

rc=0
mapfile -t files < <(cd "$TOP" && find kernel -type f -name '*.[ch]' | sort)
[ ${#files[@]} -gt 0 ] || die "no sources under kernel/"

echo "# checkpatch.pl --file of $SRCPKG $ver on ${#files[@]} files"
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
