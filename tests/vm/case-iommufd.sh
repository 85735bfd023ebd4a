#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: devices vfioctl assigns are usable through the vfio device cdev and iommufd.
#
#   case-iommufd.sh BUILD_DIR QEMU10
#
# Runs in the guest (tests/vm/run.sh) on the module tree of build-iommufd.sh
# (BUILD_DIR/vm/modroot-iommufd: vfio with CONFIG_VFIO_DEVICE_CDEV, iommufd) and the
# default devices. QEMU10 is the wrapper fetch-qemu.sh writes (QEMU 10, unpacked in the
# cache; the guest sees the host's /). The plain nvme (its fixture variant driver), a VF
# of the SR-IOV nvme PF and an mdev of the fixture parent are each made by vfioctl
# --direct, opened through /dev/iommu and their /dev/vfio/devices/vfioN (iommufd-open),
# and the nvme is realized by QEMU 10's iommufd backend; then all is given back.
# What the kernel does when the group and the cdev of one device are both asked for is
# checked as 6.12 does it (drivers/vfio/group.c, device_cdev.c): a bound cdev makes
# open() of the group EBUSY (an opened, unbound one does not); an open group makes the
# cdev's BIND_IOMMUFD EBUSY; a second bind of a device bound through another cdev fd is
# EINVAL.
set -uo pipefail

BUILD=$1
QEMU10=$2
HERE=$(cd "$(dirname "$0")" && pwd)
V=("$BUILD/cli/vfioctl" --direct)
IOMMUFD_OPEN=$BUILD/tests/iommufd-open
VFIO_OPEN=$BUILD/tests/vfio-open
export RUNTIME_DIRECTORY=/run/vfiod
RESULTS=${RESULTS:-/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

drv() { vm_pci_driver "$1"; }
group() { vm_pci_group "$1"; }
# A "vfio" array in JSON, whole, space-separated.
nodes() { jget '" ".join('"$1"')'; }
# The cdev nodes of a "vfio" array in JSON.
cdevs() { jget '" ".join(v for v in '"$1"' if v.startswith("/dev/vfio/devices/"))'; }
# The cdev sysfs gives a device: SYSFS_DEVICE/vfio-dev/vfioN, when it has a "dev".
sysfs_cdev() {
	local d

	for d in "$1"/vfio-dev/vfio*; do
		[ -e "$d/dev" ] && echo "/dev/vfio/devices/${d##*/}"
	done
}
# iommufd-open CDEV went through every step: exit 0, no FAIL, each step's "ok" line.
all_steps() { # OUTPUT_FILE
	local step

	grep -q '^FAIL' "$1" && return 1
	for step in "open /dev/iommu" "open /dev/vfio/devices/" VFIO_DEVICE_BIND_IOMMUFD \
		IOMMU_IOAS_ALLOC VFIO_DEVICE_ATTACH_IOMMUFD_PT IOMMU_IOAS_MAP VFIO_DEVICE_GET_INFO; do
		grep -q "^ok $step" "$1" || return 1
	done
}
opened() { # NAME CDEV: iommufd-open runs every step on CDEV
	local out=$RESULTS/iommufd-open-$1.txt

	"$IOMMUFD_OPEN" "$2" >"$out" 2>&1 && all_steps "$out"
}
# Start iommufd-open --hold on CDEV in the background, HELD_PID, and wait until it holds
# (not in a subshell: HELD_PID is for the caller).
hold_cdev() { # NAME CDEV
	local out=$RESULTS/iommufd-hold-$1.txt

	"$IOMMUFD_OPEN" --hold 600 "$2" >"$out" 2>&1 &
	HELD_PID=$!
	until_ok 20 grep -q '^holding' "$out"
}
release_cdev() {
	kill "$HELD_PID" 2>/dev/null
	wait "$HELD_PID" 2>/dev/null
}
# QEMU 10, paused, no guest: its monitor's `info pci` lists VENDOR:DEVICE.
qemu_realizes() { # WHAT VENDOR:DEVICE QEMU-ARGS...
	local what=$1 id=$2 out rc
	shift 2
	out=$(printf 'info pci\nquit\n' | timeout 60 "$QEMU10" -machine q35 -accel tcg \
		-m 64 -nodefaults -nographic -S -monitor stdio "$@" 2>&1)
	rc=$?
	echo "$out" >"$RESULTS/qemu-$what.txt"
	[ $rc = 0 ] && grep -qF "PCI device $id" <<<"$out"
}

vm_dmesg_mark
: >"$RESULTS/figures"
modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no plain nvme"; exit 1; }
PF=$(vm_pci_find 1b36 0010 pf) || { echo "no SR-IOV nvme PF"; exit 1; }
echo "# nvme $NVME (group $(group "$NVME")), SR-IOV PF $PF, QEMU $("$QEMU10" --version | head -n1)"

# 1. The tree: iommufd and our vfio, /dev/iommu.
vm_check "modprobe iommufd" modprobe iommufd
vm_check "/dev/iommu is a character device" test -c /dev/iommu
vm_check "modprobe vfio: ours, from updates/" \
	sh -c 'modprobe vfio && modinfo -F filename vfio | grep -q /updates/vfio.ko'
vm_check "the loaded vfio is that module (srcversion)" \
	test "$(cat /sys/module/vfio/srcversion)" = "$(modinfo -F srcversion vfio)"

# 2. The nvme, on its fixture variant.
t=$(now_ns)
out=$("${V[@]}" -j create "$NVME")
figure create-nvme-ms "$t"
vm_note "create $NVME: $out"
vm_check "nvme on a fixture variant driver ($(drv "$NVME"))" \
	sh -c "case '$(drv "$NVME")' in vfio-fixture-*) ;; *) false ;; esac"
CDEV=$(cdevs 'd["vfio"]' <<<"$out")
vm_check "create's \"vfio\" lists its cdev ($CDEV), as sysfs has it" \
	test -n "$CDEV" -a "$CDEV" = "$(sysfs_cdev "/sys/bus/pci/devices/$NVME")"
vm_check "$CDEV is a character device" test -c "$CDEV"
vm_check "create's \"vfio\" is the group node, the cdev and /dev/iommu" \
	test "$(nodes 'd["vfio"]' <<<"$out")" = "/dev/vfio/$(group "$NVME") $CDEV /dev/iommu"
t=$(now_ns)
vm_check "iommufd-open $CDEV: every step" opened nvme "$CDEV"
figure iommufd-open-ms "$t"
vm_note "$(cat "$RESULTS/iommufd-open-nvme.txt")"
vm_check "... it read the nvme's IDs through the cdev" \
	grep -q '^ok config space: .* id 1b36:0010$' "$RESULTS/iommufd-open-nvme.txt"

# 3. Group and cdev of one device, as the kernel has it.
G=$(group "$NVME")
hold_cdev nvme "$CDEV"
vm_check "iommufd-open --hold ($HELD_PID) binds $CDEV" \
	grep -q '^holding' "$RESULTS/iommufd-hold-nvme.txt"
out=$("$VFIO_OPEN" "$G" "$NVME" 2>&1)
vm_note "group while the cdev is bound: $out"
vm_check "while the cdev is bound, open of /dev/vfio/$G is EBUSY" \
	grep -qF "vfio-open: /dev/vfio/$G: Device or resource busy" <<<"$out"
out=$("$IOMMUFD_OPEN" "$CDEV" 2>&1)
vm_note "second cdev fd: $out"
vm_check "a second fd of $CDEV opens, but its BIND_IOMMUFD is EINVAL" \
	grep -q "^FAIL VFIO_DEVICE_BIND_IOMMUFD: .*(errno 22)$" <<<"$out"
out=$("${V[@]}" destroy "$NVME" 2>&1)
vm_note "destroy while bound through the cdev: $out"
vm_check "destroy refused, naming the process and $CDEV" \
	grep -qF "process $HELD_PID (iommufd-open) has $CDEV open" <<<"$out"
vm_check "... still on $(drv "$NVME")" \
	sh -c "case '$(drv "$NVME")' in vfio-fixture-*) ;; *) false ;; esac"
release_cdev
vm_check "once released, /dev/vfio/$G works again" "$VFIO_OPEN" "$G" "$NVME"
# The block is taken at bind: a cdev only opened leaves the group usable.
exec 7<>"$CDEV"
vm_check "with $CDEV open but not bound, /dev/vfio/$G works" "$VFIO_OPEN" "$G" "$NVME"
exec 7>&-
rm -f /tmp/held-group
hold_start "$G" "$NVME" /tmp/held-group >/dev/null 2>&1
vm_check "a process ($HOLDER) holds $NVME through /dev/vfio/$G" test -s /tmp/held-group
out=$("$IOMMUFD_OPEN" "$CDEV" 2>&1)
vm_note "cdev while the group is open: $out"
vm_check "while the group is open, $CDEV opens but BIND_IOMMUFD is EBUSY" \
	grep -q "^FAIL VFIO_DEVICE_BIND_IOMMUFD: .*(errno 16)$" <<<"$out"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
vm_check "once the group is closed, $CDEV works again" opened nvme-again "$CDEV"

# 4. QEMU 10's iommufd backend on the nvme.
t=$(now_ns)
vm_check "QEMU 10 realizes $NVME through -object iommufd" \
	qemu_realizes nvme 1b36:0010 -object iommufd,id=i0 -device vfio-pci,host="$NVME",iommufd=i0
figure qemu-iommufd-realize-ms "$t"
vm_note "$(grep -v '^(qemu)\|^QEMU' "$RESULTS/qemu-nvme.txt" |
	grep -B1 -A3 'PCI device 1b36:0010' | head -n6)"
vm_check "destroy $NVME" "${V[@]}" destroy "$NVME"
vm_check "nvme back on nvme" test "$(drv "$NVME")" = nvme
vm_check "its cdev is gone" test ! -e "$CDEV"

# 5. A VF of the SR-IOV PF.
out=$("${V[@]}" -j create "$PF" vfs 1 assign)
vm_note "create $PF vfs 1 assign: $out"
VF=$(basename "$(readlink "/sys/bus/pci/devices/$PF/virtfn0")")
vm_check "VF $VF on a vfio driver ($(drv "$VF"))" \
	sh -c "case '$(drv "$VF")' in vfio*) ;; *) false ;; esac"
VCDEV=$(cdevs 'd["vfs"][0]["vfio"]' <<<"$out")
vm_check "the VF's \"vfio\" lists its cdev ($VCDEV), as sysfs has it" \
	test -n "$VCDEV" -a "$VCDEV" = "$(sysfs_cdev "/sys/bus/pci/devices/$VF")"
vm_check "$VCDEV is a character device" test -c "$VCDEV"
vm_check "the VF's \"vfio\" is its group node, its cdev and /dev/iommu" \
	test "$(nodes 'd["vfs"][0]["vfio"]' <<<"$out")" = "/dev/vfio/$(group "$VF") $VCDEV /dev/iommu"
vm_check "iommufd-open $VCDEV: every step" opened vf "$VCDEV"
vm_note "$(cat "$RESULTS/iommufd-open-vf.txt")"
vm_check "QEMU 10 realizes the VF through -object iommufd" \
	qemu_realizes vf 1b36:0010 -object iommufd,id=i0 -device vfio-pci,host="$VF",iommufd=i0
vm_check "destroy $PF vfs" "${V[@]}" destroy "$PF" vfs
vm_check "no VFs left, PF on nvme" \
	test "$(cat "/sys/bus/pci/devices/$PF/sriov_numvfs") $(drv "$PF")" = "0 nvme"

# 6. An mdev of the fixture parent (an emulated IOMMU device: iommufd access, not a domain).
MOD=vfio_fixture_mdev
P=/sys/devices/virtual/$MOD/$MOD
U=6c1f7a8e-3b9d-4e2a-9c5b-0a1d2e3f4a5b
vm_check "fixture mdev parent loads" modprobe $MOD
out=$("${V[@]}" -j create "$P" type $MOD-small uuid $U)
vm_note "create mdev: $out"
MCDEV=$(cdevs 'd["vfio"]' <<<"$out")
vm_check "the mdev's \"vfio\" lists its cdev ($MCDEV), as sysfs has it" \
	test -n "$MCDEV" -a "$MCDEV" = "$(sysfs_cdev "/sys/bus/mdev/devices/$U")"
vm_check "$MCDEV is a character device" test -c "$MCDEV"
vm_check "the mdev's \"vfio\" is its group node, its cdev and /dev/iommu" \
	test "$(nodes 'd["vfio"]' <<<"$out")" = \
	"/dev/vfio/$(basename "$(readlink /sys/bus/mdev/devices/$U/iommu_group)") $MCDEV /dev/iommu"
vm_check "iommufd-open $MCDEV: every step" opened mdev "$MCDEV"
vm_note "$(cat "$RESULTS/iommufd-open-mdev.txt")"
vm_check "... it read the fixture's IDs through the cdev" \
	grep -q '^ok config space: .* id 1b36:7fff$' "$RESULTS/iommufd-open-mdev.txt"
vm_check "QEMU 10 realizes the mdev through -object iommufd" \
	qemu_realizes mdev 1b36:7fff -object iommufd,id=i0 \
	-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$U,iommufd=i0
vm_check "destroy the mdev" "${V[@]}" destroy $U
vm_check "the mdev is gone" test ! -e /sys/bus/mdev/devices/$U
vm_check "$MOD unloads" modprobe -r $MOD

# 7. The cdev layout of vfiod's CDI spec, used by podman: vfiod on a private bus writes the
# spec; a container named by it binds the nvme through /dev/iommu and its cdev.
D=/run/vfiod-bus
SPEC=/run/cdi/vfiod.json
vm_check "vfiod starts on a private bus" "$HERE/../dbus/vfiod-private-bus.sh" start $D "$BUILD"
export VFIOD_BUS_ADDRESS=$(cat $D/address)
vm_check "create $NVME through vfiod" "$BUILD/cli/vfioctl" create "$NVME"
CDEV=$(sysfs_cdev "/sys/bus/pci/devices/$NVME")
G=$(group "$NVME")
vm_check "the spec lists both layouts for $NVME" test "$(python3 -c '
import json, sys
d = {d["name"]: [n["path"] for n in d["containerEdits"]["deviceNodes"]] for d in json.load(open(sys.argv[1]))["devices"]}
print(" ".join(d[sys.argv[2]]))' "$SPEC" "$NVME")" = "/dev/vfio/$G /dev/vfio/vfio $CDEV /dev/iommu"
W=/run/vfiod-podman
mkdir -p "$W/img/bin"
cp /bin/busybox "$W/img/bin/" && ln -sf busybox "$W/img/bin/sh"
vm_check "iommufd-open built static for the image" \
	gcc -O1 -static -I"$HERE" -o "$W/img/bin/iommufd-open" "$HERE/iommufd-open.c"
# No systemd and no cgroup manager in this guest: podman without cgroups, file events.
PODMAN=(podman --storage-driver vfs --root "$W/storage" --runroot "$W/run" --cgroup-manager cgroupfs
	--events-backend file)
vm_check "podman import of the image" sh -c \
	"tar -C '$W/img' -c . | ${PODMAN[*]} import - localhost/vfiod-iommufd >'$W/import.log' 2>&1"
out=$("${PODMAN[@]}" run --rm --network none --cgroups disabled \
	--device "vfiod.org/device=$NVME" localhost/vfiod-iommufd iommufd-open "$CDEV" 2>&1)
rc=$?
echo "# podman run iommufd-open $CDEV: $out"
vm_check "in a container named by CDI, $NVME binds through /dev/iommu and $CDEV" test $rc = 0
vm_check "destroy $NVME through vfiod" "$BUILD/cli/vfioctl" destroy "$NVME"
vm_check "the spec is gone" test ! -e "$SPEC"
"$HERE/../dbus/vfiod-private-bus.sh" stop $D
unset VFIOD_BUS_ADDRESS

vm_check "list empty" test "$("${V[@]}" -j list)" = "[]"
vm_no_kernel_warnings
vm_summary
