#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Figures, not a test; runs in the VM guest (tests/vm/run.sh), see run.sh mdev.
#
#   vm-mdev.sh BUILD_DIR [ROUNDS [MDEVS [CLIENTS]]]
#
# MDEVS (64) mdevs of the fixture parent's small type (loaded with 64 instances),
# made and removed interleaved, by the raw sysfs writes from one thread and
# from CLIENTS (8) at once (floor, floor-8), by 8 concurrent sd-bus clients
# of vfiod (dbus-8) and by one client (dbus-1). vfiod runs on a private bus.
# Figures go to stdout and $RESULTS/figures.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../vm/guest-lib.sh"
BUILD=$(realpath "$1")
ROUNDS=${2:-7}
MDEVS=${3:-64}
CLIENTS=${4:-8}
BENCH=$BUILD/tests/bench/bench-mdev
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bench
MOD=vfio_fixture_mdev
P=/sys/devices/virtual/$MOD/$MOD
export RUNTIME_DIRECTORY=/run/vfiod
OUT=${RESULTS:-/tmp}/figures
: >"$OUT"
say() { echo "$*" | tee -a "$OUT"; }

vm_dmesg_mark
# Everything a create loads is loaded first: nothing is loaded on the clock.
modprobe -a vfio vfio_iommu_type1 mdev || { echo "vfio modules do not load"; exit 1; }
modprobe $MOD small_instances="$MDEVS" || { echo "$MOD does not load"; exit 1; }
[ "$(cat "$P/mdev_supported_types/$MOD-small/available_instances")" = "$MDEVS" ] ||
	{ echo "$MOD-small does not offer $MDEVS instances"; exit 1; }

addr=$("$H" start $D "$BUILD") || { cat $D/vfiod.log; exit 1; }
say "# kernel $(uname -r), $(nproc) vCPU under TCG; vfiod from $BUILD"
say "## $MDEVS mdevs on one parent: raw writes, $CLIENTS threads, D-Bus from $CLIENTS clients and 1"
"$BENCH" -p "$P" -t $MOD-small -n "$MDEVS" -c "$CLIENTS" -r "$ROUNDS" -a "$addr" \
	floor floor-c dbus-c dbus-1 2>&1 | tee -a "$OUT"
rc=${PIPESTATUS[0]}

"$H" down $D
cp $D/vfiod.log "$RESULTS/vfiod.log" 2>/dev/null
rmmod $MOD || rc=1
w=$(vm_kernel_warnings)
[ -z "$w" ] || { say "# kernel warnings:"; say "$w"; rc=1; }
exit "$rc"
