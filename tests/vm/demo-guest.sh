#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# In the guest, under systemd as PID 1 (run.sh --systemd): vfiod installed from its Debian
# packages as an administrator installs it, then plain vfioctl on the system bus, each call
# answered by vfiod.service (started by D-Bus activation): a look at the machine first, a
# device the host still uses refused, then every kind created and given back. One short
# part shows --direct, for places without D-Bus.
#
#   demo-guest.sh DEB_DIR
set -uo pipefail
DEBS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/guest-lib.sh"

step() {
	echo
	echo "## $*"
}
run() {
	echo "\$ $*"
	"$@" 2>&1
	echo
}
fail=0
must() { # the demo's own check: a step that should work and did not fails the demo
	"$@" >/dev/null 2>&1 || {
		echo "demo: FAILED: $*"
		fail=1
	}
}

# man-db's trigger would rebuild the index of every page (minutes under TCG).
rm -f /var/lib/man-db/auto-update /usr/sbin/policy-rc.d
step "vfiod installed from its packages: the daemon, vfioctl, the unit, the bus policy"
echo "\$ dpkg -i vfiod_*.deb libvfiod0_*.deb"
dpkg -i "$DEBS"/vfiod_*.deb "$DEBS"/libvfiod0_*.deb >/dev/null 2>&1 ||
	{ echo "demo: dpkg -i failed"; exit 1; }
systemctl stop vfiod.service # started by the package; the first call starts it again
NVME=$(vm_pci_find 1b36 0010 plain)
PF=$(vm_pci_find 1b36 0010 pf)
TESTDEV=$(vm_pci_find 1b36 0005)
echo "An emulated NVMe controller at $NVME (on $(vm_pci_driver "$NVME")), an SR-IOV NVMe PF at"
echo "$PF, a PCI test device at $TESTDEV; three test variant drivers match the NVMe with"
echo "different specificity. vfiod is not running: the first call starts it."

step "Look first: the IOMMU groups, one device, the driver that would be chosen"
run vfioctl groups
run vfioctl show "$NVME"
run vfioctl match "$NVME"
echo "(vfiod was started by that first call: $(systemctl show -p ActiveState --value vfiod.service))"

step "A device the host still uses is not taken"
sleep 300 <"/dev/$(ls "/sys/bus/pci/devices/$NVME/nvme" | head -1)" &
holder=$!
run vfioctl create "$NVME"
kill $holder
wait $holder 2>/dev/null

step "A PCI function to its most specific vfio driver, and back"
run vfioctl create "/sys/bus/pci/devices/$NVME"
must test -d "/sys/bus/pci/devices/$NVME/vfio-dev"
run vfioctl list
run vfioctl destroy "$NVME"
must test "$(vm_pci_driver "$NVME")" = nvme

step "Two VFs of the SR-IOV PF, each to its vfio driver"
run vfioctl create "$PF" vfs 2 assign
run vfioctl list
run vfioctl destroy "$PF" vfs
must test "$(cat "/sys/bus/pci/devices/$PF/sriov_numvfs")" = 0

step "A mediated device on the test-fixture mdev parent"
modprobe vfio_fixture_mdev
run vfioctl types vfio_fixture_mdev
U=8d1c7b2e-6f0a-4b5e-9c3d-2a1b0c9d8e0f
run vfioctl create vfio_fixture_mdev type vfio_fixture_mdev-small uuid $U
must test -e /sys/bus/mdev/devices/$U
run vfioctl show $U
must vfioctl -j show $U
run vfioctl destroy $U

step "A vdpa device on VDUSE (a block device qemu-storage-daemon serves), on vhost_vdpa"
modprobe -a vdpa vduse vhost_vdpa
qemu-storage-daemon --blockdev driver=null-co,node-name=n0,size=67108864,read-zeroes=on \
	--export type=vduse-blk,id=e0,node-name=n0,name=blk0,writable=on >/dev/null 2>&1 &
qsd=$!
until_ok 20 test -e /dev/vduse/blk0
run vfioctl mgmtdev
run vfioctl create vduse vdpa blk0
run vfioctl show blk0
must vfioctl -j show blk0
run vfioctl destroy blk0
kill $qsd
wait $qsd 2>/dev/null

step "A devlink subfunction on the test-fixture SF PF"
[ "$(vm_pci_driver "$TESTDEV")" = vfio_fixture_sf ] || modprobe vfio_fixture_sf
until_ok 10 test "$(vm_pci_driver "$TESTDEV")" = vfio_fixture_sf
run vfioctl create "$TESTDEV" sf 88 mac 00:11:22:33:44:55
run vfioctl show "$TESTDEV-sf88"
must vfioctl -j show "$TESTDEV-sf88"
run vfioctl destroy "$TESTDEV-sf88"

step "What systemd and the journal say"
run systemctl status vfiod.service --no-pager --lines=0
run journalctl -b -u vfiod.service --no-pager -o cat -n 6

step "Without D-Bus (an initramfs, a rescue shell): --direct does the same in its own process"
run vfioctl --direct match "$NVME"

echo "vfiod lists $(vfioctl -j list) at the end."
must test "$(vfioctl -j list)" = "[]"
exit $fail
