#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: hotplug.  udev rules mark devices, vfiod assigns them the moment QEMU hot-adds
# them; the real kernel, the real systemd-udevd, vfiod on a private dbus-daemon.
#
#   case-hotplug.sh BUILD_DIR        (run.sh --qmp, four pcie-root-ports rp1..rp4)
#
# The admin's rule marks the functions behind rp1..rp3 (buses 01..03); rp4's stays the
# host's. QEMU's device_add/device_del come from this script over QMP (qmp.py). Checks:
# a marked nvme ends on the most specific vfio driver even though nvme bound it first;
# an unmarked one stays on nvme; device_del leaves no object and an empty list; three
# added at once all end assigned (udevd loading nvme for them meanwhile); a storm of change
# events assigns each released marked device exactly once and the bus keeps answering; a
# persistent definition is made again when its device comes back; vfioctl monitor -j shows
# it all in order. Figures: hot-add (QMP device_add returned) to bound to vfio.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/guest-lib.sh"
BUILD=$1
SRC=$(cd "$HERE/../.." && pwd)
H=$HERE/../dbus/vfiod-private-bus.sh
D=/run/vfiod-bus
export RUNTIME_DIRECTORY=/run/vfiod
VFIOCTL=$BUILD/cli/vfioctl
QMP=("$HERE/qmp.py")
EVENTS=$RESULTS/events.jsonl
: >"$RESULTS/figures"
VDSUB=vfio-fixture-vdsub
drv() { vm_pci_driver "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

on() { [ "$(drv "$1")" = "$2" ]; }
gone() { [ ! -e "/sys/bus/pci/devices/$1" ]; }
add() { # id bus...: one device_add per pair, in one QMP connection
	local args=()
	while [ $# -ge 2 ]; do
		args+=(device_add "{\"driver\":\"nvme\",\"id\":\"$1\",\"serial\":\"$1\",\"bus\":\"$2\"}")
		shift 2
	done
	"${QMP[@]}" "${args[@]}"
}
del() { # id... ; then wait until the kernel let go
	local id
	for id in "$@"; do
		"${QMP[@]}" device_del "{\"id\":\"$id\"}" >/dev/null || return 1
	done
}
# events EVENT NAME: how many such events the monitor printed.
events() { jq -c --arg e "$1" --arg n "$2" 'select(.event == $e and .name == $n)' "$EVENTS" | wc -l; }
events_ge() { [ "$(events "$1" "$2")" -ge "$3" ]; }
list_empty() { [ "$("$VFIOCTL" -j list)" = "[]" ]; }
list_is() { [ "$(list_names)" = "$1" ]; }
list_names() { "$VFIOCTL" -j list | jq -r '.[] | "\(.name) \(.state)"' | sort | tr '\n' ' '; }

# The admin's rule (before ours) and vfiod's rules, as a package installs them.
mkdir -p /etc/udev/rules.d
cat >/etc/udev/rules.d/60-vfiod-test.rules <<'EOF'
SUBSYSTEM=="pci", KERNEL=="0000:0[123]:00.0", ENV{VFIOD_ASSIGN}="1"
EOF
cp "$SRC/udev-rules/70-vfiod.rules" /etc/udev/rules.d/
modprobe nvme
vm_check "udevd starts" vm_udev_start
vm_check "vfiod starts on a private bus" "$H" start $D "$BUILD"
export VFIOD_BUS_ADDRESS=$(cat $D/address)
"$VFIOCTL" -j monitor >"$EVENTS" 2>"$RESULTS/monitor.err" &
MONITOR=$!
vm_check "vfioctl monitor -j is listening" wait_for 20 grep -q "^# monitoring" "$RESULTS/monitor.err"

# 1. A marked device, its host driver loaded: the kernel binds nvme at device_add, before
# the uevent; vfiod then takes it from nvme.
out=$(add hp1 rp1)
t_add=$(($(jq -r .ns <<<"$out") / 1000000))
vm_check "hot-added nvme appears at 0000:01:00.0" wait_for 20 test -e /sys/bus/pci/devices/0000:01:00.0
vm_udev_settle
vm_check "udev tagged it vfiod" sh -c 'udevadm info /sys/bus/pci/devices/0000:01:00.0 | grep -q "^E: TAGS=.*:vfiod:"'
vm_check "marked + hot-added: on $VDSUB" wait_for 60 on 0000:01:00.0 $VDSUB
t_bound=$(now_ms)
vm_check "$VDSUB is what vfioctl --direct match selects" sh -c \
	'"$0" --direct -j match 0000:01:00.0 | jq -e ".selected.module == \"vfio_fixture_vdsub\""' "$VFIOCTL"
vm_check "its object is on the bus, assigned" sh -c \
	'"$0" -j list | jq -e ".[] | select(.name == \"0000:01:00.0\" and .state == \"assigned\")"' "$VFIOCTL"
wait_for 10 events_ge assigned 0000:01:00.0 1
vm_check "monitor: added, then assigned (previous_driver nvme, trigger udev)" sh -c \
	'jq -s -e "map(select(.name == \"0000:01:00.0\")) | .[0].event == \"added\" and
		.[1].event == \"assigned\" and .[1].previous_driver == \"nvme\" and
		.[1].trigger == \"udev\" and .[1].driver == \"$1\"" "$0"' "$EVENTS" $VDSUB
vm_note "first hot-add to bound: $((t_bound - t_add)) ms (QMP device_add returned -> driver link seen)"

# 2. Unmarked (rp4): left to the host.
add hp4 rp4 >/dev/null
vm_check "unmarked hot-added nvme appears at 0000:04:00.0" wait_for 20 on 0000:04:00.0 nvme
vm_udev_settle
sleep 2
vm_check "unmarked: still on nvme" on 0000:04:00.0 nvme
vm_check "unmarked: vfiod does not list it" sh -c '! "$0" -j list | grep -q 0000:04:00.0' "$VFIOCTL"

# 3. device_del: vfiod's state goes with the device.
del hp1
vm_check "device_del: 0000:01:00.0 gone" wait_for 30 gone 0000:01:00.0
vm_check "device_del: vfiod's list is empty" wait_for 10 list_empty
vm_check "device_del: no device object left" sh -c \
	'! busctl --address="$0" tree org.vfiod1 | grep -q /org/vfiod1/device/' "$VFIOD_BUS_ADDRESS"
vm_check "device_del: libvfiod's record gone" test ! -e $RUNTIME_DIRECTORY/assigned/0000:01:00.0.json
vm_check "monitor: removed" wait_for 10 events_ge removed 0000:01:00.0 1

# 4. Several at once, the host module not loaded: udevd loads nvme through MODALIAS while
# handling the first add (before vfiod hears of it), vfiod assigns all three.
del hp4
wait_for 30 gone 0000:04:00.0
modprobe -r nvme
vm_check "nvme unloaded" sh -c '! grep -q "^nvme " /proc/modules'
add hp1 rp1 hp2 rp2 hp3 rp3 >/dev/null
for dev in 0000:01:00.0 0000:02:00.0 0000:03:00.0; do
	vm_check "three at once: $dev on $VDSUB" wait_for 90 on $dev $VDSUB
done
vm_check "three at once: listed, assigned" test "$(list_names)" = \
	"0000:01:00.0 assigned 0000:02:00.0 assigned 0000:03:00.0 assigned "
wait_for 10 events_ge assigned 0000:03:00.0 1
jq -c 'select(.name | test("^0000:0[123]:00.0$")) | {event, name, driver, previous_driver, trigger}' \
	"$EVENTS" | tail -6 | sed 's/^/# /'
vm_check "nvme was loaded by udevd meanwhile" grep -q "^nvme " /proc/modules

# 5. A storm: the three released (back on nvme, still marked), then hundreds of change
# events; each is assigned again exactly once, and the bus answers meanwhile.
for dev in 0000:01:00.0 0000:02:00.0 0000:03:00.0; do "$VFIOCTL" destroy $dev >/dev/null; done
vm_check "released: all three on nvme" sh -c \
	'for d in 0000:01:00.0 0000:02:00.0 0000:03:00.0; do [ -e /sys/bus/pci/drivers/nvme/$d ] || exit 1; done'
before=$(events assigned 0000:02:00.0)
quiet=0
for _ in 1 2 3; do
	a=$(now_ms)
	"$VFIOCTL" -j list >/dev/null
	b=$(now_ms)
	[ $((b - a)) -gt $quiet ] && quiet=$((b - a))
done
t0=$(now_ms)
for _ in $(seq 40); do
	udevadm trigger --action=change --subsystem-match=pci
done &
STORM=$!
read -r -a st </proc/"$(cat $D/vfiod.pid)"/stat
cpu0=$((st[13] + st[14]))
worst=0 calls=0 failed=0
while kill -0 $STORM 2>/dev/null; do
	a=$(now_ms)
	"$VFIOCTL" -j list >/dev/null || failed=$((failed + 1))
	b=$(now_ms)
	calls=$((calls + 1))
	[ $((b - a)) -gt $worst ] && worst=$((b - a))
done
wait $STORM
vm_udev_settle
n=$(($(ls /sys/bus/pci/devices | wc -l) * 40))
read -r -a st </proc/"$(cat $D/vfiod.pid)"/stat
cpu=$(((st[13] + st[14] - cpu0) * 1000 / $(getconf CLK_TCK)))
vm_note "storm: $n change events in $(($(now_ms) - t0)) ms; vfiod used $cpu ms of CPU;" \
	"$calls vfioctl list meanwhile, slowest $worst ms (before the storm: $quiet ms)"
echo "storm: $n events, vfiod cpu $cpu ms, list slowest $worst ms vs $quiet ms quiet" >>"$RESULTS/figures"
for dev in 0000:01:00.0 0000:02:00.0 0000:03:00.0; do
	vm_check "storm: $dev assigned again" wait_for 60 on $dev $VDSUB
done
sleep 2
vm_check "storm: exactly one more assigned event for 0000:02:00.0" \
	test "$(events assigned 0000:02:00.0)" = $((before + 1))
vm_check "storm: the bus answered all $calls calls made meanwhile" test $calls -gt 0 -a $failed = 0
vm_check "storm: vfiod logged no dropped events" sh -c '! grep -q "dropped events" "$0"' $D/vfiod.log

# 6. A persistent definition comes back with its device. rp4 is unmarked: only the
# definition can bring it back.
del hp1 hp2 hp3
for dev in 0000:01:00.0 0000:02:00.0 0000:03:00.0; do wait_for 30 gone $dev; done
vm_check "device_del of three: list empty" wait_for 10 list_empty
add hp4 rp4 >/dev/null
vm_check "rp4 again, on nvme" wait_for 30 on 0000:04:00.0 nvme
vm_check "create persistent" "$VFIOCTL" create 0000:04:00.0 persistent
vm_check "assigned" on 0000:04:00.0 $VDSUB
del hp4
vm_check "defined device gone" wait_for 30 gone 0000:04:00.0
vm_check "only the definition is listed" wait_for 10 list_is "0000:04:00.0 defined "
add hp4 rp4 >/dev/null
vm_check "definition made again on hot-add" wait_for 60 on 0000:04:00.0 $VDSUB
vm_check "monitor: assigned by the definition" wait_for 10 sh -c \
	'jq -s -e "map(select(.name == \"0000:04:00.0\" and .event == \"assigned\")) | last |
		.trigger == \"definition\"" "$0"' "$EVENTS"
vm_check "destroy: back on nvme, definition gone" sh -c \
	'"$0" destroy 0000:04:00.0 >/dev/null && test "$("$0" -j list)" = "[]"' "$VFIOCTL"
del hp4
wait_for 30 gone 0000:04:00.0

# 7. The race, the other way: the host module not loaded and the admin's rule writing
# driver_override early (udev-rules/60-vfiod-example.rules.example). udevd loads nvme through
# MODALIAS after the rules ran, nvme never probes the device, vfiod finds it unbound; the
# price: destroy restores that override, so the device does not go back to nvme.
modprobe -r nvme
echo 'SUBSYSTEM=="pci", ACTION=="add", ENV{VFIOD_ASSIGN}=="?*", ENV{VFIOD_ASSIGN}!="0", ATTR{driver_override}="vfio-pci"' \
	>/etc/udev/rules.d/61-vfiod-early.rules
udevadm control --reload
mark=$(dmesg | wc -l)
add hp3 rp3 >/dev/null
vm_check "early override: on $VDSUB" wait_for 60 on 0000:03:00.0 $VDSUB
vm_check "early override: assigned with no previous driver" wait_for 10 sh -c \
	'jq -s -e "map(select(.name == \"0000:03:00.0\" and .event == \"assigned\")) | last |
		.previous_driver == null" "$0"' "$EVENTS"
vm_check "early override: udevd loaded nvme all the same" grep -q "^nvme " /proc/modules
vm_check "early override: nvme never probed it" sh -c \
	'! dmesg | tail -n +$(($0 + 1)) | grep -q "nvme.*0000:03:00.0"' "$mark"
"$VFIOCTL" destroy 0000:03:00.0 >/dev/null
vm_note "early override: after destroy 0000:03:00.0 is on $(drv 0000:03:00.0)," \
	"driver_override $(cat /sys/bus/pci/devices/0000:03:00.0/driver_override)"
vm_check "early override: destroy restored the rule's override (not nvme)" \
	test "$(cat /sys/bus/pci/devices/0000:03:00.0/driver_override)" = vfio-pci
rm /etc/udev/rules.d/61-vfiod-early.rules
udevadm control --reload
del hp3
wait_for 30 gone 0000:03:00.0

# 7b. The same race with vfiod's rules alone: 70-vfiod.rules holds the marked device with the
# claims' placeholder before udevd loads nvme, so nvme never probes it; vfiod records it as
# claimed, and destroy gives it nvme, the host driver it never had.
modprobe -r nvme
mark=$(dmesg | wc -l)
add hp3 rp3 >/dev/null
vm_check "held by the rules: on $VDSUB" wait_for 60 on 0000:03:00.0 $VDSUB
vm_check "held by the rules: assigned with no previous driver" wait_for 10 sh -c \
	'jq -s -e "map(select(.name == \"0000:03:00.0\" and .event == \"assigned\")) | last |
		.previous_driver == null" "$0"' "$EVENTS"
vm_check "held by the rules: udevd loaded nvme all the same" grep -q "^nvme " /proc/modules
vm_check "held by the rules: nvme never probed it" sh -c \
	'! dmesg | tail -n +$(($0 + 1)) | grep -q "nvme.*0000:03:00.0"' "$mark"
vm_check "held by the rules: listed as claimed" sh -c \
	'"$0" -j list | jq -e ".[] | select(.name == \"0000:03:00.0\") | .claimed"' "$VFIOCTL"
vm_check "held by the rules: destroy" "$VFIOCTL" destroy 0000:03:00.0
vm_check "held by the rules: destroy gave it nvme" wait_for 20 on 0000:03:00.0 nvme
vm_check "held by the rules: no override left" \
	test "$(cat /sys/bus/pci/devices/0000:03:00.0/driver_override)" = "(null)"
del hp3
wait_for 30 gone 0000:03:00.0
modprobe nvme

# 8. Figures: hot-add of a marked device to bound to vfio (nvme loaded, so the race with the
# host driver is there each time), five runs.
times=()
for i in 1 2 3 4 5; do
	out=$(add hp1 rp1)
	t_add=$(($(jq -r .ns <<<"$out") / 1000000))
	wait_for 60 on 0000:01:00.0 $VDSUB || break
	t_bound=$(now_ms)
	times+=($((t_bound - t_add)))
	del hp1
	wait_for 30 gone 0000:01:00.0
	wait_for 10 list_empty
done
vm_check "five hot-add runs measured" test ${#times[@]} = 5
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
vm_note "hot-add -> bound to $VDSUB (TCG): ${times[*]} ms, median $median ms"
# From vfiod's own events: added (the udev event reached vfiod) -> assigned, these five runs.
jq -s -r '[map(select(.name == "0000:01:00.0")) | . as $e | range(0; length) |
	select($e[.].event == "added" and $e[. + 1].event == "assigned") |
	($e[. + 1].usec - $e[.].usec) / 1000 | floor] | .[-5:] | sort |
	"udev add event at vfiod -> assigned event: \(.) ms, median \(.[2])"' \
	"$EVENTS" | tee -a "$RESULTS/figures" | sed 's/^/# /'
echo "hotplug add->bound ms: ${times[*]} median $median" >>"$RESULTS/figures"

# 9. The monitor ends cleanly on SIGINT.
kill -INT $MONITOR
wait $MONITOR
vm_check "vfioctl monitor exits 0 on SIGINT" test $? = 0
vm_check "vfioctl --direct monitor is refused" sh -c '"$0" --direct monitor; test $? = 2' "$VFIOCTL"
vm_check "every event line is one JSON object" jq -e -s 'length > 10 and all(.[]; has("event") and has("usec") and has("trigger"))' "$EVENTS"

"$H" down $D
cp $D/vfiod.log "$RESULTS/vfiod.log"
vm_check "no sanitizer reports" sh -c '! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$0"' "$RESULTS/vfiod.log"
vm_udev_stop
vm_no_kernel_warnings
vm_summary
