#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: one device's lock held for real, and vfiod answering for
# everything else meanwhile, on the real kernel.
#
#   case-lock.sh BUILD_DIR
#
# The SR-IOV nvme PF is assigned and held open through VFIO (as a VM holds
# it); a forced destroy then waits in the kernel's unbind, which holds the
# PF's device lock until the holder lets go.  On 6.12 a read of the PF's
# sriov_numvfs takes that lock, so List (which reads every assigned device)
# blocks in the kernel: it must answer Timeout, naming what it read, while
# Match, Describe and a create and destroy of another device on another
# IOMMU group answer at once.  Then the holder exits: the destroy ends, the
# PF is back on nvme, and List answers again.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/guest-lib.sh"
BUILD=$1
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bus
export RUNTIME_DIRECTORY=/run/vfiod
VFIOCTL=("$BUILD/cli/vfioctl")
JOURNAL=$RUNTIME_DIRECTORY/journal
drv() { vm_pci_driver "$1"; }

modprobe nvme
PF=$(vm_pci_find 1b36 0010 pf) || { echo "no SR-IOV nvme PF"; exit 1; }
OTHER=$(vm_pci_find 1b36 0005 | head -n1) || { echo "no pci-testdev"; exit 1; }
GROUP=$(vm_pci_group "$PF")
vm_note "PF $PF (group $GROUP), other $OTHER (group $(vm_pci_group "$OTHER"))"

vm_check "vfiod starts" "$H" start $D "$BUILD" VFIOD_READ_TIMEOUT_SEC=3 \
	VFIOD_OPERATION_TIMEOUT_SEC=60
export VFIOD_BUS_ADDRESS=$(cat $D/address)
BUSCTL=(busctl --address="$VFIOD_BUS_ADDRESS")

vm_check "the PF is assigned" "${VFIOCTL[@]}" create "$PF"
# Not inside vm_check: its command substitution would wait for the holder's output.
hold_start "$GROUP" "$PF" /run/holder.ready >/dev/null 2>&1
vm_check "and held open through VFIO (process $HOLDER)" test -s /run/holder.ready

# The destroy waits in the kernel with the PF's lock held, until the holder lets go.
describe() { "${BUSCTL[@]}" call org.vfiod1 /org/vfiod1 org.vfiod1.Manager Describe; }
in_unbind() { describe | grep -q 'step\\":\\"unbind'; }
"${VFIOCTL[@]}" destroy "$PF" force >/run/destroy.out 2>&1 &
DESTROY=$!
for _ in $(seq 100); do in_unbind && break; sleep 0.1; done
vm_check "the destroy is in the kernel's unbind (Describe: step unbind)" in_unbind
# The read sleeps uninterruptibly in device_lock(): it cannot be killed, only left to end
# when the lock goes.
cat "/sys/bus/pci/devices/$PF/sriov_numvfs" >/run/numvfs.out 2>&1 &
READER=$!
sleep 2
vm_check "the kernel holds the PF's lock: a read of sriov_numvfs blocks" kill -0 "$READER"

# Everything not on that device answers at once, while the destroy still waits.
t0=$(now_ns)
vm_check "Match of another device answers" sh -c \
	'"$0" -j match "$1" | grep -q "\"name\":\"$1\""' "${VFIOCTL[0]}" "$OTHER"
vm_check "Describe answers" describe
vm_check "a create on another IOMMU group answers" "${VFIOCTL[@]}" create "$OTHER"
d=$(drv "$OTHER")
vm_check "  ... and it is on its vfio driver ($d; it has no host driver)" test "$d" != none
vm_check "a destroy of it answers" "${VFIOCTL[@]}" destroy "$OTHER"
t1=$(now_ns)
vm_note "Match, Describe, create and destroy of $OTHER: $(((t1 - t0) / 1000000)) ms"
vm_check "the PF's destroy is still waiting meanwhile" kill -0 "$DESTROY"

# List reads the PF (its sriov_numvfs) and blocks in the kernel: Timeout, not a hang.
out=$("${VFIOCTL[@]}" list 2>&1)
rc=$?
vm_note "list: rc $rc: $out"
vm_check "List answers Timeout while the PF's lock is held" \
	bash -c 'test "$0" -ne 0 && grep -q "timed out" <<<"$1"' "$rc" "$out"
vm_check "vfiod still answers after that" describe

# The holder lets go: the destroy ends, the PF is back.
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
wait "$DESTROY"
rc=$?
vm_check "the forced destroy ends once the holder is gone (rc $rc)" test "$rc" = 0
vm_note "destroy: $(cat /run/destroy.out)"
vm_check "the PF is back on nvme" test "$(drv "$PF")" = nvme
wait "$READER"
vm_check "the blocked read ended with the lock ($(cat /run/numvfs.out))" test -s /run/numvfs.out
ok_list() { "${VFIOCTL[@]}" -j list >/dev/null 2>&1; }
for _ in $(seq 50); do ok_list && break; sleep 0.2; done
vm_check "List answers again" sh -c 'test "$("$0" -j list)" = "[]"' "${VFIOCTL[0]}"
vm_check "the journal is drained" journal_drained
vm_check "vfiod stops cleanly" "$H" down $D
vm_check "vfiod logged the read it left behind, by name" \
	grep -q "a read has not returned after" $D/vfiod.log
vm_no_kernel_warnings
vm_summary
