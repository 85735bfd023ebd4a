#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# VM case: vfio_select's early-claim table (the parameter "claim", vfio_select(4)) on the
# real driver core.
#
#   case-claim.sh        (run.sh --qmp, the default devices and two more pcie-root-ports)
#
# Checks: every kind of bad entry refused whole (EINVAL, the table unchanged, the entry
# named in dmesg), canonical read-back; with nvme loaded and claim=1b36:0010, a nvme
# hot-added over QMP gets the placeholder override, no driver, no nvme controller and no
# bind uevent (a kernel-uevent capture started before the add), then binds to the fixture
# variant at its first probe once its override names it; another hot-add while the table
# is rewritten in a loop is claimed too; an address claim and a class claim applied once
# at set time to the present, unbound pci-testdev, bound devices left alone; an SR-IOV
# PF's VFs claimed by address as sriov_numvfs makes them; unload with a claimed device
# (overrides stay), reload with claim= on the command line, in modprobe.d, a bad one at
# load refused; the boot case: "softdep nvme pre: vfio_select" holds the nvme functions
# from nvme as it loads; a CLAIM message on the module's events group for each device held
# (a raw generic-netlink listener); no kernel warnings.

# shellcheck disable=SC2317,SC2016 # the helpers run through vm_check; sh -c takes $0
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

if [ "${VFIOD_VM:-}" != 1 ]; then
	echo "case-claim.sh runs inside the test VM: see the comment at its top" >&2
	exit 2
fi
RESULTS=${RESULTS:-/tmp}
QMP=("$HERE/qmp.py")
P=/sys/module/vfio_select/parameters/claim
PH=vfiod-claim
VDSUB=vfio-fixture-vdsub
SYS=/sys/bus/pci/devices
T0=$(date +%s)

vm_dmesg_mark
drv() { vm_pci_driver "$1"; }
override() { cat "$SYS/$1/driver_override"; }
held() { [ "$(override "$1")" = $PH ] && [ "$(drv "$1")" = none ]; }
free_of_override() { [ "$(override "$1")" = "(null)" ]; }
# bound_alone DRIVER DEV...: each DEV on DRIVER, without an override
bound_alone() {
	local want=$1 d
	shift
	for d in "$@"; do
		if [ "$(drv "$d")" != "$want" ] || ! free_of_override "$d"; then
			echo "$d: driver $(drv "$d"), driver_override $(override "$d")"
			return 1
		fi
	done
}
clear_override() { echo >"$SYS/$1/driver_override"; }
claim_is() { [ "$(cat $P)" = "$1" ]; }
set_claim() { printf '%s\n' "$1" >$P; }
# dmesg since line MARK (a number of lines)
since() { dmesg | tail -n +$(($1 + 1)); }
mark() { dmesg | wc -l; }
# claimed_line MARK DEV TEXT: dmesg since MARK has vfio_select's line for DEV, exactly
claimed_line() {
	since "$1" | grep -qF "] vfio_select: $2: claimed ($3), held from host drivers" || {
		since "$1" | grep vfio_select
		return 1
	}
}
no_claimed_line() { ! since "$1" | grep -qF "vfio_select: $2: claimed"; }
# no nvme controller was made for DEV since MARK
no_nvme_ctrl() { ! since "$1" | grep -qE "nvme nvme[0-9]+: pci function $2\$"; }

# bad_write VALUE SHOWN: the write fails with EINVAL, the table stays, dmesg names SHOWN.
bad_write() {
	local before out m
	before=$(cat $P)
	m=$(mark)
	if out=$( { printf '%s\n' "$1" >$P; } 2>&1); then
		echo "accepted: '$1' -> $(cat $P)"
		return 1
	fi
	grep -q 'Invalid argument' <<<"$out" || {
		echo "not EINVAL: $out"
		return 1
	}
	[ "$(cat $P)" = "$before" ] || {
		echo "table changed to: $(cat $P)"
		return 1
	}
	since "$m" | grep -qF "vfio_select: claim: $2" || {
		echo "no warning naming: $2"
		since "$m"
		return 1
	}
}

# A hot-added nvme: its address, once the kernel has it. qmp_add ID BUS
qmp_add() {
	"${QMP[@]}" device_add "{\"driver\":\"nvme\",\"id\":\"$1\",\"serial\":\"$1\",\"bus\":\"$2\"}" >/dev/null
}
nvme_list() { vm_pci_find 1b36 0010 2>/dev/null | sort; }
# new_nvme BEFORE: wait for a 1b36:0010 function not in BEFORE; print it
new_nvme() {
	local d end=$(($(date +%s) + 30))
	while [ "$(date +%s)" -lt "$end" ]; do
		for d in $(nvme_list); do
			grep -qxF "$d" <<<"$1" || {
				echo "$d"
				return 0
			}
		done
		sleep 0.1
	done
	return 1
}
# The kernel's uevents of the pci subsystem (no udevd needed), into FILE until stopped.
uevents_start() {
	: >"$1" # a stale file from an earlier run must not look ready
	stdbuf -oL udevadm monitor --kernel --subsystem-match=pci >"$1" 2>&1 &
	UEVENTS=$!
	wait_for 10 grep -q "KERNEL - the kernel uevent" "$1" && sleep 0.5
}
uevents_stop() {
	kill -INT "$UEVENTS" 2>/dev/null
	wait "$UEVENTS" 2>/dev/null
}
# uevents FILE ACTION DEV: how many such events the capture holds
uevents() { grep -cE "^KERNEL\[[0-9.]+\] +$2 +/devices/.*/$3 \(pci\)\$" "$1"; }

# The module's "events" group, raw generic netlink (libvfiod's monitor keeps only BIND and
# UNBIND): one line "cmd=N dev=NAME group=G" a message, into FILE, until stopped; its pid
# in $LISTENER.
genl_listen() {
	: >"$1"
	python3 - "$1" <<'PY' >"$1.err" 2>&1 &
import os, select, signal, socket, struct, sys
out = open(sys.argv[1], "w", buffering=1)
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)  # NETLINK_GENERIC
s.bind((0, 0))
def attrs(b):
    while len(b) >= 4:
        n, t = struct.unpack_from("=HH", b)
        yield t & 0x7fff, b[4:n]
        b = b[(n + 3) & ~3:]
name = b"vfio_select\0"
a = struct.pack("=HH", 4 + len(name), 2) + name + b"\0" * (-len(name) % 4)
s.send(struct.pack("=LHHLL", 20 + len(a), 0x10, 1, 1, 0) + struct.pack("=BBH", 3, 1, 0) + a)
fam = grp = None
for t, v in attrs(s.recv(65536)[20:]):
    if t == 1:
        fam = struct.unpack("=H", v[:2])[0]
    if t == 7:
        for _, g in attrs(v):
            d = dict(attrs(g))
            if d.get(1, b"").rstrip(b"\0") == b"events":
                grp = struct.unpack("=L", d[2][:4])[0]
s.setsockopt(270, 1, grp)  # SOL_NETLINK, NETLINK_ADD_MEMBERSHIP
out.write("ready family=%d group=%d\n" % (fam, grp))
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
while True:
    b = s.recv(65536)
    while len(b) >= 20:
        n, typ = struct.unpack_from("=LH", b)
        if typ == fam:
            d = dict(attrs(b[20:n]))
            dev = d.get(2, b"").rstrip(b"\0").decode()
            g = struct.unpack("=L", d[6][:4])[0] if 6 in d else -1
            out.write("cmd=%d dev=%s group=%d\n" % (b[16], dev, g))
        b = b[(n + 3) & ~3:]
PY
	LISTENER=$!
	wait_for 10 grep -q "^ready" "$1"
}
genl_stop() {
	kill -INT "$LISTENER" 2>/dev/null
	wait "$LISTENER" 2>/dev/null
}
# claim_events FILE DEV GROUP: how many CLAIM messages (command 5) the listener got for DEV
claim_events() { grep -cxF "cmd=5 dev=$2 group=$3" "$1"; }

modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain | head -n1)
PF=$(vm_pci_find 1b36 0010 pf | head -n1)
TESTDEV=$(vm_pci_find 1b36 0005 | head -n1)
vm_note "plain nvme $NVME ($(drv "$NVME")), SR-IOV PF $PF ($(drv "$PF")), pci-testdev $TESTDEV ($(drv "$TESTDEV"))"
vm_check "the default devices: nvme and the PF on nvme, pci-testdev unbound" \
	test "$(drv "$NVME") $(drv "$PF") $(drv "$TESTDEV")" = "nvme nvme none"

# 1. The parameter: load, syntax, refusals, canonical read-back.
vm_check "vfio_select loads" modprobe vfio_select
vm_check "claim is there, 0644" test "$(stat -c %a $P)" = 644
vm_check "claim reads empty at first" claim_is ""
# Entries that match nothing here, in every form, with blanks and upper case.
GOOD=" ABCD:EF01 ,class=FF12ab/ffff00, abcd:ef01:1234:5678,class=123456 ,00AA:bb:1f.7,10000:00:00.0 "
CANON="abcd:ef01,class=ff1200/ffff00,abcd:ef01:1234:5678,class=123456,00aa:bb:1f.7,10000:00:00.0"
vm_check "a table of every form is taken" set_claim "$GOOD"
vm_check "read back canonical: $CANON" claim_is "$CANON"
vm_check "class with the full mask reads back without it" sh -c \
	'printf "class=123456/FFFFFF\n" >"$0" && test "$(cat "$0")" = class=123456' $P
set_claim "$GOOD"
for bad in \
	"1b36" "1b36:10" "1b36:00100" "1b36:001g" "1b36:0010:1af4" "1b36:0010:1af4:110" \
	"1b36:0010:1af4:1100:0000" "1b36:0010:1af4:1100x" "-1b36:0010" "0x1b36:0x0010" \
	"class=" "class=01080" "class=0108020" "class=010802/" "class=010802/ff" \
	"class=01080g" "CLASS=010802" "class =010802" \
	"000:01:00.0" "0000:1:00.0" "0000:01:0.0" "0000:01:20.0" "0000:01:00.8" \
	"0000:01:00" "0000:01:00.00" "0000:01.00.0" "0000:01:00:0" "100000000:00:00.0" \
	"1b36 0010" "1b36:0010;8086:10d3"; do
	vm_check "bad entry refused whole: '$bad'" bad_write "abcd:ef01, $bad" "bad entry \"$bad\""
done
vm_check "empty entries skipped (as vfiod.conf's Claim= does)" sh -c \
	'printf "abcd:ef01,, abcd:ef02 ,\n" >"$0" && test "$(cat "$0")" = abcd:ef01,abcd:ef02' $P
vm_check "only commas and blanks: an empty table" sh -c 'echo " , ," >"$0" && test -z "$(cat "$0")"' $P
set_claim "$GOOD"
vm_check "a bad entry after good ones names it" bad_write "abcd:ef01,1b36:0010,zz:zz" 'bad entry "zz:zz"'
many=$(for i in $(seq 65); do printf 'abcd:%04x,' "$i"; done)
vm_check "65 entries refused" bad_write "${many%,}" "more than 64 entries"
many=$(for i in $(seq 64); do printf 'abcd:%04x,' "$i"; done)
vm_check "64 entries taken" set_claim "${many%,}"
vm_check "64 entries read back" claim_is "${many%,}"
vm_check "an empty write clears the table" sh -c 'echo >"$0" && test -z "$(cat "$0")"' $P
vm_check "blanks only clear it too" sh -c 'echo abcd:ef01 >"$0" && echo "  " >"$0" && test -z "$(cat "$0")"' $P
vm_check "an unprivileged user cannot write it" sh -c \
	'! setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo abcd:ef01 >$0" 2>/dev/null && test -z "$(cat "$0")"' $P
vm_check "nothing was held by these tables" sh -c '! dmesg | grep -q "vfio_select: .*claimed"'

# 2. Hotplug, nvme loaded, claim=1b36:0010: held before nvme ever probes it.
m=$(mark)
vm_check "claim=1b36:0010 set" set_claim 1b36:0010
vm_check "bound devices left alone at set time: $NVME and $PF on nvme, no override" \
	bound_alone nvme "$NVME" "$PF"
vm_check "no claimed line for the bound ones" sh -c "! dmesg | tail -n +$((m + 1)) | grep -q 'vfio_select: .*claimed'"
before=$(nvme_list)
uevents_start "$RESULTS/uevents-hotplug.txt"
vm_check "QMP device_add nvme on rph1" qmp_add hc1 rph1
HP=$(new_nvme "$before")
vm_check "the hot-added nvme appears" test -n "$HP"
HP=${HP:-none}
sleep 3
vm_check "hot-added $HP: driver_override is $PH, no driver" held "$HP"
vm_check "dmesg: $HP claimed (1b36:0010 matches claim 1b36:0010)" \
	claimed_line "$m" "$HP" "1b36:0010 matches claim 1b36:0010"
vm_check "no nvme controller for $HP" no_nvme_ctrl "$m" "$HP"
modprobe vfio_fixture_vdsub
vm_check "override $VDSUB and probe: bound at the first probe" sh -c \
	"echo $VDSUB >$SYS/$HP/driver_override && echo $HP >/sys/bus/pci/drivers_probe &&
	 test -e /sys/bus/pci/drivers/$VDSUB/$HP"
sleep 1
uevents_stop
vm_check "uevents: one add of $HP" test "$(uevents "$RESULTS/uevents-hotplug.txt" add "$HP")" = 1
vm_check "uevents: exactly one bind of $HP (the fixture's), none before it" \
	test "$(uevents "$RESULTS/uevents-hotplug.txt" bind "$HP")" = 1
vm_check "still no nvme controller for $HP" no_nvme_ctrl "$m" "$HP"
vm_note "uevents for $HP: $(grep -F "/$HP (pci)" "$RESULTS/uevents-hotplug.txt" | awk '{print $2}' | tr '\n' ' ')"

# Another hot-add while the table is replaced in a loop (every table matches it).
m=$(mark)
before=$(nvme_list)
(for _ in $(seq 400); do
	printf '1b36:0010\n' >$P
	printf 'abcd:ef01, 1b36:0010\n' >$P
done) &
LOOP=$!
vm_check "QMP device_add nvme on rph2 during the rewrites" qmp_add hc2 rph2
HP2=$(new_nvme "$before")
HP2=${HP2:-none}
wait $LOOP
sleep 2
vm_check "the second hot-add ($HP2) is held too" held "$HP2"
vm_check "no nvme controller for $HP2" no_nvme_ctrl "$m" "$HP2"
vm_check "dmesg: $HP2 claimed once" test "$(since "$m" | grep -cF "vfio_select: $HP2: claimed")" = 1
vm_check "the table after the loop" claim_is "abcd:ef01,1b36:0010"

# 3. Applied once at set time to a present, unbound device; bound ones left alone.
vm_check "pci-testdev $TESTDEV: unbound, no override" free_of_override "$TESTDEV"
EV=$RESULTS/claim-events.txt
# Not under vm_check: its output capture would wait for the listener to end.
genl_listen "$EV"
vm_check "a listener joins the events group" grep -q "^ready" "$EV"
m=$(mark)
vm_check "address claim of $TESTDEV set" set_claim "$TESTDEV"
vm_check "$TESTDEV held at set time" held "$TESTDEV"
vm_check "dmesg: $TESTDEV claimed ($TESTDEV matches claim $TESTDEV)" \
	claimed_line "$m" "$TESTDEV" "$TESTDEV matches claim $TESTDEV"
vm_check "the same table again: no second line" sh -c \
	'printf "%s\n" "$0" >"$1" && test "$(dmesg | grep -cF "vfio_select: $0: claimed")" = 1' "$TESTDEV" $P
clear_override "$TESTDEV"
read -r cls <"$SYS/$TESTDEV/class"
cls=${cls#0x}
m=$(mark)
vm_check "class claim class=$cls,class=010802 set" set_claim "class=$cls,class=010802"
vm_check "$TESTDEV held by class" held "$TESTDEV"
vm_check "dmesg: $TESTDEV claimed (class=$cls matches claim class=$cls)" \
	claimed_line "$m" "$TESTDEV" "class=$cls matches claim class=$cls"
vm_check "class=010802: bound nvme functions left alone" bound_alone nvme "$NVME" "$PF"
vm_check "class=010802: $HP left on $VDSUB" test "$(drv "$HP")" = $VDSUB
for d in "$NVME" "$PF" "$HP"; do
	vm_check "no claimed line for bound $d" no_claimed_line "$m" "$d"
done
vm_check "an override someone set is kept" sh -c \
	"echo >$SYS/$TESTDEV/driver_override && echo pci-stub >$SYS/$TESTDEV/driver_override &&
	 printf 'class=$cls\n' >$P && test \"\$(cat $SYS/$TESTDEV/driver_override)\" = pci-stub"
clear_override "$TESTDEV"
set_claim "$TESTDEV"
vm_check "$TESTDEV held again for the unload" held "$TESTDEV"

# 4. SR-IOV: the VFs claimed by address as they are made.
read -r vfdev <"$SYS/$PF/sriov_vf_device"
read -r off <"$SYS/$PF/sriov_offset"
read -r stride <"$SYS/$PF/sriov_stride"
vm_note "PF $PF: $(cat "$SYS/$PF/vendor" "$SYS/$PF/device" | tr '\n' ' ')VF device id $vfdev, offset $off, stride $stride"
vm_check "QEMU's nvme VFs share the PF's device id (0010)" test $((0x$vfdev)) = $((0x0010))
IFS=':.' read -r dom bus slot fn <<<"$PF"
VFS=()
for i in 0 1; do
	rid=$(((0x$bus << 8) + (0x$slot << 3) + 0x$fn + off + i * stride))
	VFS+=("$(printf '%s:%02x:%02x.%x' "$dom" $((rid >> 8)) $(((rid >> 3) & 0x1f)) $((rid & 7)))")
done
vm_note "VF addresses to be: ${VFS[*]}"
m=$(mark)
vm_check "address claims of both VFs set" set_claim "${VFS[0]},${VFS[1]}"
vm_check "sriov_numvfs 2" sh -c "echo 2 >$SYS/$PF/sriov_numvfs"
for vf in "${VFS[@]}"; do
	vm_check "VF $vf exists, a virtfn of $PF" test "$(readlink -f "$SYS/$vf/physfn")" = "$(readlink -f "$SYS/$PF")"
	vm_check "VF $vf held at add" held "$vf"
	vm_check "dmesg: $vf claimed ($vf matches claim $vf)" claimed_line "$m" "$vf" "$vf matches claim $vf"
	vm_check "no nvme controller for VF $vf" no_nvme_ctrl "$m" "$vf"
	vfgroup=$(vm_pci_group "$vf")
	vm_check "event: one CLAIM of $vf, group $vfgroup" \
		wait_for 5 test "$(claim_events "$EV" "$vf" "$vfgroup")" = 1
done
genl_stop
vm_check "events: three CLAIMs of $TESTDEV (address, class, address again)" \
	test "$(claim_events "$EV" "$TESTDEV" "$(vm_pci_group "$TESTDEV")")" = 3
vm_check "events: only CLAIMs, five in all" test "$(grep -c '^cmd=5 ' "$EV") $(grep -c '^cmd=' "$EV")" = "5 5"
vm_note "events: $(grep '^cmd=' "$EV" | tr '\n' ';')"
modprobe vfio-pci
vm_check "VF ${VFS[0]} given to vfio-pci by override: binds" sh -c \
	"echo vfio-pci >$SYS/${VFS[0]}/driver_override && echo ${VFS[0]} >/sys/bus/pci/drivers_probe &&
	 test -e /sys/bus/pci/drivers/vfio-pci/${VFS[0]}"
vm_check "the PF stayed on nvme" test "$(drv "$PF")" = nvme
vm_check "sriov_numvfs 0" sh -c "echo 0 >$SYS/$PF/sriov_numvfs && test ! -e $SYS/${VFS[0]}"

# 5. Unload with a claimed device; reload with claim= (command line, modprobe.d, bad).
vm_check "$TESTDEV held before the unload" held "$TESTDEV"
m=$(mark)
vm_check "vfio_select unloads" modprobe -r vfio_select
vm_check "unloaded" test ! -e /sys/module/vfio_select
vm_check "the override stays after the unload" held "$TESTDEV"
vm_check "the unload logged nothing" test -z "$(since "$m" | grep vfio_select)"
clear_override "$TESTDEV"
m=$(mark)
vm_check "modprobe vfio_select claim=$TESTDEV" modprobe vfio_select "claim=$TESTDEV"
vm_check "the table given at load reads back" claim_is "$TESTDEV"
vm_check "applied at load: $TESTDEV held" held "$TESTDEV"
vm_check "dmesg: claimed at load" claimed_line "$m" "$TESTDEV" "$TESTDEV matches claim $TESTDEV"
modprobe -r vfio_select
clear_override "$TESTDEV"
m=$(mark)
vm_check "a bad claim= at load: modprobe fails" sh -c '! modprobe vfio_select claim=abcd:ef01,zzzz'
vm_check "... and the module is not loaded" test ! -e /sys/module/vfio_select
vm_check "... naming the entry" sh -c "dmesg | tail -n +$((m + 1)) | grep -qF 'vfio_select: claim: bad entry \"zzzz\"'"
vm_check "... holding nothing" free_of_override "$TESTDEV"
mkdir -p /etc/modprobe.d
echo "options vfio_select claim=class=$cls" >/etc/modprobe.d/vfiod-claim-test.conf
m=$(mark)
vm_check "modprobe.d options claim=class=$cls" modprobe vfio_select
vm_check "the table from modprobe.d reads back" claim_is "class=$cls"
vm_check "applied at load: $TESTDEV held by class" held "$TESTDEV"
vm_check "dmesg: claimed by class at load" claimed_line "$m" "$TESTDEV" "class=$cls matches claim class=$cls"

# The boot case: softdep loads vfio_select before nvme, the table is in place before nvme's
# first probe; nvme's functions stay unbound even though nvme loads and registers.
modprobe -r vfio_select
modprobe -r nvme
vm_check "nvme unloaded: $NVME and $PF unbound" test "$(drv "$NVME") $(drv "$PF")" = "none none"
cat >/etc/modprobe.d/vfiod-claim-test.conf <<EOF
softdep nvme pre: vfio_select
options vfio_select claim=1b36:0010
EOF
m=$(mark)
vm_check "modprobe nvme (vfio_select first, by softdep)" modprobe nvme
vm_check "both loaded" sh -c 'grep -q "^nvme " /proc/modules && grep -q "^vfio_select " /proc/modules'
for d in "$NVME" "$PF"; do
	vm_check "boot case: $d held, nvme did not bind it" held "$d"
	vm_check "boot case: no nvme controller for $d" no_nvme_ctrl "$m" "$d"
	vm_check "boot case: dmesg: $d claimed" claimed_line "$m" "$d" "1b36:0010 matches claim 1b36:0010"
done
vm_check "boot case: $HP stays on $VDSUB" test "$(drv "$HP")" = $VDSUB
vm_check "given back: empty override and probe binds nvme" sh -c \
	"echo >$SYS/$NVME/driver_override && echo $NVME >/sys/bus/pci/drivers_probe &&
	 test -e /sys/bus/pci/drivers/nvme/$NVME"
vm_check "control: that probe made nvme's 'pci function $NVME' line" sh -c \
	"dmesg | tail -n +$((m + 1)) | grep -qE 'nvme nvme[0-9]+: pci function $NVME\$'"
rm /etc/modprobe.d/vfiod-claim-test.conf
vm_check "final unload" modprobe -r vfio_select

since 0 | grep -F 'vfio_select: ' >"$RESULTS/claim-dmesg.txt"
vm_note "vfio_select's lines: $(wc -l <"$RESULTS/claim-dmesg.txt") (in claim-dmesg.txt); the claimed ones:"
grep -F ': claimed (' "$RESULTS/claim-dmesg.txt" | sed 's/^/#   /'
vm_note "case time: $(($(date +%s) - T0)) s"
vm_no_kernel_warnings
vm_summary
