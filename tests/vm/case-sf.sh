#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: devlink subfunctions made through libvfiod on the real devlink core.
#
#   case-sf.sh BUILD_DIR
#
# Runs in the guest (tests/vm/run.sh). The TEST FIXTURE vfio_fixture_sf binds QEMU's
# pci-testdev and provides SFs; libvfiod (through tests/vfiod-call) adds one with a MAC
# and activates it, the auxiliary device appears, then it is deleted again. iproute2's
# devlink, independent of our code, reads back what the kernel holds.
set -uo pipefail

BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
CALL="$BUILD/tests/vfiod-call"
export RUNTIME_DIRECTORY=/run/vfiod
RESULTS=${RESULTS:-/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

AUXDEVS=/sys/bus/auxiliary/devices
: >"$RESULTS/figures"

# The SF ports of pci/$PF as iproute2 sees them: "sfnum state hw_addr" lines.
dl_ports() {
	devlink -j port show 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin).get("port", {})
for k, p in sorted(d.items()):
    if k.startswith("pci/" + sys.argv[1] + "/") and p.get("flavour") == "pcisf":
        f = p.get("function", {})
        print(p["sfnum"], f.get("state"), f.get("hw_addr"))' "$PF"
}

vm_dmesg_mark
PF=$(vm_pci_find 1b36 0005 | head -n1)
NVME=$(vm_pci_find 1b36 0010 plain | head -n1)
vm_check "the fixture binds pci-testdev $PF" modprobe vfio_fixture_sf
vm_check "pci-testdev on vfio_fixture_sf" test "$(vm_pci_driver "$PF")" = vfio_fixture_sf
vm_check "devlink instance pci/$PF in switchdev mode" \
	has "$(devlink dev eswitch show "pci/$PF")" "mode switchdev"

call target-create "/sys/bus/pci/devices/$PF" '{"sf":88}'
vm_check "target of create: name $PF-sf88, key the PF's group" \
	test "$(jget 'd["kind"], d["name"], d["key"]' <<<"$OUT")" = "sf $PF-sf88 group:$(vm_pci_group "$PF")"

t0=$(now_ns)
call create "/sys/bus/pci/devices/$PF" '{"sf":88,"mac":"00:11:22:33:44:55"}'
t1=$(now_ns)
echo "sf create (port-new, hw-addr, activate, auxiliary device): $(((t1 - t0) / 1000000)) ms" \
	>>"$RESULTS/figures"
echo "# create: $OUT"
AUX=$(jget 'd["auxiliary"]' <<<"$OUT")
vm_check "an auxiliary device appears: $AUX" test -d "$AUXDEVS/$AUX"
vm_check "its sfnum is 88" test "$(cat "$AUXDEVS/$AUX/sfnum")" = 88
vm_check "it sits below the PF" \
	test "$(cd -P "$AUXDEVS/$AUX/.." && pwd)" = "$(cd -P "/sys/bus/pci/devices/$PF" && pwd)"
vm_check "the result's device is its sysfs path" \
	test "$(jget 'd["device"]' <<<"$OUT")" = "$(cd -P "$AUXDEVS/$AUX" && pwd)"
vm_check "devlink reads back sfnum 88, active, hw_addr 00:11:22:33:44:55" \
	test "$(dl_ports)" = "88 active 00:11:22:33:44:55"
vm_check "the result says so too" \
	test "$(jget 'd["sfnum"], d["state"], d["hw_addr"]' <<<"$OUT")" = "88 active 00:11:22:33:44:55"
# show: the port as iproute2's devlink reads it (apart from our netlink code), sysfs for the rest.
VFIOCTL=("$BUILD/cli/vfioctl" --direct)
out=$("${VFIOCTL[@]}" -j show "$PF-sf88")
vm_note "show: $out"
vm_note "devlink port show: $(devlink -j port show 2>&1)"
vm_check "show: kind, name, PF, auxiliary device and its path" test \
	"$(jget 'd["kind"], d["name"], d["pf"], d["auxiliary"], d["device"]' <<<"$out")" = \
	"sf $PF-sf88 $(cd -P "/sys/bus/pci/devices/$PF" && pwd) $AUX $(cd -P "$AUXDEVS/$AUX" && pwd)"
vm_check "show: port, sfnum, pfnum, controller, state, opstate, hw_addr as devlink says" test \
	"$(jget 'd["devlink_port"], d["port_index"], d["sfnum"], d["pfnum"], d["controller"], d["state"], d["opstate"], d["hw_addr"]' <<<"$out")" = \
	"$(devlink -j port show | python3 -c '
import json, sys
for k, p in json.load(sys.stdin)["port"].items():
    if k.startswith("pci/" + sys.argv[1] + "/") and p.get("sfnum") == 88:
        f = p["function"]
        print(k, k.rsplit("/", 1)[1], p["sfnum"], p["pfnum"], p.get("controller", 0),
              f["state"], f["opstate"], f["hw_addr"])' "$PF")"
vm_check "show: the auxiliary device's driver, group and vfio nodes as sysfs has them" test \
	"$(jget 'd["driver"], d["iommu_group"], d["vfio"]' <<<"$out")" = \
	"$(basename "$(readlink "$AUXDEVS/$AUX/driver" 2>/dev/null || echo None)") None []"
vm_check "show: vfiod holds no record of an SF" test "$(jget 'd["assigned"]' <<<"$out")" = None
vm_check "show by $AUXDEVS/$AUX gives the same" test "$("${VFIOCTL[@]}" -j show "$AUXDEVS/$AUX")" = "$out"
vm_check "show by the auxiliary device's /sys/devices path gives the same" \
	test "$("${VFIOCTL[@]}" -j show "$(cd -P "$AUXDEVS/$AUX" && pwd)")" = "$out"
text=$("${VFIOCTL[@]}" show "$PF-sf88")
vm_note "show (text): $text"
vm_check "show (text): a fact a line" test \
	"$(grep -E '^  (sfnum|state|opstate|hw_addr|auxiliary device):' <<<"$text")" = \
	"$(printf '  sfnum: 88\n  state: active\n  opstate: attached\n  hw_addr: 00:11:22:33:44:55\n  auxiliary device: %s (%s)' \
		"$AUX" "$(cd -P "$AUXDEVS/$AUX" && pwd)")"
vm_check "show (text): no JSON in it" bash -c '! grep -q "[][{}\"]" <<<"$0"' "$text"
vm_check "show of sfnum 87, which the PF has not: refused, saying so" bash -c \
	'! "${@:2}" 2>"$1/err" && grep -qF "has no subfunction with sfnum 87" "$1/err"' \
	_ "$RESULTS" "${VFIOCTL[@]}" show "$PF-sf87"
call list
vm_check "list shows the SF with its auxiliary device" \
	test "$(jget '[(e["name"], e["auxiliary"]) for e in d if e["kind"] == "sf"]' <<<"$OUT")" = "[('$PF-sf88', '$AUX')]"

refused "a second SF 88 refused" create "/sys/bus/pci/devices/$PF" '{"sf":88}'
vm_check "duplicate: the kernel's message is shown" has "$ERR" "An SF with this sfnum exists already"
vm_check "duplicate: the first SF is untouched" test "$(dl_ports)" = "88 active 00:11:22:33:44:55"

t0=$(now_ns)
call destroy "/sys/bus/pci/devices/$PF" '{"sf":88}'
t1=$(now_ns)
echo "sf destroy: $(((t1 - t0) / 1000000)) ms" >>"$RESULTS/figures"
vm_check "destroy: the auxiliary device is gone" gone "$AUXDEVS/$AUX"
vm_check "destroy: devlink has no SF port left" test -z "$(dl_ports)"
vm_check "destroy: the result names what was given back" \
	test "$(jget 'd["destroyed"], d["auxiliary"]' <<<"$OUT")" = "True $AUX"
refused "destroy again: nothing to destroy" destroy "/sys/bus/pci/devices/$PF" '{"sf":88}'
vm_check "destroy again: says there is no such SF" has "$ERR" "has no subfunction with sfnum 88"

# Stopped before each step after the port was made: nothing is left.
for step in hw-addr activate wait-auxiliary; do
	VFIOD_CALL_STOP_AT=$step call create "/sys/bus/pci/devices/$PF" '{"sf":89,"mac":"00:11:22:33:44:66"}'
	vm_check "stopped before $step: refused, naming the step" has "$ERR" "before step $step"
	vm_check "stopped before $step: no port, no auxiliary device left" \
		test -z "$(dl_ports)$(ls $AUXDEVS)"
done

refused "a malformed mac refused" create "/sys/bus/pci/devices/$PF" '{"sf":89,"mac":"zz"}'
vm_check "malformed mac: says what is wrong" has "$ERR" 'mac "zz" is not six two-digit hex octets'
for m in -1:-1:-1:-1:-1:-1 0x:0x:0x:0x:0x:0x 33:33:00:00:00:01 00:00:00:00:00:00; do
	refused "hw_addr $m refused" create "/sys/bus/pci/devices/$PF" '{"sf":89,"mac":"'$m'"}'
	case $m in
	*x* | -*) why="not six two-digit hex octets" ;;
	00:00:*) why="all zeros" ;;
	*) why="a multicast address" ;;
	esac
	vm_check "hw_addr $m: says it is $why" has "$ERR" "mac \"$m\" is $why"
	vm_check "hw_addr $m: no port, no auxiliary device made" test -z "$(dl_ports)$(ls $AUXDEVS)"
done
refused "a PF without devlink refused" create "/sys/bus/pci/devices/$NVME" '{"sf":1}'
vm_check "no devlink: says so" has "$ERR" "has no devlink instance"

# Not in switchdev mode: the kernel's refusal and how to change the mode.
vm_check "eswitch set to legacy (iproute2)" devlink dev eswitch set "pci/$PF" mode legacy
refused "legacy eswitch: SF refused" create "/sys/bus/pci/devices/$PF" '{"sf":90}'
vm_check "legacy: the kernel's message" has "$ERR" "only supported in eswitch switchdev mode"
vm_check "legacy: says how to change it" \
	has "$ERR" "devlink dev eswitch set pci/$PF mode switchdev"
vm_check "legacy: nothing left" test -z "$(dl_ports)$(ls $AUXDEVS)"
vm_check "eswitch back to switchdev" devlink dev eswitch set "pci/$PF" mode switchdev

# The same through vfioctl's words (JSON: its text printer knows only PCI results yet).
out=$("${VFIOCTL[@]}" -j create "/sys/bus/pci/devices/$PF" sf 92 pfnum 0 mac 02:00:00:00:00:92)
echo "# vfioctl create: $out"
vm_check "vfioctl create PF sf 92 pfnum 0 mac M" test "$(dl_ports)" = "92 active 02:00:00:00:00:92"
vm_check "vfioctl destroy PF sf 92" "${VFIOCTL[@]}" -j destroy "/sys/bus/pci/devices/$PF" sf 92
vm_check "vfioctl destroy: no port left" test -z "$(dl_ports)$(ls $AUXDEVS)"

# Unloading the provider with an active SF cleans up.
call create "$PF" '{"sf":91}'
AUX=$(jget 'd["auxiliary"]' <<<"$OUT")
vm_check "SF 91 by the PF's short name, no mac: active" test -d "$AUXDEVS/$AUX"
vm_check "module unloads with an active SF" modprobe -r vfio_fixture_sf
vm_check "its auxiliary device is gone" gone "$AUXDEVS/$AUX"
vm_check "the devlink instance is gone" vm__not has "$(devlink dev show)" "pci/$PF"
vm_check "pci-testdev unbound again" test "$(vm_pci_driver "$PF")" = none
vm_no_kernel_warnings
vm_summary
