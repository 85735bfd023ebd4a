#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   test-package.sh [--keep DIR] [SOURCE_DIR]
#
# Build the Debian packages from a copy of the tree (dpkg-buildpackage -b, debian/), then:
#  - each package holds what it must, where Debian and pkg-config's systemd, udev and
#    bash-completion say, and its version is the project's;
#  - every shared library a program of vfiod needs comes from a package it depends on;
#  - the programs run from the unpacked packages (dpkg -x), with libvfiod from the package;
#  - the unit, the D-Bus activation file and the bus policy agree with each other and
#    with the files shipped;
#  - the DKMS tree builds the module with dkms.conf's own MAKE line, when the kernel
#    headers the VM suite fetched are at hand;
#  - dpkg installs, removes and purges the packages in a throw-away root (dpkg --root,
#    maintainer scripts run with DPKG_ROOT set), leaving nothing behind.
# --keep DIR: copy the packages to DIR (the VM suite installs them in the guest: vm-package).
# Needs no network; tests/setup.sh installs debhelper and dh-dkms.
set -euo pipefail

KEEP=
if [ "${1:-}" = --keep ]; then
	KEEP=$2
	shift 2
fi
SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vfiod-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fails=0
checks=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
ok() {
	checks=$((checks + 1))
}
check() { # DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok; else fail "$what"; fi
}
die() {
	echo "test-package: $*" >&2
	exit 1
}

VERSION=$(sed -n 's/^project(vfiod VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$VERSION" ] || die "no project version in $SRC/CMakeLists.txt"
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd)
UDEVDIR=$(pkg-config --variable=udevdir udev)
COMPLETIONSDIR=$(pkg-config --variable=completionsdir bash-completion)
[ -n "$UNITDIR" ] && [ -n "$UDEVDIR" ] && [ -n "$COMPLETIONSDIR" ] ||
	die "pkg-config has no systemd, udev or bash-completion (run tests/setup.sh)"

# --- Build, from a copy: dpkg-buildpackage writes into the tree and next to it.
t0=$(date +%s)
mkdir "$WORK/src"
tar -C "$SRC" --exclude-vcs --exclude='./build*' --exclude='./obj-*' -cf - . |
	tar -C "$WORK/src" -xf -
if ! (cd "$WORK/src" && dpkg-buildpackage -b -uc -us -j"$(nproc)") >"$WORK/build.log" 2>&1; then
	tail -40 "$WORK/build.log" >&2
	die "dpkg-buildpackage failed"
fi
echo "built in $(($(date +%s) - t0)) s"

deb() { # PACKAGE -> its .deb
	local f
	f=$(ls "$WORK/$1"_*.deb 2>/dev/null | grep -v dbgsym | head -1)
	[ -n "$f" ] || die "no package $1 was built"
	echo "$f"
}
VFIOD=$(deb vfiod)
LIB=$(deb libvfiod0)
DEV=$(deb libvfiod-dev)
DKMS=$(deb vfio-select-dkms)
HOOK=$(deb vfiod-libvirt)

# --- Versions: debian/changelog, dkms.conf and CMakeLists.txt agree.
for p in "$VFIOD" "$LIB" "$DEV" "$DKMS" "$HOOK"; do
	check "$(basename "$p"): version $(dpkg-deb -f "$p" Version), not $VERSION" \
		test "$(dpkg-deb -f "$p" Version)" = "$VERSION"
done

# --- Contents.
contents() { dpkg-deb --contents "$1" | awk '{ sub(/^\./, "", $6); print $6 }'; }
has() { # DEB PATH...
	local list p name
	list=$(contents "$1")
	name=$(basename "$1")
	shift
	for p in "$@"; do
		if grep -qxF -- "$p" <<<"$list"; then ok; else fail "$name lacks $p"; fi
	done
}
has "$VFIOD" /usr/bin/vfioctl /usr/libexec/vfiod /etc/vfiod/vfiod.conf \
	"$UNITDIR/vfiod.service" "$UNITDIR/vfiod-claims.service" \
	/usr/share/dbus-1/system.d/org.vfiod1.conf \
	/usr/share/dbus-1/system-services/org.vfiod1.service \
	/usr/share/polkit-1/actions/org.vfiod1.policy \
	/usr/share/polkit-1/rules.d/60-vfiod.rules /usr/lib/sysusers.d/vfiod.conf \
	/usr/lib/tmpfiles.d/vfiod.conf \
	"$COMPLETIONSDIR/vfioctl" \
	/usr/share/initramfs-tools/hooks/vfiod /usr/lib/dracut/modules.d/90vfiod/module-setup.sh
# Claim= in the initramfs: the images are made again when the hook comes or changes.
check "vfiod activates the update-initramfs trigger" sh -c \
	"dpkg-deb -I '$VFIOD' triggers | grep -qx 'activate-noawait update-initramfs'"
# Every page of man/ in some package, compressed, in its section.
for page in "$SRC"/man/*.[1-9]; do
	name=$(basename "$page")
	target=/usr/share/man/man${name##*.}/$name.gz
	if contents "$VFIOD" | grep -qxF "$target"; then
		ok
	elif [ "$name" = vfio_select.4 ] && contents "$DKMS" | grep -qxF "$target"; then
		ok
	else
		fail "no package has $target"
	fi
done
# Every rule of udev-rules/ in udev's rules directory; examples in the documentation.
for rule in "$SRC"/udev-rules/*.rules; do
	[ -e "$rule" ] || continue
	has "$VFIOD" "$UDEVDIR/rules.d/$(basename "$rule")"
done
for ex in "$SRC"/udev-rules/*.example; do
	[ -e "$ex" ] || continue
	has "$VFIOD" "/usr/share/doc/vfiod/examples/$(basename "$ex")"
done
has "$LIB" "/usr/lib/$MULTIARCH/libvfiod.so.0"
has "$DEV" /usr/include/vfiod.h "/usr/lib/$MULTIARCH/libvfiod.so" \
	"/usr/lib/$MULTIARCH/pkgconfig/libvfiod.pc"
# libvirt's hook: the program in libexec, linked from libvirt's hook directory.
has "$HOOK" /usr/libexec/vfiod-libvirt-hook /etc/libvirt/hooks/qemu.d/vfiod
check "the hook's link in qemu.d/ does not point at /usr/libexec/vfiod-libvirt-hook" sh -c \
	"dpkg-deb --contents '$HOOK' | grep -qF './etc/libvirt/hooks/qemu.d/vfiod -> /usr/libexec/vfiod-libvirt-hook'"
check "vfiod-libvirt depends on vfiod (= $VERSION)" \
	sh -c "dpkg-deb -f '$HOOK' Depends | grep -qF 'vfiod (= $VERSION)'"
KSRC=/usr/src/vfio-select-$VERSION
has "$DKMS" "$KSRC/dkms.conf" "$KSRC/Kbuild" "$KSRC/vfio_select.c" \
	"$KSRC/include/vfio_select/rank.h" "$KSRC/include/uapi/linux/vfio_select.h"
# No test fixture, no build product, no static library, nothing under /usr/local.
for p in "$VFIOD" "$LIB" "$DEV" "$DKMS" "$HOOK"; do
	bad=$(contents "$p" | grep -E 'fixture|\.ko$|\.o$|\.a$|^/usr/local/|/CMake' || true)
	check "$(basename "$p") ships $bad" test -z "$bad"
done
check "conffiles: /etc/vfiod/vfiod.conf" \
	sh -c "dpkg-deb --ctrl-tarfile '$VFIOD' | tar -xO ./conffiles | grep -qx /etc/vfiod/vfiod.conf"
check "libvfiod-dev depends on libvfiod0 (= $VERSION)" \
	sh -c "dpkg-deb -f '$DEV' Depends | grep -qF 'libvfiod0 (= $VERSION)'"
check "vfiod depends on a system bus" \
	sh -c "dpkg-deb -f '$VFIOD' Depends | grep -q 'dbus-system-bus'"
check "vfio-select-dkms depends on dkms" sh -c "dpkg-deb -f '$DKMS' Depends | grep -q dkms"

# --- Unpacked: the programs run, on the packaged library.
ROOT=$WORK/x
for p in "$VFIOD" "$LIB" "$DEV" "$DKMS" "$HOOK"; do dpkg -x "$p" "$ROOT"; done
export LD_LIBRARY_PATH=$ROOT/usr/lib/$MULTIARCH
out=$("$ROOT/usr/bin/vfioctl" --version 2>&1) || fail "vfioctl --version: $out"
check "vfioctl --version says '$out'" test "$out" = "vfioctl $VERSION"
out=$("$ROOT/usr/libexec/vfiod" --version 2>&1) || fail "vfiod --version: $out"
check "vfiod --version says '$out'" test "$out" = "vfiod $VERSION"
check "vfioctl runs on the packaged libvfiod" \
	sh -c "ldd '$ROOT/usr/bin/vfioctl' | grep -qF '$ROOT/usr/lib/$MULTIARCH/libvfiod.so.0'"
# vfioctl does something real from the package: the driver choice on a fixture tree, with
# a variant driver that outranks vfio-pci.
fx=$WORK/fixture
moddir=$(python3 - "$SRC/tests/sysfs" "$fx" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from fixture import ModulesDir, Sysfs
s = Sysfs(os.path.join(sys.argv[2], "sys"))
s.pci("0000:00:03.0", 0x1b36, 0x0010, driver="nvme", group=3)
m = ModulesDir(os.path.join(sys.argv[2], "modroot"))
m.add("vfio_pci", ["vfio_pci:v*d*sv*sd*bc*sc*i*"])
m.add("vfio_fixture_vdsub", ["vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc*sc*i*"])
m.depmod()
print(m.dir)
PY
)
out=$(VFIOD_SYSFS_ROOT=$fx/sys VFIOD_MODULES_DIR=$moddir VFIOD_MODPROBE_CONFIG=/dev/null \
	VFIOD_NO_KERNEL=1 "$ROOT/usr/bin/vfioctl" --direct -j match 0000:00:03.0 2>&1) ||
	fail "vfioctl --direct match on a fixture tree: $out"
sel=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["selected"]["module"])' \
	"$out" 2>/dev/null || true)
check "vfioctl --direct match chose '$sel', not vfio_fixture_vdsub: $out" \
	test "$sel" = vfio_fixture_vdsub
# The hook does nothing (and needs no bus) for an operation other than prepare and release.
out=$(echo '<domain/>' | "$ROOT/usr/libexec/vfiod-libvirt-hook" guest started begin - 2>&1) ||
	fail "vfiod-libvirt-hook guest started begin: $out"
check "vfiod-libvirt-hook --help says no usage" sh -c \
	"'$ROOT/usr/libexec/vfiod-libvirt-hook' --help | grep -q '^Usage: '"
unset LD_LIBRARY_PATH

# Every library a program or libvfiod needs is provided by a package they depend on.
needs_of() { # DEB FILES... : the libraries FILES need, each in DEB's (or its own) Depends
	local deb=$1 depends so pkg
	shift
	depends="$(dpkg-deb -f "$deb" Depends), $(dpkg-deb -f "$LIB" Depends)"
	for so in $(for f in "$@"; do objdump -p "$f" | awk '$1 == "NEEDED" { print $2 }'; done |
		sort -u); do
		[ "$so" = libvfiod.so.0 ] && { check "$(basename "$deb") depends on libvfiod0" \
			grep -q 'libvfiod0' <<<"$depends"; continue; }
		pkg=$(dpkg -S "*/$so" 2>/dev/null | head -1 | cut -d: -f1)
		[ -n "$pkg" ] || { fail "no installed package provides $so"; continue; }
		check "$so ($pkg) is not in Depends: $depends" grep -qE "(^|, )$pkg( |,|$)" <<<"$depends"
	done
}
needs_of "$VFIOD" "$ROOT/usr/bin/vfioctl" "$ROOT/usr/libexec/vfiod" \
	"$ROOT/usr/lib/$MULTIARCH/libvfiod.so.0"
needs_of "$HOOK" "$ROOT/usr/libexec/vfiod-libvirt-hook"

# The unit starts the daemon the package ships; activation and policy name the same bus name.
unit=$ROOT$UNITDIR/vfiod.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
check "ExecStart=$exec_start is not a shipped program" test -x "$ROOT${exec_start%% *}"
check "the unit is Type=dbus BusName=org.vfiod1" \
	sh -c "grep -qx 'Type=dbus' '$unit' && grep -qx 'BusName=org.vfiod1' '$unit'"
# Hardened as vfiod.service's comments say: of @module only loading; state root's alone.
expand_filter() { # WORDS... -> the system calls they allow, one a line
	local w
	for w in "$@"; do
		case $w in
		@*) expand_filter $(systemd-analyze syscall-filter "$w" | sed -n 's/^    \([^#]\)/\1/p') ;;
		*) echo "$w" ;;
		esac
	done
}
allowed=$(expand_filter $(sed -n 's/^SystemCallFilter=//p' "$unit"))
check "the unit does not allow finit_module" grep -qx finit_module <<<"$allowed"
check "the unit does not allow init_module" grep -qx init_module <<<"$allowed"
if grep -qx delete_module <<<"$allowed"; then fail "the unit allows delete_module"; else ok; fi
for kv in UMask=0077 StateDirectoryMode=0700 RuntimeDirectoryMode=0700 ProtectProc=invisible; do
	check "the unit does not say $kv" grep -qx "$kv" "$unit"
done
echo "unit: $(systemd-analyze security --offline=yes "$unit" 2>/dev/null | tail -1)"
act=$ROOT/usr/share/dbus-1/system-services/org.vfiod1.service
check "the activation file names org.vfiod1 and vfiod.service" \
	sh -c "grep -qx 'Name=org.vfiod1' '$act' && grep -qx 'SystemdService=vfiod.service' '$act'"
check "the bus policy lets root own org.vfiod1" \
	grep -q '<allow own="org.vfiod1"/>' "$ROOT/usr/share/dbus-1/system.d/org.vfiod1.conf"
for xml in "$ROOT/usr/share/dbus-1/system.d/org.vfiod1.conf" \
	"$ROOT/usr/share/polkit-1/actions/org.vfiod1.policy"; do
	check "$xml is not well-formed XML" python3 -c \
		"import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" "$xml"
done
check "the sysusers.d file does not make the group vfiod" \
	grep -qx 'g vfiod -' "$ROOT/usr/lib/sysusers.d/vfiod.conf"
check "the polkit rule does not grant org.vfiod1.manage to the group vfiod" sh -c \
	"grep -qF 'org.vfiod1.manage' '$ROOT/usr/share/polkit-1/rules.d/60-vfiod.rules' &&
	 grep -qF 'isInGroup(\"vfiod\")' '$ROOT/usr/share/polkit-1/rules.d/60-vfiod.rules'"
check "the bash completion is not valid bash" bash -n "$ROOT$COMPLETIONSDIR/vfioctl"
check "libvfiod.pc does not give -lvfiod with the libdir" sh -c \
	"PKG_CONFIG_SYSROOT_DIR='$ROOT' PKG_CONFIG_LIBDIR='$ROOT/usr/lib/$MULTIARCH/pkgconfig' \
	 pkg-config --libs libvfiod | grep -q -- '-lvfiod'"

# --- The DKMS tree builds, with dkms.conf's own MAKE line (when headers are at hand).
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
KV=$(cat "$CACHE/KV" 2>/dev/null || true)
if [ -n "$KV" ] && [ -d "$CACHE/root/usr/src/linux-headers-$KV" ]; then
	dkms_tree=$WORK/dkms
	mkdir -p "$dkms_tree/vfio-select/$VERSION"
	cp -a "$ROOT$KSRC" "$dkms_tree/vfio-select/$VERSION/build"
	make_line=$(
		# shellcheck disable=SC1090,SC2034
		kernel_source_dir=$CACHE/root/usr/src/linux-headers-$KV
		. "$ROOT$KSRC/dkms.conf"
		echo "${MAKE[0]}"
	)
	if (cd "$dkms_tree/vfio-select/$VERSION/build" && eval "$make_line") \
		>"$WORK/dkms.log" 2>&1 &&
		[ -f "$dkms_tree/vfio-select/$VERSION/build/vfio_select.ko" ]; then
		ok
		echo "DKMS tree built vfio_select.ko against $KV"
	else
		tail -20 "$WORK/dkms.log" >&2
		fail "the DKMS tree does not build against $KV"
	fi
else
	echo "skipped: building the DKMS tree (no kernel headers in $CACHE; the VM suite fetches them)"
fi

# --- Install, remove and purge in a throw-away root; the maintainer scripts run with
# DPKG_ROOT (they must not touch the host: no systemctl, no udevadm).
if [ "$(id -u)" -eq 0 ]; then
	R=$WORK/root
	mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" \
		"$R/run"
	: >"$R/var/lib/dpkg/status"
	: >"$R/var/lib/dpkg/available"
	dpkg_r() {
		dpkg --root="$R" --force-script-chrootless --force-depends \
			--log="$WORK/dpkg.log" "$@" >>"$WORK/dpkg-out.log" 2>&1 ||
			{ cat "$WORK/dpkg-out.log" >&2; return 1; }
	}
	check "dpkg --root -i vfiod libvfiod0 libvfiod-dev vfiod-libvirt" \
		dpkg_r -i "$VFIOD" "$LIB" "$DEV" "$HOOK"
	for f in /usr/bin/vfioctl /usr/libexec/vfiod "$UNITDIR/vfiod.service" \
		/usr/libexec/vfiod-libvirt-hook \
		"/usr/lib/$MULTIARCH/libvfiod.so.0"; do
		check "installed: $f" test -e "$R$f"
	done
	check "installed: the hook's link /etc/libvirt/hooks/qemu.d/vfiod" \
		test -L "$R/etc/libvirt/hooks/qemu.d/vfiod"
	check "postinst enabled vfiod.service (multi-user.target.wants)" \
		test -L "$R/etc/systemd/system/multi-user.target.wants/vfiod.service"
	check "postinst enabled vfiod-claims.service (sysinit.target.wants)" \
		test -L "$R/etc/systemd/system/sysinit.target.wants/vfiod-claims.service"
	check "postinst made the system group vfiod" grep -q '^vfiod:x:[0-9]*:$' "$R/etc/group"
	# State vfiod would have made.
	mkdir -p "$R/run/vfiod/journal" "$R/var/lib/vfiod/devices"
	echo '{}' >"$R/run/vfiod/journal/x.json"
	echo '{}' >"$R/var/lib/vfiod/devices/x.json"
	check "dpkg --root -r vfiod-libvirt vfiod" dpkg_r -r vfiod-libvirt vfiod
	check "removed: the hook's link" test ! -L "$R/etc/libvirt/hooks/qemu.d/vfiod"
	check "removed: /usr/bin/vfioctl" test ! -e "$R/usr/bin/vfioctl"
	check "remove leaves /run/vfiod" test ! -e "$R/run/vfiod"
	check "remove keeps the definitions (until purge)" test -e "$R/var/lib/vfiod/devices/x.json"
	check "dpkg --root -P vfiod-libvirt vfiod libvfiod-dev libvfiod0" \
		dpkg_r -P vfiod-libvirt vfiod libvfiod-dev libvfiod0
	# A system group stays after a purge (files may still be owned by it), and with it
	# the files that hold it.
	left=$(cd "$R" && find . \( -path ./var/lib/dpkg -o -path ./etc/group -o \
		-path ./etc/gshadow -o -path ./etc/.pwd.lock -o -path ./etc/passwd -o \
		-path ./etc/shadow \) -prune -o \( -type f -o -type l \) -print)
	check "purge left: $left" test -z "$left"
	check "purge left /var/lib/vfiod or /etc/vfiod" \
		test ! -e "$R/var/lib/vfiod" -a ! -e "$R/etc/vfiod"
else
	echo "skipped: dpkg --root install and removal (needs root)"
fi

if [ -n "$KEEP" ]; then
	mkdir -p "$KEEP"
	rm -f "$KEEP"/*.deb
	cp "$VFIOD" "$LIB" "$DEV" "$DKMS" "$HOOK" "$KEEP"/
fi
echo "$checks checks passed, $fails failed ($(($(date +%s) - t0)) s)"
[ "$fails" -eq 0 ]
