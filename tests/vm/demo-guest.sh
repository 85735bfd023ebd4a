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
