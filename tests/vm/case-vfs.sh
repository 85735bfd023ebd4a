#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: an SR-IOV PF's VFs made, handed to vfio and given back on the real kernel.
#
#   case-vfs.sh BUILD_DIR
#
# Runs in the guest (tests/vm/run.sh) on the default devices: the SR-IOV nvme PF
# (sriov_max_vfs=2) on nvme. QEMU 7.2's nvme VFs stay offline for the nvme driver,
# which is why `assign` turns sriov_drivers_autoprobe off while the VFs are made.
set -uo pipefail

BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
VFIOCTL="$BUILD/cli/vfioctl"
VFIO_OPEN="$BUILD/tests/vfio-open"
LIB="$BUILD/lib/libvfiod.so.0"
export RUNTIME_DIRECTORY=/run/vfiod
RESULTS=${RESULTS:-/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

V=("$VFIOCTL" --direct)
drv() { vm_pci_driver "$1"; }
group() { vm_pci_group "$1"; }
attr() { cat "/sys/bus/pci/devices/$PF/$1"; }
virtfn() { basename "$(readlink "/sys/bus/pci/devices/$PF/virtfn$1")"; }
numvfs_is() { test "$(attr sriov_numvfs)" = "$1"; }
rec_exists() { test -e "$RUNTIME_DIRECTORY/vfs/$PF.json"; }
# An ASan build's library in python: the sanitizer runtimes must come first.
PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)

# vfiod_create()/vfiod_destroy() from a program that fails one step on purpose,
# through the step callback of vfiod.h: FAIL is "operation device step".
lib_call() { # create|destroy PATH OPTIONS_JSON FAIL
	ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=$PRELOAD python3 - "$LIB" "$@" <<'EOF'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
verb, path, options, fail = sys.argv[2:6]
STEP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_char_p)
seen = []
def step(_, op, dev, name):
    s = "%s %s %s" % (op.decode(), dev.decode(), name.decode())
    seen.append(s)
    return -5 if s == fail else 0
cb = STEP(step)
ctx = ctypes.c_void_p()
assert lib.vfiod_ctx_new(ctypes.byref(ctx)) == 0
lib.vfiod_ctx_set_step_fn.argtypes = [ctypes.c_void_p, STEP, ctypes.c_void_p]
lib.vfiod_ctx_set_step_fn(ctx, cb, None)
lib.vfiod_ctx_get_error.restype = ctypes.c_char_p
fn = getattr(lib, "vfiod_" + verb)
fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
out = ctypes.c_char_p()
r = fn(ctx, path.encode(), options.encode(), ctypes.byref(out))
print("steps:", "; ".join(seen))
print("r=%d error=%s" % (r, (lib.vfiod_ctx_get_error(ctx) or b"").decode()))
sys.exit(0 if r >= 0 else 1)
EOF
}

modprobe nvme
PF=$(vm_pci_find 1b36 0010 pf) || { echo "no SR-IOV nvme PF"; exit 1; }
NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no plain nvme"; exit 1; }
ctrl_state() { cat /sys/bus/pci/devices/"$PF"/nvme/nvme*/state; }
echo "# SR-IOV PF $PF ($(drv "$PF"), sriov_totalvfs $(attr sriov_totalvfs)), plain nvme $NVME"
vm_check "PF on nvme, no VFs, autoprobe on at start" \
	test "$(drv "$PF") $(attr sriov_numvfs) $(attr sriov_drivers_autoprobe)" = "nvme 0 1"
: >"$RESULTS/figures"

# 1. Bad input: more VFs than the PF has, not a PF, an unbound PF.
t0=$(now_ns)
out=$("${V[@]}" create "$PF" vfs 3 2>&1)
t1=$(now_ns)
echo "refusal-baseline-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
vm_note "$out"
vm_check "over sriov_totalvfs refused, naming both numbers" \
	grep -q "3 VFs asked, but this PF supports at most 2 (sriov_totalvfs)" <<<"$out"
vm_check "over sriov_totalvfs: nothing changed" \
	test "$(attr sriov_numvfs) $(attr sriov_drivers_autoprobe)" = "0 1"
vm_check "over sriov_totalvfs: no record" vm__not rec_exists
out=$("${V[@]}" create "$NVME" vfs 1 2>&1)
vm_check "a function without SR-IOV refused" grep -q "is not an SR-IOV PF" <<<"$out"
echo "$PF" >"/sys/bus/pci/devices/$PF/driver/unbind"
out=$("${V[@]}" create "$PF" vfs 2 2>&1)
vm_note "$out"
vm_check "an unbound PF refused" grep -q "no driver is bound to the PF" <<<"$out"
echo "$PF" >/sys/bus/pci/drivers_probe
vm_check "PF back on nvme" test "$(drv "$PF")" = nvme

# 2. Two VFs, each handed to its best vfio driver.
t0=$(now_ns)
out=$("${V[@]}" -j create "$PF" vfs 2 assign)
t1=$(now_ns)
echo "create-2-assign-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
vm_note "$out"
VF0=$(virtfn 0)
VF1=$(virtfn 1)
vm_check "two VFs made" numvfs_is 2
vm_check "reply: numvfs 2, previous 0, both VFs with their drivers" \
	test "$(jget 'd["kind"], d["numvfs"], d["previous_numvfs"], [(v["name"], v["driver"]) for v in d["vfs"]]' <<<"$out")" = \
	"vfs 2 0 [('$VF0', '$(drv "$VF0")'), ('$VF1', '$(drv "$VF1")')]"
for vf in "$VF0" "$VF1"; do
	want=$("${V[@]}" -j match "$vf" | jget 'd["selected"]["driver"]')
	vm_check "$vf on the driver vfioctl match selects ($want)" test "$(drv "$vf")" = "$want"
	vm_check "$vf usable through /dev/vfio/$(group "$vf")" "$VFIO_OPEN" "$(group "$vf")" "$vf"
done
vm_check "autoprobe off after assign" test "$(attr sriov_drivers_autoprobe)" = 0
vm_check "record kept: previous 0 and autoprobe on, both VFs" \
	test "$(jget 'd["previous_numvfs"], d["previous_autoprobe"], d["assigned"]' \
		<"$RUNTIME_DIRECTORY/vfs/$PF.json")" = "0 True ['$VF0', '$VF1']"
out=$("${V[@]}" -j list)
vm_check "list shows the PF with its VFs" \
	test "$(jget '[(e["name"], e["state"], len(e["vfs"])) for e in d if e["kind"] == "vfs"]' <<<"$out")" = \
	"[('$PF', 'active', 2)]"
before="$(drv "$VF0") $(drv "$VF1")"
vm_check "the same create again: exit 0" "${V[@]}" -j create "$PF" vfs 2 assign
vm_check "... nothing changed" test "$(attr sriov_numvfs) $(drv "$VF0") $(drv "$VF1")" = "2 $before"
out=$("${V[@]}" create "$VF0" vfs 1 2>&1)
vm_check "a VF as the PF refused" grep -q "is a VF (of the PF $PF)" <<<"$out"
out=$("${V[@]}" create "$PF" vfs 1 2>&1)
vm_note "$out"
vm_check "create cannot take VFs away from vfio" grep -q "would remove VFs on vfio: $VF0" <<<"$out"
vm_check "... and changed nothing" test "$(attr sriov_numvfs)" = 2

# 3. A VF held open, as by a VM: destroy refuses; forced, the removal outlasts the deadline.
rm -f /tmp/held
hold_start "$(group "$VF1")" "$VF1" /tmp/held >/dev/null 2>&1
vm_check "a process ($HOLDER) holds $VF1's vfio device open" test -s /tmp/held
out=$("${V[@]}" destroy "$PF" vfs 2>&1)
vm_note "$out"
vm_check "destroy refused: VF in use, naming the process" \
	grep -q "VFs in use by vfio: $VF1 ($(drv "$VF1"), open by process $HOLDER)" <<<"$out"
vm_check "... and nothing changed" test "$(attr sriov_numvfs) $(drv "$VF0")" = "2 $(drv "$VF0")"
t0=$(now_ns)
out=$(VFIOD_SRIOV_TIMEOUT=3 timeout 60 "${V[@]}" destroy "$PF" vfs force 2>&1)
t1=$(now_ns)
vm_note "$out"
echo "forced-destroy-timeout-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
vm_check "forced destroy: the kernel's write outlasts 3 s, said so" \
	grep -q "the kernel has not returned from writing 0 to sriov_numvfs after 3.0 s" <<<"$out"
vm_check "... and the call returned (in $(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 8000
vm_check "... the VF not held open was released first" test ! -e "/sys/bus/pci/devices/$VF0/driver"
t0=$(now_ns)
out=$(timeout 30 "${V[@]}" destroy "$PF" vfs force 2>&1)
t1=$(now_ns)
vm_note "$out"
vm_check "a second destroy is refused at once while the write is pending" \
	grep -q "has not yet returned from writing 0 to sriov_numvfs" <<<"$out"
echo "pending-refusal-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
# (Not `list`: it reads the VFs' driver_override, which waits for the VF's device lock.)
vm_check "the record says pending" \
	test "$(jget 'd["pending"]["numvfs"]' <"$RUNTIME_DIRECTORY/vfs/$PF.json")" = 0
sleep 1
vm_check "$VF1 is still there while held open" test -e "/sys/bus/pci/devices/$VF1"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
for _ in $(seq 100); do
	[ -e "/sys/bus/pci/devices/$VF1" ] || break
	sleep 0.1
done
vm_check "the holder gone, the kernel finishes the removal" test ! -e "/sys/bus/pci/devices/$VF1"
# The write returns a moment after the VF is gone (the kernel waits after disabling VFs):
# until then destroy is refused as pending, as a user retrying would see.
for _ in $(seq 100); do
	out=$("${V[@]}" -j destroy "$PF" vfs 2>&1) && break
	grep -q "has not yet returned" <<<"$out" || break
	sleep 0.1
done
vm_check "destroy again, once the write has returned" grep -q '"kind":"vfs"' <<<"$out"
vm_check "destroy then finishes: 0 VFs, autoprobe back on" \
	test "$(attr sriov_numvfs) $(attr sriov_drivers_autoprobe)" = "0 1"
vm_check "... no record left" vm__not rec_exists
vm_check "... no PCI record of the VFs left" test -z "$(ls "$RUNTIME_DIRECTORY/assigned" 2>/dev/null)"
vm_check "PF still on nvme, its controller live" test "$(drv "$PF") $(ctrl_state)" = "nvme live"
out=$("${V[@]}" destroy "$PF" vfs 2>&1)
vm_check "destroy with nothing to give back says so" grep -q "nothing to give back" <<<"$out"

# 4. Assign, autoprobe back on afterwards, destroy: the whole round trip.
t0=$(now_ns)
"${V[@]}" -j create "$PF" vfs 2 assign autoprobe >/dev/null
t1=$(now_ns)
vm_check "assign autoprobe: VFs on vfio, autoprobe on again" \
	sh -c 'case "$1 $2 $3" in "vfio"*" vfio"*" 1") exit 0 ;; *) exit 1 ;; esac' _ \
	"$(drv "$VF0")" "$(drv "$VF1")" "$(attr sriov_drivers_autoprobe)"
"${V[@]}" -j destroy "$PF" vfs >"$RESULTS/destroy.json"
t2=$(now_ns)
echo "create-2-assign-autoprobe-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
echo "destroy-2-ms $(((t2 - t1) / 1000000))" >>"$RESULTS/figures"
vm_check "destroy: count back to 0, both VFs released" \
	test "$(jget 'd["numvfs"], sorted(d["released"])' <"$RESULTS/destroy.json")" = "0 ['$VF0', '$VF1']"
vm_check "PF controller still live" test "$(ctrl_state)" = live

# 4b. On a terminal: the progress line at the start and after each VF, wiped for the result.
out=$(vm_on_pty "$VFIOCTL" --direct --color=never create "$PF" vfs 2 assign)
want=$(printf '\r\033[K%s: 0 of 2 done\r\033[K%s: 1 of 2 done (%s)\r\033[K%s: 2 of 2 done (%s)\r\033[K%s: 2 VFs created' \
	"$PF" "$PF" "$VF0" "$PF" "$VF1" "$PF")
vm_check "on a terminal: the progress line, each VF, then the result" test "${out:0:${#want}}" = "$want"
out=$(vm_on_pty "$VFIOCTL" --direct --color=never destroy "$PF" vfs)
vm_check "on a terminal: destroy's progress, then the result" \
	grep -qF "$(printf '2 of 2 done (%s)\r\033[K%s: VF count set back to 0' "$VF1" "$PF")" <<<"$out"

# 5. From 1 to 2 VFs (through 0, which the kernel requires), autoprobe as it was (off).
echo 0 >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe"
"${V[@]}" -j create "$PF" vfs 1 >/dev/null
vm_check "one VF, left free" test "$(attr sriov_numvfs) $(drv "$VF0")" = "1 none"
t0=$(now_ns)
out=$("${V[@]}" -j create "$PF" vfs 2)
t1=$(now_ns)
echo "change-1-to-2-ms $(((t1 - t0) / 1000000))" >>"$RESULTS/figures"
vm_check "1 -> 2 VFs" numvfs_is 2
vm_check "the record keeps the first count (0)" \
	test "$(jget 'd["previous_numvfs"], d["numvfs"]' <<<"$out")" = "0 2"
# A VF put on vfio by someone else is in use: destroy needs force.
modprobe vfio-pci
vm_check "someone binds $VF1 to vfio-pci" vm_pci_bind "$VF1" vfio-pci
out=$("${V[@]}" destroy "$PF" vfs 2>&1)
vm_note "$out"
vm_check "destroy refused: VF on vfio without our record" \
	grep -q "VFs in use by vfio: $VF1 (vfio-pci, not assigned by vfiod)" <<<"$out"
vm_check "... nothing changed" test "$(attr sriov_numvfs) $(drv "$VF1")" = "2 vfio-pci"
vm_check "forced destroy" "${V[@]}" -j destroy "$PF" vfs force
vm_check "forced destroy: 0 VFs, autoprobe still off as it was" \
	test "$(attr sriov_numvfs) $(attr sriov_drivers_autoprobe)" = "0 0"
echo 1 >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe"

# 6. VFs made by hand: destroy without a record sets the count to 0 and says so.
echo 0 >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe"
echo 1 >"/sys/bus/pci/devices/$PF/sriov_numvfs"
out=$("${V[@]}" -j destroy "$PF" vfs)
vm_check "no record: count set to 0, said so" \
	test "$(jget 'd["numvfs"], d["restored"], "note" in d' <<<"$out")" = "0 False True"
echo 1 >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe"

# 7. A VF the host uses blocks `vfs N assign` of that VF only. QEMU's nvme VFs have no host
# driver of their own here (nvme fails on them, see tests/vm/README.md), so the host use is
# the one a DPDK-style user makes: VF1 on uio_pci_generic with its /dev/uioN held open.
modprobe uio_pci_generic
echo 0 >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe"
echo 2 >"/sys/bus/pci/devices/$PF/sriov_numvfs"
echo uio_pci_generic >"/sys/bus/pci/devices/$VF1/driver_override"
echo "$VF1" >/sys/bus/pci/drivers_probe
UIO=$(ls "/sys/bus/pci/devices/$VF1/uio" 2>/dev/null)
vm_check "$VF1 on uio_pci_generic, its node /dev/$UIO below it" \
	test "$(drv "$VF1")" = uio_pci_generic -a -n "$UIO" -a -c "/dev/$UIO"
sleep 120 <"/dev/$UIO" &
UH=$!
sleep 0.3
# What must not change across the refusal: count, autoprobe, drivers, overrides, records,
# journal, vfio modules.
vstate() {
	local d
	echo "$(attr sriov_numvfs) $(attr sriov_drivers_autoprobe)"
	for d in "$PF" "$VF0" "$VF1"; do
		echo "$d $(drv "$d") $(cat "/sys/bus/pci/devices/$d/driver_override")"
	done
	ls "$RUNTIME_DIRECTORY/vfs" "$RUNTIME_DIRECTORY/assigned" 2>/dev/null
	cat "$RUNTIME_DIRECTORY/journal"/* 2>/dev/null
	grep -c '^vfio_pci \|^vfio_fixture\|^vfio_select ' /proc/modules
}
before=$(vstate)
out=$("${V[@]}" create "$PF" vfs 2 assign 2>&1)
rc=$?
after=$(vstate)
vm_note "$out"
vm_check "VF in use: vfs 2 assign refused (exit 1)" test $rc = 1
vm_check "... naming the VF and its use" \
	grep -qF "$VF1: process $UH (sleep) has /dev/$UIO open" <<<"$out"
vm_check "... and that VF only" vm__not grep -q "$VF0" <<<"$out"
vm_check "... says how to go on" grep -q 'add `force`' <<<"$out"
vm_check "... nothing changed (count, autoprobe, drivers, overrides, records, journal, modules)" \
	test "$before" = "$after"
vm_check "the free VF alone is still taken" "${V[@]}" create "$VF0"
vm_check "... and given back" "${V[@]}" destroy "$VF0"
out=$("${V[@]}" -v -j create "$PF" vfs 2 assign force 2>"$RESULTS/err")
rc=$?
vm_note "$(grep forced "$RESULTS/err")"
vm_check "forced: vfs 2 assign takes both VFs" \
	sh -c 'test "$0" = 0 && readlink "$1/driver" | grep -q vfio && readlink "$2/driver" | grep -q vfio' \
	$rc "/sys/bus/pci/devices/$VF0" "/sys/bus/pci/devices/$VF1"
vm_check "... the use is logged with it (-v shows the log)" \
	grep -qF "$VF1: process $UH (sleep) has /dev/$UIO open" "$RESULTS/err"
vm_check "... the record keeps the count (2), autoprobe (off) and both VFs" \
	test "$(jget 'd["previous_numvfs"], d["previous_autoprobe"], d["assigned"]' \
		<"$RUNTIME_DIRECTORY/vfs/$PF.json")" = "2 False ['$VF0', '$VF1']"
vm_check "destroy gives them back" "${V[@]}" -j destroy "$PF" vfs
vm_check "... $VF1 on uio_pci_generic again, $VF0 free, 2 VFs, autoprobe off" \
	test "$(drv "$VF1") $(drv "$VF0") $(attr sriov_numvfs) $(attr sriov_drivers_autoprobe)" = \
	"uio_pci_generic none 2 0"
vm_check "... no record left" vm__not rec_exists
kill $UH
wait $UH 2>/dev/null
echo 0 >"/sys/bus/pci/devices/$PF/sriov_numvfs"
echo 1 >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe"
vm_check "PF still on nvme, its controller live" test "$(drv "$PF") $(ctrl_state)" = "nvme live"

# 8. Failures part way are undone: one at the second VF's probe, one before the count.
out=$(lib_call create "$PF" '{"vfs":2,"assign":true}' "assign $VF1 probe" 2>&1)
vm_note "$out"
vm_check "a failed assign of the second VF fails the create, naming it" \
	grep -q "assigning its VF $VF1 failed" <<<"$out"
vm_check "the first VF was assigned before" grep -q "assign $VF0 verify" <<<"$out"
vm_check "rolled back: 0 VFs, autoprobe on, no records" \
	sh -c 'test "$1 $2" = "0 1" && ! ls "$3"/vfs/*.json "$3"/assigned/*.json 2>/dev/null' _ \
	"$(attr sriov_numvfs)" "$(attr sriov_drivers_autoprobe)" "$RUNTIME_DIRECTORY"
out=$(lib_call create "$PF" '{"vfs":2,"assign":true}' "vfs-create $PF numvfs" 2>&1)
vm_check "stopped before the count: autoprobe back on, no record" \
	sh -c 'test "$1 $2" = "0 1" && ! test -e "$3"' _ "$(attr sriov_numvfs)" \
	"$(attr sriov_drivers_autoprobe)" "$RUNTIME_DIRECTORY/vfs/$PF.json"
# 9. The same round trip with the kernel module vfio_select deciding and binding each VF.
modprobe vfio_select
vm_check "vfio_select loaded" grep -q "^vfio_select " /proc/modules
vm_check "kernel path: create 2 assign" "${V[@]}" -j create "$PF" vfs 2 assign
for vf in "$VF0" "$VF1"; do
	want=$("${V[@]}" -j match "$vf" | jget 'd["selected"]["driver"], d["resolver"]')
	vm_check "kernel path: $vf on the driver the kernel selects ($want)" \
		test "$(drv "$vf") kernel" = "$want"
done
vm_check "kernel path: $VF1 usable" "$VFIO_OPEN" "$(group "$VF1")" "$VF1"
vm_check "kernel path: destroy" "${V[@]}" -j destroy "$PF" vfs
vm_check "kernel path: 0 VFs, autoprobe on, no record" \
	sh -c 'test "$1 $2" = "0 1" && ! test -e "$3"' _ "$(attr sriov_numvfs)" \
	"$(attr sriov_drivers_autoprobe)" "$RUNTIME_DIRECTORY/vfs/$PF.json"
rmmod vfio_select
vm_check "PF on nvme and live at the end" test "$(drv "$PF") $(ctrl_state)" = "nvme live"

sed 's/^/# /' "$RESULTS/figures"
vm_no_kernel_warnings
vm_summary
