#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Figures, not a test: VFs at scale (issue #22's VF row); runs in the VM guest.
#
#   vm-vfs.sh --qemu-args                 (on the host) the QEMU devices it needs
#   vm-vfs.sh BUILD_DIR [ROUNDS [N...]]   (in the guest) ROUNDS 5, N 16 and 64
#
# The VM: --no-default-devices and --qemu "$(vm-vfs.sh --qemu-args)": one nvme PF
# on its own root port offering sriov_totalvfs 127 (QEMU's most; each VF takes 2
# flexible queues and 1 flexible interrupt, so max_ioqpairs and msix_qsize grow
# with it). For each N, interleaved rounds of bench-vfs's methods, each making N
# VFs on the same vfio driver and going back to 0 VFs: the floor (the raw writes
# in-process), vfiod over D-Bus from one long-running client, vfioctl as a process
# over D-Bus, and a loop of driverctl. The driver is the one `vfioctl create PF
# vfs N assign` picks in a first, untimed round. Any failure of a method, a
# driverctl exit status among them, ends the run with status 1.
# Figures go to stdout and $RESULTS/figures.
set -uo pipefail
MAXVFS=127
if [ "${1:-}" = --qemu-args ]; then
	echo "-device pcie-root-port,id=rpv,chassis=1,slot=1 -device nvme-subsys,id=sv" \
		"-device nvme,serial=pfv,subsys=sv,bus=rpv,sriov_max_vfs=$MAXVFS,$(printf \
			'sriov_vq_flexible=%d,sriov_vi_flexible=%d,max_ioqpairs=%d,msix_qsize=%d' \
			$((2 * MAXVFS)) $MAXVFS $((2 * MAXVFS + 2)) $((MAXVFS + 1)))"
	exit 0
fi
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../vm/guest-lib.sh"
[ $# -ge 1 ] || { sed -n 5,6p "$0" >&2; exit 2; }
BUILD=$(realpath "$1")
ROUNDS=${2:-5}
shift $(($# >= 2 ? 2 : 1))
[ $# -ge 1 ] || set -- 16 64
VFIOCTL=$BUILD/cli/vfioctl
BENCH=$BUILD/tests/bench/bench-vfs
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bench
export RUNTIME_DIRECTORY=/run/vfiod
OUT=${RESULTS:-/tmp}/figures
: >"$OUT"
say() { echo "$*" | tee -a "$OUT"; }
fail() { say "vm-vfs: FAILED: $*"; "$H" down $D 2>/dev/null; exit 1; }

command -v driverctl >/dev/null || { echo "no driverctl on the host (tests/setup.sh installs it)"; exit 1; }
[ -x "$BENCH" ] || { echo "no $BENCH: build BUILD_DIR first"; exit 1; }
modprobe nvme
PF=$(vm_pci_find 1b36 0010 pf) || { echo "no SR-IOV nvme PF (boot with --qemu \"\$(vm-vfs.sh --qemu-args)\")"; exit 1; }
P=/sys/bus/pci/devices/$PF
# Every vfio candidate loaded, as in vm-assign.sh: nothing is loaded on the clock.
modprobe -a vfio_pci vfio_fixture_vd vfio_fixture_vdsub vfio_fixture_other
modprobe vfio_select || { echo "vfio_select does not load"; exit 1; }
total=$(cat "$P/sriov_totalvfs")
[ "$(vm_pci_driver "$PF")" = nvme ] || fail "$PF is on $(vm_pci_driver "$PF"), not nvme"
say "# kernel $(uname -r), $(nproc) vCPU under TCG; PF $PF on nvme, sriov_totalvfs $total"

# What the kernel allows: every VF the PF offers, by the bare writes, with its groups.
echo 0 >"$P/sriov_drivers_autoprobe"
t0=$(now_ns)
if echo "$total" >"$P/sriov_numvfs" 2>"$D.err"; then
	t1=$(now_ns)
	links=("$P"/virtfn*)
	n=${#links[@]}
	g=$(for v in "${links[@]}"; do basename "$(readlink "$v/iommu_group")"; done | sort -u | wc -l)
	echo 0 >"$P/sriov_numvfs"
	t2=$(now_ns)
	say "# the kernel allows all $total: sriov_numvfs $total made $n VFs in $(((t1 - t0) / 1000000)) ms" \
		"in $g IOMMU groups of their own; 0 took $(((t2 - t1) / 1000000)) ms"
else
	say "# sriov_numvfs $total refused: $(cat "$D.err")"
fi
echo 1 >"$P/sriov_drivers_autoprobe"

# Why the old driverctl loop failed: unset-override reprobes, and with autoprobe
# off (and QEMU's VFs offline for nvme) nothing takes the VF, which driverctl
# reports as a failed bind to the empty driver. Shown once, on one VF.
echo 0 >"$P/sriov_drivers_autoprobe"
echo 1 >"$P/sriov_numvfs"
VF0=$(basename "$(readlink "$P/virtfn0")")
driverctl --nosave set-override "$VF0" vfio-pci || fail "driverctl set-override $VF0 vfio-pci"
out=$(driverctl --nosave unset-override "$VF0" 2>&1)
say "# driverctl --nosave unset-override $VF0 without --noprobe: exit $?: $out"
echo 0 >"$P/sriov_numvfs"
echo 1 >"$P/sriov_drivers_autoprobe"

addr=$("$H" start $D "$BUILD") || { cat $D/vfiod.log; exit 1; }
export VFIOD_BUS_ADDRESS=$addr
rc=0
for n in "$@"; do
	if [ "$n" -gt "$total" ]; then
		say "## $n VFs: skipped, the PF offers $total"
		continue
	fi
	# The driver vfiod picks for these VFs; the floor and driverctl are told it.
	"$VFIOCTL" create "$PF" vfs "$n" assign >/dev/null || fail "vfioctl create $PF vfs $n assign"
	drv=$(vm_pci_driver "$(basename "$(readlink "$P/virtfn0")")")
	groups=$(for v in "$P"/virtfn*; do basename "$(readlink "$v/iommu_group")"; done | sort -u | wc -l)
	for v in "$P"/virtfn*; do
		d=$(vm_pci_driver "$(basename "$(readlink "$v")")")
		[ "$d" = "$drv" ] || fail "vfioctl put VFs on both $drv and $d"
	done
	"$VFIOCTL" destroy "$PF" vfs >/dev/null || fail "vfioctl destroy $PF vfs"
	case $drv in *vfio*) ;; *) fail "vfioctl put the VFs on $drv, not a vfio driver" ;; esac
	[ "$groups" = "$n" ] || fail "$n VFs in only $groups IOMMU groups"
	say "## $n VFs of $PF onto $drv (vfiod's pick; $groups IOMMU groups), $ROUNDS rounds"
	"$BENCH" -p "$PF" -n "$n" -D "$drv" -r "$ROUNDS" -a "$addr" -x "$VFIOCTL" \
		floor dbus vfioctl driverctl 2>&1 | tee -a "$OUT"
	[ "${PIPESTATUS[0]}" = 0 ] || { rc=1; say "vm-vfs: FAILED: bench-vfs for $n VFs"; break; }
done

"$H" down $D
cp $D/vfiod.log "$RESULTS/vfiod.log" 2>/dev/null
exit "$rc"
