#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case of a machine that boots with vfiod installed (run.sh --systemd --preboot).
#
# Before the boot (VM_PHASE=preboot, no systemd yet): the Debian packages installed with
# dpkg, the nvme defined persistently (`vfioctl --direct define`, as a definition made on
# an earlier boot is found), the pci-testdev marked for VMs by a udev rule of the
# administrator's (ENV{VFIOD_ASSIGN}="1").  After the boot: both are on vfio drivers with
# no manual step, vfiod started by systemd.  Then vfiod is stopped and a marked device
# hot-added over QMP: udev's SYSTEMD_WANTS starts vfiod, which assigns it.
#
#   case-systemd-boot.sh DEB_DIR      (DEB_DIR: from tests/package/test-package.sh --keep)
set -uo pipefail

DEBS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-/var/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

if [ "${VFIOD_VM:-}" != 1 ]; then
	echo "case-systemd-boot.sh runs inside the test VM: see tests/vm/README.md" >&2
	exit 2
fi

if [ "${VM_PHASE:-}" = preboot ]; then
	set -e
	# man-db's trigger would rebuild the index of every page (minutes under TCG); a
	# container image's policy-rc.d forbids maintainer scripts to start services.
	rm -f /var/lib/man-db/auto-update /usr/sbin/policy-rc.d
	dpkg -i "$DEBS"/vfiod_*.deb "$DEBS"/libvfiod0_*.deb
	NVME=$(vm_pci_find 1b36 0010 plain)
	vfioctl --direct define "$NVME"
	cat >/etc/udev/rules.d/60-vfiod-testdev.rules <<'RULE'
# QEMU's pci-testdev functions belong to VMs.
SUBSYSTEM=="pci", ATTR{vendor}=="0x1b36", ATTR{device}=="0x0005", ENV{VFIOD_ASSIGN}="1"
RULE
	echo "preboot: packages installed, $NVME defined, pci-testdev marked"
	exit 0
fi

if [ ! -d /run/systemd/system ]; then
	echo "case-systemd-boot.sh runs under systemd: see tests/vm/README.md" >&2
	exit 2
fi

: >"$RESULTS/figures"
# On a vfio driver, whatever its name (the fixture variants' are "fixture-other-vfio" and
# such): the device has a vfio device (class vfio-dev, since 6.1).
on_vfio() { [ -d "/sys/bus/pci/devices/$1/vfio-dev" ]; }
vfiod_line() { # RE: a line of vfiod's own in this boot's journal matches RE
	journalctl -b -q --no-pager _SYSTEMD_UNIT=vfiod.service -o cat | grep -qE -- "$1"
}
listed() { vfioctl -j list | grep -qF "\"$1\""; }

sed 's/^/# /' "$RESULTS/preboot.txt"
vm_check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no nvme"; vm_summary; }
TESTDEV=$(vm_pci_find 1b36 0005) || { echo "no pci-testdev"; vm_summary; }
SYS_NVME=$(readlink -f "/sys/bus/pci/devices/$NVME")

# --- At boot, with no manual step.
vm_check "vfiod.service is enabled" systemctl -q is-enabled vfiod.service
# Before any call of this case: nothing but the boot can have started it.
vm_check "vfiod.service is active, started by the boot" \
	until_ok 30 systemctl -q is-active vfiod.service
start=$(systemctl show -p ActiveEnterTimestampMonotonic --value vfiod.service)
mu=$(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target)
vm_note "vfiod.service active $((start / 1000)) ms after boot, multi-user.target $((mu / 1000)) ms"
vm_check "the defined nvme $NVME is on a vfio driver ($(vm_pci_driver "$NVME"))" \
	until_ok 30 on_vfio "$NVME"
vm_check "the marked pci-testdev $TESTDEV is on a vfio driver" until_ok 30 on_vfio "$TESTDEV"
vm_check "vfioctl list shows $NVME" listed "$NVME"
vm_check "vfioctl list shows $TESTDEV" listed "$TESTDEV"
vm_check "journal: $NVME assigned by vfiod itself (no VFIOD_CALLER)" sh -c \
	"journalctl -b -q --no-pager _SYSTEMD_UNIT=vfiod.service VFIOD_NAME=$NVME -o json |
	 grep -F ': assigned' | grep -qv VFIOD_CALLER"
vm_check "journal: $TESTDEV assigned" vfiod_line "/$TESTDEV: assigned"
vm_check "the definition of $NVME is kept" sh -c "vfioctl -j list | python3 -c '
import json, sys
sys.exit(not any(d.get(\"name\") == \"$NVME\" and d.get(\"defined\") for d in json.load(sys.stdin)))'"
# udevd loads what matches a device's modalias: the pci-testdev's host driver here is the
# fixture SF parent driver, not loaded before the coldplug; 70-vfiod.rules held the marked
# device with the claims' placeholder first, so that driver never had it.
prev() { vfioctl -j list | python3 -c '
import json, sys
print(next((d.get("previous_driver") or "none" for d in json.load(sys.stdin) if d.get("name") == sys.argv[1]), "?"))' "$1"; }
TESTPREV=$(prev "$TESTDEV")
vm_check "the marked $TESTDEV never had a host driver (previous driver: $TESTPREV)" \
	test "$TESTPREV" = none
vm_check "... vfiod lists it as claimed" sh -c "vfioctl -j list | python3 -c '
import json, sys
sys.exit(not any(d.get(\"name\") == \"$TESTDEV\" and d.get(\"claimed\") for d in json.load(sys.stdin)))'"

# The boot's coldplug sent an add for every device, vfiod's among them: made up (udevadm
# trigger), not a device that came back. Once more, by hand.
vm_check "udevadm trigger --action=add $NVME" udevadm trigger --settle --action=add "$SYS_NVME"
vm_check "... $NVME is still listed and on vfio" sh -c "sleep 1; vfioctl -j list | grep -qF '\"$NVME\"' &&
	test -d /sys/bus/pci/devices/$NVME/vfio-dev"
vm_check_not "vfiod took no made-up add for a device that came back" \
	vfiod_line "appeared again"

# --- Hotplug while vfiod is stopped: SYSTEMD_WANTS starts it.
vm_check "systemctl stop vfiod" systemctl stop vfiod.service
vm_check_not "vfiod is stopped" systemctl -q is-active vfiod.service
vm_check "the assigned devices stay on vfio while vfiod is stopped" sh -c \
	"case \$(readlink /sys/bus/pci/devices/$NVME/driver) in */vfio*) ;; *) exit 1 ;; esac"
t0=$(now_ns)
vm_check "QMP device_add pci-testdev on rp1" "$HERE/qmp.py" device_add \
	'{"driver":"pci-testdev","id":"hot","bus":"rp1"}'
HOT=
find_hot() {
	local d
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor" "$d/device" 2>/dev/null | xargs)" = "0x1b36 0x0005" ] || continue
		[ "${d##*/}" = "$TESTDEV" ] && continue
		HOT=${d##*/}
		return 0
	done
	return 1
}
# Not inside vm_check: find_hot sets HOT.
until_ok 30 find_hot
vm_check "the hot-added function appears ($HOT)" test -n "$HOT"
vm_check "vfiod.service is started again (by the device)" until_ok 30 systemctl -q is-active vfiod.service
vm_check "$HOT is on a vfio driver" until_ok 30 on_vfio "$HOT"
figure hotplug-to-vfio-vfiod-stopped-ms "$t0"
unit=$(systemd-escape --path --suffix=device "$(readlink -f "/sys/bus/pci/devices/$HOT")")
vm_note "$unit wants: $(systemctl show -p Wants --value "$unit")"
vm_check "its device unit wants vfiod.service (SYSTEMD_WANTS)" sh -c \
	"systemctl show -p Wants --value '$unit' | grep -qw vfiod.service"
vm_check "journal: $HOT assigned" until_ok 10 vfiod_line "/$HOT: assigned"

# --- Everything back.
vm_check "vfioctl destroy $HOT" vfioctl destroy "$HOT"
vm_check "vfioctl destroy $TESTDEV" vfioctl destroy "$TESTDEV"
vm_check "vfioctl undefine $NVME" vfioctl undefine "$NVME"
vm_check "vfioctl destroy $NVME" vfioctl destroy "$NVME"
vm_check "$NVME is back on nvme" until_ok 10 test "$(vm_pci_driver "$NVME")" = nvme
# Its host driver: one that a module its modalias names provides (the fixture SF parent).
host_now() {
	local d
	d=$(vm_pci_driver "$TESTDEV")
	[ "$d" != none ] && modprobe -R "$(cat "/sys/bus/pci/devices/$TESTDEV/modalias")" |
		tr - _ | grep -qx "${d//-/_}"
}
vm_check "destroy gave $TESTDEV its host driver, which it never had" until_ok 10 host_now
vm_note "$TESTDEV is now on $(vm_pci_driver "$TESTDEV")"
vm_check "vfiod logged no error or warning" \
	test -z "$(journalctl -b -q --no-pager _SYSTEMD_UNIT=vfiod.service -p warning -o cat)"
journalctl -b -q --no-pager -u vfiod.service -o short-monotonic >"$RESULTS/journal-vfiod.txt"
sed 's/^/# /' "$RESULTS/figures"
vm_no_kernel_warnings
vm_summary
