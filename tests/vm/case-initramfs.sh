#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: Claim= in the initramfs (udev-rules/initramfs-tools/hooks/vfiod), on the real
# kernel with two QEMU nvme functions.
#
# The Debian packages installed with dpkg; a drop-in of vfiod.conf claims the first nvme by
# its address, plus an address and an ID that no device present has. Debian's mkinitramfs
# makes an image for the running kernel (its own configuration with MODULES=list, so that
# what is in it is what the hooks add); lsinitramfs must list every piece vfiod's hook adds,
# and the image's modprobe configuration, unpacked, must hold the claim table and exactly
# one softdep, for nvme, none for what is absent. modprobe --show-depends nvme with only the
# image's tree and configuration puts vfio_select before nvme, once. Then dracut's module
# (udev-rules/dracut/90vfiod) the same way, when dracut is installed. The image is kept in
# RESULTS for boot-initramfs.sh, which boots it (ctest vm-initramfs-boot).
#
#   case-initramfs.sh DEB_DIR KERNEL_ROOT
#     DEB_DIR: from tests/package/test-package.sh --keep
#     KERNEL_ROOT: the unpacked kernel package (fetch-kernel.sh), for its /boot/config-KV
# shellcheck disable=SC2317 # the helpers run through vm_check
set -uo pipefail

DEBS=$1
KROOT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-/var/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

if [ "${VFIOD_VM:-}" != 1 ]; then
	echo "case-initramfs.sh runs inside the test VM: see tests/vm/README.md" >&2
	exit 2
fi
KV=$(uname -r)
T0=$(date +%s)
nvmes() { vm_pci_find 1b36 0010 plain | sort; }
CLAIMED=$(nvmes | head -1)
FREE=$(nvmes | tail -1)
ABSENT_ADDR=0000:0f:00.0
ABSENT_ID=8086:1572
W=/var/tmp/initramfs-case
rm -rf "$W"
mkdir -p "$W"

vm_check "two nvme functions: $CLAIMED claimed, $FREE not" test "$CLAIMED" != "$FREE"
rm -f /var/lib/man-db/auto-update
vm_check "dpkg -i vfiod libvfiod0" sh -c \
	"dpkg -i '$DEBS'/vfiod_*.deb '$DEBS'/libvfiod0_*.deb >'$W/dpkg.log' 2>&1"
vm_check "... the hook and the dracut module installed" \
	test -x /usr/share/initramfs-tools/hooks/vfiod -a \
	-x /usr/lib/dracut/modules.d/90vfiod/module-setup.sh
vm_check "vfio_select is in the module tree" modinfo -n vfio_select
# mkinitramfs checks the compressor against the kernel's config, which the host's /boot lacks.
cp "$KROOT/boot/config-$KV" /boot/

# No claims: the hook adds nothing.
vm_check "no claims: vfiod --claims-modprobe-conf prints nothing" \
	test -z "$(/usr/libexec/vfiod --claims-modprobe-conf)"

mkdir -p /etc/vfiod/conf.d
printf 'Claim=%s\nClaim=%s,%s\n' "$CLAIMED" "$ABSENT_ADDR" "$ABSENT_ID" \
	>/etc/vfiod/conf.d/50-initramfs-test.conf
conf=$(/usr/libexec/vfiod --claims-modprobe-conf 2>"$W/conf.err")
printf '%s\n' "$conf" >"$RESULTS/claims-modprobe.conf"
vm_note "vfiod --claims-modprobe-conf:"
sed 's/^/#   /' "$RESULTS/claims-modprobe.conf"
vm_check "the claim table" grep -qx "options vfio_select claim=$CLAIMED,$ABSENT_ADDR,$ABSENT_ID" \
	"$RESULTS/claims-modprobe.conf"
vm_check "one softdep, nvme's" test "$(grep -v '^#' "$RESULTS/claims-modprobe.conf" |
	grep -c softdep)" = 1
vm_check "... softdep nvme pre: vfio_select" grep -qx 'softdep nvme pre: vfio_select' \
	"$RESULTS/claims-modprobe.conf"
VARIANT=$(sed -n "s/^# $CLAIMED claimed by .*; vfio module: \([^ ]*\)\$/\1/p" \
	"$RESULTS/claims-modprobe.conf")
vm_check "the claimed nvme's vfio module is named: '$VARIANT'" test -n "$VARIANT" -a "$VARIANT" != none
vm_check "nothing of the absent claims but the table" sh -c \
	"! grep -E '$FREE|0f:00.0 claimed|8086' '$RESULTS/claims-modprobe.conf' | grep -v '^options'"
vm_check "it changed nothing: $CLAIMED has no override" \
	test "$(cat "$VM_PCI/$CLAIMED/driver_override")" = "(null)"

# Debian's mkinitramfs, its own configuration but MODULES=list.
mkdir -p "$W/conf"
cp -r /etc/initramfs-tools/. "$W/conf/"
sed -i 's/^MODULES=.*/MODULES=list/' "$W/conf/initramfs.conf"
# For boot-initramfs.sh, which boots the image: a report after udev's coldplug, acting only
# with vfiod_test_report on the kernel command line.
mkdir -p "$W/conf/scripts/init-premount"
cp "$HERE/initramfs-report.sh" "$W/conf/scripts/init-premount/vfiod-test-report"
t=$(now_ns)
vm_check "mkinitramfs -d CONF -o IMAGE $KV" sh -c \
	"mkinitramfs -d '$W/conf' -o '$W/initrd.img' '$KV' >'$W/mkinitramfs.log' 2>&1"
vm_note "mkinitramfs: $((($(now_ns) - t) / 1000000)) ms, $(stat -c %s "$W/initrd.img" 2>/dev/null) bytes"
sed 's/^/#   /' "$W/mkinitramfs.log"
lsinitramfs "$W/initrd.img" >"$RESULTS/lsinitramfs.txt" 2>&1
vm_note "lsinitramfs: $(wc -l <"$RESULTS/lsinitramfs.txt") entries (lsinitramfs.txt); vfiod's:"
grep -E 'modprobe.d/vfiod.conf|vfiod|/vfio|/nvme' "$RESULTS/lsinitramfs.txt" | sed 's/^/#   /'
listed() { grep -qE "$1" "$RESULTS/lsinitramfs.txt"; }
ko='\.ko(\.(xz|zst|gz))?$'
vm_check "lists etc/modprobe.d/vfiod.conf" listed '^etc/modprobe.d/vfiod.conf$'
vm_check "lists etc/vfiod/vfiod.conf" listed '^etc/vfiod/vfiod.conf$'
vm_check "lists etc/vfiod/conf.d/50-initramfs-test.conf" listed \
	'^etc/vfiod/conf.d/50-initramfs-test.conf$'
vm_check "lists the rules 70-vfiod.rules" listed '^(usr/)?lib/udev/rules.d/70-vfiod.rules$'
vm_check "lists vfio_select.ko" listed "/vfio_select$ko"
vm_check "lists vfio.ko" listed "/vfio$ko"
vm_check "lists vfio-pci-core.ko" listed "/vfio-pci-core$ko"
vm_check "lists vfio-pci.ko" listed "/vfio-pci$ko"
vm_check "lists the variant, $VARIANT.ko" listed "/${VARIANT//_/[-_]}$ko"
vm_check "lists nvme.ko" listed "/nvme$ko"
vm_check "lists udev" listed 'udevd$'
vm_check "no other variant (vfio-fixture-*) but $VARIANT" test \
	"$(grep -cE "/vfio[-_]fixture[-_][^/]*$ko" "$RESULTS/lsinitramfs.txt")" = 1

# Unpacked: the configuration as vfiod printed it; modprobe with only the image.
vm_check "unmkinitramfs" unmkinitramfs "$W/initrd.img" "$W/x"
X=$W/x
[ -d "$W/x/main" ] && X=$W/x/main
vm_check "the image's modprobe configuration is vfiod's" \
	cmp "$X/etc/modprobe.d/vfiod.conf" "$RESULTS/claims-modprobe.conf"
vm_check "... and the only one in the image's modprobe.d that names vfio_select" test \
	"$(cat "$X"/etc/modprobe.d/*.conf "$X"/lib/modprobe.d/*.conf "$X"/usr/lib/modprobe.d/*.conf \
		2>/dev/null | grep -v '^#' | grep -c 'vfio_select')" = 2
show=$(modprobe -d "$X" -C "$X/etc/modprobe.d" -S "$KV" --show-depends nvme 2>&1)
printf '%s\n' "$show" >"$RESULTS/show-depends.txt"
vm_note "modprobe -d IMAGE -C IMAGE/etc/modprobe.d --show-depends nvme:"
sed 's/^/#   /' "$RESULTS/show-depends.txt"
vm_check "vfio_select once" test "$(grep -c '/vfio_select\.ko' "$RESULTS/show-depends.txt")" = 1
vm_check "... with the claim table" grep -q "vfio_select\.ko.* claim=$CLAIMED,$ABSENT_ADDR,$ABSENT_ID" \
	"$RESULTS/show-depends.txt"
vm_check "... from the image's tree" grep -q "^insmod $X/" "$RESULTS/show-depends.txt"
order=$(grep -oE '/(vfio_select|nvme)\.ko' "$RESULTS/show-depends.txt" | tr -d / | tr '\n' ' ')
vm_check "... before nvme: $order" test "$order" = "vfio_select.ko nvme.ko "
vm_check "the free $FREE is untouched" test "$(cat "$VM_PCI/$FREE/driver_override")" = "(null)"

# dracut's module, when dracut is installed (dracut-core beside initramfs-tools).
if command -v dracut >/dev/null; then
	t=$(now_ns)
	vm_check "dracut -m vfiod --no-hostonly $KV" sh -c \
		"dracut --force --no-hostonly --no-early-microcode -m 'vfiod' \
		 --kver '$KV' '$W/dracut.img' >'$W/dracut.log' 2>&1"
	vm_note "dracut: $((($(now_ns) - t) / 1000000)) ms"
	tail -n 20 "$W/dracut.log" | sed 's/^/#   /'
	lsinitrd "$W/dracut.img" >"$RESULTS/lsinitrd.txt" 2>&1
	vm_note "lsinitrd, vfiod's:"
	grep -E 'modprobe.d/vfiod.conf|vfiod|/vfio|/nvme' "$RESULTS/lsinitrd.txt" | sed 's/^/#   /'
	dl() { grep -qE "$1" "$RESULTS/lsinitrd.txt"; }
	vm_check "dracut: etc/modprobe.d/vfiod.conf" dl ' etc/modprobe.d/vfiod.conf$'
	vm_check "dracut: etc/vfiod/conf.d/50-initramfs-test.conf" dl \
		' etc/vfiod/conf.d/50-initramfs-test.conf$'
	vm_check "dracut: 70-vfiod.rules" dl ' usr/lib/udev/rules.d/70-vfiod.rules$'
	vm_check "dracut: vfio_select, vfio-pci, the variant, nvme" sh -c \
		"grep -qE '/vfio_select$ko' '$RESULTS/lsinitrd.txt' &&
		 grep -qE '/vfio-pci$ko' '$RESULTS/lsinitrd.txt' &&
		 grep -qE '/${VARIANT//_/[-_]}$ko' '$RESULTS/lsinitrd.txt' &&
		 grep -qE '/nvme$ko' '$RESULTS/lsinitrd.txt'"
	vm_check "dracut: the configuration is vfiod's" sh -c \
		"lsinitrd -f etc/modprobe.d/vfiod.conf '$W/dracut.img' | cmp - '$RESULTS/claims-modprobe.conf'"
else
	vm_skip "dracut's module" "dracut is not installed (dracut-core)"
fi

# No claims again: the hook, run as mkinitramfs runs it, adds nothing.
rm /etc/vfiod/conf.d/50-initramfs-test.conf
mkdir -p "$W/none"
vm_check "claims gone: the hook exits 0" env DESTDIR="$W/none" version="$KV" verbose=n \
	/usr/share/initramfs-tools/hooks/vfiod
vm_check "... adding nothing" test -z "$(ls -A "$W/none")"
# For boot-initramfs.sh (ctest vm-initramfs-boot).
vm_check "the image kept for the boot (initrd.img)" cp "$W/initrd.img" "$RESULTS/initrd.img"
vm_note "case time: $(($(date +%s) - T0)) s"
vm_summary
