#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: Claim= in vfiod.conf on the real kernel, the real systemd-udevd and vfiod on a
# private bus; QEMU hot-adds nvme functions over QMP onto pcie-root-ports rp1..rp3.
#
#   case-claim-vfiod.sh BUILD_DIR        (run.sh --qmp, an nvme at boot, rp1..rp3)
#
# Claims: the boot nvme's address and rp1's and rp2's functions (0000:01:00.0,
# 0000:02:00.0); rp3's stays the host's. Checks: at start vfiod takes the claimed boot
# nvme from nvme and gives vfio_select the table; with vfio_select loaded a claimed nvme
# hot-added while nvme is loaded never meets nvme (no nvme bind event, no controller),
# ends on the most specific variant, recorded as claimed, and destroy loads nvme (unloaded
# meanwhile) from its modalias and binds it; without vfio_select the same hot-add is bound
# by nvme first and vfiod takes it, as vfiod.conf(5) says; an unclaimed one stays on nvme.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/guest-lib.sh"
BUILD=$1
SRC=$(cd "$HERE/../.." && pwd)
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bus
export RUNTIME_DIRECTORY=/run/vfiod
VFIOCTL=$BUILD/cli/vfioctl
QMP=("$HERE/qmp.py")
VDSUB=vfio-fixture-vdsub
PARAM=/sys/module/vfio_select/parameters/claim
drv() { vm_pci_driver "$1"; }
on() { [ "$(drv "$1")" = "$2" ]; }
override() { cat "/sys/bus/pci/devices/$1/driver_override"; }
add() { "${QMP[@]}" device_add "{\"driver\":\"nvme\",\"id\":\"$1\",\"serial\":\"$1\",\"bus\":\"$2\"}"; }
del() { "${QMP[@]}" device_del "{\"id\":\"$1\"}" >/dev/null; }
gone() { [ ! -e "/sys/bus/pci/devices/$1" ]; }
claimed_in_list() { "$VFIOCTL" -j list | jq -e --arg n "$1" --argjson c "$2" \
	'.[] | select(.name == $n and .claimed == $c and .state == "assigned")' >/dev/null; }
# The kernel's own bind uevents for DEV since the capture began.
binds() { grep -c "^KERNEL\[.*\] bind .*/$1 (pci)" "$RESULTS/uevents" || true; }
# An nvme controller made for DEV (the nvme driver's probe prints it).
controller_for() { dmesg | grep -q "nvme nvme[0-9]*: pci function $1"; }

modprobe nvme
BOOT=$(vm_pci_find 1b36 0010 plain) || exit 1
vm_check "the boot nvme is on nvme" on "$BOOT" nvme
mkdir -p $D/etc
cat >$D/etc/vfiod.conf <<CONF
# One entry a line, and a list on one line.
Claim=$BOOT
Claim=0000:01:00.0, 0000:02:00.0
Claim=not-a-claim
CONF
mkdir -p /etc/udev/rules.d
cp "$SRC/udev-rules/70-vfiod.rules" /etc/udev/rules.d/
vm_check "udevd starts" vm_udev_start
modprobe vfio_select
vm_check "vfio_select is loaded, its claim table empty" test -e $PARAM -a -z "$(cat $PARAM)"
vm_dmesg_mark
vm_check "vfiod starts with Claim= on a private bus" "$H" start $D "$BUILD" \
	CONFIGURATION_DIRECTORY=$D/etc
export VFIOD_BUS_ADDRESS=$(cat $D/address)

# 1. At start: the claimed boot nvme is taken from nvme, as a marked one is.
vm_check "at start: the claimed boot nvme on $VDSUB" wait_for 60 on "$BOOT" $VDSUB
vm_check "... listed as assigned, not claimed before a host driver (nvme had it)" \
	wait_for 10 claimed_in_list "$BOOT" false
vm_check "vfio_select has the table, canonical" test "$(cat $PARAM)" = \
	"$BOOT,0000:01:00.0,0000:02:00.0"
vm_check "the bad line is named in the log" grep -q "Claim=not-a-claim: 'not-a-claim' is not a claim" \
	$D/vfiod.log

# 2. vfio_select loaded, nvme loaded: a claimed hot-add never meets nvme.
udevadm monitor --kernel --subsystem-match=pci >"$RESULTS/uevents" 2>&1 &
MON=$!
sleep 0.5
add c1 rp1 >/dev/null
vm_check "hot-added claimed nvme on $VDSUB" wait_for 60 on 0000:01:00.0 $VDSUB
vm_check "... its first bind was $VDSUB's: no bind of nvme" test "$(binds 0000:01:00.0)" = 1
vm_check "... no nvme controller was made for it" vm__not controller_for 0000:01:00.0
vm_check "... vfio_select said it claimed it" sh -c 'dmesg | grep -q "0000:01:00.0: claimed"'
vm_check "... listed as claimed before any host driver" wait_for 10 claimed_in_list 0000:01:00.0 true
vm_note "$("$VFIOCTL" show 0000:01:00.0 | grep 'vfiod:')"

# 3. destroy gives it the host driver it never had, loading the module from its modalias.
"$VFIOCTL" destroy "$BOOT" >/dev/null
vm_check "the boot nvme back on nvme" on "$BOOT" nvme
echo "$BOOT" >/sys/bus/pci/drivers/nvme/unbind
modprobe -r nvme
vm_check "nvme unloaded" sh -c '! grep -q "^nvme " /proc/modules'
out=$("$VFIOCTL" destroy 0000:01:00.0 2>&1)
vm_note "$out"
vm_check "destroy of the claimed one: nvme loaded again and bound" on 0000:01:00.0 nvme
vm_check "... its override cleared" test "$(override 0000:01:00.0)" = "(null)"
vm_check "... and now an nvme controller for it" wait_for 10 controller_for 0000:01:00.0
echo "$BOOT" >/sys/bus/pci/drivers_probe

# 4. Not claimed (rp3): left to the host, with vfio_select loaded all the same.
add c3 rp3 >/dev/null
vm_check "unclaimed hot-added nvme on nvme" wait_for 30 on 0000:03:00.0 nvme
vm_udev_settle
sleep 1
vm_check "unclaimed: still on nvme, override unset" test \
	"$(drv 0000:03:00.0) $(override 0000:03:00.0)" = "nvme (null)"

# 5. Without vfio_select: nvme binds the claimed hot-add first; vfiod takes it from nvme.
modprobe -r vfio_select
vm_check "vfio_select unloaded" test ! -e $PARAM
add c2 rp2 >/dev/null
vm_check "without vfio_select: on $VDSUB in the end" wait_for 60 on 0000:02:00.0 $VDSUB
vm_check "... nvme had bound it first (a bind event for nvme)" test "$(binds 0000:02:00.0)" = 2
vm_check "... listed as assigned, taken from nvme" wait_for 10 claimed_in_list 0000:02:00.0 false
"$VFIOCTL" destroy 0000:02:00.0 >/dev/null
vm_check "... destroy: back on nvme" on 0000:02:00.0 nvme
kill $MON 2>/dev/null
vm_note "bind events: $(grep -c ' bind ' "$RESULTS/uevents")"

"$H" down $D
cp $D/vfiod.log "$RESULTS/vfiod.log"
vm_check "no sanitizer reports" sh -c '! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$0"' "$RESULTS/vfiod.log"
vm_udev_stop
vm_no_kernel_warnings
vm_summary
