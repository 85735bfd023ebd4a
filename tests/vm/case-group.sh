#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: an IOMMU group of two host-driven functions, assigned with `group`.
#
#   case-group.sh BUILD_DIR
#
# Needs (run.sh --qemu) a multifunction device without ACS behind a PCIe root
# port, which the kernel puts in one group: e1000e (8086:10d3) as function 0
# and an nvme as function 1. (On the root bus the kernel takes integrated
# functions to be isolated and groups them apart.)
set -uo pipefail
. "$(dirname "$0")/guest-lib.sh"
V=("$1/cli/vfioctl" --direct)
export RUNTIME_DIRECTORY=/run/vfiod
NIC=$(vm_pci_find 8086 10d3) || exit 1
DISK=$(vm_pci_find 1b36 0010 plain) || exit 1

modprobe -a e1000e nvme
vm_note "group $(vm_pci_group $NIC): $NIC on $(vm_pci_driver $NIC), $DISK on $(vm_pci_driver $DISK)"
vm_check "both functions share one group" test "$(vm_pci_group $NIC)" = "$(vm_pci_group $DISK)"
vm_check "host drivers bound" test "$(vm_pci_driver $NIC) $(vm_pci_driver $DISK)" = "e1000e nvme"

out=$("${V[@]}" create $DISK 2>&1)
vm_note "$out"
vm_check "one function alone is refused, naming the other and its driver" \
	grep -q "$NIC on e1000e" <<<"$out"
vm_check "refusal changed nothing" \
	test "$(vm_pci_driver $NIC) $(vm_pci_driver $DISK)" = "e1000e nvme"

"${V[@]}" create $DISK group
vm_check "group: the nvme on its best variant" test "$(vm_pci_driver $DISK)" = vfio-fixture-vdsub
vm_check "group: the NIC on vfio-pci" test "$(vm_pci_driver $NIC)" = vfio-pci
vm_check "group: both listed" test "$("${V[@]}" -j list | grep -o '"state":"assigned"' | wc -l)" = 2
vm_check "group usable through /dev/vfio" "$1/tests/vfio-open" "$(vm_pci_group $DISK)" $DISK

"${V[@]}" destroy $DISK
"${V[@]}" destroy $NIC
vm_check "host drivers back after destroy" \
	test "$(vm_pci_driver $NIC) $(vm_pci_driver $DISK)" = "e1000e nvme"
vm_no_kernel_warnings
vm_summary
