#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: vfiod never takes a device the host still uses, and never pulls one
# out from under a process holding it through VFIO.
#
#   case-inuse.sh BUILD_DIR
#
# QEMU gives an nvme with a real namespace (a raw image with four MBR
# partitions, made by the test before boot) and, behind a root port without
# ACS, an e1000e and a second nvme sharing one IOMMU group.  On the real
# kernel: a mounted ext4, swap, a dm device stacked on a partition, a loop
# device backed by one, a process holding the raw namespace open (one named
# as udev's workers are: waited for up to 3 s, then refused), the
# e1000e up with an address; each is refused with its use named and nothing
# changed, then taken with force and given back.  Then a process holds
# /dev/vfio/N: destroy is refused at once naming it; forced, it waits for the
# holder to let go.  The same through vfiod on a dbus-daemon (InUse, the
# message equal to --direct's), and a udev-marked device in use at vfiod's
# start is left alone.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/guest-lib.sh"
BUILD=$1
export RUNTIME_DIRECTORY=/run/vfiod
V=("$BUILD/cli/vfioctl" --direct)
drv() { vm_pci_driver "$1"; }
group() { vm_pci_group "$1"; }

modprobe nvme
modprobe e1000e
modprobe dm_mod
modprobe loop
modprobe ext4

for _ in $(seq 50); do
	DISK=
	for d in $(vm_pci_find 1b36 0010 plain); do
		ls -d "/sys/bus/pci/devices/$d"/nvme/nvme*/nvme*n1 >/dev/null 2>&1 && DISK=$d
	done
	[ -n "$DISK" ] && break
	sleep 0.1
done
NIC=$(vm_pci_find 8086 10d3) || { echo "no e1000e"; exit 1; }
MATE=
for d in $(vm_pci_find 1b36 0010 plain); do
	[ "$d" != "$DISK" ] && [ "$(group "$d")" = "$(group "$NIC")" ] && MATE=$d
done
NS=$(basename "$(ls -d "/sys/bus/pci/devices/$DISK"/nvme/nvme*/nvme*n1)")
echo "# disk $DISK ($NS), NIC $NIC and $MATE in group $(group "$NIC")"
vm_check "the disk's namespace has its four partitions" test -b "/dev/${NS}p4"
IFACE=$(ls "/sys/bus/pci/devices/$NIC/net")
: >"$RESULTS/figures"

# What must not change across a refusal.
state() {
	local d
	for d in "$@"; do
		printf '%s %s %s\n' "$d" "$(drv "$d")" \
			"$(cat "/sys/bus/pci/devices/$d/driver_override")"
	done
	ls "$RUNTIME_DIRECTORY/assigned" 2>/dev/null
	cat "$RUNTIME_DIRECTORY/journal"/* 2>/dev/null
	grep -c '^vfio_fixture\|^vfio_pci ' /proc/modules
}
refused() { # NAME WANT-TEXT ARGS...: refused as in use, with WANT-TEXT, nothing changed
	local name=$1 want=$2 before after out rc
	shift 2
	before=$(state "$DISK" "$NIC" "$MATE")
	out=$("${V[@]}" "$@" 2>&1)
	rc=$?
	after=$(state "$DISK" "$NIC" "$MATE")
	vm_note "$out"
	printf '%s\n' "$out" >"$RESULTS/refused-out"
	vm_check "$name: refused (exit 1)" test "$rc" = 1
	vm_check "$name: the use is named: $want" grep -qF -- "$want" <<<"$out"
	vm_check "$name: says how to go on" grep -q 'add `force`' <<<"$out"
	vm_check "$name: nothing changed (drivers, overrides, records, journal, modules)" \
		test "$before" = "$after"
}
taken_and_back() { # NAME DEV: force takes it, destroy gives it back
	local name=$1 dev=$2 host
	host=$(drv "$dev")
	vm_check "$name: force takes it" "${V[@]}" create "$dev" force
	vm_check "$name: ... onto vfio" sh -c "ls /sys/bus/pci/devices/$dev/driver/ | grep -q . &&
		readlink /sys/bus/pci/devices/$dev/driver | grep -q vfio"
	vm_check "$name: destroy gives it back to $host" "${V[@]}" destroy "$dev"
	vm_check "$name: ... $host bound again" test "$(drv "$dev")" = "$host"
}
wait_ns() {
	for _ in $(seq 100); do
		[ -b "/dev/${NS}p4" ] && return 0
		sleep 0.1
	done
	return 1
}

# 1. Block devices.
mkfs.ext4 -q -F "/dev/${NS}p1" && mkdir -p /mnt/data && mount "/dev/${NS}p1" /mnt/data
refused "mounted" "/dev/${NS}p1 is mounted on /mnt/data" create "$DISK"
out=$("${V[@]}" -j match "$DISK")
vm_check "match reports the mount" \
	test "$(jget '[u["kind"] for u in d["in_use"]["uses"]]' <<<"$out")" = "['mount']"
# A copy of the mount table that keeps the mount after the host's own is gone.
unshare --mount --propagation private sleep 60 &
NSPID=$!
sleep 0.5
umount /mnt/data
refused "mounted in another mount namespace only" "mount namespace of process" create "$DISK"
kill $NSPID
wait $NSPID 2>/dev/null
taken_and_back "mounted, forced" "$DISK"
wait_ns

mkswap -q "/dev/${NS}p2" >/dev/null && swapon "/dev/${NS}p2"
refused "swap" "/dev/${NS}p2 is swap" create "$DISK"
swapoff "/dev/${NS}p2"

# No udevd runs yet: dmsetup makes its node itself instead of waiting for udev.
dmsetup create --noudevsync vfiodtest --table "0 2048 linear /dev/${NS}p3 0"
dmsetup mknodes vfiodtest
refused "stacked (dm)" "/dev/${NS}p3 is held by /dev/dm-0 (/dev/mapper/vfiodtest)" create "$DISK"
mkfs.ext4 -q -F /dev/mapper/vfiodtest && mount /dev/mapper/vfiodtest /mnt/data
refused "stacked, the top mounted" "/dev/dm-0 (stacked on /dev/${NS}p3) is mounted on /mnt/data" \
	create "$DISK"
umount /mnt/data
dmsetup remove --noudevsync vfiodtest

LOOP=$(losetup -f --show "/dev/${NS}p4")
refused "backing a loop device" "/dev/${NS}p4 backs ${LOOP}" create "$DISK"
losetup -d "$LOOP"

sleep 60 <"/dev/$NS" &
HOLDER=$!
sleep 0.3
refused "raw namespace open" "process $HOLDER (sleep) has /dev/$NS open" create "$DISK"
kill $HOLDER
wait $HOLDER 2>/dev/null

# udev's worker probing a node it was just told of: waited for, then taken; one that
# stays past the bound (3 s) is refused like any other.  udev_holder SECONDS: a process
# named as udevd's workers are, holding the raw namespace that long once it has it open;
# its pid on stdout.
udev_holder() {
	rm -f /run/udev-holder-ready
	python3 - "/dev/$NS" "$1" >/dev/null 2>&1 <<-'PY' &
	import ctypes, sys, time
	ctypes.CDLL(None).prctl(15, b"(udev-worker)", 0, 0, 0)  # PR_SET_NAME
	f = open(sys.argv[1], "rb")
	open("/run/udev-holder-ready", "w").close()
	time.sleep(float(sys.argv[2]))
	PY
	echo $!
	for _ in $(seq 100); do
		[ -e /run/udev-holder-ready ] && return 0
		sleep 0.1
	done
}
HOLDER=$(udev_holder 1)
"${V[@]}" -v create "$DISK" 2>"$RESULTS/err"
vm_check "open in udev's worker for 1 s: waited for, then taken" test $? = 0
vm_check "... saying it waited" grep -qF "open in udev's worker only; waiting" "$RESULTS/err"
vm_check "... and given back" "${V[@]}" destroy "$DISK"
wait_ns
HOLDER=$(udev_holder 60)
t0=$(date +%s%N)
refused "open in udev's worker past the wait" "process $HOLDER ((udev-worker)) has /dev/$NS open" \
	create "$DISK"
t1=$(date +%s%N)
vm_check "... after waiting the 3 s" test $(((t1 - t0) / 1000000)) -ge 3000
vm_check "... and says udevd was still probing it" grep -qF "udevadm settle" "$RESULTS/refused-out"
kill "$HOLDER"
for _ in $(seq 50); do
	kill -0 "$HOLDER" 2>/dev/null || break
	sleep 0.1
done

"${V[@]}" -v create "$DISK" 2>"$RESULTS/err"
vm_check "not in use: taken" test $? = 0
vm_check "... the second look reused the first look's nodes (nothing changed below it)" \
	grep -q "second look: the first look's [0-9]* nodes, nothing changed below it" "$RESULTS/err"
vm_check "... and given back" "${V[@]}" destroy "$DISK"
vm_check "... nvme on it again" test "$(drv "$DISK")" = nvme
wait_ns

# A node that appears between the two looks, and is used at once, is seen by the second:
# partition 4 is dropped before the create and added back (a uevent) after the first look,
# with a process holding it, from the step callback of vfiod.h.
partx --delete --nr 4 "/dev/$NS"
PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)
before=$(state "$DISK" "$NIC" "$MATE")
out=$(ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=$PRELOAD python3 - "$BUILD/lib/libvfiod.so.0" \
	"$DISK" "/dev/$NS" <<'EOF'
import ctypes, os, sys
lib = ctypes.CDLL(sys.argv[1])
dev, disk = sys.argv[2:4]
STEP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_char_p)
def step(_, op, d, name):
    if (op, name) == (b"assign", b"set-override"):
        os.system("partx --add --nr 4 %s && "
                  "{ sleep 60 <%sp4 >/dev/null 2>&1 & echo $! >/run/p4-holder; }" % (disk, disk))
    return 0
cb = STEP(step)
ctx = ctypes.c_void_p()
assert lib.vfiod_ctx_new(ctypes.byref(ctx)) == 0
lib.vfiod_ctx_set_step_fn.argtypes = [ctypes.c_void_p, STEP, ctypes.c_void_p]
lib.vfiod_ctx_set_step_fn(ctx, cb, None)
lib.vfiod_ctx_get_error.restype = ctypes.c_char_p
lib.vfiod_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
out = ctypes.c_char_p()
r = lib.vfiod_create(ctx, dev.encode(), b"{}", ctypes.byref(out))
print("r=%d error=%s" % (r, (lib.vfiod_ctx_get_error(ctx) or b"").decode()))
EOF
)
P4H=$(cat /run/p4-holder 2>/dev/null)
after=$(state "$DISK" "$NIC" "$MATE")
vm_note "$out"
vm_check "a partition added and opened between the looks: refused at the second" \
	grep -qF "process $P4H (sleep) has /dev/${NS}p4 open" <<<"$out"
vm_check "... the assign undone: nothing changed" test "$before" = "$after"
kill "$P4H" 2>/dev/null
wait_ns

# A figure, not a check: the second look right before the unbind, walking the device again
# against reusing the first look's nodes (the namespace, its four partitions, their queues).
B=$BUILD/tests/bench/vfiod-bench
[ -x "$B" ] && "$B" inuse -r 30 "$DISK" >>"$RESULTS/figures" 2>&1

# 2. The network interface.
ip link set "$IFACE" up
ip addr add 192.0.2.1/24 dev "$IFACE"
refused "interface up" "network interface $IFACE is up" create "$NIC"
refused "interface address" "network interface $IFACE has address 192.0.2.1" create "$NIC"
# 3. A group member in use blocks `group`.
refused "group: a member up" "$NIC: network interface $IFACE is up" create "$MATE" group
ip addr flush dev "$IFACE"
ip link set "$IFACE" down
vm_check "interface down, no address: the group is taken" "${V[@]}" create "$MATE" group
vm_check "... both functions on vfio" test "$(drv "$NIC") $(drv "$MATE")" = \
	"vfio-pci vfio-fixture-vdsub"

# 4. Destroy while a process holds /dev/vfio/N.
rm -f /tmp/held
hold_start "$(group "$MATE")" "$MATE" /tmp/held >/dev/null 2>&1
vm_check "a process ($HOLDER) holds /dev/vfio/$(group "$MATE")" test -s /tmp/held
t0=$(now_ns)
out=$("${V[@]}" destroy "$MATE" 2>&1)
rc=$?
t1=$(now_ns)
vm_note "$out"
vm_check "destroy of a held device refused (exit 1)" test $rc = 1
echo "held-destroy-refusal-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
vm_check "... at once, the holder still there ($(((t1 - t0) / 1000000)) ms)" kill -0 "$HOLDER"
vm_check "... naming the process" grep -qF "process $HOLDER (python3) has /dev/vfio/$(group "$MATE") open" <<<"$out"
vm_check "... still on vfio" test "$(drv "$MATE")" = vfio-fixture-vdsub
( sleep 2; kill "$HOLDER" ) &
t0=$(now_ns)
out=$("${V[@]}" destroy "$MATE" force 2>&1)
rc=$?
t1=$(now_ns)
vm_note "$out"
vm_check "forced: waits for the holder, then gives it back" test $rc = 0
vm_check "... after the holder let go ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -ge 1500
vm_check "... nvme on it again" test "$(drv "$MATE")" = nvme
wait "$HOLDER" 2>/dev/null
"${V[@]}" destroy "$NIC" >/dev/null
vm_check "e1000e back" test "$(drv "$NIC")" = e1000e

# 5. Through vfiod on a bus: InUse, the same message as --direct.
H=$HERE/../dbus/vfiod-private-bus.sh
DB=/run/vfiod-bus
"$H" start $DB "$BUILD" >/dev/null
export VFIOD_BUS_ADDRESS=$(cat $DB/address)
wait_ns
mount "/dev/${NS}p1" /mnt/data
direct=$("${V[@]}" create "$DISK" 2>&1)
bus=$("$BUILD/cli/vfioctl" create "$DISK" 2>&1)
rc=$?
vm_note "$bus"
vm_check "over D-Bus: refused, exit 1" test $rc = 1
vm_check "over D-Bus: byte-identical to --direct" test "$direct" = "$bus"
out=$(/usr/bin/python3 - "$VFIOD_BUS_ADDRESS" "$DISK" <<'EOF'
import sys, dbus
bus = dbus.bus.BusConnection(sys.argv[1])
m = dbus.Interface(bus.get_object("org.vfiod1", "/org/vfiod1"), "org.vfiod1.Manager")
try:
    m.Create(sys.argv[2], dbus.Dictionary({}, signature="sv"))
    print("accepted")
except dbus.exceptions.DBusException as e:
    print(e.get_dbus_name())
EOF
)
vm_check "over D-Bus: the error is org.vfiod1.Error.InUse ($out)" test "$out" = org.vfiod1.Error.InUse
vm_check "over D-Bus: nothing changed" test "$(drv "$DISK")" = nvme

# 6. A udev-marked device in use when vfiod starts is left alone, with a log line.
"$H" stop $DB
mkdir -p /etc/udev/rules.d
echo "SUBSYSTEM==\"pci\", KERNEL==\"$DISK\", ENV{VFIOD_ASSIGN}=\"1\"" \
	>/etc/udev/rules.d/60-vfiod-test.rules
cp "$HERE/../../udev-rules/70-vfiod.rules" /etc/udev/rules.d/
vm_check "udevd starts" vm_udev_start
udevadm trigger --subsystem-match=pci
vm_udev_settle
"$H" start $DB "$BUILD" >/dev/null
for _ in $(seq 100); do
	grep -q "in use by the host" $DB/vfiod.log && break
	sleep 0.1
done
vm_check "marked but mounted: not taken" test "$(drv "$DISK")" = nvme
vm_check "... vfiod says why" grep -q "/dev/${NS}p1 is mounted on /mnt/data" $DB/vfiod.log
umount /mnt/data
"$H" down $DB
vm_udev_stop

sed 's/^/# /' "$RESULTS/figures"
vm_no_kernel_warnings
vm_summary
