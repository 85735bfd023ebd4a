#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run the benchmarks (see README.md). Figures, not pass/fail: each part prints
# what it measured, side by side, in one run.
#
#   tests/bench/run.sh BUILD_DIR [resolve|bulk|footprint|vm|vfs|mdev|hotplug|profile|perf|timeline|all]...
#
# BUILD_DIR is a release build (cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo, no
# sanitizers) whose BUILD_DIR/vm holds tests/vm/build-modules.sh's module trees.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { sed -n 5,9p "$0" >&2; exit 2; }
BUILD=$(realpath "$1")
shift
[ $# -ge 1 ] || set -- all
KV=$(cat "${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}/KV")
MODS=$BUILD/vm/modroot/lib/modules/$KV
PRISTINE=$BUILD/vm/modroot-pristine/lib/modules/$KV
BENCH=$BUILD/tests/bench/vfiod-bench
PY=/usr/bin/python3 # python3-dbus and gi, from Debian
[ -x "$BENCH" ] || { echo "no $BENCH: build BUILD_DIR first" >&2; exit 1; }
[ -f "$MODS/modules.alias" ] || { echo "no $MODS: tests/vm/build-modules.sh $BUILD/vm" >&2; exit 1; }
if grep -q 'CMAKE_C_FLAGS.*fsanitize\|VFIOD_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
	echo "# warning: $BUILD has sanitizers; the figures are not the release ones" >&2
fi
TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/vfiod-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

resolve() {
	echo "## driver resolution: vfiod against libvirt's rule, 6 device kinds x 16 functions"
	"$PY" "$HERE/mkfixture.py" "$TMP/r/sys" 16 >/dev/null
	VFIOD_SYSFS_ROOT=$TMP/r/sys RUNTIME_DIRECTORY=$TMP/r/run \
		"$BENCH" resolve -r 20 -c 5 -x "$BUILD/cli/vfioctl" \
		debian="$PRISTINE" debian+variants="$MODS"
}

bulk() {
	echo "## bulk: user-space cost per function (us), medians of 5"
	printf '%6s %12s %12s %14s\n' functions match_us list_us vfioctl_list_us
	for n in 16 64 256 1024 4096; do
		rm -rf "$TMP/b"
		"$PY" "$HERE/mkfixture.py" "$TMP/b/sys" $n >/dev/null
		export VFIOD_SYSFS_ROOT=$TMP/b/sys RUNTIME_DIRECTORY=$TMP/b/run VFIOD_MODULES_DIR=$MODS
		"$BENCH" records
		"$BENCH" bulk -r 5 -x "$BUILD/cli/vfioctl"
		unset VFIOD_SYSFS_ROOT RUNTIME_DIRECTORY VFIOD_MODULES_DIR
	done
}

footprint() {
	echo "## vfiod footprint (private bus, fixture tree, 60 s idle)"
	"$PY" "$HERE/daemon-footprint.py" "$BUILD" "$MODS" --devices 4096 --idle "${IDLE:-60}"
}

vm() {
	echo "## in the VM (TCG): assign/release latency and VF bulk"
	"$HERE/../vm/run.sh" --modroot "$BUILD/vm/modroot" --results "$BUILD/vm/results-bench" \
		-- "$HERE/vm-assign.sh" "$BUILD" "${ROUNDS:-7}" "${RUNS:-3}" | grep -v '^# vm:\|^\['
}

profile() {
	echo "## in the VM: vfiod under strace during D-Bus round trips"
	"$HERE/../vm/run.sh" --modroot "$BUILD/vm/modroot" --results "$BUILD/vm/results-profile" \
		-- "$HERE/vm-profile.sh" "$BUILD" 3 | grep -v '^# vm:\|^\['
	"$PY" "$HERE/strace-summary.py" "$BUILD/vm/results-profile/vfiod.strace"
}

vfs() {
	echo "## in the VM: N VFs of an SR-IOV nvme created and assigned, against the raw writes and driverctl"
	"$HERE/../vm/run.sh" --modroot "$BUILD/vm/modroot" --results "$BUILD/vm/results-vfs" \
		--timeout 1500 --no-default-devices --qemu "$("$HERE/vm-vfs.sh" --qemu-args)" \
		-- "$HERE/vm-vfs.sh" "$BUILD" "${VF_ROUNDS:-5}" | grep -v '^# vm:\|^\['
}

mdev() {
	echo "## in the VM: mdevs of one parent made by 8 concurrent D-Bus clients, against the raw writes"
	"$HERE/../vm/run.sh" --modroot "$BUILD/vm/modroot" --results "$BUILD/vm/results-mdev" \
		-- "$HERE/vm-mdev.sh" "$BUILD" "${MDEV_ROUNDS:-5}" | grep -v '^# vm:\|^\['
}

hotplug() {
	echo "## in the VM: hot-added marked nvme to bound to vfio (vm-hotplug's figures, this build)"
	local rp="" i
	for i in 1 2 3 4; do rp="$rp -device pcie-root-port,id=rp$i,chassis=$i"; done
	"$HERE/../vm/run.sh" --modroot "$BUILD/vm/modroot" --results "$BUILD/vm/results-hotplug" \
		--no-default-devices --qemu "${rp# }" --qmp \
		-- "$HERE/../vm/case-hotplug.sh" "$BUILD" >"$BUILD/vm/hotplug.log" 2>&1 ||
		{ tail -20 "$BUILD/vm/hotplug.log"; return 1; }
	cat "$BUILD/vm/results-hotplug/figures"
}

perf_profile() {
	echo "## in the VM: the whole guest sampled by perf, the floor against D-Bus"
	"$HERE/../vm/run.sh" --modroot "$BUILD/vm/modroot" --results "$BUILD/vm/results-perf" \
		-- "$HERE/vm-profile.sh" "$BUILD" "${ROUNDS:-7}" perf | grep -v '^# vm:\|^\['
	cat "$BUILD/vm/results-perf/perf-floor.txt" "$BUILD/vm/results-perf/perf-dbus.txt"
}

timeline() {
	echo "## in the VM: one D-Bus assign and release, vfiod's debug lines timed"
	"$HERE/../vm/run.sh" --modroot "$BUILD/vm/modroot" --results "$BUILD/vm/results-timeline" \
		-- "$HERE/vm-profile.sh" "$BUILD" "${ROUNDS:-5}" timeline | grep -v '^# vm:\|^\['
	cat "$BUILD/vm/results-timeline/timeline.txt"
}

for part in "$@"; do
	case $part in
	resolve | bulk | footprint | vm | vfs | mdev | profile | hotplug | timeline) $part ;;
	perf) perf_profile ;;
	all) resolve; bulk; footprint; vm; vfs; mdev; hotplug ;;
	*) echo "run.sh: unknown part '$part'" >&2; exit 2 ;;
	esac
done
