#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   fetch-qemu.sh
#
# QEMU 10 for the guest of the VM suite (its iommufd backend, -object iommufd, is what the
# cdev tests need; bookworm's QEMU 7.2 has none): qemu-system-x86, qemu-system-common and
# qemu-system-data of bookworm-backports, and that suite's seabios (the package asks for a
# newer one than bookworm's), downloaded through the private apt configuration of
# fetch-kernel.sh (archive URI from the system's sources at run time) and unpacked with
# dpkg-deb -x into $VFIOD_VM_CACHE/qemu/root, never installed. The .debs stay in
# $VFIOD_VM_CACHE/qemu/debs; a no-op when the cache holds the newest build.
#
# The binary's libraries are checked with ldd on this host. When some do not resolve, the
# backports builds of the lib* packages QEMU depends on that apt can give are unpacked into
# the same root, and the wrapper puts their folders on LD_LIBRARY_PATH; if still some do not
# resolve, this fails. Writes and prints the wrapper, $VFIOD_VM_CACHE/qemu/qemu-system-x86_64,
# which also points QEMU at its own data (-L), firmware and modules (QEMU_MODULE_DIR)
# rather than the host's QEMU 7.2 ones. The guest sees the host's / and runs that path.
#
# Environment: VFIOD_VM_CACHE (default /var/tmp/vfiod-vm), VFIOD_VM_OFFLINE=1 (cache only).
set -euo pipefail

die() {
	echo "fetch-qemu: $*" >&2
	exit 1
}

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
Q="$CACHE/qemu"
WRAPPER="$Q/qemu-system-x86_64"
PKGS=(qemu-system-x86 qemu-system-common qemu-system-data)

# fetch-kernel.sh writes the private sources.list and updates its lists.
[ -s "$CACHE/apt/sources.list" ] || "$HERE/fetch-kernel.sh"
APT="$CACHE/apt"
# shellcheck source=kernel-apt.sh
. "$HERE/kernel-apt.sh"

mkdir -p "$Q"
exec 9>"$CACHE/.qemu-lock"
flock 9

if [ "${VFIOD_VM_OFFLINE:-0}" = 1 ]; then
	[ -x "$WRAPPER" ] && [ -e "$Q/root/.unpacked" ] || die "VFIOD_VM_OFFLINE=1 but no QEMU in $Q"
	echo "$WRAPPER"
	exit 0
fi

candidate() { # PACKAGE: its version in the private lists, or nothing
	apt-cache "${APT_OPTS[@]}" policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' |
		grep -v '^(none)$' || true
}

qver=$(candidate qemu-system-x86)
[ -n "$qver" ] || die "no qemu-system-x86 in the private lists (run fetch-kernel.sh)"
qup=${qver#*:}
[ "${qup%%.*}" -ge 10 ] 2>/dev/null || die "qemu-system-x86 $qver is older than 10"
sver=$(candidate seabios)
want=("${PKGS[@]/%/=$qver}")
[ -z "$sver" ] || want+=("seabios=$sver")
stamp="${want[*]}"

if [ "$(cat "$Q/root/.unpacked" 2>/dev/null)" = "$stamp" ] && [ -x "$WRAPPER" ]; then
	echo "$WRAPPER"
	exit 0
fi

# Download what is missing (see fetch-kernel.sh for --print-uris from an empty folder).
download() { # PACKAGE=VERSION...: prints the cached file names
	local line file size need=0 files=()

	mkdir -p "$Q/debs" "$APT/empty"
	while read -r line; do
		read -r _ file size _ <<<"$line"
		files+=("$file")
		if [ "$(stat -c %s "$Q/debs/$file" 2>/dev/null || echo 0)" != "$size" ]; then
			need=1
		fi
	done < <(cd "$APT/empty" && apt-get "${APT_OPTS[@]}" -qq --print-uris download "$@")
	[ "${#files[@]}" -eq $# ] || die "apt-get --print-uris gave ${#files[@]} entries for $#"
	if [ $need = 1 ]; then
		(cd "$Q/debs" && apt-get "${APT_OPTS[@]}" -qq download "$@") >"$Q/download.log" 2>&1 || {
			cat "$Q/download.log" >&2
			die "download of $* failed"
		}
	fi
	printf '%s\n' "${files[@]}"
}

mapfile -t debs < <(download "${want[@]}")
[ "${#debs[@]}" -eq "${#want[@]}" ] || die "download failed"
rm -rf "$Q/root.new"
mkdir -p "$Q/root.new"
for f in "${debs[@]}"; do
	dpkg-deb -x "$Q/debs/$f" "$Q/root.new"
done
bin="$Q/root.new/usr/bin/qemu-system-x86_64"
[ -x "$bin" ] || die "no qemu-system-x86_64 in qemu-system-x86 $qver"

libdirs="$Q/root.new/usr/lib/x86_64-linux-gnu:$Q/root.new/lib/x86_64-linux-gnu"
missing() { # the libraries of the binary and its modules that do not resolve
	local f

	for f in "$bin" "$Q/root.new/usr/lib/x86_64-linux-gnu/qemu/"*.so; do
		[ -e "$f" ] || continue
		LD_LIBRARY_PATH=$libdirs ldd "$f" 2>&1 | grep 'not found' || true
	done | sort -u
}
uselibs=0
gone=$(missing | grep -v -e libspice -e libvirglrenderer -e libGL -e libgbm || true)
# Modules QEMU loads only on request (display, USB, audio) may need what the host lacks;
# the binary itself must resolve.
gone_bin=$(LD_LIBRARY_PATH=$libdirs ldd "$bin" 2>&1 | grep 'not found' || true)
if [ -n "$gone_bin" ]; then
	printf '%s\n' "$gone_bin" >&2
	echo "fetch-qemu: unpacking backports builds of QEMU's libraries" >&2
	libs=()
	for p in "${PKGS[@]}"; do
		apt-cache "${APT_OPTS[@]}" show "$p=$qver" 2>/dev/null | sed -n 's/^Depends: //p' |
			tr ',' '\n' | sed -E 's/^ *//; s/[ (].*//' | grep '^lib' || true
	done | sort -u >"$Q/lib-deps"
	while read -r p; do
		v=$(candidate "$p")
		[ -z "$v" ] || libs+=("$p=$v")
	done <"$Q/lib-deps"
	[ "${#libs[@]}" -gt 0 ] || die "the binary needs libraries bookworm-backports does not have"
	mapfile -t more < <(download "${libs[@]}")
	for f in "${more[@]}"; do
		dpkg-deb -x "$Q/debs/$f" "$Q/root.new"
	done
	debs+=("${more[@]}")
	gone_bin=$(LD_LIBRARY_PATH=$libdirs ldd "$bin" 2>&1 | grep 'not found' || true)
	[ -z "$gone_bin" ] || {
		printf '%s\n' "$gone_bin" >&2
		die "qemu-system-x86_64 $qver: libraries still missing"
	}
	uselibs=1
	stamp="$stamp ${libs[*]}"
fi
[ -z "$gone" ] || printf 'fetch-qemu: note: optional modules lack %s\n' "$gone" >&2
echo "$stamp" >"$Q/root.new/.unpacked"

rm -rf "$Q/root.old"
[ -e "$Q/root" ] && mv "$Q/root" "$Q/root.old"
mv "$Q/root.new" "$Q/root"
rm -rf "$Q/root.old"
# Drop .debs of older builds.
for f in "$Q"/debs/*.deb; do
	[ -e "$f" ] || continue
	keep=0
	for g in "${debs[@]}"; do
		[ "${f##*/}" = "$g" ] && keep=1
	done
	[ $keep = 1 ] || rm -f "$f"
done

{
	echo '#!/bin/sh'
	echo "# Written by tests/vm/fetch-qemu.sh: QEMU $qver, unpacked, not installed."
	echo 'r=$(dirname "$(readlink -f "$0")")/root'
	if [ $uselibs = 1 ]; then
		echo 'l=$r/usr/lib/x86_64-linux-gnu:$r/lib/x86_64-linux-gnu'
		echo 'LD_LIBRARY_PATH=$l${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}'
		echo 'export LD_LIBRARY_PATH'
	fi
	echo 'QEMU_MODULE_DIR=$r/usr/lib/x86_64-linux-gnu/qemu'
	echo 'export QEMU_MODULE_DIR'
	echo 'exec "$r/usr/bin/qemu-system-x86_64" -L "$r/usr/share/qemu" -L "$r/usr/share/seabios" "$@"'
} >"$WRAPPER.new"
chmod +x "$WRAPPER.new"
mv "$WRAPPER.new" "$WRAPPER"
"$WRAPPER" --version | grep -q "version $(echo "$qup" | sed 's/[+~-].*//')" ||
	die "$WRAPPER does not run"
echo "$WRAPPER"
