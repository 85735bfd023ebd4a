#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case of the container consumer, under systemd as PID 1 (run.sh --systemd): vfiod
# installed from its packages writes the CDI spec of what it holds in /run/cdi, and Debian's
# podman runs containers that name vfiod's devices with --device vfiod.org/device=NAME.
#
# - The spec follows every create and destroy of every kind with a node (a PCI function on
#   its variant driver, a VF, an mdev, a vdpa device on vhost_vdpa), is whole JSON after
#   each, and is there when the call returns; gone once nothing is held; rebuilt from the
#   records after a restart.
# - podman (its own CDI parser) injects the nodes: inside the container a static vfio-open
#   opens the PCI function, the VF and the mdev through the group API, as QEMU would, and
#   opens the vhost-vdpa node; a name the spec does not have is refused by podman.
# - A running container holds the device: vfiod refuses to give it back, naming the
#   container's process, until the container ends.
#
#   case-cdi.sh DEB_DIR      (DEB_DIR: from tests/package/test-package.sh --keep)
set -uo pipefail

DEBS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-/var/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

vm_under_systemd

: >"$RESULTS/figures"
W=/var/lib/vfiod-cdi-case
mkdir -p "$W"
SPEC=/run/cdi/vfiod.json
KIND=vfiod.org/device
# The spec's devices as "NAME=NODE,NODE..." lines, sorted; the spec is checked whole first.
spec_devices() {
	python3 - "$SPEC" <<-'PY'
		import json, sys
		s = json.load(open(sys.argv[1]))
		assert s["cdiVersion"] == "0.5.0" and s["kind"] == "vfiod.org/device", s
		for d in sorted(s["devices"], key=lambda d: d["name"]):
		    print(d["name"] + "=" + ",".join(n["path"] for n in d["containerEdits"]["deviceNodes"]))
	PY
}
in_spec() { spec_devices | grep -qx -- "$1"; }
not_in_spec() { ! spec_devices | grep -q -- "^$1="; }
# podman on the guest's own storage: vfs (the root is an overlay already), no network.
PODMAN=(podman --storage-driver vfs --root "$W/storage" --runroot /run/vfiod-cdi-podman)
prun() { "${PODMAN[@]}" run --rm --network none "$@"; }

vm_check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
vm_dmesg_mark
rm -f /var/lib/man-db/auto-update /usr/sbin/policy-rc.d
vm_check "dpkg -i vfiod libvfiod0" sh -c \
	"dpkg -i '$DEBS'/vfiod_*.deb '$DEBS'/libvfiod0_*.deb >'$W/dpkg.log' 2>&1"
vm_check "the package made /run/cdi (tmpfiles.d/vfiod.conf)" test -d /run/cdi
vm_check "the unit may write it" sh -c \
	"systemctl show -p ReadWritePaths --value vfiod.service | grep -qF /run/cdi"
vm_check "no spec while vfiod holds nothing" test ! -e "$SPEC"

NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no nvme"; vm_summary; }
PF=$(vm_pci_find 1b36 0010 pf) || { echo "no SR-IOV PF"; vm_summary; }

# --- A PCI function on its variant driver.
t=$(now_ns)
out=$(vfioctl -j create "$NVME" 2>&1)
figure create_nvme_ms "$t"
vm_check "create $NVME over the bus" test "$(jget 'd["driver"]' <<<"$out")" = vfio-fixture-vdsub
G=$(vm_pci_group "$NVME")
vm_check "the spec names $NVME with its group node and /dev/vfio/vfio when the call returns" \
	in_spec "$NVME=/dev/vfio/$G,/dev/vfio/vfio"
vm_check "the spec is 0644, root's" test "$(stat -c '%a %U' "$SPEC")" = "644 root"
vm_check "vfioctl show's nodes are the spec's" test \
	"$(vfioctl -j list | jget '",".join([e for e in d if e["name"] == "'"$NVME"'"][0]["vfio"])')" = "/dev/vfio/$G"

# --- A VF, an mdev, a vdpa device.
out=$(vfioctl -j create "$PF" vfs 1 assign 2>&1)
VF=$(jget 'd["vfs"][0]["name"]' <<<"$out")
VG=$(vm_pci_group "$VF")
vm_check "create $PF vfs 1 assign: $VF on vfio" test -d "/sys/bus/pci/devices/$VF/vfio-dev"
vm_check "the spec names the VF $VF" in_spec "$VF=/dev/vfio/$VG,/dev/vfio/vfio"
modprobe vfio_fixture_mdev
U=6a3f4b2c-1d0e-4f5a-8b7c-9d8e7f6a5b4c
vm_check "create an mdev" vfioctl create vfio_fixture_mdev type vfio_fixture_mdev-small uuid $U
UG=$(basename "$(readlink /sys/bus/mdev/devices/$U/iommu_group)")
vm_check "the spec names the mdev $U" in_spec "$U=/dev/vfio/$UG,/dev/vfio/vfio"
modprobe -a vdpa vduse vhost_vdpa
qemu-storage-daemon --blockdev driver=null-co,node-name=n0,size=67108864,read-zeroes=on \
	--export type=vduse-blk,id=e0,node-name=n0,name=blk0,writable=on >/dev/null 2>&1 &
qsd=$!
vm_check "qemu-storage-daemon exports blk0" until_ok 20 test -e /dev/vduse/blk0
out=$(vfioctl -j create vduse vdpa blk0 2>&1)
VNODE=$(jget 'd["node"]' <<<"$out")
vm_check "create vdpa blk0 on vhost_vdpa ($VNODE)" test -c "$VNODE"
vm_check "the spec names blk0 with $VNODE" in_spec "blk0=$VNODE"
vm_note "spec: $(spec_devices | tr '\n' ' ')"

# --- podman: a local image (busybox and a static vfio-open), no registry.
mkdir -p "$W/img/bin"
cp /bin/busybox "$W/img/bin/"
for a in sh ls cat sleep; do ln -sf busybox "$W/img/bin/$a"; done
vm_check "vfio-open built static for the image" \
	gcc -O1 -static -o "$W/img/bin/vfio-open" "$HERE/vfio-open.c"
t=$(now_ns)
vm_check "podman import of the image" sh -c \
	"tar -C '$W/img' -c . | ${PODMAN[*]} import - localhost/vfiod-cdi >'$W/import.log' 2>&1"
figure podman_import_ms "$t"
vm_note "podman $(podman --version | cut -d' ' -f3)"

t=$(now_ns)
out=$(prun --device "$KIND=$NVME" localhost/vfiod-cdi vfio-open "$G" "$NVME" 2>&1)
rc=$?
figure podman_run_nvme_ms "$t"
echo "# podman run --device $KIND=$NVME: $out"
vm_check "in a container named by CDI, $NVME opens through its group" test $rc = 0
out=$(prun --device "$KIND=$NVME" localhost/vfiod-cdi ls /dev/vfio 2>&1)
vm_check "the container has $G and vfio in /dev/vfio, nothing else ($out)" \
	test "$(echo $out)" = "$G vfio"
vm_check "the VF opens in a container" \
	prun --device "$KIND=$VF" localhost/vfiod-cdi vfio-open "$VG" "$VF"
vm_check "the mdev opens in a container" \
	prun --device "$KIND=$U" localhost/vfiod-cdi vfio-open "$UG" "$U"
vm_check "the vhost-vdpa node opens in a container" \
	prun --device "$KIND=blk0" localhost/vfiod-cdi sh -c "exec 3<>$VNODE && echo opened"
vm_check "two devices in one container" \
	prun --device "$KIND=$NVME" --device "$KIND=$VF" localhost/vfiod-cdi \
	sh -c "vfio-open $G $NVME && vfio-open $VG $VF"
out=$(prun --device "$KIND=0000:00:1f.0" localhost/vfiod-cdi true 2>&1)
vm_check "a name the spec does not have is refused by podman ($out)" \
	sh -c "! prun --device '$KIND=0000:00:1f.0' localhost/vfiod-cdi true >/dev/null 2>&1"

# --- A running container holds the device: it is not given back under it.
"${PODMAN[@]}" run -d --name holder --network none --device "$KIND=$NVME" localhost/vfiod-cdi \
	sh -c "exec 3<>/dev/vfio/$G; sleep 600" >/dev/null 2>&1
vm_check "the container runs" until_ok 30 sh -c "${PODMAN[*]} ps --format '{{.Names}}' | grep -qx holder"
out=$(vfioctl destroy "$NVME" 2>&1)
vm_check "destroy refused while the container holds it: $out" has "$out" "/dev/vfio/$G open"
vm_check "still in the spec" in_spec "$NVME=/dev/vfio/$G,/dev/vfio/vfio"
vm_check "the container stops" "${PODMAN[@]}" rm -f -t 0 holder

# --- Destroys: each leaves the spec; the last removes it.
vm_check "destroy $NVME" vfioctl destroy "$NVME"
vm_check "$NVME left the spec at once" not_in_spec "$NVME"
vm_check "$NVME back on nvme" test "$(vm_pci_driver "$NVME")" = nvme
vm_check "destroy blk0" vfioctl destroy blk0
vm_check "blk0 left the spec" not_in_spec blk0
kill $qsd
wait $qsd 2>/dev/null
vm_check "destroy the mdev" vfioctl destroy $U
vm_check "destroy the VFs" vfioctl destroy "$PF" vfs
vm_check "nothing held: the spec is gone" test ! -e "$SPEC"

# --- A restart rebuilds the spec from the records.
vm_check "create $NVME again" vfioctl create "$NVME"
rm -f "$SPEC"
vm_check "vfiod restarts" systemctl restart vfiod.service
vm_check "after the restart the spec names $NVME again" \
	until_ok 20 in_spec "$NVME=/dev/vfio/$G,/dev/vfio/vfio"
vm_check "destroy $NVME" vfioctl destroy "$NVME"
vm_check "the spec is gone again" test ! -e "$SPEC"

vm_check_not "vfiod logged no warning" sh -c \
	"journalctl -b -u vfiod.service -p warning -o cat --no-pager | grep ."
vm_no_kernel_warnings
vm_summary
