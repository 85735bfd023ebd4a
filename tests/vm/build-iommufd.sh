#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   build-iommufd.sh OUTDIR
#
# A second module tree for the VM suite, with the vfio device cdev (/dev/vfio/devices/vfioN)
# and /dev/iommu, which Debian's kernel lacks (CONFIG_IOMMUFD is off there):
#
#   OUTDIR/modroot-iommufd/lib/modules/KV   Debian's modules, hard-linked, but with vfio,
#                                           vfio_iommu_type1, vfio-pci-core, vfio-pci, mdev
#                                           and iommufd rebuilt under updates/, and our
#                                           fixtures (+ vfio_select) rebuilt against them
#
# The vfio stack and iommufd come from Debian's linux-source-6.12 of exactly the cached
# kernel's build, downloaded through the private apt configuration fetch-kernel.sh writes
# (the archive URI is read from the system's sources at run time); only the folders needed
# are kept, unpacked, in $VFIOD_VM_CACHE/iommufd-src (keyed by package and version, a no-op
# when up to date). They are built out of tree against the cached headers:
#
# - The make variables CONFIG_IOMMUFD=m CONFIG_VFIO_DEVICE_CDEV=y on the command line override
#   the headers' include/config/auto.conf, so the copied Makefiles add iommufd.o,
#   device_cdev.o and vfio's iommufd.o to the objects.
# - The C side (IS_ENABLED() and #ifdef, in the sources and in include/linux/vfio.h and
#   iommufd.h, which change struct vfio_device) reads include/generated/autoconf.h, where
#   both are simply absent ("is not set"). KCFLAGS="-DCONFIG_IOMMUFD_MODULE=1
#   -DCONFIG_VFIO_DEVICE_CDEV=1" defines them: gcc handles every -D before any -include
#   file, and autoconf.h (through kconfig.h) does not define them again, so no warning and
#   no private copy of the headers is needed. KCFLAGS goes to every object, ours included.
#   Nothing built into Debian's vmlinux changes layout with these symbols (the only other
#   user, struct user_struct's locked_vm, is there for CONFIG_NET anyway).
# - iommufd needs lib/interval_tree.c's span iterator (CONFIG_INTERVAL_TREE_SPAN_ITER), which
#   Debian's vmlinux does not have: that block of the file, without its EXPORT_SYMBOLs, is
#   compiled into iommufd.ko (the rest of the file is in vmlinux, exported). iova_bitmap
#   (CONFIG_IOMMUFD_DRIVER, dirty tracking) stays off: the headers give its stubs.
# - All six modules are one external build (a top-level Kbuild descending into the copied
#   drivers/vfio and drivers/iommu/iommufd), so one modpost sees their symbols and CRCs.
#
# Our fixtures (kernel/fixtures, and kernel/vfio_select) are then rebuilt with the same
# KCFLAGS against that build's Module.symvers (KBUILD_EXTRA_SYMBOLS), since struct
# vfio_device and the CRCs of vfio's exports differ from Debian's. Debian's own copies of
# the six modules are removed from the tree (unlinked: the cache keeps them), so nothing
# can load them. Prints the path of OUTDIR/modroot-iommufd on success.
#
# Environment: VFIOD_VM_CACHE (default /var/tmp/vfiod-vm), VFIOD_VM_OFFLINE=1 (cache only),
# VFIO_SELECT_TEST_HOOKS (as build-modules.sh).
set -euo pipefail

die() {
	echo "build-iommufd: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: build-iommufd.sh OUTDIR"
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
ver=$(cut -d' ' -f2 "$CACHE/root/.unpacked")
series=${KV%%.*}.$(cut -d. -f2 <<<"$KV")
SRCPKG=linux-source-$series
SRC="$CACHE/iommufd-src"
# What the build needs of the source package.
PARTS=(drivers/vfio drivers/iommu/iommufd drivers/iommu/iommu-priv.h lib/interval_tree.c
	include/uapi/linux/vfio.h include/uapi/linux/iommufd.h)

# The sources, unpacked once per build of the kernel.
exec 9>"$CACHE/.iommufd-lock"
flock 9
if [ "$(cat "$SRC/.unpacked" 2>/dev/null)" != "$SRCPKG $ver" ]; then
	[ "${VFIOD_VM_OFFLINE:-0}" != 1 ] || die "VFIOD_VM_OFFLINE=1 but no $SRCPKG $ver in $SRC"
	APT="$CACHE/apt"
	[ -s "$APT/sources.list" ] || die "no $APT/sources.list (fetch-kernel.sh writes it)"
	# shellcheck source=kernel-apt.sh
	. "$HERE/kernel-apt.sh"
	rm -rf "$SRC.new"
	mkdir -p "$SRC.new/deb"
	(cd "$SRC.new/deb" && apt-get "${APT_OPTS[@]}" -qq download "$SRCPKG=$ver") \
		>"$SRC.new/download.log" 2>&1 || {
		cat "$SRC.new/download.log" >&2
		die "downloading $SRCPKG $ver failed"
	}
	deb=$(echo "$SRC.new"/deb/*.deb)
	[ -f "$deb" ] || die "no $SRCPKG .deb downloaded"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO "./usr/src/$SRCPKG.tar.xz" |
		tar -xJ -C "$SRC.new" --strip-components=1 "${PARTS[@]/#/$SRCPKG/}" ||
		die "unpacking $SRCPKG failed"
	for p in "${PARTS[@]}"; do
		[ -e "$SRC.new/$p" ] || die "no $p in $SRCPKG"
	done
	rm -rf "$SRC.new/deb"
	echo "$SRCPKG $ver" >"$SRC.new/.unpacked"
	rm -rf "$SRC"
	mv "$SRC.new" "$SRC"
fi
exec 9>&-

CDEV_MAKE=(CONFIG_IOMMUFD=m CONFIG_VFIO_DEVICE_CDEV=y CONFIG_DEBUG_INFO_BTF_MODULES=
	"KCFLAGS=-DCONFIG_IOMMUFD_MODULE=1 -DCONFIG_VFIO_DEVICE_CDEV=1")

# The vfio stack and iommufd, in a copy (mtimes kept, so make redoes only what changed).
STACK="$OUT/src-iommufd/stack"
# Another kernel build: start afresh (the tarball's mtimes may be older than our objects).
if [ "$(cat "$OUT/src-iommufd/.source" 2>/dev/null)" != "$KV $SRCPKG $ver" ]; then
	rm -rf "$OUT/src-iommufd"
	mkdir -p "$OUT/src-iommufd"
	echo "$KV $SRCPKG $ver" >"$OUT/src-iommufd/.source"
fi
mkdir -p "$STACK"
(cd "$SRC" && find drivers -type f -print0 | cpio -0 -pdmu --quiet "$STACK")
span="$STACK/drivers/iommu/iommufd/interval_tree_span.c"
{
	echo "// SPDX-License-Identifier: GPL-2.0-only"
	echo "/* Generated by build-iommufd.sh from $SRCPKG $ver lib/interval_tree.c. */"
	echo "#include <linux/interval_tree.h>"
	sed -n '/^#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER$/,/^#endif$/p' "$SRC/lib/interval_tree.c" |
		sed '1d;$d' | grep -v '^EXPORT_SYMBOL'
} >"$span.new"
grep -q interval_tree_span_iter_first "$span.new" || die "no span iterator in lib/interval_tree.c"
if cmp -s "$span.new" "$span"; then rm "$span.new"; else mv "$span.new" "$span"; fi
mk="$STACK/drivers/iommu/iommufd/Makefile"
grep -q interval_tree_span "$mk" || echo 'iommufd-y += interval_tree_span.o' >>"$mk"
kb="$STACK/Kbuild"
printf '%s\n' "# Generated by build-iommufd.sh" "obj-y += drivers/vfio/ drivers/iommu/iommufd/" \
	>"$kb.new"
if cmp -s "$kb.new" "$kb"; then rm "$kb.new"; else mv "$kb.new" "$kb"; fi

log="$STACK/build.log"
if ! make -C "$KDIR" M="$STACK" "${CDEV_MAKE[@]}" -j2 modules >"$log" 2>&1; then
	cat "$log" >&2
	die "building the vfio stack with iommufd failed"
fi
grep -i 'warning' "$log" >&2 || true
stack_kos=()
for m in drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 drivers/vfio/pci/vfio-pci-core \
	drivers/vfio/pci/vfio-pci drivers/vfio/mdev/mdev drivers/iommu/iommufd/iommufd; do
	[ -f "$STACK/$m.ko" ] || die "no $m.ko built"
	stack_kos+=("$STACK/$m.ko")
done

# Our modules against that stack.
mkdir -p "$OUT/src-iommufd/kernel"
(cd "$TOP/kernel" && find . -type f \( -name '*.[ch]' -o -name Kbuild -o -name Makefile \
	-o -name '*.mk' \) -print0 | cpio -0 -pdmu --quiet "$OUT/src-iommufd/kernel")
dirs=(fixtures)
if [ -f "$TOP/kernel/vfio_select/Kbuild" ] || [ -f "$TOP/kernel/vfio_select/Makefile" ]; then
	dirs+=(vfio_select)
fi
kos=("${stack_kos[@]}")
for d in "${dirs[@]}"; do
	log="$OUT/src-iommufd/kernel/$d/build.log"
	if ! make -C "$KDIR" M="$OUT/src-iommufd/kernel/$d" "${CDEV_MAKE[@]}" \
		KBUILD_EXTRA_SYMBOLS="$STACK/Module.symvers" -j2 modules >"$log" 2>&1; then
		cat "$log" >&2
		die "building kernel/$d against the iommufd stack failed"
	fi
	grep -i 'warning' "$log" >&2 || true
	while IFS= read -r ko; do
		kos+=("$ko")
	done < <(find "$OUT/src-iommufd/kernel/$d" -name '*.ko')
done

# The tree (as build-modules.sh's mktree), remade only when a module changed.
root="$OUT/modroot-iommufd"
dst="$root/lib/modules/$KV"
sum="$KV $(cat "${kos[@]}" | sha256sum | cut -d' ' -f1)"
if ! [ -f "$root/.stamp" ] || [ "$(cat "$root/.stamp")" != "$sum" ]; then
	rm -rf "$root"
	mkdir -p "$root/lib/modules"
	if ! cp -al "$MODSRC" "$dst" 2>/dev/null; then
		rm -rf "$dst"
		cp -a "$MODSRC" "$dst"
	fi
	for m in vfio/vfio vfio/vfio_iommu_type1 vfio/pci/vfio-pci-core vfio/pci/vfio-pci \
		vfio/mdev/mdev iommu/iommufd/iommufd; do
		rm -f "$dst/kernel/drivers/$m.ko" "$dst/kernel/drivers/$m.ko.xz"
	done
	mkdir -p "$dst/updates"
	for ko in "${kos[@]}"; do
		cp "$ko" "$dst/updates/"
	done
	depmod -b "$root" "$KV"
	echo "$sum" >"$root/.stamp"
fi
echo "$root"
