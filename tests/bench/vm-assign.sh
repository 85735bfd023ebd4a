#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Figures, not a test; runs in the VM guest (tests/vm/run.sh), see run.sh vm.
#
#   vm-assign.sh BUILD_DIR [ROUNDS]
#
# 1. Assign and release latency of QEMU's nvme on the real kernel, its
#    modules preloaded, interleaved A B C ...: the raw sysfs writes (floor),
#    vfiod over D-Bus from one long-running client with vfio_select loaded and
#    unloaded, vfioctl as a fresh process (over D-Bus and --direct), and
#    driverctl --nosave.
# 2. Bulk: every VF of the SR-IOV nvme PF assigned and released, a shell loop
#    over driverctl against a loop of vfioctl create.  When the vfs kind is
#    there (`vfioctl --direct create PF vfs N assign` works), that single call
#    is measured too.
# Figures go to stdout and $RESULTS/figures.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../vm/guest-lib.sh"
BUILD=$(realpath "$1")
ROUNDS=${2:-7}
VFIOCTL=$BUILD/cli/vfioctl
BENCH=$BUILD/tests/bench/bench-assign
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bench
export RUNTIME_DIRECTORY=/run/vfiod
OUT=${RESULTS:-/tmp}/figures
: >"$OUT"
say() { echo "$*" | tee -a "$OUT"; }
ms() { echo $(($(date +%s%N) / 1000000)); }

command -v driverctl >/dev/null || { echo "no driverctl on the host (tests/setup.sh installs it)"; exit 1; }
modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no plain nvme"; exit 1; }
PF=$(vm_pci_find 1b36 0010 pf) || PF=
# Every candidate loaded: both resolvers see them all and nothing is loaded on the clock.
modprobe -a vfio_pci vfio_fixture_vd vfio_fixture_vdsub vfio_fixture_other
modprobe vfio_select || { echo "vfio_select does not load"; exit 1; }
DRIVER=vfio-fixture-vdsub

addr=$("$H" start $D "$BUILD") || { cat $D/vfiod.log; exit 1; }
export VFIOD_BUS_ADDRESS=$addr
say "# kernel $(uname -r), $(nproc) vCPU under TCG; vfiod $($VFIOCTL --version 2>/dev/null || echo build) from $BUILD"
say "## assign/release, $NVME"
"$BENCH" -d "$NVME" -D $DRIVER -r "$ROUNDS" -a "$addr" -x "$VFIOCTL" \
	floor dbus-kernel vfioctl vfioctl-direct dbus-user driverctl 2>&1 | tee -a "$OUT"
rc=${PIPESTATUS[0]}

if [ -n "$PF" ]; then
	P=/sys/bus/pci/devices/$PF
	total=$(cat "$P/sriov_totalvfs")
	say "## bulk: all $total VFs of $PF"
	echo 0 >"$P/sriov_drivers_autoprobe"
	if "$VFIOCTL" --direct create "$PF" vfs "$total" assign >/dev/null 2>&1; then
		"$VFIOCTL" --direct destroy "$PF" vfs >/dev/null 2>&1
		for _ in 1 2 3; do
			t0=$(ms)
			"$VFIOCTL" --direct create "$PF" vfs "$total" assign >/dev/null
			t1=$(ms)
			"$VFIOCTL" --direct destroy "$PF" vfs >/dev/null
			t2=$(ms)
			say "vfioctl create PF vfs $total assign: $((t1 - t0)) ms; destroy PF vfs: $((t2 - t1)) ms"
		done
	else
		say "# the vfs kind is not built yet: VFs made by sriov_numvfs, then one call a VF"
	fi
	echo "$total" >"$P/sriov_numvfs"
	mapfile -t VFS < <(for v in "$P"/virtfn*; do basename "$(readlink -f "$v")"; done)
	for _ in 1 2 3; do
		t0=$(ms)
		for v in "${VFS[@]}"; do driverctl --nosave set-override "$v" vfio-pci; done
		t1=$(ms)
		for v in "${VFS[@]}"; do driverctl --nosave unset-override "$v"; done
		t2=$(ms)
		for v in "${VFS[@]}"; do "$VFIOCTL" create "$v" driver vfio-pci >/dev/null; done
		t3=$(ms)
		for v in "${VFS[@]}"; do "$VFIOCTL" destroy "$v" >/dev/null; done
		t4=$(ms)
		say "loop of ${#VFS[@]}: driverctl set-override $((t1 - t0)) ms, unset $((t2 - t1)) ms;" \
			"vfioctl create (D-Bus) $((t3 - t2)) ms, destroy $((t4 - t3)) ms;" \
			"driverctl/vfioctl $(awk -v a=$((t1 - t0 + t2 - t1)) -v b=$((t4 - t2)) 'BEGIN{printf "%.2f", a/b}')x"
	done
	for v in "${VFS[@]}"; do
		d=$(vm_pci_driver "$v")
		[ "$d" = vfio-pci ] && { echo "$v left on vfio-pci"; rc=1; }
	done
	echo 0 >"$P/sriov_numvfs"
fi
"$H" down $D
cp $D/vfiod.log "$RESULTS/vfiod.log" 2>/dev/null
exit "$rc"
