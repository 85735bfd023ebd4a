#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   fetch-source.sh DEST PART...
#
# Unpack PARTs (paths inside the kernel tree: folders or files) of Debian's
# linux-source-X.Y of exactly the build fetch-kernel.sh unpacked into DEST, once: a no-op
# when DEST already holds those parts of that version. The .deb is downloaded through the
# private apt configuration fetch-kernel.sh writes (never the system's sources) and kept in
# the shared cache, so that every user of the source (kernel-lint.sh's checkpatch.pl,
# build-iommufd.sh's vfio stack) downloads it once. VFIOD_VM_OFFLINE=1 uses the cache only.
set -euo pipefail

die() {
	echo "fetch-source: $*" >&2
	exit 1
}

[ $# -ge 2 ] || die "usage: fetch-source.sh DEST PART..."
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
DEST=$1
shift
PARTS=("$@")

[ -s "$CACHE/KV" ] || "$HERE/fetch-kernel.sh"
KV=$(cat "$CACHE/KV")
ver=$(cut -d' ' -f2 "$CACHE/root/.unpacked")
series=${KV%%.*}.$(cut -d. -f2 <<<"$KV")
SRCPKG=linux-source-$series
stamp="$SRCPKG $ver ${PARTS[*]}"

exec 9>"$CACHE/.source-lock"
flock 9
[ "$(cat "$DEST/.unpacked" 2>/dev/null)" != "$stamp" ] || exit 0

DEBS="$CACHE/source-deb"
deb="$DEBS/${SRCPKG}_${ver}_all.deb"
if [ ! -f "$deb" ]; then
	[ "${VFIOD_VM_OFFLINE:-0}" != 1 ] || die "VFIOD_VM_OFFLINE=1 but no $SRCPKG $ver in $DEBS"
	APT="$CACHE/apt"
	[ -s "$APT/sources.list" ] || die "no $APT/sources.list (fetch-kernel.sh writes it)"
	# shellcheck source=kernel-apt.sh
	. "$HERE/kernel-apt.sh"
	rm -rf "$DEBS.new"
	mkdir -p "$DEBS.new"
	(cd "$DEBS.new" && apt-get "${APT_OPTS[@]}" -qq download "$SRCPKG=$ver") \
		>"$CACHE/source-download.log" 2>&1 || {
		cat "$CACHE/source-download.log" >&2
		die "downloading $SRCPKG $ver failed"
	}
	got=$(echo "$DEBS.new"/*.deb)
	[ -f "$got" ] || die "no $SRCPKG .deb downloaded"
	# Only this build's .deb is kept.
	rm -rf "$DEBS"
	mkdir -p "$DEBS"
	mv "$got" "$deb"
	rm -rf "$DEBS.new"
fi

rm -rf "$DEST.new"
mkdir -p "$DEST.new"
dpkg-deb --fsys-tarfile "$deb" |
	tar -xO "./usr/src/$SRCPKG.tar.xz" |
	tar -xJ -C "$DEST.new" --strip-components=1 "${PARTS[@]/#/$SRCPKG/}" ||
	die "unpacking ${PARTS[*]} of $SRCPKG failed"
for p in "${PARTS[@]}"; do
	[ -e "$DEST.new/$p" ] || die "no $p in $SRCPKG"
done
echo "$stamp" >"$DEST.new/.unpacked"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
