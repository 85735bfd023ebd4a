#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: faults in the middle of every kind's operations, through vfiod.
#
#   case-faults.sh BUILD_DIR
#
# For PCI through the daemon (case-daemon.sh kills at each of its steps), SR-IOV VFs, mdev,
# vdpa and devlink SF, vfiod is made to die (VFIOD_ABORT_AT: abort, no clean-up, like a
# kill -9) right before each named step of create and destroy, and restarted: the device
# must be fully made or back where it was, vfiod's list must agree with the kernel, the
# journal must be empty and the state files must parse.  Then the kernel refuses (a variant
# driver's probe of a PCI function or of a VF fails with EIO, an mdev attribute, an SF on a
# legacy eswitch, a vdpa device its management device does not have) and hangs (a probe
# slower than VFIOD_OPERATION_TIMEOUT_SEC, then vfiod killed during such a hang; a VF held
# open while its PF's VFs are removed): the same must hold.  The table
# operation:step -> consistent goes to RESULTS/faults-table.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/guest-lib.sh"
BUILD=$1
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-faults
export RUNTIME_DIRECTORY=/run/vfiod
export ASAN_OPTIONS=detect_leaks=0 # the aborts below are on purpose
JOURNAL=$RUNTIME_DIRECTORY/journal
TABLE=$RESULTS/faults-table
: >"$TABLE"

vfiod_start() { "$H" start $D "$BUILD" "$@" >/dev/null; }
vfiod_stop() { "$H" stop $D; }
# Every state file vfiod keeps parses as JSON.
state_parses() {
	python3 - "$D/state" "$RUNTIME_DIRECTORY" <<-'PY'
	import json, os, sys
	for top in sys.argv[1:]:
	    for dp, _, fns in os.walk(top):
	        for f in fns:
	            if f.endswith(".json"):
	                json.load(open(os.path.join(dp, f)))
	PY
}
bus() { busctl --address="$VFIOD_BUS_ADDRESS" "$@"; }
create() { bus call org.vfiod1 /org/vfiod1 org.vfiod1.Manager Create 'sa{sv}' "$@"; }
destroy() { bus call org.vfiod1 /org/vfiod1 org.vfiod1.Manager Destroy 'sa{sv}' "$@"; }
listed() { bus call org.vfiod1 /org/vfiod1 org.vfiod1.Manager List | grep -qF -- "$1"; }

# row LABEL CHECK...: run the checks of one table row; the row is "yes" when all pass.
row() {
	local label=$1 failed=$VM_FAILED
	shift
	"$@"
	if [ "$VM_FAILED" -eq "$failed" ]; then
		printf '%-32s consistent yes\n' "$label" >>"$TABLE"
	else
		printf '%-32s consistent NO\n' "$label" >>"$TABLE"
	fi
}
# after LABEL KIND: vfiod restarted, then settled.
after() {
	vm_check "$1: vfiod restarts" vfiod_start
	export VFIOD_BUS_ADDRESS=$(cat $D/address)
	settled "$@"
}
# settled LABEL KIND: journal empty, state parses, the device all there (then destroyed) or
# all gone, and vfiod's list agrees.
settled() {
	local label=$1 kind=$2 state
	vm_check "$label: journal drained" journal_drained
	vm_check "$label: state files parse" state_parses
	state=$("${kind}_state")
	vm_note "$label: $state"
	vm_check "$label: all made or all gone ($state)" \
		sh -c 'test "$0" = made || test "$0" = gone' "$state"
	if [ "$state" = made ]; then
		vm_check "$label: made, and vfiod lists it" listed "$("${kind}_name")"
		"${kind}_destroy" >/dev/null
		vm_check "$label: then destroyed" test "$("${kind}_state")" = gone
	else
		vm_check "$label: gone, and vfiod does not list it" vm__not listed "$("${kind}_name")"
	fi
}
# kill_at KIND OP STEP [VERB]: die before OP:STEP of a create (or of a destroy of a made
# one); VERB (create or destroy) is the call that reaches OP, by default OP's own.
kill_at() {
	local kind=$1 op=$2 step=$3 verb=${4:-${2#*-}} label=$2:$3
	[ "${op%%-*}" = "$kind" ] || label="$kind $verb, $op:$step"
	vfiod_stop
	if [ "$verb" = destroy ]; then
		vfiod_start
		export VFIOD_BUS_ADDRESS=$(cat $D/address)
		"${kind}_create" >/dev/null
		vm_check "$label: made before the destroy" test "$("${kind}_state")" = made
		vfiod_stop
	fi
	vfiod_start VFIOD_ABORT_AT="$op:$step"
	export VFIOD_BUS_ADDRESS=$(cat $D/address)
	if [ "$verb" = destroy ]; then
		"${kind}_destroy" >/dev/null 2>&1
	else
		"${kind}_create" >/dev/null 2>&1
	fi
	vfiod_stop
	vm_check "$label: vfiod died there" grep -q "aborting before $op:$step" $D/vfiod.log
	after "$label" "$kind"
}

vm_dmesg_mark

# mdev: the fixture parent, an instance of the small type with an attribute.
MOD=vfio_fixture_mdev
P=/sys/devices/virtual/$MOD/$MOD
T=/sys/class/mdev_bus/$MOD/mdev_supported_types
U=5f4c6a8e-1d1e-4c55-9b8e-2b6c3f0a7d21
vm_check "mdev fixture loads" modprobe $MOD
mdev_name() { echo $U; }
mdev_create() { create "$P" 3 type s $MOD-small uuid s $U attrs 'a{ss}' 1 knob 1; }
mdev_destroy() { destroy $U 0; }
mdev_state() {
	if [ -e /sys/bus/mdev/devices/$U ]; then
		[ "$(cat /sys/bus/mdev/devices/$U/knob)" = 1 ] && echo made || echo half-made
	elif [ "$(cat $T/$MOD-small/available_instances)" = 2 ]; then
		echo gone
	else
		echo "instance leaked"
	fi
}

# vdpa: a VDUSE block device exported by qemu-storage-daemon, made a vdpa device blk0.
modprobe -a vdpa vduse vhost_vdpa virtio_vdpa
qemu-storage-daemon --blockdev driver=null-co,node-name=n0,size=67108864,read-zeroes=on \
	--export type=vduse-blk,id=e0,node-name=n0,name=blk0,writable=on \
	--pidfile /run/qsd.pid --daemonize
vm_check "vduse blk0 exported" test -e /dev/vduse/blk0
vdpa_name() { echo blk0; }
vdpa_create() { create vduse 1 vdpa s blk0; }
vdpa_destroy() { destroy blk0 0; }
vdpa_state() {
	local d=/sys/bus/vdpa/devices/blk0
	if [ -e $d ]; then
		[ "$(basename "$(readlink $d/driver)")" = vhost_vdpa ] && echo made || echo half-made
	else
		echo gone
	fi
}

# SF: the fixture binds pci-testdev and offers subfunctions.
PF=$(vm_pci_find 1b36 0005 | head -n1)
vm_check "SF fixture binds pci-testdev $PF" modprobe vfio_fixture_sf
sf_name() { echo "$PF-sf88"; }
sf_create() { create "/sys/bus/pci/devices/$PF" 2 sf u 88 mac s 00:11:22:33:44:55; }
sf_destroy() { destroy "/sys/bus/pci/devices/$PF" 1 sf u 88; }
sf_ports() { devlink port show 2>/dev/null | grep -c "pci/$PF/.*flavour pcisf"; }
sf_state() {
	local aux
	aux=$(ls /sys/bus/auxiliary/devices 2>/dev/null | grep -c '\.sf\.')
	if [ "$(sf_ports)" = 0 ] && [ "$aux" = 0 ]; then
		echo gone
	elif [ "$(sf_ports)" = 1 ] && [ "$aux" = 1 ] &&
		devlink port show 2>/dev/null | grep -q "hw_addr 00:11:22:33:44:55 state active"; then
		echo made
	else
		echo "half-made (ports $(sf_ports), auxiliary devices $aux)"
	fi
}

# PCI: the plain nvme, handed to its most specific variant driver (whose probe the
# fixture's fail_probe and probe_delay_ms parameters make fail or stall).
modprobe -a nvme vfio_fixture_vdsub
NVME=$(vm_pci_find 1b36 0010 plain)
VD=/sys/module/vfio_fixture_vdsub/parameters
records() { ls "$RUNTIME_DIRECTORY/$1" 2>/dev/null | grep -c '\.json$'; }
pci_name() { echo "$NVME"; }
pci_create() { create "/sys/bus/pci/devices/$NVME" 0; }
pci_destroy() { destroy "$NVME" 0; }
pci_state() {
	local d o r
	d=$(vm_pci_driver "$NVME")
	o=$(cat "/sys/bus/pci/devices/$NVME/driver_override")
	r=$(records assigned)
	case "$d $o $r" in
	"vfio-fixture-vdsub vfio-fixture-vdsub 1") echo made ;;
	"nvme (null) 0") echo gone ;;
	*) echo "half-made (driver $d, override $o, $r records)" ;;
	esac
}

# VFs of the SR-IOV nvme PF.  "vfs": from none (autoprobe on) to 2 on vfio, autoprobe left
# off; "vfs1": from one VF made by hand (autoprobe off) to 2 on vfio, autoprobe turned on
# after, which takes the steps through 0 VFs and autoprobe-after.
VPF=$(vm_pci_find 1b36 0010 pf)
vpf() { cat "/sys/bus/pci/devices/$VPF/$1"; }
vf_drivers() {
	local l
	for l in "/sys/bus/pci/devices/$VPF"/virtfn*; do
		[ -e "$l" ] && vm_pci_driver "$(basename "$(readlink "$l")")"
	done | xargs
}
vfs_state_of() { # HOME MADE: "numvfs autoprobe" before the create and after it
	local n a r v
	n=$(vpf sriov_numvfs)
	a=$(vpf sriov_drivers_autoprobe)
	r="$(records vfs) $(records assigned)"
	v=$(vf_drivers)
	if [ "$n $a $r" = "$1 0 0" ]; then
		echo gone
	elif [ "$n $a $r $v" = "$2 1 2 vfio-fixture-vdsub vfio-fixture-vdsub" ]; then
		echo made
	else
		echo "half-made (numvfs $n, autoprobe $a, records vfs+assigned $r, VFs on: ${v:--})"
	fi
}
vfs_name() { echo "$VPF"; }
vfs_create() { create "/sys/bus/pci/devices/$VPF" 2 vfs u 2 assign b true; }
vfs_destroy() { destroy "/sys/bus/pci/devices/$VPF" 1 vfs b true; }
vfs_state() { vfs_state_of "0 1" "2 0"; }
vfs1_name() { echo "$VPF"; }
vfs1_create() { create "/sys/bus/pci/devices/$VPF" 3 vfs u 2 assign b true autoprobe b true; }
vfs1_destroy() { vfs_destroy; }
vfs1_state() { vfs_state_of "1 0" "2 1"; }
vfs1_home() {
	echo 0 >"/sys/bus/pci/devices/$VPF/sriov_drivers_autoprobe"
	echo 1 >"/sys/bus/pci/devices/$VPF/sriov_numvfs"
}
vfs_home() {
	echo 0 >"/sys/bus/pci/devices/$VPF/sriov_numvfs"
	echo 1 >"/sys/bus/pci/devices/$VPF/sriov_drivers_autoprobe"
}

vfiod_start
export VFIOD_BUS_ADDRESS=$(cat $D/address)
for k in pci vfs mdev vdpa sf; do
	vm_check "$k: plain create through vfiod" "${k}_create"
	vm_check "$k: made" test "$("${k}_state")" = made
	[ $k = vfs ] && VF1=$(basename "$(readlink "/sys/bus/pci/devices/$VPF/virtfn1")")
	vm_check "$k: plain destroy through vfiod" "${k}_destroy"
	vm_check "$k: gone" test "$("${k}_state")" = gone
done

# 1. Death before every step.
for step in record autoprobe numvfs assign; do row "vfs-create:$step" kill_at vfs vfs-create $step; done
row "vfs create, VF assign:probe" kill_at vfs assign probe create
for step in release autoprobe numvfs forget; do
	row "vfs-destroy:$step" kill_at vfs vfs-destroy $step
done
row "vfs destroy, VF release:probe" kill_at vfs release probe destroy
vfs1_home
vm_check "vfs1: one VF made by hand, autoprobe off" test "$(vfs1_state)" = gone
for step in numvfs-0 autoprobe-after; do
	row "vfs-create:$step (from 1 VF)" kill_at vfs1 vfs-create $step
done
row "vfs-destroy:numvfs-0 (back to 1 VF)" kill_at vfs1 vfs-destroy numvfs-0
vfs_home
for step in create attrs verify; do row "mdev-create:$step" kill_at mdev mdev-create $step; done
row "mdev-destroy:remove" kill_at mdev mdev-destroy remove
# load-module is announced twice (the vdpa modules, then the bus driver's): the first aborts.
for step in load-module dev-new set-override unbind probe verify; do
	row "vdpa-create:$step" kill_at vdpa vdpa-create $step
done
row "vdpa-destroy:dev-del" kill_at vdpa vdpa-destroy dev-del
for step in port-new hw-addr activate wait-auxiliary; do
	row "sf-create:$step" kill_at sf sf-create $step
done
for step in deactivate port-del; do row "sf-destroy:$step" kill_at sf sf-destroy $step; done

# 2. The kernel refuses.
refused_by_kernel() { # label kind expected-words create-command...
	local label=$1 kind=$2 words=$3 out
	shift 3
	out=$("$@" 2>&1)
	vm_note "$label: $out"
	vm_check "$label: refused, saying so" grep -q -- "$words" <<<"$out"
	vm_check "$label: journal empty" journal_drained
	vm_check "$label: nothing left" test "$("${kind}_state")" = gone
	vm_check "$label: state files parse" state_parses
}
printf %s "$NVME" >$VD/fail_probe
row "pci probe refused (EIO)" refused_by_kernel "pci probe EIO" pci "vfio-fixture-vdsub" pci_create
printf %s "$VF1" >$VD/fail_probe
row "vfs: 2nd VF's probe refused (EIO)" refused_by_kernel "VF probe EIO" vfs "$VF1" vfs_create
printf none >$VD/fail_probe
row "mdev attr refused (EINVAL)" refused_by_kernel "mdev knob=500" mdev "knob" \
	create "$P" 3 type s $MOD-small uuid s $U attrs 'a{ss}' 1 knob 500
row "vdpa DEV_NEW refused" refused_by_kernel "vdpa nosuch" vdpa "nosuch" \
	create vduse 1 vdpa s nosuch
devlink dev eswitch set "pci/$PF" mode legacy
row "sf PORT_NEW refused (legacy)" refused_by_kernel "sf on legacy eswitch" sf "88" sf_create
devlink dev eswitch set "pci/$PF" mode switchdev

# 3. The kernel hangs: a probe of 4 s (each VF's, for vfs) against a timeout of 1 s.
# hang_late_completion KIND DELAY_PARAMETER
hang_late_completion() {
	local kind=$1 delay=$2 out t0 t1
	vfiod_stop
	vfiod_start VFIOD_OPERATION_TIMEOUT_SEC=1
	export VFIOD_BUS_ADDRESS=$(cat $D/address)
	echo 4000 >"$delay"
	t0=$(date +%s)
	out=$("${kind}_create" 2>&1)
	t1=$(date +%s)
	vm_note "$kind: hung create: $out ($((t1 - t0)) s)"
	vm_check "$kind hang: the caller gets Timeout, not a wait" \
		bash -c 'grep -q "Timeout\|timed out" <<<"$0" && test "$1" -lt 4' "$out" "$((t1 - t0))"
	echo 0 >"$delay"
	settled "$kind hang, once the kernel returns" "$kind"
	vm_check "$kind hang: gone at the end" test "$("${kind}_state")" = gone
}
# hang_then_kill KIND DELAY_PARAMETER: vfiod killed while the kernel hangs in its create.
hang_then_kill() {
	local kind=$1 delay=$2
	vfiod_stop
	vfiod_start VFIOD_OPERATION_TIMEOUT_SEC=1
	export VFIOD_BUS_ADDRESS=$(cat $D/address)
	echo 3000 >"$delay"
	"${kind}_create" >/dev/null 2>&1 &
	sleep 1.5
	"$H" kill $D
	wait
	echo 0 >"$delay"
	sleep 2 # the write the killed vfiod left in the kernel returns
	after "$kind: killed during a hung create" "$kind"
}
for k in pci vfs; do
	row "$k create hang > timeout" hang_late_completion $k $VD/probe_delay_ms
	row "$k create hang, SIGKILL" hang_then_kill $k $VD/probe_delay_ms
done
row "mdev-create hang > timeout" hang_late_completion mdev /sys/module/$MOD/parameters/probe_delay_ms
row "mdev-create hang, SIGKILL" hang_then_kill mdev /sys/module/$MOD/parameters/probe_delay_ms

# A VF held open, as by a VM, while a forced destroy removes its PF's VFs: the kernel's
# write to sriov_numvfs waits for the holder past VFIOD_SRIOV_TIMEOUT, and vfiod is killed
# meanwhile.  vfiod must start again without waiting on the locked PF, and once the holder
# lets go, a destroy finishes the job.
held_vf_destroy() {
	local out t0 t1
	vfiod_stop
	vfiod_start VFIOD_SRIOV_TIMEOUT=3
	export VFIOD_BUS_ADDRESS=$(cat $D/address)
	vfs_create >/dev/null
	rm -f /tmp/held
	hold_start "$(vm_pci_group "$VF1")" "$VF1" /tmp/held >/dev/null 2>&1
	vm_check "held VF: a process holds $VF1 open" test -s /tmp/held
	out=$(destroy "/sys/bus/pci/devices/$VPF" 2 vfs b true force b true 2>&1)
	vm_note "held VF: forced destroy: $out"
	vm_check "held VF: the forced destroy says the write has not returned" \
		grep -q "has not returned from writing 0 to sriov_numvfs" <<<"$out"
	"$H" kill $D
	t0=$(now_ns)
	vm_check "held VF: vfiod starts again while the PF is locked" vfiod_start
	t1=$(now_ns)
	vm_note "held VF: vfiod started in $(((t1 - t0) / 1000000)) ms"
	export VFIOD_BUS_ADDRESS=$(cat $D/address)
	vm_check "held VF: journal drained" journal_drained
	vm_check "held VF: state files parse" state_parses
	out=$(destroy "/sys/bus/pci/devices/$VPF" 1 vfs b true 2>&1)
	vm_check "held VF: a destroy meanwhile is refused at once, saying why" \
		grep -q "has not yet returned from writing 0" <<<"$out"
	kill "$HOLDER"
	wait "$HOLDER" 2>/dev/null
	for _ in $(seq 100); do
		out=$(vfs_destroy 2>&1) && break
		grep -q "has not yet returned" <<<"$out" || break
		sleep 0.1
	done
	vm_check "held VF: once let go, the destroy finishes" test "$(vfs_state)" = gone
	vm_check "held VF: nothing listed" vm__not listed "$VPF"
}
row "vfs-destroy force, VF held open, SIGKILL" held_vf_destroy

vfiod_stop
"$H" down $D
kill "$(cat /run/qsd.pid)" 2>/dev/null
cp $D/vfiod.log "$RESULTS/vfiod.log"
vm_check "no sanitizer report in vfiod's log" sh -c '! grep -q "AddressSanitizer\|runtime error" "$0"' $D/vfiod.log
{
	echo "# PCI assign/release at every step: vm-daemon (case-daemon.sh)."
	echo "# Kernel family without CAP_SYS_ADMIN: vm-vfio-select (vfio-select-hostile)."
} >>"$TABLE"
sed 's/^/# /' "$TABLE"
vm_no_kernel_warnings
vm_summary
