#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case of the real consumers, under systemd as PID 1 (run.sh --systemd): Debian's libvirt
# starts small TCG guests whose devices vfiod's hook makes ready (the vfiod-libvirt package,
# installed with dpkg), and QEMU without libvirt opens what vfioctl made.
#
# - libvirt: an nvme as a hostdev with managed='no' (no metadata: the hook's own choice),
#   a VF, an mdev from the domain's metadata and one from a definition of vfiod's; each on
#   a vfio driver while the guest runs, realized by QEMU (`info pci`), given back by
#   `virsh destroy`; libvirtd restarted under a running guest; prepares that fail (a group
#   that is not viable, a device in use) keep the guest from starting with vfiod's message
#   and leave nothing assigned.
# - QEMU alone: `-device vfio-pci,host=` on a variant driver and on a VF,
#   `-device vfio-pci,sysfsdev=` on an mdev, each realized.
#
#   case-libvirt.sh DEB_DIR      (DEB_DIR: from tests/package/test-package.sh --keep)
set -uo pipefail

DEBS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-/var/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

vm_under_systemd

: >"$RESULTS/figures"
W=/var/lib/vfiod-case # the guest's own (overlay): domain XML, QEMU's monitor output
mkdir -p "$W"
on_vfio() { [ -d "/sys/bus/pci/devices/$1/vfio-dev" ]; }
drv() { vm_pci_driver "$1"; }
listed() { vfioctl -j list | grep -qF "\"$1\""; }
nothing_listed() { test "$(vfioctl -j list)" = "[]"; }
running() { virsh -q domstate "$1" 2>/dev/null | grep -qx running; }
# QEMU's `info pci` of domain $1 lists vendor:device $2.
realized() { virsh qemu-monitor-command --hmp "$1" 'info pci' | grep -qF "PCI device $2"; }

NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no nvme"; vm_summary; }
TESTDEV=$(vm_pci_find 1b36 0005) || { echo "no pci-testdev"; vm_summary; }
PF=0000:01:00.0
VF=0000:01:00.1
SMBUS=0000:00:1f.3 # q35's SMBus: its group holds the LPC bridge and the SATA controller
bdf_xml() { # 0000:00:04.0 -> <address .../>
	echo "<address domain='0x${1:0:4}' bus='0x${1:5:2}' slot='0x${1:8:2}' function='0x${1:11:1}'/>"
}
hostdev() { echo "<hostdev mode='subsystem' type='pci' managed='no'><source>$(bdf_xml "$1")</source></hostdev>"; }
mdev_hostdev() {
	echo "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='$1'/></source></hostdev>"
}
# domain NAME UUID METADATA DEVICES...: a 64 MiB TCG guest with no disk, defined.
domain() {
	local name=$1 uuid=$2 meta=$3
	shift 3
	cat >"$W/$name.xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <uuid>$uuid</uuid>
  <metadata>$meta</metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    $*
  </devices>
</domain>
XML
	virsh -q define "$W/$name.xml" >/dev/null
}
NS="xmlns:vfiod='http://vfiod.org/xmlns/libvirt/domain/1.0'"

vm_check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd

# --- libvirt as the host has it, the packages as an administrator installs them. The run
# masks every unit the host enabled (libvirt's among them): unmask libvirt's and start its
# sockets, as on a machine where libvirt is enabled.
for u in libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket \
	virtlogd.service virtlogd.socket virtlogd-admin.socket virtlockd.service \
	virtlockd.socket virtlockd-admin.socket; do
	rm -f "/run/systemd/system/$u"
done
systemctl daemon-reload
vm_check "libvirt's sockets start" systemctl start virtlogd.socket virtlockd.socket \
	libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket
# man-db's trigger would rebuild the index of every page (minutes under TCG).
rm -f /var/lib/man-db/auto-update /usr/sbin/policy-rc.d
t=$(now_ns)
vm_check "dpkg -i vfiod libvfiod0 vfiod-libvirt" sh -c \
	"dpkg -i '$DEBS'/vfiod_*.deb '$DEBS'/libvfiod0_*.deb '$DEBS'/vfiod-libvirt_*.deb >'$W/dpkg.log' 2>&1"
figure dpkg_ms "$t"
vm_check "the hook is in libvirt's qemu.d/" test -x /etc/libvirt/hooks/qemu.d/vfiod
t=$(now_ns)
LIBVIRT=$(virsh -q version 2>&1 | sed -n 's/^Using library: libvirt //p')
figure libvirtd_first_call_ms "$t"
vm_check "libvirtd answers (libvirt $LIBVIRT)" test -n "$LIBVIRT"
vm_note "libvirt $LIBVIRT, QEMU $(qemu-system-x86_64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')"
major=${LIBVIRT%%.*}

# --- An nvme, no metadata: the hook's own choice of driver.
domain g-nvme 11111111-0000-4000-8000-000000000001 "" "$(hostdev "$NVME")"
t=$(now_ns)
out=$(virsh start g-nvme 2>&1)
figure virsh_start_nvme_ms "$t"
vm_check "virsh start g-nvme: $out" running g-nvme
if [ "${major:-0}" -lt 10 ]; then
	vm_check "$NVME on vfio-pci while the guest runs (libvirt $LIBVIRT takes no variant)" \
		test "$(drv "$NVME")" = vfio-pci
else
	vm_check "$NVME on its most specific driver, vfio_fixture_vdsub ($(drv "$NVME"))" \
		test "$(drv "$NVME")" = vfio-fixture-vdsub
fi
vm_check "QEMU realized $NVME (info pci lists 1b36:0010)" realized g-nvme 1b36:0010
vm_check "QEMU holds /dev/vfio/$(vm_pci_group "$NVME")" sh -c \
	"ls -l /proc/\$(pgrep -f 'guest=g-nvme' | head -1)/fd | grep -q '/dev/vfio/$(vm_pci_group "$NVME")'"
vm_check "the hook's record names $NVME" \
	grep -qF "\"$NVME\"" /run/vfiod-libvirt/11111111-0000-4000-8000-000000000001.json
vm_check "vfiod lists $NVME" listed "$NVME"
t=$(now_ns)
vm_check "virsh destroy g-nvme" virsh -q destroy g-nvme
figure virsh_destroy_nvme_ms "$t"
vm_check "$NVME back on nvme after the guest" until_ok 20 test "$(drv "$NVME")" = nvme
vm_check "the record is gone" test ! -e /run/vfiod-libvirt/11111111-0000-4000-8000-000000000001.json
vm_check "vfiod lists nothing" nothing_listed

# --- libvirtd restarted while the guest runs: the guest and the record outlive it.
vm_check "virsh start g-nvme again" virsh -q start g-nvme
vm_check "libvirtd restarts" systemctl restart libvirtd.service
vm_check "the guest runs on after the restart" until_ok 30 running g-nvme
vm_check "$NVME still on vfio after the restart" on_vfio "$NVME"
vm_check "virsh destroy g-nvme, by the new libvirtd" virsh -q destroy g-nvme
vm_check "$NVME back on nvme" until_ok 20 test "$(drv "$NVME")" = nvme
vm_check "vfiod lists nothing" nothing_listed

# --- A prepare that fails keeps the guest from starting, with vfiod's message.
domain g-group 11111111-0000-4000-8000-000000000002 "" "$(hostdev "$TESTDEV")" "$(hostdev "$SMBUS")"
before=$(drv "$TESTDEV")
out=$(virsh start g-group 2>&1)
vm_check_not "virsh start g-group (SMBus in a group with the SATA disk) fails" running g-group
vm_check "libvirt's error has vfiod's message: $out" \
	grep -q "vfiod: g-group: pci $SMBUS: IOMMU group [0-9]* is not viable" <<<"$out"
vm_check "libvirt's error says nothing was left assigned" grep -qF "nothing was left assigned" <<<"$out"
vm_check "$TESTDEV, made first, is back on '$before'" test "$(drv "$TESTDEV")" = "$before"
vm_check "vfiod lists nothing after the failed start" nothing_listed

domain g-inuse 11111111-0000-4000-8000-000000000003 "" "$(hostdev "$NVME")"
ctrl=$(ls "/sys/bus/pci/devices/$NVME/nvme" | head -1)
sleep 600 <"/dev/$ctrl" &
holder=$!
out=$(virsh start g-inuse 2>&1)
vm_check_not "virsh start g-inuse ($NVME's /dev/$ctrl held open) fails" running g-inuse
vm_check "libvirt's error names the holder: $out" grep -q "sleep\|$holder" <<<"$out"
vm_check "$NVME stays on nvme" test "$(drv "$NVME")" = nvme
kill $holder 2>/dev/null
wait $holder 2>/dev/null

# --- A VF as a hostdev: the PF's VFs made by vfioctl first, the VF then the guest's.
vm_check "vfioctl create $PF vfs 1" sh -c "vfioctl create $PF vfs 1 >/dev/null"
domain g-vf 11111111-0000-4000-8000-000000000004 "" "$(hostdev "$VF")"
out=$(virsh start g-vf 2>&1)
vm_check "virsh start g-vf: $out" running g-vf
vm_check "$VF on vfio while the guest runs ($(drv "$VF"))" on_vfio "$VF"
vm_check "QEMU realized the VF" realized g-vf 1b36:0010
vm_check "virsh destroy g-vf" virsh -q destroy g-vf
vm_check "$VF given back (no driver, as the nvme VFs of QEMU 7.2 are)" \
	until_ok 20 test "$(drv "$VF")" = none
vm_check "vfioctl destroy $PF vfs" sh -c "vfioctl destroy $PF vfs >/dev/null"

# --- mdevs: one from the domain's metadata, one from a definition of vfiod's.
MOD=vfio_fixture_mdev
P=/sys/devices/virtual/$MOD/$MOD
T=$MOD-small
U1=8d1c7b2e-6f0a-4b5e-9c3d-2a1b0c9d8e01
U2=8d1c7b2e-6f0a-4b5e-9c3d-2a1b0c9d8e02
vm_check "the fixture mdev parent loads" modprobe $MOD
meta="<vfiod:devices $NS><vfiod:mdev uuid='$U1' parent='$P' type='$T'/></vfiod:devices>"
domain g-mdev 11111111-0000-4000-8000-000000000005 "$meta" "$(mdev_hostdev $U1)"
out=$(virsh start g-mdev 2>&1)
vm_check "virsh start g-mdev: $out" running g-mdev
vm_check "mdev $U1 made while the guest runs" test -e /sys/bus/mdev/devices/$U1
vm_check "QEMU realized the mdev (info pci lists the fixture's 1b36:7fff)" realized g-mdev 1b36:7fff
vm_check "virsh destroy g-mdev" virsh -q destroy g-mdev
vm_check "mdev $U1 removed after the guest" until_ok 20 test ! -e /sys/bus/mdev/devices/$U1

vm_check "vfioctl define $P type $T uuid $U2" sh -c "vfioctl define $P type $T uuid $U2 >/dev/null"
domain g-mdef 11111111-0000-4000-8000-000000000006 "" "$(mdev_hostdev $U2)"
out=$(virsh start g-mdef 2>&1)
vm_check "virsh start g-mdef (the definition): $out" running g-mdef
vm_check "mdev $U2 started from its definition" test -e /sys/bus/mdev/devices/$U2
vm_check "virsh destroy g-mdef" virsh -q destroy g-mdef
vm_check "mdev $U2 stopped after the guest" until_ok 20 test ! -e /sys/bus/mdev/devices/$U2
vm_check "its definition is kept" sh -c "vfioctl -j list | grep -qF '$U2'"
vm_check "vfioctl undefine $U2" sh -c "vfioctl undefine $U2 >/dev/null"

# --- QEMU alone, on what vfioctl made: each realized.
qemu_realizes() { # WHAT VENDOR:DEVICE QEMU-ARGS...: QEMU starts paused, `info pci` lists it
	local what=$1 id=$2 out rc
	shift 2
	out=$(printf 'info pci\nquit\n' | timeout 60 qemu-system-x86_64 -machine q35 -accel tcg \
		-m 64 -nodefaults -nographic -S -monitor stdio "$@" 2>&1)
	rc=$?
	echo "$out" >"$W/qemu-$what.txt"
	[ $rc = 0 ] && grep -qF "PCI device $id" <<<"$out"
}
vm_check "vfioctl create $NVME (its variant driver)" sh -c "vfioctl create $NVME >/dev/null"
vm_check "$NVME on vfio-fixture-vdsub" test "$(drv "$NVME")" = vfio-fixture-vdsub
t=$(now_ns)
vm_check "QEMU realizes $NVME on the variant driver" \
	qemu_realizes nvme 1b36:0010 -device vfio-pci,host="$NVME"
figure qemu_realize_ms "$t"
vm_check "vfioctl destroy $NVME" sh -c "vfioctl destroy $NVME >/dev/null"
vm_check "vfioctl create $PF vfs 1 assign" sh -c "vfioctl create $PF vfs 1 assign >/dev/null"
vm_check "QEMU realizes the VF $VF" qemu_realizes vf 1b36:0010 -device vfio-pci,host="$VF"
vm_check "vfioctl destroy $PF vfs" sh -c "vfioctl destroy $PF vfs >/dev/null"
vm_check "vfioctl create $P type $T uuid $U1" sh -c "vfioctl create $P type $T uuid $U1 >/dev/null"
vm_check "QEMU realizes the mdev through sysfsdev" \
	qemu_realizes mdev 1b36:7fff -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$U1
vm_check "vfioctl destroy $U1" sh -c "vfioctl destroy $U1 >/dev/null"

# --- vdpa: a VDUSE block device (qemu-storage-daemon's export), the only VDUSE device
# this kernel and these packages can make. QEMU 7.2 of Debian has no vhost-vdpa-device-pci,
# only the vhost-vdpa netdev, which wants a network device; libvirt's <interface
# type='vdpa'> is that netdev. So the guest cannot start on it: what is proven is that the
# hook made the device from the metadata and gave it back when QEMU refused.
modprobe -a vdpa vduse vhost_vdpa
qemu-storage-daemon --blockdev driver=null-co,node-name=n0,size=67108864,read-zeroes=on \
	--export type=vduse-blk,id=e0,node-name=n0,name=blk0,writable=on >"$W/qsd.log" 2>&1 &
qsd=$!
vm_check "qemu-storage-daemon exports vduse blk0" until_ok 20 test -e /dev/vduse/blk0
vm_check "vfioctl create vduse vdpa blk0" sh -c "vfioctl create vduse vdpa blk0 >/dev/null"
node=$(vfioctl -j list | python3 -c 'import json,sys; print([e.get("vfio") or e.get("node") for e in json.load(sys.stdin) if e["name"] == "blk0"][0])' 2>/dev/null)
vm_check "blk0 has a vhost-vdpa node ($node)" test -c "$node"
out=$(printf 'quit\n' | timeout 60 qemu-system-x86_64 -machine q35 -accel tcg -m 64 \
	-nodefaults -nographic -S -monitor stdio -netdev vhost-vdpa,vhostdev="$node",id=n0 \
	-device virtio-net-pci,netdev=n0 2>&1)
echo "$out" >"$W/qemu-vdpa.txt"
vm_note "QEMU's vhost-vdpa netdev on the VDUSE block device: $(grep -m1 'qemu-system' <<<"$out")"
vm_check "vfioctl destroy blk0" sh -c "vfioctl destroy blk0 >/dev/null"
meta="<vfiod:devices $NS><vfiod:vdpa dev='$node' name='blk0' mgmtdev='vduse'/></vfiod:devices>"
domain g-vdpa 11111111-0000-4000-8000-000000000007 "$meta" \
	"<interface type='vdpa'><source dev='$node'/><model type='virtio'/></interface>"
out=$(virsh start g-vdpa 2>&1)
vm_note "virsh start g-vdpa: $(tr '\n' ' ' <<<"$out")"
vm_check "journal: the hook had vfiod make blk0 on vduse for g-vdpa" sh -c \
	"journalctl -b -q --no-pager -u vfiod -o cat | grep -q 'blk0.*created\|created.*blk0\|vdpa.*blk0'"
if running g-vdpa; then
	vm_check "blk0 exists while g-vdpa runs" test -c "$node"
	virsh -q destroy g-vdpa
fi
vm_check "blk0 gone once g-vdpa is not running" until_ok 20 test ! -e "$node"
kill $qsd 2>/dev/null
wait $qsd 2>/dev/null

vm_check "vfiod lists nothing at the end" nothing_listed
vm_check "the hook left no record" sh -c "test -z \"\$(ls /run/vfiod-libvirt 2>/dev/null)\""
vm_check "no hook record of a failure in libvirtd's journal beyond the two refused starts" sh -c \
	"test \$(journalctl -b -q --no-pager -u libvirtd -o cat | grep -c 'Hook script execution failed') -le 2"
journalctl -b -q --no-pager -u libvirtd -o cat >"$W/libvirtd.log"
cp "$W"/*.txt "$W"/*.log "$RESULTS/" 2>/dev/null
vm_no_kernel_warnings
vm_summary
