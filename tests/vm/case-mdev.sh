#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: mediated devices on the real mdev core, with the test-fixture parent
# kernel/fixtures/vfio_fixture_mdev.c (types vfio_fixture_mdev-small: 2 instances,
# vfio_fixture_mdev-large: 1; attributes knob and vendor/label).
#
#   case-mdev.sh BUILD_DIR
#
# types, create (given and generated UUID, attributes), the mdev opened through
# /dev/vfio/N, list, destroy; refusals that leave nothing behind (an instance too
# many, before and past available_instances; an unknown type; a UUID in use; a
# malformed UUID; a parent that is not one; an attribute refused; a step that
# fails; the parent going away in the middle); the parent's module unloaded with
# an mdev present; mdevctl's definitions read.
set -uo pipefail

BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
VFIOCTL=("$BUILD/cli/vfioctl" --direct)
HELPER=$BUILD/tests/mdev-helper
VFIO_OPEN=$BUILD/tests/vfio-open
export RUNTIME_DIRECTORY=/run/vfiod
RESULTS=${RESULTS:-/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

MOD=vfio_fixture_mdev
P=/sys/devices/virtual/$MOD/$MOD
T=/sys/class/mdev_bus/$MOD/mdev_supported_types
SMALL=$MOD-small
LARGE=$MOD-large
U1=83B8F4F2-509F-382F-3C1E-E6BFE0FA1003
u1=83b8f4f2-509f-382f-3c1e-e6bfe0fa1003
U3=5f4c6a8e-1d1e-4c55-9b8e-2b6c3f0a7d21
U4=0d8a3c6e-7b0f-4d6e-8f6e-1c2b3a4d5e6f
BUS=/sys/bus/mdev/devices

# The mdevs on the bus, sorted, on one line.
mdevs() {
	local d out=
	for d in "$BUS"/*; do
		[ -e "$d" ] && out="$out${out:+ }${d##*/}"
	done
	echo "$out"
}
avail() { cat "$T/$1/available_instances"; }
# What must hold after a refused create: the mdevs and the free instances are as before.
state() { echo "$(mdevs) | small $(avail $SMALL) large $(avail $LARGE)"; }
group_of() { basename "$(readlink "$BUS/$1/iommu_group")"; }
# The type of mdev $1 as its sysfs attributes say, " | " between them, its mdevs as a list last.
type_facts() {
	local t=$BUS/$1/mdev_type d devs=
	for d in "$t"/devices/*; do
		[ -e "$d" ] && devs="$devs${devs:+, }'${d##*/}'"
	done
	echo "$(basename "$(readlink "$t")") | $(cat "$t/name") | $(cat "$t/device_api") |" \
		"$(cat "$t/available_instances") | $(cat "$t/description") | [$devs]"
}

vm_dmesg_mark
: >"$RESULTS/figures"

vm_check "fixture parent loads" modprobe $MOD
# vfio's soft dependency brought vfio_iommu_type1 along; create must load it by itself.
rmmod vfio_iommu_type1 2>/dev/null
vm_check "parent is a class device with mdev_supported_types" test -d "$P/mdev_supported_types"
vm_check "vfio_iommu_type1 not loaded before the first create" \
	bash -c '! grep -q "^vfio_iommu_type1 " /proc/modules'

# 1. types
out=$("${VFIOCTL[@]}" -j types "$P")
vm_note "types: $out"
vm_check "types: both types, their instances, API, names, description" test \
	"$(jget '[(t["name"], t["available_instances"], t["device_api"], t["pretty_name"], t["description"], t["devices"]) for t in d]' <<<"$out")" = \
	"[('$LARGE', 1, 'vfio-pci', 'Fixture large', 'test fixture, 1 instance', []), ('$SMALL', 2, 'vfio-pci', 'Fixture small', 'test fixture, 2 instances', [])]"
vm_check "types by the mdev_bus name gives the same" \
	test "$("${VFIOCTL[@]}" -j types $MOD)" = "$out"
vm_check "types by /sys/class/mdev_bus path gives the same" \
	test "$("${VFIOCTL[@]}" -j types /sys/class/mdev_bus/$MOD)" = "$out"

# 2. create with a given UUID (upper case) and attributes, in order
before=$(state)
t0=$(now_ns)
out=$("${VFIOCTL[@]}" -j create "$P" type $SMALL uuid $U1 attr knob=42 attr vendor/label=hello \
	attr assign_adapter=5 attr assign_adapter=6)
t1=$(now_ns)
echo "create-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
vm_note "create: $out"
vm_check "create: the UUID lower-cased, kind, parent, type, driver" test \
	"$(jget 'd["kind"], d["name"], d["device"], d["parent"], d["type"], d["driver"], d["changed"]' <<<"$out")" = \
	"mdev $u1 $P/$u1 $P $SMALL $MOD True"
vm_check "create: on the mdev bus" test -e "$BUS/$u1"
vm_check "create: its mdev_type is $SMALL" test "$(basename "$(readlink "$BUS/$u1/mdev_type")")" = $SMALL
G1=$(group_of $u1)
vm_check "create: reply names the IOMMU group and /dev/vfio/$G1" \
	test "$(jget 'd["iommu_group"], d["vfio"]' <<<"$out")" = "$G1 ['/dev/vfio/$G1']"
vm_check "create: /dev/vfio/$G1 exists" test -c "/dev/vfio/$G1"
vm_check "create: vfio_iommu_type1 was loaded" grep -q "^vfio_iommu_type1 " /proc/modules
vm_check "create: knob=42 written" test "$(cat "$BUS/$u1/knob")" = 42
vm_check "create: vendor/label=hello written" test "$(cat "$BUS/$u1/vendor/label")" = hello
vm_check "create: an attribute given twice is written twice, in order" \
	test "$(cat "$BUS/$u1/assign_adapter")" = 5,6
vm_check "create: reply lists the attributes in order" \
	test "$(jget '[list(a.items())[0] for a in d["attrs"]]' <<<"$out")" = \
	"[('knob', '42'), ('vendor/label', 'hello'), ('assign_adapter', '5'), ('assign_adapter', '6')]"
out=$("$VFIO_OPEN" "$G1" $u1 2>&1)
vm_note "vfio-open: $out"
vm_check "create: opened through /dev/vfio/$G1 (VFIO_GROUP_GET_DEVICE_FD $u1)" \
	grep -q "^$u1: config 1b36:7fff subsystem 1b36:0001$" <<<"$out"
vm_check "create: one small instance left" test "$(avail $SMALL)" = 1

# show: the mdev as sysfs has it, by each of its names.
out=$("${VFIOCTL[@]}" -j show $U1)
vm_note "show: $out"
vm_check "show: kind, UUID, device, parent's name and path" test \
	"$(jget 'd["kind"], d["name"], d["uuid"], d["device"], d["parent"]["name"], d["parent"]["device"]' <<<"$out")" = \
	"mdev $u1 $u1 $(cd -P "$BUS/$u1" && pwd) $MOD $(cd -P "$BUS/$u1/.." && pwd)"
vm_check "show: the type as its sysfs attributes say" test \
	"$(jget '" | ".join(str(d["type"][k]) for k in ("name", "pretty_name", "device_api", "available_instances", "description", "devices"))' <<<"$out")" = \
	"$(type_facts $u1)"
vm_check "show: driver, IOMMU group and vfio node as sysfs has them" test \
	"$(jget 'd["driver"], d["iommu_group"], d["vfio"]' <<<"$out")" = \
	"$(basename "$(readlink "$BUS/$u1/driver")") $G1 ['/dev/vfio/$G1']"
vm_check "show: vfiod holds no record of an mdev" test "$(jget 'd["assigned"]' <<<"$out")" = None
vm_check "show by $BUS/$u1 gives the same" test "$("${VFIOCTL[@]}" -j show "$BUS/$u1")" = "$out"
vm_check "show by $P/$u1 gives the same" test "$("${VFIOCTL[@]}" -j show "$P/$u1")" = "$out"
text=$("${VFIOCTL[@]}" show $u1)
vm_note "show (text): $text"
vm_check "show (text): a fact a line" test "$(grep -E '^  (parent|type|available instances|IOMMU group|vfio):' <<<"$text")" = \
	"$(printf '  parent: %s (%s)\n  type: %s (%s)\n  available instances: %s\n  IOMMU group: %s\n  vfio: /dev/vfio/%s' \
		$MOD "$P" $SMALL "$(cat "$T/$SMALL/name")" "$(avail $SMALL)" "$G1" "$G1")"
vm_check "show (text): no JSON in it" bash -c '! grep -q "[][{}\"]" <<<"$0"' "$text"
rm -f /tmp/held-mdev
hold_start "$G1" $u1 /tmp/held-mdev >/dev/null 2>&1
out=$("${VFIOCTL[@]}" destroy $u1 2>&1)
vm_note "destroy while held: $out"
vm_check "destroy of a held mdev refused at once, naming the process" \
	grep -qF "process $HOLDER (python3) has /dev/vfio/$G1 open" <<<"$out"
vm_check "... the mdev still there" test -e "$BUS/$u1"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
# Forced, with the holder letting go a second into the wait: the mdev is removed after it.
"${VFIOCTL[@]}" create "$P" type $LARGE uuid $U3 >/dev/null
G3=$(group_of $U3)
rm -f /tmp/held-mdev3
hold_start "$G3" $U3 /tmp/held-mdev3 >/dev/null 2>&1
vm_check "a process ($HOLDER) holds $U3 through /dev/vfio/$G3" test -s /tmp/held-mdev3
(
	sleep 1
	kill "$HOLDER"
) &
KILLER=$!
out=$("${VFIOCTL[@]}" -j destroy $U3 force 2>"$RESULTS/err")
rc=$?
vm_note "forced destroy while held: $out $(cat "$RESULTS/err")"
vm_check "forced destroy of a held mdev: exit 0 once the holder let go" test $rc = 0
vm_check "... the mdev is gone, its group node too" \
	sh -c '! test -e "$0" && ! test -e "$1"' "$BUS/$U3" "/dev/vfio/$G3"
vm_check "... its instance is free again" test "$(avail $LARGE)" = 1
vm_check "... the reply says it waited for that process" \
	sh -c 'case "$0" in "waited "*" ms for the holder to let go (process $1 (python3) has /dev/vfio/$2 open)") ;; *) exit 1 ;; esac' \
	"$(jget 'd["note"]' <<<"$out")" "$HOLDER" "$G3"
vm_check "... the holder had let go by then (no open files left)" \
	test -z "$(ls "/proc/$HOLDER/fd" 2>/dev/null)"
wait "$KILLER" "$HOLDER" 2>/dev/null

# 3. create with a generated UUID, the type by its short name, the parent by its mdev_bus name
out=$("${VFIOCTL[@]}" -j create $MOD type small)
vm_note "create (generated): $out"
u2=$(jget 'd["name"]' <<<"$out")
vm_check "generated UUID is a UUID on the bus" bash -c \
	'[[ $0 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] && test -e "$1/$0"' \
	"$u2" "$BUS"
vm_check "short type name: the reply says which type was taken" \
	test "$(jget 'd["type"], d["note"]' <<<"$out")" = "$SMALL type \"small\" taken as $SMALL"
vm_check "generated: the device opens" "$VFIO_OPEN" "$(group_of "$u2")" "$u2"
out=$("$HELPER" target create $MOD '{"type":"large"}')
vm_check "target names a create before it starts (a UUID in the options, undo by UUID)" test \
	"$(jget 'd["kind"], d["device"], d["name"] == d["options"]["uuid"] == d["undo"]["path"], d["key"]' <<<"$out")" = \
	"mdev $P True mdev:$P"

# 4. list
out=$("${VFIOCTL[@]}" -j list)
vm_check "list shows both mdevs, active, with parent and type" test \
	"$(jget 'sorted((e["name"], e["kind"], e["parent"], e["type"], e["state"]) for e in d)' <<<"$out")" = \
	"$(python3 -c 'import sys; print(sorted((u, "mdev", sys.argv[3], "'$SMALL'", "active") for u in sys.argv[1:3]))' $u1 "$u2" "$P")"

# 5. refusals that leave nothing behind
before=$(state)
err=$("$HELPER" run create "$P" '{"type":"small"}' 2>&1 >/dev/null)
vm_note "$err"
vm_check "an instance too many: ENOSPC naming the type and its users" \
	grep -q "errno ENOSPC: .*no instance of mdev type $SMALL is available (available_instances is 0; in use by .*$u1" <<<"$err"
vm_check "an instance too many: nothing changed" test "$(state)" = "$before"

echo 1 >/sys/module/$MOD/parameters/overcommit
err=$("$HELPER" run create "$P" '{"type":"small"}' 2>&1 >/dev/null)
echo 0 >/sys/module/$MOD/parameters/overcommit
vm_note "$err"
vm_check "past available_instances: the kernel's refusal is ENOSPC too" \
	grep -q "errno ENOSPC: .*the kernel refused one more" <<<"$err"
vm_check "past available_instances: nothing changed" test "$(state)" = "$before"

err=$("${VFIOCTL[@]}" create "$P" type nosuch 2>&1)
vm_note "$err"
vm_check "unknown type: refused, listing the parent's types" \
	grep -q "has no mdev type \"nosuch\"; its types: $LARGE, $SMALL" <<<"$err"
vm_check "unknown type: nothing changed" test "$(state)" = "$before"

err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","uuid":"'$u1'"}' 2>&1 >/dev/null)
vm_note "$err"
vm_check "UUID in use (other type): EEXIST naming the existing mdev" \
	grep -q "errno EEXIST: mdev $u1 exists already: $P/$u1, of type $SMALL on $P" <<<"$err"
vm_check "UUID in use: nothing changed" test "$(state)" = "$before"
out=$("${VFIOCTL[@]}" -j create "$P" type $SMALL uuid $U1)
vm_check "same UUID, same type: already as asked, no change" \
	test "$(jget 'd["name"], d["changed"]' <<<"$out")" = "$u1 False"

for bad in 1234 83b8f4f2-509f-382f-3c1e-e6bfe0fa100g 83b8f4f2509f382f3c1ee6bfe0fa1003 \
	"{83b8f4f2-509f-382f-3c1e-e6bfe0fa1003}"; do
	err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","uuid":"'"$bad"'"}' 2>&1 >/dev/null)
	vm_check "malformed UUID $bad: EINVAL, said so" \
		grep -q "errno EINVAL: uuid \"$bad\" is not a UUID (8-4-4-4-12" <<<"$err"
done
vm_check "malformed UUIDs: nothing changed" test "$(state)" = "$before"

NVME=$(vm_pci_find 1b36 0010 plain)
err=$("$HELPER" run create "$NVME" '{"type":"x"}' 2>&1 >/dev/null)
vm_note "$err"
vm_check "a device without mdev_supported_types: ENODEV, not an mdev parent" \
	grep -q "errno ENODEV: /sys/devices/.*/$NVME is not an mdev parent: it has no mdev_supported_types" <<<"$err"
err=$("${VFIOCTL[@]}" create nosuchparent type x 2>&1)
vm_check "an unknown parent name: no such mdev parent" \
	grep -q "nosuchparent: no such mdev parent" <<<"$err"

# 6. attributes refused: the mdev is removed again
err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","uuid":"'$U3'","attrs":{"knob":"5","vendor/label":"far-too-long-for-a-label"}}' 2>&1 >/dev/null)
vm_note "$err"
vm_check "attribute refused by the driver: EINVAL naming it" \
	grep -q "errno EINVAL: $P: mdev $U3 refused vendor/label=\"far-too-long-for-a-label\"" <<<"$err"
vm_check "attribute refused: the mdev was made, then removed again (steps)" \
	grep -q "step mdev-create $U3 attrs" <<<"$err"
vm_check "attribute refused: nothing left" test "$(state)" = "$before"
err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","uuid":"'$U3'","attrs":{"nosuch":"1"}}' 2>&1 >/dev/null)
vm_check "attribute the mdev lacks: refused, nothing left" bash -c \
	'grep -q "mdev '$U3' has no attribute nosuch" <<<"$0" && test "$1" = "$2"' "$err" "$(state)" "$before"
err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","uuid":"'$U3'","attrs":{"driver/unbind":"'$U3'"}}' 2>&1 >/dev/null)
vm_note "$err"
vm_check "attribute through a link (driver/unbind): refused by its name, nothing left" bash -c \
	'grep -q "\"driver/unbind\" is not an mdev attribute name" <<<"$0" && ! grep -q "step mdev-create" <<<"$0" &&
	 test "$1" = "$2"' "$err" "$(state)" "$before"
err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","uuid":"'$U3'","attrs":{"fixture_parent/mdev_supported_types/'$SMALL'/name":"x"}}' 2>&1 >/dev/null)
vm_note "$err"
vm_check "attribute behind another link (fixture_parent/...): not written, removed again" bash -c \
	'grep -q "behind a link; not written" <<<"$0" && test "$1" = "$2"' "$err" "$(state)" "$before"
err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","attrs":{"remove":"1"}}' 2>&1 >/dev/null)
vm_check "attribute remove: refused before anything" bash -c \
	'grep -q "errno EINVAL: .*\"remove\" is not an mdev attribute name" <<<"$0" && test "$1" = "$2"' \
	"$err" "$(state)" "$before"
# Files that act when written are refused at any depth, before the mdev is made.
for a in vfio-dev/vfio0/uevent vfio-dev/vfio0/power/control vendor/unbind driver_override; do
	err=$("$HELPER" run create "$P" '{"type":"'$LARGE'","uuid":"'$U3'","attrs":[{"knob":"1"},{"'$a'":"remove"}]}' 2>&1 >/dev/null)
	vm_check "attribute $a: refused before anything" bash -c \
		'grep -q "errno EINVAL: .*\"$3\" is not an mdev attribute name" <<<"$0" &&
		 ! grep -q "step mdev-create" <<<"$0" && test "$1" = "$2"' "$err" "$(state)" "$before" "$a"
done

# 7. a step that fails: what was done is undone
for step in create attrs verify; do
	err=$(MDEV_HELPER_AT=$step MDEV_HELPER_DO=fail "$HELPER" run create "$P" \
		'{"type":"'$LARGE'","uuid":"'$U3'","attrs":{"knob":"1"}}' 2>&1 >/dev/null)
	vm_check "step $step fails: EINTR, nothing left" bash -c \
		'grep -q "errno EINTR: mdev-create '$U3' stopped before step '$step'" <<<"$0" && test "$1" = "$2"' \
		"$err" "$(state)" "$before"
done

# 8. destroy: by UUID, by /sys/devices path; again: ENOENT
t0=$(now_ns)
out=$("${VFIOCTL[@]}" -j destroy $U1)
t1=$(now_ns)
echo "destroy-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
vm_check "destroy by UUID (any case): gone, reply names it" bash -c \
	'test "$0" = "'"mdev $u1 $P $SMALL"'" && ! test -e '"$BUS/$u1" \
	"$(jget 'd["kind"], d["name"], d["parent"], d["type"]' <<<"$out")"
"${VFIOCTL[@]}" destroy "$P/$u2" >/dev/null
vm_check "destroy by /sys/devices path: gone" test ! -e "$BUS/$u2"
vm_check "destroy: both small instances free again" test "$(avail $SMALL)" = 2
err=$("$HELPER" run destroy $u1 2>&1 >/dev/null)
vm_check "destroy again: ENOENT, no such mdev" \
	grep -q "errno ENOENT: $u1: no such mdev" <<<"$err"
err=$("$HELPER" run destroy /sys/bus/mdev/devices/$u1 2>&1 >/dev/null)
vm_check "destroy /sys/bus/mdev/devices/UUID of none: ENOENT" grep -q "errno ENOENT: .*no such mdev" <<<"$err"
vm_check "list: no mdev left" bash -c '! "$0" --direct -j list | grep -q "\"kind\":\"mdev\""' "$BUILD/cli/vfioctl"

# 9. the parent goes away in the middle of a create
before=$(state)
err=$(MDEV_HELPER_AT=attrs MDEV_HELPER_DO="rmmod $MOD" "$HELPER" run create "$P" \
	'{"type":"'$LARGE'","uuid":"'$U3'","attrs":{"knob":"1"}}' 2>&1 >/dev/null)
vm_note "$err"
vm_check "parent gone mid-create: ENODEV saying so" \
	grep -q "errno ENODEV: $P: mdev $U3 went away while being set up" <<<"$err"
vm_check "parent gone mid-create: no mdev, module gone" bash -c \
	'test -z "$(ls '$BUS')" && ! grep -q "^'$MOD' " /proc/modules'
vm_check "fixture parent loads again" modprobe $MOD

# 10. the parent's module unloaded with an mdev present
"${VFIOCTL[@]}" create "$P" type $SMALL uuid $U4 >/dev/null
vm_check "an mdev present before the unload" test -e "$BUS/$U4"
vm_check "rmmod of the parent with an mdev present succeeds" rmmod $MOD
vm_check "the mdev went with its parent" test ! -e "$BUS/$U4"
vm_check "list no longer shows it" bash -c '! "$0" --direct -j list | grep -q '$U4 "$BUILD/cli/vfioctl"
err=$("$HELPER" run destroy $U4 2>&1 >/dev/null)
vm_check "destroy of it: ENOENT" grep -q "errno ENOENT" <<<"$err"
vm_check "module reloaded" modprobe $MOD
vm_check "types back in full after the reload" \
	test "$(avail $SMALL) $(avail $LARGE)" = "2 1"

# 11. mdevctl's definitions
M=/tmp/mdevctl.d
mkdir -p $M/$MOD $M/scripts.d/callouts $M/0000:00:02.0
cat >$M/$MOD/$U4 <<EOF
{
  "mdev_type": "$SMALL",
  "start": "auto",
  "attrs": [ { "knob": "7" }, { "assign_adapter": "3" }, { "vendor/label": "from-mdevctl" },
             { "assign_adapter": "4" } ]
}
EOF
echo '{"mdev_type": "'$LARGE'", "start": "manual"}' >$M/$MOD/${U3^^}
echo '{"mdev_type": "i915-GVTg_V5_4", "start": "auto", "attrs": []}' \
	>$M/0000:00:02.0/$u1
echo 'not json' >$M/$MOD/11111111-2222-3333-4444-555555555555
echo '{"mdev_type": "x", "start": "sometimes"}' >$M/$MOD/22222222-2222-3333-4444-555555555555
echo '{"mdev_type": "x", "start": "auto", "attrs": [{"a": "1", "b": "2"}]}' \
	>$M/$MOD/33333333-2222-3333-4444-555555555555
echo '{}' >$M/$MOD/notes.txt
echo 'root:$y$j9T$secret:19000:0:99999:7:::' >/tmp/mdev-secret
ln -s /tmp/mdev-secret $M/$MOD/44444444-2222-3333-4444-555555555555
echo '#!/bin/sh' >$M/scripts.d/callouts/x.sh
out=$("$HELPER" mdevctl $M)
vm_note "mdevctl: $out"
vm_check "mdevctl: every file is an entry, callouts are not" \
	test "$(jget 'len(d)' <<<"$out")" = 8
vm_check "mdevctl: a definition with attributes, in order" test \
	"$(jget '[(e["parent"], e["parent_path"], e["type"], e["start"], [list(a.items())[0] for a in e["attrs"]], e["source"]) for e in d if e.get("uuid") == "'$U4'"]' <<<"$out")" = \
	"[('$MOD', '/sys/class/mdev_bus/$MOD', '$SMALL', 'auto', [('knob', '7'), ('assign_adapter', '3'), ('vendor/label', 'from-mdevctl'), ('assign_adapter', '4')], '$M/$MOD/$U4')]"
vm_check "mdevctl: an upper-case file name is read, its UUID lower-cased; no attrs is []" test \
	"$(jget '[(e["type"], e["start"], e["attrs"]) for e in d if e.get("uuid") == "'$U3'"]' <<<"$out")" = \
	"[('$LARGE', 'manual', [])]"
vm_check "mdevctl: a UUID-named link is not followed, nothing of its target quoted" bash -c \
	'grep -q "a symbolic link; not followed" <<<"$0" && ! grep -q j9T <<<"$0"' "$out"
vm_check "mdevctl: a PCI parent" test \
	"$(jget '[(e["parent"], e["type"]) for e in d if e.get("uuid") == "'$u1'"]' <<<"$out")" = \
	"[('0000:00:02.0', 'i915-GVTg_V5_4')]"
vm_check "mdevctl: unreadable entries carry an error naming the problem" test \
	"$(jget 'sorted((e["source"].rsplit("/", 1)[1], e["error"].split(":")[0].split(" (")[0]) for e in d if "error" in e)' <<<"$out")" = \
	"[('11111111-2222-3333-4444-555555555555', 'not JSON'), ('22222222-2222-3333-4444-555555555555', '\"start\" must be \"auto\" or \"manual\"'), ('33333333-2222-3333-4444-555555555555', 'attrs[0] is not an object of one {\"name\"'), ('44444444-2222-3333-4444-555555555555', 'a symbolic link; not followed'), ('notes.txt', 'file name \"notes.txt\" is not a UUID')]"
vm_check "mdevctl: VFIOD_MDEVCTL_DIR is the default directory" \
	test "$(VFIOD_MDEVCTL_DIR=$M "$HELPER" mdevctl)" = "$out"
vm_check "mdevctl: no directory, no definitions" test "$("$HELPER" mdevctl /nonexistent)" = "[]"
# An import is a create with what the entry says.
args=$(jget '[" ".join(["create", e["parent_path"], "type", e["type"], "uuid", e["uuid"]] + sum((["attr", k + "=" + v] for a in e["attrs"] for k, v in a.items()), [])) for e in d if e.get("uuid") == "'$U4'"][0]' <<<"$out")
# shellcheck disable=SC2086 # words on purpose
"${VFIOCTL[@]}" $args >/dev/null
vm_check "mdevctl: its definition created as it says" bash -c \
	'test "$(cat '"$BUS/$U4/knob"') $(cat '"$BUS/$U4/vendor/label"') $(cat '"$BUS/$U4/assign_adapter"')" = "7 from-mdevctl 3,4"'
vm_check "mdevctl: and destroyed" bash -c '"$0" --direct destroy '$U4' >/dev/null && test ! -e '"$BUS/$U4" \
	"$BUILD/cli/vfioctl"

# 12. Through vfiod: mdevctl's definitions imported and started, create over the bus with
# a device object of kind mdev, define/start/stop/undefine, persistence across the
# parent module going away and vfiod restarting.
PB=$HERE/../dbus/vfiod-private-bus.sh
DB=/run/vfiod-mdev-bus
M2=/tmp/mdevctl-import.d
mkdir -p $M2/$MOD
printf '{"mdev_type": "%s", "start": "auto", "attrs": [{"knob": "9"}, {"assign_adapter": "1"}, {"assign_adapter": "2"}]}\n' \
	$SMALL >$M2/$MOD/$U4
touch -d '-1 hour' $M2/$MOD/$U4
printf '{"mdev_type": "%s", "start": "manual"}\n' $LARGE >$M2/$MOD/$U3
vfiod_up() { "$PB" start $DB "$BUILD" VFIOD_MDEVCTL_DIR=$M2 >/dev/null; }
V=("$BUILD/cli/vfioctl")
vm_check "vfiod starts" vfiod_up
export VFIOD_BUS_ADDRESS=$(cat $DB/address)
wait_for() { # what command...
	local what=$1 i
	shift
	for i in $(seq 100); do "$@" && return 0; sleep 0.1; done
	echo "timed out waiting for $what" >&2
	return 1
}
vm_check "vfiod: mdevctl's auto definition imported and started" \
	wait_for "$U4 created" test -e "$BUS/$U4"
attrs_are() { test "$(cat "$BUS/$U4/knob") $(cat "$BUS/$U4/assign_adapter")" = "$1"; }
vm_check "vfiod: with its attributes, a repeated one each time" \
	wait_for "$U4's attributes" attrs_are "9 1,2"
vm_check "vfiod: the manual one imported, not started" test ! -e "$BUS/$U3"
vm_check "vfiod: says which it imported" grep -q "imported mdevctl's definition of $U4" $DB/vfiod.log
out=$("${V[@]}" -j list)
vm_check "vfiod: list shows the active one defined and the manual one apart" test \
	"$(jget 'sorted((e["name"], e["kind"], e["state"], e["defined"]) for e in d if e.get("kind") == "mdev")' <<<"$out")" = \
	"[('$U4', 'mdev', 'active', True), ('$U3', 'mdev', 'defined', True)]"
out=$("${V[@]}" -j create "$P" type $SMALL persistent)
u5=$(jget 'd["name"]' <<<"$out")
vm_check "vfiod: create over the bus, UUID generated, persistent" test -e "$BUS/$u5"
obj=$(busctl --address="$VFIOD_BUS_ADDRESS" call org.vfiod1 /org/vfiod1 org.freedesktop.DBus.ObjectManager GetManagedObjects | grep -o "/org/vfiod1/device/[A-Za-z0-9_]*" | sort -u | tr '\n' ' ')
vm_note "objects: $obj"
vm_check "vfiod: the mdev has a device object of kind mdev" sh -c '
	for o in $0; do
		busctl --address="$VFIOD_BUS_ADDRESS" get-property org.vfiod1 "$o" org.vfiod1.Device Name Kind | tr "\n" " " | grep -q "\"$1\" s \"mdev\"" && exit 0
	done; exit 1' "$obj" "$u5"
vm_check "vfiod: its org.vfiod1.Mdev interface names parent and type" sh -c '
	for o in $0; do
		busctl --address="$VFIOD_BUS_ADDRESS" get-property org.vfiod1 "$o" org.vfiod1.Mdev Parent Type 2>/dev/null |
			tr "\n" " " | grep -q "s \"$1\" s \"$2\"" && exit 0
	done; exit 1' "$obj" "$P" "$SMALL"
vm_check "vfiod: start the manual definition" "${V[@]}" start $U3
vm_check "vfiod: started" test -e "$BUS/$U3"
vm_check "vfiod: stop it" "${V[@]}" stop $U3
vm_check "vfiod: stopped" test ! -e "$BUS/$U3"
vm_check "vfiod: still defined" test "$("${V[@]}" -j list | jget '[e["state"] for e in d if e["name"] == "'$U3'"]')" = "['defined']"
vm_check "vfiod: define refuses a name defined already" sh -c \
	'"$0" define "$1" type "$2" uuid "$3" 2>&1 | grep -q "defined already"' "${V[0]}" "$P" $LARGE $U3
vm_check "vfiod: modify a definition" "${V[@]}" modify $U3 attr knob=5
vm_check "vfiod: undefine it" "${V[@]}" undefine $U3
# The parent goes away with vfiod stopped, comes back; vfiod starts: the persistent mdevs are back.
"$PB" stop $DB
vm_check "parent module unloaded with two mdevs present" rmmod $MOD
vm_check "parent back" modprobe $MOD
# Meanwhile edited with mdevctl: an attribute added.  The undefined one edited too.
printf '{"mdev_type": "%s", "start": "auto", "attrs": [{"knob": "10"}, {"assign_adapter": "1"}, {"assign_adapter": "2"}, {"assign_adapter": "7"}]}\n' \
	$SMALL >$M2/$MOD/$U4
printf '{"mdev_type": "%s", "start": "auto"}\n' $LARGE >$M2/$MOD/$U3
vm_check "vfiod starts again" vfiod_up
vm_check "vfiod: the persistent mdevs made again" \
	wait_for "persistent mdevs" sh -c 'test -e "$0" && test -e "$1"' "$BUS/$U4" "$BUS/$u5"
vm_check "vfiod: nothing imported twice, not even the undefined one" \
	test "$(grep -c "imported mdevctl's definition" $DB/vfiod.log)" = 2
vm_check "vfiod: mdevctl's edit followed, and said so" \
	grep -q "$M2/$MOD/$U4: changed with mdevctl since vfiod's copy; definition of $U4 updated" $DB/vfiod.log
vm_check "vfiod: made again as edited" wait_for "$U4's attributes" attrs_are "10 1,2,7"
vm_check "vfiod: the undefined one stays undefined" test ! -e "$BUS/$U3"
vm_check "vfiod: destroy the created one (its definition goes)" "${V[@]}" destroy $u5
vm_check "vfiod: stop and undefine the imported one" sh -c '"$0" stop "$1" && "$0" undefine "$1"' "${V[0]}" $U4
vm_check "vfiod: nothing left, active or defined" test "$("${V[@]}" -j list)" = "[]"
"$PB" down $DB
unset VFIOD_BUS_ADDRESS

# Figures: vfioctl --direct against the bare sysfs writes, side by side (A B A B ...).
for round in 1 2 3; do
	t0=$(now_ns)
	echo $U3 >"$T/$LARGE/create"
	t1=$(now_ns)
	echo 1 >"$BUS/$U3/remove"
	t2=$(now_ns)
	"${VFIOCTL[@]}" create "$P" type $LARGE uuid $U3 >/dev/null
	t3=$(now_ns)
	"${VFIOCTL[@]}" destroy $U3 >/dev/null
	t4=$(now_ns)
	echo "round $round: sysfs create $(((t1 - t0) / 1000)) us, remove $(((t2 - t1) / 1000)) us;" \
		"vfioctl --direct create $(((t3 - t2) / 1000000)) ms, destroy $(((t4 - t3) / 1000000)) ms" \
		>>"$RESULTS/figures"
done
t0=$(now_ns)
for _ in 1 2 3 4 5; do "${VFIOCTL[@]}" -j list >/dev/null; done
t1=$(now_ns)
echo "vfioctl --direct version (process start): $( t=$(now_ns); "${VFIOCTL[@]}" --version >/dev/null; echo $((($(now_ns) - t) / 1000000)) ) ms;" \
	"list $(((t1 - t0) / 5000000)) ms" >>"$RESULTS/figures"
vm_check "after the figures: no mdev left" test -z "$(mdevs)"

vm_check "the fixture unloads at the end" rmmod $MOD
sed 's/^/# /' "$RESULTS/figures"
vm_no_kernel_warnings
vm_summary
