#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: vdpa devices made through libvfiod on the real vdpa bus.
#
#   case-vdpa.sh BUILD_DIR
#
# Runs in the guest (tests/vm/run.sh). qemu-storage-daemon exports a null
# block device over VDUSE; libvfiod (through tests/vfiod-call) makes a vdpa
# device of it on the management device "vduse", binds it to vhost_vdpa (the
# node is opened and asked what it is) or to virtio_vdpa (a virtio block
# device appears and is read), and deletes it.  Refusals show the kernel's
# own message.
set -uo pipefail

BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
CALL="$BUILD/tests/vfiod-call"
VHOST_OPEN="$BUILD/tests/vhost-vdpa-open"
export RUNTIME_DIRECTORY=/run/vfiod
RESULTS=${RESULTS:-/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

VDPA=/sys/bus/vdpa/devices
: >"$RESULTS/figures"

vm_dmesg_mark
modprobe -a vdpa vduse virtio_blk || { echo "vdpa modules missing"; exit 1; }
qemu-storage-daemon --blockdev driver=null-co,node-name=n0,size=67108864,read-zeroes=on \
	--export type=vduse-blk,id=e0,node-name=n0,name=blk0,writable=on \
	--pidfile /run/qsd.pid --daemonize
vm_check "qemu-storage-daemon exports vduse blk0" test -e /dev/vduse/blk0

# Management devices.
call mgmtdevs
echo "# mgmtdevs: $OUT"
vm_check "mgmtdevs: vduse offers block" \
	test "$(jget '"block" in [m["classes"] for m in d if m["name"] == "vduse"][0]' <<<"$OUT")" = True
vm_check "mgmtdevs: vduse is on no bus" \
	test "$(jget '[m["bus"] for m in d if m["name"] == "vduse"][0]' <<<"$OUT")" = None

# What a create and a destroy act on, known before they start.
call target-create vduse '{"vdpa":"blk0"}'
vm_check "target of create: key vdpa:blk0, no device" \
	test "$(jget 'd["key"], d["device"], d["kind"]' <<<"$OUT")" = "vdpa:blk0 None vdpa"
vm_check_not "target of destroy: blk0 does not exist yet, not a vdpa device" \
	"$CALL" target-destroy blk0

# vhost_vdpa, the default.
t0=$(now_ns)
call create vduse '{"vdpa":"blk0"}'
t1=$(now_ns)
echo "vdpa create vhost_vdpa: $(((t1 - t0) / 1000000)) ms" >>"$RESULTS/figures"
echo "# create: $OUT"
vm_check "create blk0 on vduse" test -e $VDPA/blk0
vm_check "blk0 bound to vhost_vdpa" test "$(basename "$(readlink $VDPA/blk0/driver)")" = vhost_vdpa
NODE=$(jget 'd["node"]' <<<"$OUT")
vm_check "result names the node /dev/vhost-vdpa-N" test -c "$NODE"
vm_check "result's device is blk0's sysfs path" \
	test "$(jget 'd["device"]' <<<"$OUT")" = "$(cd -P $VDPA/blk0 && pwd)"
vm_check "driver_override says vhost_vdpa" test "$(cat $VDPA/blk0/driver_override)" = vhost_vdpa
out=$("$VHOST_OPEN" "$NODE")
echo "# $NODE: $out"
vm_check "vhost-vdpa node opens: a virtio block device (id 2)" has "$out" "device_id 2 "
call list
vm_check "list shows blk0 on vhost_vdpa with its node" \
	test "$(jget '[(e["driver"], e["node"], e["mgmtdev"], e["class"]) for e in d if e.get("kind") == "vdpa" and e["name"] == "blk0"]' <<<"$OUT")" = "[('vhost_vdpa', '$NODE', 'vduse', 'block')]"
# show: sysfs for the driver and node, the kernel (and iproute2, apart from us) for the rest.
VFIOCTL=("$BUILD/cli/vfioctl" --direct)
out=$("${VFIOCTL[@]}" -j show blk0)
vm_note "show: $out"
vm_note "vdpa dev config show: $(vdpa -j dev config show blk0 2>&1)"
vm_check "show: kind, name, device, driver and node as sysfs has them" test \
	"$(jget 'd["kind"], d["name"], d["device"], d["driver"], d["node"]' <<<"$out")" = \
	"vdpa blk0 $(cd -P $VDPA/blk0 && pwd) $(basename "$(readlink $VDPA/blk0/driver)") /dev/$(basename $VDPA/blk0/vhost-vdpa-*)"
vm_check "show: management device and class as iproute2's vdpa dev show says" test \
	"$(jget 'd["mgmtdev"], d["class"]' <<<"$out")" = \
	"$(vdpa -j dev show blk0 | jget 'd["dev"]["blk0"]["mgmtdev"], d["dev"]["blk0"]["type"]')"
vm_check "show: config as the kernel has it: 64 MiB (131072 sectors), writable" test \
	"$(jget 'd["config"]["capacity"], d["config"]["read_only"]' <<<"$out")" = "131072 False"
vm_check "show: config: the block size qemu-storage-daemon exports" \
	test "$(jget 'd["config"]["blk_size"]' <<<"$out")" = 512
vm_check "show: config: the device features, and nothing negotiated before a driver did" \
	test "$(jget '"features" in d["config"], "negotiated_features" in d["config"]' <<<"$out")" = "True False"
vm_check "show: no net config for a block device" \
	test "$(jget '[k for k in ("mac", "status", "mtu", "max_vqp") if k in d["config"]]' <<<"$out")" = "[]"
# iproute2 prints what it knows of a config (6.1: nothing of a block device's); what it
# prints must be ours.
theirs=$(vdpa -j dev config show blk0 | jget 'len(d.get("config", {}).get("blk0", {}))')
if [ "$theirs" -gt 0 ]; then
	vm_check "show: every config value iproute2 reports agrees" test \
		"$(vdpa -j dev config show blk0 | python3 -c '
import json, sys
ours = json.loads(sys.argv[1])["config"]
theirs = json.load(sys.stdin)["config"]["blk0"]
names = {"capacity": "capacity", "blk_size": "blk_size", "seg_max": "seg_max",
         "size_max": "size_max", "num_queues": "num_queues", "read_only": "read_only",
         "flush": "flush", "mtu": "mtu", "max_vq_pairs": "max_vqp", "mac": "mac"}
print([k for k, v in theirs.items() if k in names and ours.get(names[k]) != v])' "$out")" = "[]"
else
	vm_note "iproute2 $(vdpa -V | sed 's/.*iproute2-//') reports no block config: nothing to compare"
fi
vm_check "show by $VDPA/blk0 gives the same" test "$("${VFIOCTL[@]}" -j show $VDPA/blk0)" = "$out"
text=$("${VFIOCTL[@]}" show blk0)
vm_note "show (text): $text"
vm_check "show (text): a fact a line" test \
	"$(grep -E '^  (management device|class|driver|node):|^    (capacity|read_only):' <<<"$text")" = \
	"$(printf '  management device: vduse\n  class: block\n  driver: vhost_vdpa\n  node: %s\n    capacity: 131072\n    read_only: no' "$NODE")"
vm_check "show (text): no JSON in it" bash -c '! grep -q "[][{}\"]" <<<"$0"' "$text"
call target-destroy blk0
vm_check "target of destroy by name: vdpa, key vdpa:blk0" \
	test "$(jget 'd["kind"], d["key"]' <<<"$OUT")" = "vdpa vdpa:blk0"
call target-destroy $VDPA/blk0
vm_check "target of destroy by /sys/bus/vdpa path" test "$(jget 'd["name"]' <<<"$OUT")" = blk0

# A second device of the same name: the kernel refuses, and the first stays.
refused "duplicate name refused" create vduse '{"vdpa":"blk0"}'
vm_check "duplicate: the kernel's answer is shown" has "$ERR" "File exists"
vm_check "duplicate: the first device is untouched" \
	test "$(basename "$(readlink $VDPA/blk0/driver)")" = vhost_vdpa

sleep 60 3<>"$NODE" &
VH=$!
sleep 0.3
refused "destroy of a held vdpa device refused at once" destroy blk0
vm_check "... naming the process" has "$ERR" "process $VH (sleep) has $NODE open"
vm_check "... blk0 still there" test -e $VDPA/blk0
kill $VH
wait $VH 2>/dev/null

t0=$(now_ns)
call destroy blk0
t1=$(now_ns)
echo "vdpa destroy: $(((t1 - t0) / 1000000)) ms" >>"$RESULTS/figures"
vm_check "destroy blk0: gone from the vdpa bus" gone $VDPA/blk0
vm_check "destroy blk0: its node is gone" gone "$NODE"
refused "destroy again: nothing to destroy" destroy blk0

# Forced, with the holder letting go a second into the wait: the device is deleted after it.
call create vduse '{"vdpa":"blk0"}'
NODE=$(jget 'd["node"]' <<<"$OUT")
sleep 60 3<>"$NODE" &
VH=$!
sleep 0.3
(
	sleep 1
	kill $VH
) &
KILLER=$!
call destroy blk0 '{"force":true}'
rc=$?
echo "# forced destroy while held: $OUT"
vm_check "forced destroy of a held vdpa device: exit 0 once the holder let go" test $rc = 0
vm_check "... gone from the vdpa bus, its node too" sh -c '! test -e "$0" && ! test -e "$1"' \
	$VDPA/blk0 "$NODE"
vm_check "... the reply says it waited for that process" \
	sh -c 'case "$0" in "waited "*" ms for the holder to let go (process $1 (sleep) has $2 open)") ;; *) exit 1 ;; esac' \
	"$(jget 'd["note"]' <<<"$OUT")" "$VH" "$NODE"
vm_check "... the holder had let go by then (no open files left)" \
	test -z "$(ls "/proc/$VH/fd" 2>/dev/null)"
wait $KILLER $VH 2>/dev/null

# virtio_vdpa on request: a virtio block device for the host itself.
call create vduse '{"vdpa":"blk0","driver":"virtio_vdpa"}'
echo "# create virtio: $OUT"
vm_check "virtio_vdpa on request" test "$(basename "$(readlink $VDPA/blk0/driver)")" = virtio_vdpa
VIRTIO=$(jget 'd["virtio"]' <<<"$OUT")
vm_check "a virtio device appears with blk0 as parent" \
	test "$(basename "$(dirname "$(cd -P /sys/bus/virtio/devices/"$VIRTIO" && pwd)")")" = blk0
vm_check "the virtio device is a block device (virtio_blk)" \
	test "$(basename "$(readlink /sys/bus/virtio/devices/"$VIRTIO"/driver)")" = virtio_blk
DISK=
for b in /sys/bus/virtio/devices/"$VIRTIO"/block/*; do DISK=/dev/${b##*/}; done
vm_check "a disk appears: $DISK, 64 MiB" \
	test "$(cat /sys/bus/virtio/devices/"$VIRTIO"/block/"${DISK#/dev/}"/size)" = 131072
vm_check "the disk reads through the vdpa device" \
	dd if="$DISK" of=/dev/null bs=4096 count=16 iflag=direct status=none
out=$("$BUILD/cli/vfioctl" --direct -j show blk0)
vm_note "show (virtio_vdpa): $out"
vm_check "show: on virtio_vdpa, its virtio device, no node" test \
	"$(jget 'd["driver"], d["virtio"], "node" in d' <<<"$out")" = "virtio_vdpa $VIRTIO False"
vm_check "show: capacity as the disk's size in sysfs" test "$(jget 'd["config"]["capacity"]' <<<"$out")" = \
	"$(cat /sys/bus/virtio/devices/"$VIRTIO"/block/"${DISK#/dev/}"/size)"
# The block layer's limits of the disk virtio_blk made of it, from that same config.
Q=/sys/bus/virtio/devices/$VIRTIO/block/${DISK#/dev/}/queue
vm_check "show: blk_size, read_only, flush as the disk's queue has them" test \
	"$(jget 'd["config"]["blk_size"], int(d["config"]["read_only"]), "write back" if d["config"]["flush"] else "write through"' <<<"$out")" = \
	"$(cat "$Q/logical_block_size") $(cat "$Q/../ro") $(cat "$Q/write_cache")"
vm_check "show: discard and write-zeroes limits as the disk's queue has them (in bytes)" test \
	"$(jget 'd["config"]["max_discard_sectors"] * 512, d["config"]["max_discard_seg"], d["config"]["max_write_zeroes_sectors"] * 512' <<<"$out")" = \
	"$(cat "$Q/discard_max_hw_bytes") $(cat "$Q/max_discard_segments") $(cat "$Q/write_zeroes_max_bytes")"
# virtio's "features" attribute: a character a feature bit, bit 0 first (of the first 64).
vm_check "show: negotiated features as virtio_blk negotiated them (the virtio device's features)" \
	test "$(jget 'format(int(d["config"]["negotiated_features"], 16), "064b")[::-1].rstrip("0")' <<<"$out")" = \
	"$(head -c 64 /sys/bus/virtio/devices/"$VIRTIO"/features | sed 's/0*$//')"
call destroy blk0
vm_check "destroy the virtio one: gone" gone $VDPA/blk0
vm_check "destroy the virtio one: the virtio device is gone" gone /sys/bus/virtio/devices/"$VIRTIO"

# Refusals: the kernel's own words.
refused "unknown management device refused" create nosuch '{"vdpa":"x0"}'
vm_check "unknown mgmtdev: the kernel's message" has "$ERR" "vdpa: Fail to find the specified"
# A management device by sysfs path: a PCI function is named pci/BDF to the kernel.
NVME=$(vm_pci_find 1b36 0010 plain | head -n1)
call target-create "/sys/bus/pci/devices/$NVME" '{"vdpa":"n0"}'
vm_check "target of create by sysfs path: the mgmtdev's canonical path" \
	test "$(jget 'd["device"]' <<<"$OUT")" = "$(cd -P "/sys/bus/pci/devices/$NVME" && pwd)"
refused "a PCI function that is no management device refused" \
	create "/sys/bus/pci/devices/$NVME" '{"vdpa":"n0"}'
vm_check "no mgmtdev: the kernel's message, naming pci/$NVME" \
	has "$ERR" "on pci/$NVME: the kernel refused: vdpa: Fail to find the specified"
refused "mac on a block management device refused" \
	create vduse '{"vdpa":"blk0","mac":"00:11:22:33:44:55"}'
vm_check "unsupported attribute: the kernel's message" has "$ERR" "not supported"
refused "a malformed mac refused before the kernel" \
	create vduse '{"vdpa":"blk0","mac":"00:11:22"}'
vm_check "malformed mac: says what is wrong" has "$ERR" 'mac "00:11:22" is not six two-digit hex octets'
# Neither a sign nor "0x" passes for an octet; a device's own address is unicast and not zero.
for m in -1:-1:-1:-1:-1:-1 0x:0x:0x:0x:0x:0x 01:00:5e:00:00:01 ff:ff:ff:ff:ff:ff 00:00:00:00:00:00; do
	refused "mac $m refused before the kernel" create vduse '{"vdpa":"blk0","mac":"'$m'"}'
	case $m in
	*x* | -*) why="not six two-digit hex octets" ;;
	00:00:*) why="all zeros" ;;
	*) why="a multicast address" ;;
	esac
	vm_check "mac $m: says it is $why" has "$ERR" "mac \"$m\" is $why"
done
refused "a driver that is not a vdpa bus driver refused" \
	create vduse '{"vdpa":"blk0","driver":"vfio-pci"}'
refused "a name with a slash refused" create vduse '{"vdpa":"a/b"}'
vm_check "nothing left behind by the refusals" test -z "$(ls $VDPA)"

# Stopped after the device was made: it is deleted again.
for step in set-override verify; do
	VFIOD_CALL_STOP_AT=$step call create vduse '{"vdpa":"blk0"}'
	vm_check "stopped before $step: refused, naming the step" has "$ERR" "before step $step"
	vm_check "stopped before $step: the new device is deleted again" gone $VDPA/blk0
done
call create vduse '{"vdpa":"blk0"}'
vm_check "after the stops, create works" test -e $VDPA/blk0/driver
call destroy /sys/bus/vdpa/devices/blk0
vm_check "destroy by /sys/bus/vdpa path" gone $VDPA/blk0

# The same through vfioctl's words (JSON: its text printer knows only PCI results yet).
vm_check "vfioctl mgmtdev lists vduse" has "$("${VFIOCTL[@]}" -j mgmtdev)" '"name":"vduse"'
out=$("${VFIOCTL[@]}" -j create vduse vdpa blk0 driver vhost_vdpa)
echo "# vfioctl create: $out"
vm_check "vfioctl create vduse vdpa blk0 driver vhost_vdpa" \
	test "$(basename "$(readlink $VDPA/blk0/driver)")" = vhost_vdpa
vm_check "vfioctl destroy blk0" "${VFIOCTL[@]}" -j destroy blk0
vm_check "vfioctl destroy blk0: gone" gone $VDPA/blk0
t0=$(now_ns)
"$CALL" list >/dev/null
t1=$(now_ns)
echo "vfiod-call list (process start, vdpa and devlink dumps): $(((t1 - t0) / 1000000)) ms" \
	>>"$RESULTS/figures"

kill "$(cat /run/qsd.pid)"
for i in $(seq 50); do [ -e /dev/vduse/blk0 ] || break; sleep 0.1; done
vm_check "modules unload cleanly" modprobe -r vhost_vdpa virtio_vdpa virtio_blk vduse vdpa
vm_no_kernel_warnings
vm_summary
