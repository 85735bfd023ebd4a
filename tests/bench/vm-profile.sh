#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Where vfiod's time goes in the VM guest, for vm-assign.sh's figures:
# vfiod runs under strace -f -tt -T (every system call, its thread, its
# duration) while bench-assign makes ROUNDS D-Bus Create/Destroy round trips
# with vfio_select unloaded and then loaded.  The trace lands in
# $RESULTS/vfiod.strace; strace-summary.py reads it on the host.
#
#   vm-profile.sh BUILD_DIR [ROUNDS]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../vm/guest-lib.sh"
BUILD=$(realpath "$1")
ROUNDS=${2:-3}
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bench
export RUNTIME_DIRECTORY=/run/vfiod

modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain) || exit 1
modprobe -a vfio_pci vfio_fixture_vd vfio_fixture_vdsub vfio_fixture_other vfio_select
addr=$("$H" start $D "$BUILD") || exit 1
"$H" stop $D
VFIOD_BUS_ADDRESS=$addr STATE_DIRECTORY=$D/state \
	strace -f -tt -T -o "$RESULTS/vfiod.strace" "$BUILD/daemon/vfiod" >"$RESULTS/vfiod.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
	busctl --address="$addr" status org.vfiod1 >/dev/null 2>&1 && break
	sleep 0.1
done
echo "# trace starts: $(date +%H:%M:%S.%N)" >"$RESULTS/marks"
"$BUILD/tests/bench/bench-assign" -d "$NVME" -D vfio-fixture-vdsub -r "$ROUNDS" -a "$addr" \
	floor dbus-user dbus-kernel
rc=$?
kill -TERM $pid
wait $pid
"$H" down $D
exit $rc
