#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   build-modules.sh OUTDIR
#
# Build the test-fixture modules (kernel/fixtures) and, when present, kernel/vfio_select
# against the kernel fetched by fetch-kernel.sh, out of tree: the sources are copied to
# OUTDIR/src and built there, so the source tree stays clean. Then make two module trees
# for the guest, both depmod-ed:
#
#   OUTDIR/modroot/lib/modules/KV           Debian's modules plus ours under updates/
#   OUTDIR/modroot-pristine/lib/modules/KV  Debian's modules only (no variant drivers)
#
# Debian's modules are hard-linked from the cache where possible. depmod runs only when the
# set of modules changed. Prints the path of OUTDIR/modroot on success.
set -euo pipefail

die() {
	echo "build-modules: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: build-modules.sh OUTDIR"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

[ -s "$CACHE/KV" ] || "$HERE/fetch-kernel.sh"
KV=$(cat "$CACHE/KV")
KDIR="$CACHE/root/usr/src/linux-headers-$KV"
MODSRC="$CACHE/root/lib/modules/$KV"
[ -d "$KDIR" ] && [ -d "$MODSRC" ] || die "no unpacked kernel $KV in $CACHE (run fetch-kernel.sh)"

# Copy the module sources (only sources: no build products of an in-tree build), keeping
# mtimes so that make rebuilds only what changed.
mkdir -p "$OUT/src/kernel"
(cd "$TOP/kernel" && find . -type f \( -name '*.[ch]' -o -name Kbuild -o -name Makefile \
	-o -name '*.mk' \) -print0 | cpio -0 -pdmu --quiet "$OUT/src/kernel")

dirs=(fixtures)
if [ -f "$TOP/kernel/vfio_select/Kbuild" ] || [ -f "$TOP/kernel/vfio_select/Makefile" ]; then
	dirs+=(vfio_select)
fi

kos=()
for d in "${dirs[@]}"; do
	log="$OUT/src/kernel/$d/build.log"
	if ! make -C "$KDIR" M="$OUT/src/kernel/$d" CONFIG_DEBUG_INFO_BTF_MODULES= \
		-j"$(nproc)" modules >"$log" 2>&1; then
		cat "$log" >&2
		die "building kernel/$d failed"
	fi
	grep -i 'warning' "$log" >&2 || true
	while IFS= read -r ko; do
		kos+=("$ko")
	done < <(find "$OUT/src/kernel/$d" -name '*.ko')
done

[ "${#kos[@]}" -gt 0 ] || die "no modules built"

# Module trees. A stamp records which kernel and which .ko contents a tree was made from.
mktree() { # ROOT WITH_OURS
	local root=$1 ours=$2 dst="$1/lib/modules/$KV" stamp sum ko

	sum=$KV
	if [ "$ours" = 1 ]; then
		sum="$sum $(cat "${kos[@]}" | sha256sum | cut -d' ' -f1)"
	fi
	stamp="$root/.stamp"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
		return 0
	fi
	rm -rf "$root"
	mkdir -p "$root/lib/modules"
	if ! cp -al "$MODSRC" "$dst" 2>/dev/null; then
		# Another file system than the cache's: copy.
		rm -rf "$dst"
		cp -a "$MODSRC" "$dst"
	fi
	if [ "$ours" = 1 ]; then
		mkdir -p "$dst/updates"
		for ko in "${kos[@]}"; do
			cp "$ko" "$dst/updates/"
		done
	fi
	depmod -b "$root" "$KV"
	echo "$sum" >"$stamp"
}

# depmod takes seconds on Debian's whole tree: make both trees at once.
mktree "$OUT/modroot-pristine" 0 &
pristine=$!
mktree "$OUT/modroot" 1
wait $pristine || die "making $OUT/modroot-pristine failed"
echo "$OUT/modroot"
