#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Guest script proving the VM harness: the fixture modules load from the depmod-ed tree,
# a variant driver binds QEMU's nvme and its VFIO group opens, the nvme goes back to its
# host driver, SR-IOV VFs appear and bind to vfio-pci, and unloading leaves a clean dmesg.
#
#   tests/vm/run.sh --modroot OUT/modroot --results OUT/smoke -- tests/vm/smoke.sh
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

if [ "${VFIOD_VM:-}" != 1 ]; then
	echo "smoke.sh runs inside the test VM: see tests/vm/README.md" >&2
	exit 2
fi

ms() {
	echo $(($(date +%s%N) / 1000000))
}
t0=$(ms)
KV=$(uname -r)
FIXTURES="vfio_fixture_vd vfio_fixture_vdsub vfio_fixture_other"

vm_note "PCI functions at boot (nothing bound: no udev):"
vm_lspci | sed 's/^/#   /'

NVME=$(vm_pci_find 1b36 0010 plain | head -n1)
PF=$(vm_pci_find 1b36 0010 pf | head -n1)
TESTDEV=$(vm_pci_find 1b36 0005 | head -n1)
vm_check "QEMU nvme, SR-IOV nvme PF and pci-testdev present" test -n "$NVME" -a -n "$PF" -a -n "$TESTDEV"
vm_check "nothing bound at boot" test "$(vm_pci_driver "$NVME")" = none
vm_check "nvme subsystem ids are 1af4:1100" \
	test "$(cat "$VM_PCI/$NVME/subsystem_vendor"):$(cat "$VM_PCI/$NVME/subsystem_device")" \
	= 0x1af4:0x1100

# The depmod-ed tree knows the fixtures and their vfio_pci: aliases.
alias_of() { # module
	grep " $1\$" "/lib/modules/$KV/modules.alias" | cut -d' ' -f2
}
vm_check "modules.alias: vfio_fixture_vd" \
	test "$(alias_of vfio_fixture_vd)" = 'vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*'
vm_check "modules.alias: vfio_fixture_vdsub" \
	test "$(alias_of vfio_fixture_vdsub)" = 'vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc*sc*i*'
vm_check "modules.alias: vfio_fixture_other" \
	test "$(alias_of vfio_fixture_other)" = 'vfio_pci:v00001B36d00000005sv*sd*bc*sc*i*'
for m in $FIXTURES; do
	vm_check "modinfo finds $m under updates/" \
		sh -c "modinfo -n $m | grep -q '/updates/$m.ko\$'"
	vm_check "modprobe --show-depends $m pulls in vfio_pci_core" \
		sh -c "modprobe --show-depends $m | grep -q vfio-pci-core"
done
# depmod itself, run here in the guest on a small tree of just our modules.
depmod_in_guest() {
	local t

	t=$(mktemp -d) || return 1
	mkdir -p "$t/lib/modules/$KV/updates"
	touch "$t/lib/modules/$KV/"{modules.order,modules.builtin,modules.builtin.modinfo}
	cp "/lib/modules/$KV/updates/"vfio_fixture_*.ko "$t/lib/modules/$KV/updates/" &&
		depmod -b "$t" "$KV" &&
		grep '^alias vfio_pci:' "$t/lib/modules/$KV/modules.alias"
	rm -rf "$t"
}
guest_aliases=$(depmod_in_guest | sort)
vm_note "depmod in the guest emits:"
printf '%s\n' "$guest_aliases" | sed 's/^/#   /'
vm_check "depmod in the guest emits the three vfio_pci: aliases" test "$guest_aliases" = \
"alias vfio_pci:v00001B36d00000005sv*sd*bc*sc*i* vfio_fixture_other
alias vfio_pci:v00001B36d00000010sv*sd*bc*sc*i* vfio_fixture_vd
alias vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc*sc*i* vfio_fixture_vdsub"
valias="vfio_pci:$(cut -d: -f2 "$VM_PCI/$NVME/modalias")"
vm_note "nvme's vfio alias: $valias"
resolved=$(modprobe -R "$valias" | sort | tr '\n' ' ')
vm_check "modprobe -R resolves the nvme's vfio alias to vfio_pci, vd and vdsub" \
	test "$resolved" = "vfio_fixture_vd vfio_fixture_vdsub vfio_pci "

# Load.
vm_check "modprobe vfio-pci" modprobe vfio-pci
vm_check "/dev/vfio/vfio exists" test -c /dev/vfio/vfio
for m in $FIXTURES; do
	vm_check "modprobe $m" modprobe "$m"
done
vm_check "module vfio_fixture_vd registers driver vfio-fixture-vd" \
	test -e /sys/module/vfio_fixture_vd/drivers/pci:vfio-fixture-vd
vm_check "module vfio_fixture_vdsub registers driver vfio-fixture-vdsub" \
	test -e /sys/module/vfio_fixture_vdsub/drivers/pci:vfio-fixture-vdsub
vm_check "module vfio_fixture_other registers driver fixture-other-vfio" \
	test -e /sys/module/vfio_fixture_other/drivers/pci:fixture-other-vfio
vm_check "override-only ids bind nothing by themselves" test "$(vm_pci_driver "$NVME")" = none
vm_check "modprobe nvme" modprobe nvme
vm_check "nvme binds the plain nvme" test "$(vm_pci_driver "$NVME")" = nvme
vm_check "nvme binds the SR-IOV PF" test "$(vm_pci_driver "$PF")" = nvme

# Assign the nvme to the most specific fixture and open its group.
group=$(vm_pci_group "$NVME")
vm_note "nvme $NVME is in IOMMU group $group"
vm_check "bind nvme to vfio-fixture-vdsub by driver_override" \
	vm_pci_bind "$NVME" vfio-fixture-vdsub
vm_check "/dev/vfio/$group exists" test -c "/dev/vfio/$group"
open_group() { # group
	exec 3<>"/dev/vfio/$1" || return 1
	# A group is opened once at a time.
	if (exec 4<>"/dev/vfio/$1") 2>/dev/null; then
		exec 3<&-
		echo "second open of /dev/vfio/$1 succeeded"
		return 1
	fi
	exec 3<&-
}
vm_check "open /dev/vfio/$group (and a second open is refused)" open_group "$group"
release_to() { # dev driver
	vm_pci_release "$1" && test "$(vm_pci_driver "$1")" = "$2"
}
vm_check "release the nvme: back to nvme" release_to "$NVME" nvme
vm_check "driver_override is cleared" test "$(cat "$VM_PCI/$NVME/driver_override")" = "(null)"
vm_check "bind nvme to vfio-fixture-vd as well" vm_pci_bind "$NVME" vfio-fixture-vd
vm_check "and back to nvme" release_to "$NVME" nvme

# The pci-testdev goes to the fixture with a driver name unrelated to its module's.
tgroup=$(vm_pci_group "$TESTDEV")
vm_check "bind pci-testdev to fixture-other-vfio" vm_pci_bind "$TESTDEV" fixture-other-vfio
vm_check "open /dev/vfio/$tgroup" open_group "$tgroup"
vm_check "release pci-testdev: unbound again" release_to "$TESTDEV" none

# SR-IOV. Without autoprobe the VFs stay unbound (nvme would otherwise grab them and wait
# for controllers QEMU keeps offline until they get resources).
P=$VM_PCI/$PF
vm_check "PF offers 2 VFs" test "$(cat "$P/sriov_totalvfs")" = 2
echo 0 >"$P/sriov_drivers_autoprobe"
t1=$(ms)
vm_check "enable 2 VFs" timeout 30 sh -c "echo 2 >$P/sriov_numvfs"
vm_note "sriov_numvfs=2 took $(($(ms) - t1)) ms"
VFS=$(for v in "$P"/virtfn*; do basename "$(readlink -f "$v")"; done)
vm_check "2 VFs appear" test "$(echo "$VFS" | wc -w)" = 2
for d in $PF $VFS; do
	vm_lspci | grep -F "$d " | sed 's/^/#   /'
done
groups="$(vm_pci_group "$PF")"
for v in $VFS; do
	vm_check "VF $v is 1b36:0010" test "$(cat "$VM_PCI/$v/vendor"):$(cat "$VM_PCI/$v/device")" = 0x1b36:0x0010
	vm_check "VF $v is unbound" test "$(vm_pci_driver "$v")" = none
	g=$(vm_pci_group "$v")
	vm_check "VF $v has an IOMMU group of its own ($g)" \
		sh -c "test \$(ls /sys/kernel/iommu_groups/$g/devices | wc -l) = 1"
	groups="$groups $g"
	vm_check "bind VF $v to vfio-pci" vm_pci_bind "$v" vfio-pci
	vm_check "open /dev/vfio/$g of VF $v" open_group "$g"
done
vm_check "PF and VFs are in distinct groups" \
	test "$(echo "$groups" | tr ' ' '\n' | sort -u | wc -l)" = 3
for v in $VFS; do
	vm_check "release VF $v" release_to "$v" none
done
vm_check "disable the VFs" timeout 30 sh -c "echo 0 >$P/sriov_numvfs"
echo 1 >"$P/sriov_drivers_autoprobe"
vm_check "VFs are gone" sh -c "! ls -d $P/virtfn* 2>/dev/null"
vm_check "PF still on nvme" test "$(vm_pci_driver "$PF")" = nvme

# Unload.
for m in $FIXTURES; do
	vm_check "rmmod $m" rmmod "$m"
done
vm_check "rmmod vfio_pci" rmmod vfio_pci
vm_no_kernel_warnings
vm_note "smoke took $(($(ms) - t0)) ms in the guest"
vm_summary
