#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# In the guest: match, create, list, destroy on the emulated NVMe, first in user
# space, then through the vfio_select kernel module.
set -uo pipefail
. "$(dirname "$0")/guest-lib.sh"
VFIOCTL="$1/cli/vfioctl"
export RUNTIME_DIRECTORY=/run/vfiod

show() {
	echo
	echo "# $*"
	"$@"
}

modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain)
echo "An emulated NVMe controller at $NVME is on $(vm_pci_driver "$NVME")."
echo "Three test variant drivers are installed, matching it with different specificity."
show "$VFIOCTL" --direct match "$NVME"
show "$VFIOCTL" --direct create "/sys/bus/pci/devices/$NVME"
show "$VFIOCTL" --direct list
show "$VFIOCTL" --direct destroy "$NVME"
echo
echo "Now with the vfio_select kernel module deciding and binding in one netlink call:"
modprobe vfio_select
show "$VFIOCTL" --direct -p create "$NVME"
show "$VFIOCTL" --direct destroy "$NVME"
echo
echo "Back on $(vm_pci_driver "$NVME")."

echo
echo "A mediated device on the test-fixture mdev parent:"
modprobe vfio_fixture_mdev
show "$VFIOCTL" --direct types vfio_fixture_mdev
out=$("$VFIOCTL" --direct -j create vfio_fixture_mdev type vfio_fixture_mdev-small)
echo "$out"
U=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])' <<<"$out")
show "$VFIOCTL" --direct destroy "$U"

PF=$(vm_pci_find 1b36 0010 pf)
echo
echo "Two VFs of the SR-IOV NVMe PF at $PF, each handed to its best vfio driver:"
show "$VFIOCTL" --direct create "$PF" vfs 2 assign
show "$VFIOCTL" --direct list
show "$VFIOCTL" --direct destroy "$PF" vfs
echo "The PF has $(cat "/sys/bus/pci/devices/$PF/sriov_numvfs") VFs again, on $(vm_pci_driver "$PF")."
