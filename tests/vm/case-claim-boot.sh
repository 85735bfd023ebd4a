#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: a claimed device at boot (run.sh --systemd --preboot), on the real kernel with
# systemd as PID 1 and udev's own coldplug.
#
# Before the boot (VM_PHASE=preboot): the Debian packages installed with dpkg, and a
# drop-in of vfiod.conf claims the first of two nvme functions by its address. At boot
# udev's coldplug loads nvme for them (nvme is a module, nothing has loaded it): the
# unclaimed one gets nvme; the claimed one never meets it, because vfiod-claims.service
# held it before the coldplug and vfiod bound its most specific variant. destroy then
# gives it nvme, the host driver it never had.
#
#   case-claim-boot.sh DEB_DIR      (DEB_DIR: from tests/package/test-package.sh --keep)
set -uo pipefail

DEBS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-/var/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

if [ "${VFIOD_VM:-}" != 1 ]; then
	echo "case-claim-boot.sh runs inside the test VM: see tests/vm/README.md" >&2
	exit 2
fi
nvmes() { vm_pci_find 1b36 0010 plain | sort; }

if [ "${VM_PHASE:-}" = preboot ]; then
	set -e
	rm -f /var/lib/man-db/auto-update /usr/sbin/policy-rc.d
	dpkg -i "$DEBS"/vfiod_*.deb "$DEBS"/libvfiod0_*.deb
	CLAIMED=$(nvmes | head -1)
	mkdir -p /etc/vfiod/conf.d
	echo "Claim=$CLAIMED" >/etc/vfiod/conf.d/50-claim-test.conf
	echo "preboot: packages installed, $CLAIMED claimed; nvme loaded: $(grep -c '^nvme ' /proc/modules)"
	exit 0
fi

if [ ! -d /run/systemd/system ]; then
	echo "case-claim-boot.sh runs under systemd: see tests/vm/README.md" >&2
	exit 2
fi
: >"$RESULTS/figures"
sed 's/^/# /' "$RESULTS/preboot.txt"
CLAIMED=$(nvmes | head -1)
FREE=$(nvmes | tail -1)
on() { [ "$(vm_pci_driver "$1")" = "$2" ]; }
controller_for() { journalctl -k -b -q --no-pager | grep -q "nvme nvme[0-9]*: pci function $1"; }
mono() { systemctl show -p "$2" --value "$1"; }

vm_check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
vm_check "two nvme functions: $CLAIMED claimed, $FREE not" test "$CLAIMED" != "$FREE"
vm_check "vfiod-claims.service is enabled by the package" \
	systemctl -q is-enabled vfiod-claims.service
vm_check "vfiod-claims.service ran and stays active" \
	until_ok 30 systemctl -q is-active vfiod-claims.service
claims=$(mono vfiod-claims.service ActiveEnterTimestampMonotonic)
trigger=$(mono systemd-udev-trigger.service ExecMainStartTimestampMonotonic)
vm_check "... before udev's coldplug began ($((claims / 1000)) ms < $((trigger / 1000)) ms)" \
	test "$claims" -gt 0 -a "$claims" -lt "$trigger"
# (By the boot's whole journal: journald may not know the unit of a process gone that fast.)
vm_check "... it held $CLAIMED" sh -c "journalctl -b -q --no-pager -o cat |
	grep -q '^$CLAIMED: claimed by $CLAIMED, held from host drivers'"
vm_check "... and wrote vfio_select's options" \
	grep -qx "options vfio_select claim=$CLAIMED" /run/modprobe.d/vfiod.conf
vm_check "vfio_select is loaded with the table" \
	test "$(cat /sys/module/vfio_select/parameters/claim)" = "$CLAIMED"
vm_check "the unclaimed $FREE got nvme, loaded by udev's coldplug" until_ok 60 on "$FREE" nvme
vm_check "the claimed $CLAIMED is on vfio-fixture-vdsub" until_ok 60 on "$CLAIMED" vfio-fixture-vdsub
vm_check "... no nvme controller was made for $CLAIMED" vm__not controller_for "$CLAIMED"
vm_check "... but one for $FREE" controller_for "$FREE"
vm_check "vfioctl list: claimed before any host driver" sh -c \
	"vfioctl -j list | jq -e '.[] | select(.name == \"$CLAIMED\" and .claimed == true)' >/dev/null"
vm_note "$(vfioctl list)"
vm_check "journal: vfiod assigned it for its claim" sh -c \
	"journalctl -b -q --no-pager -u vfiod.service -o cat |
	 grep -q '/$CLAIMED: claimed in vfiod.conf, assigning'"

# destroy: the host driver it never had.
out=$(vfioctl destroy "$CLAIMED" 2>&1)
vm_note "$out"
vm_check "destroy: $CLAIMED on nvme" on "$CLAIMED" nvme
vm_check "... with its controller now" until_ok 10 controller_for "$CLAIMED"
vm_check "... and its override cleared" test "$(cat /sys/bus/pci/devices/$CLAIMED/driver_override)" = "(null)"
vm_no_kernel_warnings
vm_summary
