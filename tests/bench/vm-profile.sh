#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Where vfiod's time goes in the VM guest, for vm-assign.sh's figures.
#
#   vm-profile.sh BUILD_DIR [ROUNDS] [strace|perf|timeline]
#
# strace: vfiod runs under strace -f -tt -T (every system call, its thread,
# its duration) while bench-assign makes ROUNDS D-Bus Create/Destroy round
# trips with vfio_select unloaded and then loaded.  The trace lands in
# $RESULTS/vfiod.strace; strace-summary.py reads it on the host.
#
# perf: the whole guest is sampled (perf record -a, cpu-clock) during ROUNDS
# of the floor alone and then ROUNDS of D-Bus with vfio_select loaded, so
# the two profiles compare the same kernel work with and without vfiod; the
# reports (by command and object, then vfiod's and the kernel's symbols)
# land in $RESULTS/perf-floor.txt and $RESULTS/perf-dbus.txt.
# timeline: vfiod runs with --debug and VFIOD_LOG_TIME=1, its log on a tmpfs
# that nothing watches (not /run: vfiod watches /run for /run/modprobe.d),
# while bench-assign makes ROUNDS D-Bus Create/Destroy round trips with
# vfio_select loaded, the floor interleaved; the last round's lines, each
# with the milliseconds since the one before, land in $RESULTS/timeline.txt.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../vm/guest-lib.sh"
BUILD=$(realpath "$1")
ROUNDS=${2:-3}
TOOL=${3:-strace}
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bench
export RUNTIME_DIRECTORY=/run/vfiod

modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain) || exit 1
modprobe -a vfio_pci vfio_fixture_vd vfio_fixture_vdsub vfio_fixture_other vfio_select
addr=$("$H" start $D "$BUILD") || exit 1
"$H" stop $D
if [ "$TOOL" = timeline ]; then
	LOG=/dev/shm/vfiod-timeline.log
	mountpoint -q /dev/shm || mount -t tmpfs tmpfs /dev/shm
	VFIOD_LOG_TIME=1 VFIOD_BUS_ADDRESS=$addr STATE_DIRECTORY=$D/state \
		"$BUILD/daemon/vfiod" --debug >$LOG 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		busctl --address="$addr" status org.vfiod1 >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$BUILD/tests/bench/bench-assign" -d "$NVME" -D vfio-fixture-vdsub -a "$addr" \
		-r "$ROUNDS" floor dbus-kernel
	rc=$?
	kill -TERM $pid
	wait $pid
	"$H" down $D
	# From the last "assign started" on, the signals' lines left out: the time since
	# the line before, in ms.
	grep -v '^<7>[0-9.]* \[[0-9]*\] Event {' $LOG |
		awk '/ assign started / { n = 0 } { l[n++] = $0 }
		     END { for (i = 0; i < n; i++) {
				split(l[i], f, " "); t = substr(f[1], 4) + 0
				printf "%8.2f  %s\n", i ? (t - p) * 1000 : 0, l[i]; p = t } }' \
			>"$RESULTS/timeline.txt"
	exit $rc
fi
if [ "$TOOL" = perf ]; then
	VFIOD_BUS_ADDRESS=$addr STATE_DIRECTORY=$D/state "$BUILD/daemon/vfiod" >"$RESULTS/vfiod.log" 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		busctl --address="$addr" status org.vfiod1 >/dev/null 2>&1 && break
		sleep 0.1
	done
	run() { "$BUILD/tests/bench/bench-assign" -d "$NVME" -D vfio-fixture-vdsub -a "$addr" "$@"; }
	run -r 2 floor dbus-kernel >/dev/null || exit 1 # warm: page cache, modules, the pool
	for m in floor dbus-kernel; do
		perf record -q -a -F 1999 -o "$RESULTS/perf-$m.data" -- \
			"$BUILD/tests/bench/bench-assign" -d "$NVME" -D vfio-fixture-vdsub -a "$addr" \
			-r "$ROUNDS" "$m" >"$RESULTS/bench-$m.txt" || exit 1
		{
			cat "$RESULTS/bench-$m.txt"
			perf report -q -i "$RESULTS/perf-$m.data" --sort comm,dso --percent-limit 0.5 --stdio
			echo "## vfiod, by symbol"
			perf report -q -i "$RESULTS/perf-$m.data" --comms vfiod --sort dso,sym \
				--percent-limit 0.3 --stdio
			echo "## all, by symbol"
			perf report -q -i "$RESULTS/perf-$m.data" --sort comm,sym --percent-limit 0.4 --stdio
		} >"$RESULTS/perf-${m%-kernel}.txt" 2>&1
	done
	kill -TERM $pid
	wait $pid
	"$H" down $D
	exit 0
fi
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
