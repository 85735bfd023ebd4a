#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: PCI functions assigned and released on the real driver core.
#
#   case-pci.sh BUILD_DIR [user|kernel|both]
#
# Runs in the guest (tests/vm/run.sh). BUILD_DIR/vm/modroot-pristine holds
# Debian's own module directory, without our fixture variants: the "no
# variant" case.
# With "both", every case runs through the user-space path, then with the
# vfio_select module loaded through the kernel path, and the decisions of the
# two runs must be equal.
set -uo pipefail

BUILD=$1
MODE=${2:-user}
PRISTINE=$BUILD/vm/modroot-pristine/lib/modules/$(uname -r)
HERE=$(cd "$(dirname "$0")" && pwd)
VFIOCTL="$BUILD/cli/vfioctl"
VFIO_OPEN="$BUILD/tests/vfio-open"
export RUNTIME_DIRECTORY=/run/vfiod
RESULTS=${RESULTS:-/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

drv() { vm_pci_driver "$1"; }
group() { vm_pci_group "$1"; }

modprobe nvme
modprobe ahci 2>/dev/null
NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no plain nvme"; exit 1; }
PF=$(vm_pci_find 1b36 0010 pf) || { echo "no SR-IOV nvme PF"; exit 1; }
LPC_GROUP=$(group 0000:00:1f.2)
echo "# nvme $NVME (group $(group "$NVME")), SR-IOV PF $PF, q35 1f.* group $LPC_GROUP"
vm_check "nvme bound to its host driver at start" test "$(drv "$NVME")" = nvme

# groups: the machine's IOMMU groups as sysfs has them, read only.
groups_match_sysfs() {
	python3 - "$1" <<'EOF'
import json, os, sys
root = "/sys/kernel/iommu_groups"
got = json.loads(sys.argv[1])
want = sorted(int(g) for g in os.listdir(root))
assert [g["group"] for g in got] == want, ([g["group"] for g in got], want)
for g in got:
    d = f"{root}/{g['group']}/devices"
    names = sorted(os.listdir(d))
    assert [m["name"] for m in g["devices"]] == names, (g["group"], names)
    way = []
    for m in g["devices"]:
        link = f"{d}/{m['name']}/driver"
        drv = os.path.basename(os.readlink(link)) if os.path.islink(link) else None
        assert m["driver"] == drv, (m, drv)
        assert m["device"] == os.path.realpath(f"{d}/{m['name']}"), m
        if drv and drv not in ("pci-stub", "pcieport") and not drv.startswith("vfio"):
            way.append({"name": m["name"], "driver": drv})
    assert g["in_the_way"] == way and g["viable"] == (not way), g
EOF
}
out=$("$VFIOCTL" --direct -j groups)
vm_check "groups: every group, its devices, their drivers and viability as sysfs says" \
	groups_match_sysfs "$out"
want=$("$VFIOCTL" --direct -j match "$NVME" | jget 'd["selected"]["module"]')
got=$("$VFIOCTL" --direct -j groups "$NVME" |
	jget '[m["vfio_driver"]["module"] for m in d[0]["devices"] if m["name"] == "'"$NVME"'"][0]')
vm_check "groups PATH: the nvme's group says the vfio driver match chooses ($got)" \
	test "$got" = "$want"
vm_check "groups changed nothing: nvme still on nvme" test "$(drv "$NVME")" = nvme
vm_note "$("$VFIOCTL" --direct groups "$NVME")"
# show: the device in full, against sysfs and against groups and match.
show=$("$VFIOCTL" --direct -j show "$NVME")
vm_check "show: driver and group as sysfs says" test \
	"$(jget 'd["driver"], d["iommu_group"], d["assigned"]' <<<"$show")" = "nvme $(group "$NVME") None"
vm_check "show: its group as groups shows it" test \
	"$(jget 'd["group"]' <<<"$show")" = "$("$VFIOCTL" --direct -j groups "$NVME" | jget 'd[0]')"
vm_check "show: would get what match chooses" test "$(jget 'd["would_get"]["module"]' <<<"$show")" = "$want"
"$VFIOCTL" --direct create "$NVME" >/dev/null
show=$("$VFIOCTL" --direct -j show "$NVME")
vm_check "show after create: what vfiod holds (driver, the one it had)" test \
	"$(jget 'd["assigned"]["driver"], d["assigned"]["previous_driver"]' <<<"$show")" = "$(drv "$NVME") nvme"
vm_note "$("$VFIOCTL" --direct show "$NVME")"
"$VFIOCTL" --direct destroy "$NVME" >/dev/null
vm_check "show changed nothing, destroy gave it back: nvme" test "$(drv "$NVME")" = nvme

DECISIONS=$RESULTS/decisions
: >"$DECISIONS.user"
: >"$DECISIONS.kernel"
: >"$RESULTS/figures"

run_cases() { # resolver
	local R=$1 out t0 t1 vf before
	local V=("$VFIOCTL" --direct --resolver="$R")
	local D=$DECISIONS.$R
	echo "# --- resolver: $R"
	modprobe -r vfio_fixture_vdsub vfio_fixture_vd vfio_fixture_other vfio_pci 2>/dev/null

	# 1. No variant installed: vfio-pci. (The kernel path loads modules by modprobe from
	# the guest's module tree, which has the variants: this case is user space only.)
	if [ "$R" = user ]; then
		out=$(VFIOD_MODULES_DIR=$PRISTINE "${V[@]}" -j match "$NVME")
		vm_check "$R: no variant installed: vfio_pci selected" \
			test "$(jget 'd["selected"]["module"]' <<<"$out")" = vfio_pci
		VFIOD_MODULES_DIR=$PRISTINE "${V[@]}" create "$NVME"
		vm_check "$R: no variant: bound to vfio-pci" test "$(drv "$NVME")" = vfio-pci
		vm_check "$R: no variant: /dev/vfio/N usable" "$VFIO_OPEN" "$(group "$NVME")" "$NVME"
		"${V[@]}" destroy "$NVME"
		vm_check "$R: no variant: nvme back after destroy" test "$(drv "$NVME")" = nvme
		modprobe -r vfio_pci
	fi

	# 2. Variants installed: the most specific one wins, loaded on demand.
	vm_check "$R: variant modules not loaded before create" \
		sh -c '! grep -q "^vfio_fixture" /proc/modules'
	t0=$(now_ns)
	out=$("${V[@]}" -j create "$NVME")
	t1=$(now_ns)
	echo "# $R: create took $(((t1 - t0) / 1000000)) ms"
	echo "create-time-ms $R $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
	echo "most-specific $(drv "$NVME")" >>"$D"
	vm_check "$R: most specific variant bound (vfio-fixture-vdsub)" \
		test "$(drv "$NVME")" = vfio-fixture-vdsub
	vm_check "$R: its module was loaded by create" grep -q "^vfio_fixture_vdsub " /proc/modules
	vm_check "$R: reply names the driver and the previous one" \
		test "$(jget 'd["driver"], d["previous_driver"], d["changed"]' <<<"$out")" = \
		"vfio-fixture-vdsub nvme True"
	vm_check "$R: /dev/vfio/N of the variant usable" "$VFIO_OPEN" "$(group "$NVME")" "$NVME"
	out=$("${V[@]}" -j create "$NVME")
	vm_check "$R: second create changes nothing" \
		test "$(jget 'd["changed"]' <<<"$out")" = False
	out=$("${V[@]}" -j list)
	vm_check "$R: list shows it" test "$(jget '[(e["name"], e["driver"], e["previous_driver"], e["state"]) for e in d]' <<<"$out")" = \
		"[('$NVME', 'vfio-fixture-vdsub', 'nvme', 'assigned')]"
	# Forcing another driver on a device already ours keeps its host driver on record.
	"${V[@]}" create "$NVME" driver vfio-pci
	echo "reforced $(drv "$NVME")" >>"$D"
	vm_check "$R: re-forced to vfio-pci while assigned" test "$(drv "$NVME")" = vfio-pci
	out=$("${V[@]}" -j list)
	vm_check "$R: the host driver stays on record" \
		test "$(jget '[e["previous_driver"] for e in d]' <<<"$out")" = "['nvme']"
	t0=$(now_ns)
	"${V[@]}" destroy "$NVME"
	t1=$(now_ns)
	echo "destroy-time-ms $R $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
	echo "restored $(drv "$NVME")" >>"$D"
	vm_check "$R: destroy gives the nvme back to nvme" test "$(drv "$NVME")" = nvme
	vm_check "$R: driver_override cleared" \
		test "$(cat "/sys/bus/pci/devices/$NVME/driver_override")" = "(null)"
	vm_check "$R: list empty after destroy" test "$("${V[@]}" -j list)" = "[]"

	# 3. A blacklisted variant is skipped.
	mkdir -p /tmp/bl && echo "blacklist vfio_fixture_vdsub" >/tmp/bl/bl.conf
	cp /tmp/bl/bl.conf /etc/modprobe.d/vfiod-test-bl.conf 2>/dev/null
	modprobe -r vfio_fixture_vdsub
	VFIOD_MODPROBE_CONFIG=/tmp/bl "${V[@]}" create "$NVME"
	echo "blacklisted $(drv "$NVME")" >>"$D"
	vm_check "$R: blacklisted variant skipped, next best bound" \
		test "$(drv "$NVME")" = vfio-fixture-vd
	vm_check "$R: blacklisted module not loaded" sh -c '! grep -q "^vfio_fixture_vdsub " /proc/modules'
	"${V[@]}" destroy "$NVME"
	rm -f /etc/modprobe.d/vfiod-test-bl.conf
	vm_check "$R: nvme back after the blacklist case" test "$(drv "$NVME")" = nvme

	# 4. Forcing a driver.
	"${V[@]}" create "$NVME" driver vfio-pci
	echo "forced $(drv "$NVME")" >>"$D"
	vm_check "$R: driver vfio-pci forced" test "$(drv "$NVME")" = vfio-pci
	"${V[@]}" destroy "$NVME"
	vm_check "$R: nvme back after forcing" test "$(drv "$NVME")" = nvme
	out=$("${V[@]}" create "$NVME" driver vfio_fixture_other 2>&1)
	vm_check "$R: a variant for another device is refused" \
		sh -c 'test "$(cat /sys/bus/pci/devices/'"$NVME"'/driver_override)" = "(null)"'
	echo "# $out"
	vm_check "$R: refused force leaves nvme bound" test "$(drv "$NVME")" = nvme

	# 5. A group that is not viable: q35's 00:1f.* share one group, 1f.2 is on ahci.
	before=$(cat /sys/bus/pci/devices/0000:00:1f.3/driver_override)
	out=$("${V[@]}" create 0000:00:1f.3 2>&1)
	echo "# $out"
	vm_check "$R: non-viable group refused, naming 1f.2 on ahci" \
		grep -q "0000:00:1f.2 on ahci" <<<"$out"
	echo "nonviable $(drv 0000:00:1f.3) $(drv 0000:00:1f.2)" >>"$D"
	vm_check "$R: non-viable: nothing changed" \
		test "$(cat /sys/bus/pci/devices/0000:00:1f.3/driver_override) $(drv 0000:00:1f.2)" = \
		"$before ahci"

	# 6. An SR-IOV VF.
	vf=$(basename "$(readlink "/sys/bus/pci/devices/$PF/virtfn0")")
	before=$(drv "$vf")
	out=$("${V[@]}" -j create "$vf")
	echo "vf $(drv "$vf")" >>"$D"
	vm_check "$R: VF $vf assigned to a vfio driver ($(drv "$vf"))" \
		sh -c 'case $0 in vfio*) exit 0 ;; *) exit 1 ;; esac' "$(drv "$vf")"
	vm_check "$R: VF usable through /dev/vfio" "$VFIO_OPEN" "$(group "$vf")" "$vf"
	vm_check "$R: VF reply names its PF" test "$(jget 'd["physfn"]' <<<"$out")" = "$PF"
	"${V[@]}" destroy "$vf"
	vm_check "$R: VF back as it was ($before)" test "$(drv "$vf")" = "$before"
}

# The SR-IOV PF on nvme, with two VFs. QEMU 7.2 keeps its nvme VFs offline until
# they get resources through NVMe virtualization management, so nvme cannot drive
# them: leave them unbound (autoprobe off), as a VF pool for VMs is kept.
echo 0 >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe"
echo 2 >"/sys/bus/pci/devices/$PF/sriov_numvfs"
vm_check "PF made two VFs" test -e "/sys/bus/pci/devices/$PF/virtfn1"

case $MODE in
user | both) run_cases user ;;
esac
case $MODE in
kernel | both)
	modprobe vfio_select
	vm_check "vfio_select loaded" grep -q "^vfio_select " /proc/modules
	run_cases kernel
	;;
esac
if [ "$MODE" = both ]; then
	# The no-variant case is user space only (see above); every other decision must agree.
	vm_check "user space and kernel decided alike" diff -u "$DECISIONS.user" "$DECISIONS.kernel"
	# Figures, modules preloaded, user space and kernel interleaved (A B A B ...).
	modprobe -a vfio_pci vfio_fixture_vd vfio_fixture_vdsub
	for round in 1 2 3 4 5; do
		for R in user kernel; do
			t0=$(now_ns)
			"$VFIOCTL" --direct --resolver=$R create "$NVME" >/dev/null
			t1=$(now_ns)
			"$VFIOCTL" --direct --resolver=$R destroy "$NVME" >/dev/null
			t2=$(now_ns)
			echo "preloaded-create-ms $R $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
			echo "preloaded-destroy-ms $R $(((t2 - t1) / 1000000))" >>"$RESULTS/figures"
		done
	done
	vm_check "nvme back after the timing rounds" test "$(drv "$NVME")" = nvme
	for R in user kernel; do
		t0=$(now_ns)
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			"$VFIOCTL" --direct --resolver=$R match "$NVME" >/dev/null
		done
		t1=$(now_ns)
		echo "match-ms $R $(((t1 - t0) / 10000000))" >>"$RESULTS/figures"
	done
	rmmod vfio_select
	vm_check "vfio_select unloads" sh -c '! grep -q "^vfio_select " /proc/modules'
fi
cat "$RESULTS/figures" 2>/dev/null | sed 's/^/# /'
vm_no_kernel_warnings
vm_summary
