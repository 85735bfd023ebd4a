#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Fetch Debian's bookworm-backports kernel (image, headers, kbuild) and unpack it into
# $VFIOD_VM_CACHE/root for the VM tests. Idempotent: the .debs are cached and the unpack is
# skipped when the tree already holds this exact version. Writes the kernel release to
# $VFIOD_VM_CACHE/KV and prints nothing unless something goes wrong.
#
# The archive URI is read from the system's own apt sources at run time; the suite is
# reached through a private apt configuration, never by editing the system's sources.
#
# Environment:
#   VFIOD_VM_CACHE     cache folder (default /var/tmp/vfiod-vm)
#   VFIOD_VM_APT_URI   Debian archive URI (default: taken from /etc/apt/sources*)
#   VFIOD_VM_OFFLINE=1 do not contact the archive; use what the cache holds
set -euo pipefail

CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
SUITE=bookworm-backports
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

die() {
	echo "fetch-kernel: $*" >&2
	exit 1
}

# The first Debian archive URI of the system's sources whose suite is a release's base suite
# (not -security, not a third-party repository).
system_uri() {
	local f

	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			uris = ""; suites = ""; types = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
				if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
				if ($i ~ /^Types:/) { types = $i }
				if ($i ~ /^Enabled:[ \t]*no/) { next }
			}
			if (types !~ /(^|[ \t])deb([ \t]|$)/) next
			n = split(suites, s, /[ \t]+/)
			for (j = 1; j <= n; j++)
				if (s[j] ~ /^(bookworm|trixie|forky|sid|stable|testing|unstable)$/) {
					split(uris, u, /[ \t]+/); print u[1]; exit
				}
		}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [opts] URI suite components...
		sed -E -n 's/^[ \t]*deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+)[ \t]+(bookworm|trixie|forky|sid|stable|testing|unstable)[ \t].*/\2/p' "$f"
	done
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

APT="$CACHE/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$CACHE/debs"
# shellcheck source=kernel-apt.sh
. "$(dirname "$0")/kernel-apt.sh"

if [ "${VFIOD_VM_OFFLINE:-0}" != 1 ]; then
	uri=${VFIOD_VM_APT_URI:-$(system_uri | head -n1)}
	[ -n "$uri" ] || die "no Debian archive URI found in /etc/apt/sources*"
	opts=
	[ -r "$KEYRING" ] && opts="[signed-by=$KEYRING] "
	echo "deb ${opts}${uri} $SUITE main" >"$APT/sources.list.new"
	mv "$APT/sources.list.new" "$APT/sources.list"

	if ! apt-get "${APT_OPTS[@]}" -qq update >"$APT/update.log" 2>&1; then
		if [ -s "$CACHE/KV" ] && [ -e "$CACHE/root/.unpacked" ]; then
			echo "fetch-kernel: apt update failed, using cached $(cat "$CACHE/KV")" >&2
			exit 0
		fi
		cat "$APT/update.log" >&2
		die "apt-get update of $SUITE failed"
	fi
elif [ -s "$CACHE/KV" ] && [ -e "$CACHE/root/.unpacked" ]; then
	exit 0
else
	die "VFIOD_VM_OFFLINE=1 but nothing is cached in $CACHE"
fi

# linux-image-amd64 depends on exactly one linux-image-KV.
kv=$(apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null |
	sed -n -E 's/^[ \t]*Depends:[ \t]*linux-image-([0-9][^ \t]*-amd64)$/\1/p' | head -n1)
[ -n "$kv" ] || die "could not resolve linux-image-amd64 in $SUITE"
ver=$(apt-cache "${APT_OPTS[@]}" show "linux-image-$kv" 2>/dev/null |
	sed -n 's/^Version: //p' | head -n1)
[ -n "$ver" ] || die "no version for linux-image-$kv"
base=${kv%-amd64}
pkgs=("linux-image-$kv" "linux-headers-$kv" "linux-headers-$base-common" "linux-kbuild-$base")
stamp="$kv $ver"

if [ -s "$CACHE/KV" ] && [ "$(cat "$CACHE/root/.unpacked" 2>/dev/null)" = "$stamp" ] &&
	[ "$(cat "$CACHE/KV")" = "$kv" ]; then
	exit 0
fi

# Download what is missing. --print-uris gives: 'URI' FILE SIZE HASH, but only for files
# not already in the current folder: ask from an empty one.
mkdir -p "$APT/empty"
mapfile -t uris < <(cd "$APT/empty" &&
	apt-get "${APT_OPTS[@]}" -qq --print-uris download "${pkgs[@]/%/=$ver}")
cd "$CACHE/debs"
[ "${#uris[@]}" -eq "${#pkgs[@]}" ] || die "apt-get --print-uris gave ${#uris[@]} entries"
files=()
want=()
for line in "${uris[@]}"; do
	read -r _ file size _ <<<"$line"
	files+=("$file")
	if [ "$(stat -c %s "$file" 2>/dev/null || echo 0)" != "$size" ]; then
		want+=("${file%%_*}=$ver")
	fi
done
if [ "${#want[@]}" -gt 0 ]; then
	if ! apt-get "${APT_OPTS[@]}" -qq download "${want[@]}" >"$APT/download.log" 2>&1; then
		cat "$APT/download.log" >&2
		die "download failed"
	fi
fi
# Drop .debs of older builds.
for f in *.deb; do
	[ -e "$f" ] || continue
	keep=0
	for g in "${files[@]}"; do
		[ "$f" = "$g" ] && keep=1
	done
	[ $keep = 1 ] || rm -f "$f"
done

# Unpack into a fresh folder, then swap it in.
rm -rf "$CACHE/root.new"
mkdir "$CACHE/root.new"
for f in "${files[@]}"; do
	dpkg-deb -x "$f" "$CACHE/root.new"
done
hdr="$CACHE/root.new/usr/src/linux-headers-$kv"
[ -f "$hdr/Makefile" ] || die "no $hdr/Makefile"
[ -f "$CACHE/root.new/boot/vmlinuz-$kv" ] || die "no vmlinuz-$kv"
# The per-flavour headers include the common ones by absolute path; point them at the tree.
sed -i "s|^include /usr/src/|include $CACHE/root/usr/src/|" "$hdr/Makefile"
echo "$stamp" >"$CACHE/root.new/.unpacked"

rm -rf "$CACHE/root.old"
[ -e "$CACHE/root" ] && mv "$CACHE/root" "$CACHE/root.old"
mv "$CACHE/root.new" "$CACHE/root"
rm -rf "$CACHE/root.old"
# Initramfs images of older kernels (run.sh makes the current one on demand).
find "$CACHE" -maxdepth 1 -name 'initrd-*' ! -name "initrd-$kv.img*" -delete
echo "$kv" >"$CACHE/KV.new"
mv "$CACHE/KV.new" "$CACHE/KV"
