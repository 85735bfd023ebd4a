#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# An init-premount script that case-initramfs.sh adds to the image it makes (through its
# private mkinitramfs configuration), for boot-initramfs.sh: with vfiod_test_report on the
# kernel command line, once udev's coldplug in the initramfs has loaded the drivers
# (init-top/udev settles), print what became of the QEMU nvme functions and power off.
# Without it, it does nothing.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "${1:-}" in
prereqs)
	prereqs
	exit 0
	;;
esac
grep -qw vfiod_test_report /proc/cmdline || exit 0

udevadm settle --timeout=30 || true
mods=
for m in vfio_select nvme; do
	grep -q "^$m " /proc/modules && mods="$mods $m"
done
# A line of its own: init's "Begin: Running /scripts/init-premount ... " has no newline.
echo
echo "vfiod-report: modules:$mods"
echo "vfiod-report: claim=$(cat /sys/module/vfio_select/parameters/claim 2>/dev/null)"
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1b36:0x0010 ] || continue
	drv=none
	[ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
	echo "vfiod-report: ${d##*/} override=$(cat "$d/driver_override") driver=$drv"
done
echo "vfiod-report: end"
echo o >/proc/sysrq-trigger
sleep 60
