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
# 2. Read-only calls: Match of the same device against a bare round trip to
#    vfiod (Peer.Ping), interleaved on one connection.
# VFs at scale are vm-vfs.sh's (run.sh vfs).
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
say "## read-only calls, $NVME"
"$BENCH" -d "$NVME" -D $DRIVER -a "$addr" -m "${CALLS:-41}" 2>&1 | tee -a "$OUT"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1

"$H" down $D
cp $D/vfiod.log "$RESULTS/vfiod.log" 2>/dev/null
exit "$rc"
