#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: vfiod on a real dbus-daemon in the guest, on the real kernel.
#
#   case-daemon.sh BUILD_DIR
#
# vfioctl and busctl go through vfiod; vfiod is made to die (abort, like a
# kill -9: no clean-up runs) right before each step of create and destroy,
# and after a restart every device is either fully assigned or back on its
# host driver, with an empty journal; a persistent definition comes back
# after a restart.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/guest-lib.sh"
BUILD=$1
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bus
export RUNTIME_DIRECTORY=/run/vfiod
export ASAN_OPTIONS=detect_leaks=0 # the aborts below are on purpose
VFIOCTL=("$BUILD/cli/vfioctl")
JOURNAL=$RUNTIME_DIRECTORY/journal
LOG=$D/vfiod.log

vfiod_start() { "$H" start $D "$BUILD" "$@" >/dev/null; }
vfiod_stop() { "$H" stop $D; }
drv() { vm_pci_driver "$1"; }

modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain) || exit 1
SYSPATH=$(readlink -f "/sys/bus/pci/devices/$NVME")
vm_check "vfiod starts and owns org.vfiod1" vfiod_start
export VFIOD_BUS_ADDRESS=$(cat $D/address)
BUSCTL=(busctl --address="$VFIOD_BUS_ADDRESS")

# 1. vfioctl through vfiod.
out=$("${VFIOCTL[@]}" create "$NVME")
vm_note "$out"
vm_check "vfioctl create through vfiod: most specific variant" test "$(drv "$NVME")" = vfio-fixture-vdsub
vm_check "vfioctl list through vfiod shows it" sh -c '"$0" list | grep -q "^pci  *$1 .*vfio-fixture-vdsub"' \
	"${VFIOCTL[0]}" "$NVME"
vm_check "-j output is the same as --direct's" sh -c \
	'test "$("$0" -j list)" = "$("$0" --direct -j list)"' "${VFIOCTL[0]}"
"${VFIOCTL[@]}" destroy "$NVME"
vm_check "vfioctl destroy through vfiod: nvme back" test "$(drv "$NVME")" = nvme
# On a terminal, a group create follows vfiod's Progress signals (its group has one member).
out=$(vm_on_pty "${VFIOCTL[0]}" --color=never create "$NVME" group)
vm_check "on a terminal: vfiod's progress of the group, then the result" grep -qF \
	"$(printf '\r\033[K%s: 1 of 1 done (%s)\r\033[K%s: assigned' "$NVME" "$NVME" "$NVME")" <<<"$out"
"${VFIOCTL[@]}" destroy "$NVME"

# 2. A plain D-Bus client.
t0=$(date +%s%N)
out=$("${BUSCTL[@]}" call org.vfiod1 /org/vfiod1 org.vfiod1.Manager Create 'sa{sv}' "$SYSPATH" 0)
t1=$(date +%s%N)
vm_note "busctl Create: $out ($(((t1 - t0) / 1000000)) ms)"
vm_check "busctl Create assigns" test "$(drv "$NVME")" = vfio-fixture-vdsub
obj=$(sed -n 's/^os* "\(\/org\/vfiod1\/device\/[^"]*\)".*/\1/p' <<<"$out")
vm_check "the device object has its properties" sh -c \
	'"$@" | grep -q "vfio-fixture-vdsub"' _ "${BUSCTL[@]}" get-property org.vfiod1 "$obj" \
	org.vfiod1.Device Driver
out=$("${BUSCTL[@]}" call org.vfiod1 /org/vfiod1 org.vfiod1.Manager Destroy 'sa{sv}' "$NVME" 0)
vm_check "busctl Destroy gives it back" test "$(drv "$NVME")" = nvme

# Figures: D-Bus round trips from one long-running client against raw sysfs writes.
modprobe vfio_fixture_vdsub
python3 "$HERE/dbus-roundtrip.py" "$VFIOD_BUS_ADDRESS" "$NVME" vfio-fixture-vdsub 7 |
	tee -a "$RESULTS/figures" | sed 's/^/# /'
vm_check "nvme back after the round trips" test "$(drv "$NVME")" = nvme

# 3. Death before each step, then recovery.
check_consistent() { # label
	local d
	vm_check "$1: vfiod restarts" vfiod_start
	vm_check "$1: journal drained" journal_drained
	d=$(drv "$NVME")
	vm_check "$1: device fully assigned or back on nvme ($d)" \
		sh -c 'test "$0" = vfio-fixture-vdsub || test "$0" = nvme' "$d"
	if [ "$d" = vfio-fixture-vdsub ]; then
		vm_check "$1: assigned, and listed so" sh -c '"$0" list | grep -q "^pci  *$1 "' \
			"${VFIOCTL[0]}" "$NVME"
		"${VFIOCTL[@]}" destroy "$NVME" >/dev/null
	else
		vm_check "$1: back, and not listed" test "$("${VFIOCTL[@]}" -j list)" = "[]"
		vm_check "$1: driver_override clear" \
			test "$(cat "/sys/bus/pci/devices/$NVME/driver_override")" = "(null)"
	fi
	vm_check "$1: nvme bound at the end" test "$(drv "$NVME")" = nvme
}
for step in load-module record set-override unbind probe verify; do
	vfiod_stop
	modprobe -r vfio_fixture_vdsub 2>/dev/null
	vfiod_start VFIOD_ABORT_AT="assign:$step"
	"${VFIOCTL[@]}" create "$NVME" >/dev/null 2>&1
	vfiod_stop
	check_consistent "died before assign:$step"
done
for step in unbind restore-override probe verify; do
	vfiod_stop
	vfiod_start
	"${VFIOCTL[@]}" create "$NVME" >/dev/null
	vfiod_stop
	vfiod_start VFIOD_ABORT_AT="release:$step"
	"${VFIOCTL[@]}" destroy "$NVME" >/dev/null 2>&1
	vfiod_stop
	check_consistent "died before release:$step"
done

# A real SIGKILL while a create is in flight (wherever it lands).
vfiod_stop
vfiod_start
"${VFIOCTL[@]}" create "$NVME" >/dev/null 2>&1 &
sleep 0.1
"$H" kill $D
wait
check_consistent "killed -9 during a create"

# 4. A persistent definition is applied again when vfiod starts.
vfiod_stop
vfiod_start
"${VFIOCTL[@]}" create "$NVME" persistent >/dev/null
vfiod_stop
"${VFIOCTL[@]}" --direct destroy "$NVME" >/dev/null
vm_check "released behind vfiod's back" test "$(drv "$NVME")" = nvme
vfiod_start
for _ in $(seq 100); do [ "$(drv "$NVME")" = vfio-fixture-vdsub ] && break; sleep 0.1; done
vm_check "persistent definition re-applied at start" test "$(drv "$NVME")" = vfio-fixture-vdsub
"${VFIOCTL[@]}" destroy "$NVME" >/dev/null
vfiod_stop
vfiod_start
sleep 1
vm_check "destroy removed the definition" test "$(drv "$NVME")" = nvme
"$H" down $D
cp $LOG "$RESULTS/vfiod.log"
vm_check "vfiod stopped cleanly on SIGTERM" sh -c '! grep -q "AddressSanitizer\|runtime error" "$0"' "$LOG"
vm_no_kernel_warnings
vm_summary
