#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Figures, not a test; runs in the VM guest (tests/vm/run.sh), see run.sh vm.
#
#   vm-assign.sh BUILD_DIR [ROUNDS [RUNS]]   (RUNS, 3: the table that many times, and the spread)
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
RUNS=${3:-3}
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
rc=0
for run in $(seq "$RUNS"); do
	say "## assign/release, $NVME, run $run of $RUNS"
	"$BENCH" -d "$NVME" -D $DRIVER -r "$ROUNDS" -a "$addr" -x "$VFIOCTL" \
		floor dbus-kernel libvfiod vfioctl vfioctl-direct dbus-user driverctl 2>&1 |
		tee "$D/run-$run" | tee -a "$OUT"
	[ "${PIPESTATUS[0]}" = 0 ] || { rc=1; break; }
done
if [ $rc = 0 ] && [ "$RUNS" -gt 1 ]; then
	say "## the spread over the $RUNS runs: each ratio's lowest, median and highest"
	awk '$2 ~ /^[0-9.]+$/ && NF >= 5 {
		m = $1; a[m] = a[m] " " $4; r[m] = r[m] " " $5; if (NF >= 6) d[m] = d[m] " " $6
		if (!(m in seen)) { seen[m] = 1; order[++n] = m }
	}
	function spread(list,   v, k, i, j, t) {
		k = split(list, v, " ")
		for (i = 1; i <= k; i++) { sub(/x$/, "", v[i]); v[i] += 0 }
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return sprintf("%.2f %.2f %.2f", v[1], v[int((k + 1) / 2)], v[k])
	}
	END {
		printf "%-15s %-18s %-18s %-18s\n", "method", "/floor lo med hi", "/floor_rel lo med hi", "driverctl/x lo med hi"
		for (i = 1; i <= n; i++)
			printf "%-15s %-18s %-18s %-18s\n", order[i], spread(a[order[i]]), spread(r[order[i]]), spread(d[order[i]])
	}' "$D"/run-* | tee -a "$OUT"
fi
say "## read-only calls, $NVME"
"$BENCH" -d "$NVME" -D $DRIVER -a "$addr" -m "${CALLS:-41}" 2>&1 | tee -a "$OUT"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1

"$H" down $D
cp $D/vfiod.log "$RESULTS/vfiod.log" 2>/dev/null
exit "$rc"
