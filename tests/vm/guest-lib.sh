# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for scripts that run inside the test VM (tests/vm/run.sh). Source it:
#   . "$(dirname "$0")/guest-lib.sh"
#
# Checks print TAP-like lines, "ok N - NAME" or "not ok N - NAME" (with the failed
# command's output as "# " lines below it), and vm_summary ends the script with the line
# "N passed, M failed" and a non-zero exit status when anything failed.

VM_PASSED=0
VM_FAILED=0
VM_N=0
VM_DMESG_MARK=0

# vm_check NAME CMD [ARGS...]: run CMD; passes when it exits 0. Its output is shown only
# when it fails (or always with VM_VERBOSE=1).
# jget EXPR: print the Python expression EXPR over the JSON on stdin, bound to d.
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); exec("print(" + sys.argv[1] + ")")' "$1"; }
# The time in nanoseconds.
now_ns() { date +%s%N; }
# figure NAME START_NS: "NAME MS" (milliseconds since START_NS) in $RESULTS/figures.
figure() { echo "$1 $((($(now_ns) - $2) / 1000000))" >>"$RESULTS/figures"; }
# vm_under_systemd: exit 2, naming the case, unless in the test VM under systemd as PID 1.
vm_under_systemd() {
	if [ "${VFIOD_VM:-}" != 1 ] || [ ! -d /run/systemd/system ]; then
		echo "$(basename "$0") runs inside the test VM under systemd: see tests/vm/README.md" >&2
		exit 2
	fi
}
# vfiod's recovery runs as queued jobs after its start: wait (bounded) for the
# journal $JOURNAL to empty.
journal_drained() {
	for _ in $(seq 300); do
		[ -z "$(ls -A "$JOURNAL" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	return 1
}

# call VERB PATH [JSON]: run $CALL (tests/vfiod-call: one libvfiod call) with these
# arguments; its answer in $OUT, its error in $ERR.
call() {
	local rc
	OUT=$("$CALL" "$@" 2>"$RESULTS/err")
	rc=$?
	ERR=$(cat "$RESULTS/err")
	[ -n "$ERR" ] && echo "# $1 $2 ${3:-}: $ERR"
	return $rc
}
# has TEXT WORDS: TEXT contains WORDS.
has() { grep -qF -- "$2" <<<"$1"; }
# refused NAME VERB PATH [JSON]: a check that the call fails; $ERR keeps its message.
refused() {
	local name=$1
	shift
	call "$@"
	vm_check "$name" test $? -ne 0
}
gone() { [ ! -e "$1" ]; }
# hold_start GROUP DEVICE READY_FILE: hold a device's vfio device open in the background,
# as a VM does (container, group, type1, device fd); its pid in $HOLDER.  With HOLD_AS=USER
# the holder runs as that user (as QEMU runs as libvirt-qemu), who must be able to open the
# group's node and write READY_FILE.
hold_start() {
	${HOLD_AS:+setpriv --reuid="$HOLD_AS" --regid="$HOLD_AS" --init-groups} python3 - "$@" <<'EOF' &
import fcntl, os, struct, sys, time
group, dev, ready = sys.argv[1:4]
c = os.open("/dev/vfio/vfio", os.O_RDWR)
g = os.open("/dev/vfio/" + group, os.O_RDWR)
fcntl.ioctl(g, 0x3B68, bytearray(struct.pack("i", c)))     # VFIO_GROUP_SET_CONTAINER
fcntl.ioctl(c, 0x3B66, 3)                                  # VFIO_SET_IOMMU, TYPE1v2
d = fcntl.ioctl(g, 0x3B6A, bytearray(dev.encode() + b"\0"))  # VFIO_GROUP_GET_DEVICE_FD
open(ready, "w").write("%d\n" % d)
time.sleep(600)
EOF
	HOLDER=$!
	for _ in $(seq 100); do
		[ -s "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

vm_check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	VM_N=$((VM_N + 1))
	if [ $rc -eq 0 ]; then
		VM_PASSED=$((VM_PASSED + 1))
		echo "ok $VM_N - $name"
	else
		VM_FAILED=$((VM_FAILED + 1))
		echo "not ok $VM_N - $name (exit $rc: $*)"
	fi
	if [ -n "$out" ] && { [ $rc -ne 0 ] || [ "${VM_VERBOSE:-0}" = 1 ]; }; then
		printf '%s\n' "$out" | sed 's/^/#   /'
	fi
	return $rc
}

# vm_check_not NAME CMD [ARGS...]: passes when CMD fails.
vm_check_not() {
	local name=$1
	shift
	vm_check "$name" vm__not "$@"
}
vm__not() {
	! "$@"
}

# vm_skip NAME REASON
vm_skip() {
	VM_N=$((VM_N + 1))
	echo "ok $VM_N - $1 # SKIP $2"
}

# vm_note TEXT...: a comment line in the log.
vm_note() {
	echo "# $*"
}

# vm_summary: print "N passed, M failed" and exit, non-zero if anything failed.
vm_summary() {
	echo "$VM_PASSED passed, $VM_FAILED failed"
	[ "$VM_FAILED" -eq 0 ] && exit 0
	exit 1
}

# vm_dmesg_mark: later vm_no_kernel_warnings calls look only at messages after this point.
vm_dmesg_mark() {
	VM_DMESG_MARK=$(dmesg | wc -l)
}

# The kernel messages since the last mark that tell of a kernel bug.
vm_kernel_warnings() {
	dmesg | tail -n +$((VM_DMESG_MARK + 1)) |
		grep -E 'WARNING:|BUG:|Oops|general protection fault|Call Trace:|RIP:|list_add corruption|refcount_t:|UBSAN:|KASAN:|kernel BUG'
}

# vm_no_kernel_warnings [NAME]: a check that dmesg (since the mark) has no WARNING, BUG,
# Oops or call trace.
vm_no_kernel_warnings() {
	vm_check "${1:-no kernel warnings, BUGs or Oopses in dmesg}" vm__not vm_kernel_warnings
}

# vm_udev_start: run the host's systemd-udevd in the guest, replay the coldplug events and
# wait for them: drivers get auto-loaded and bound as on a booted system. Off by default so
# that tests see a deterministic binding.
vm_udev_start() {
	local udevd

	for udevd in /usr/lib/systemd/systemd-udevd /lib/systemd/systemd-udevd; do
		[ -x "$udevd" ] && break
	done
	[ -x "$udevd" ] || {
		echo "# vm: no systemd-udevd on the host" >&2
		return 1
	}
	"$udevd" --daemon || return 1
	udevadm trigger --type=subsystems --action=add &&
		udevadm trigger --type=devices --action=add &&
		udevadm settle --timeout=60
}

# vm_udev_stop: stop udevd again.
vm_udev_stop() {
	udevadm control --exit 2>/dev/null
}

# vm_udev_settle: wait for udev's queue to empty.
vm_udev_settle() {
	udevadm settle --timeout=60
}

# PCI helpers. Devices are named by their full address (0000:00:04.0).
VM_PCI=/sys/bus/pci/devices

# The helpers below avoid external programs: each fork costs tens of milliseconds under TCG.

# vm_pci_find VENDOR DEVICE [plain|pf|vf]: the addresses of matching functions (hex ids
# without 0x); "plain" is neither a PF nor a VF.
vm_pci_find() {
	local d v i found=1

	for d in "$VM_PCI"/*; do
		read -r v <"$d/vendor"
		read -r i <"$d/device"
		[ "$v" = "0x$1" ] && [ "$i" = "0x$2" ] || continue
		case ${3:-} in
		plain) [ -e "$d/sriov_totalvfs" ] || [ -e "$d/physfn" ] && continue ;;
		pf) [ -e "$d/sriov_totalvfs" ] || continue ;;
		vf) [ -e "$d/physfn" ] || continue ;;
		esac
		echo "${d##*/}"
		found=0
	done
	return $found
}

# vm_pci_driver DEV: the name of the bound driver, or "none".
vm_pci_driver() {
	local l

	for l in /sys/bus/pci/drivers/*/"$1"; do
		if [ -e "$l" ]; then
			l=${l%/*}
			echo "${l##*/}"
			return 0
		fi
	done
	echo none
}

# vm_pci_group DEV: the IOMMU group number (empty and failure when there is none).
vm_pci_group() {
	local l

	for l in /sys/kernel/iommu_groups/*/devices/"$1"; do
		if [ -e "$l" ]; then
			l=${l%/devices/*}
			echo "${l##*/}"
			return 0
		fi
	done
	return 1
}

# vm_pci_bind DEV DRIVER: bind DEV to DRIVER through driver_override, as vfio users do.
vm_pci_bind() {
	local dev=$1 drv=$2

	echo "$drv" >"$VM_PCI/$dev/driver_override" || return 1
	if [ -e "$VM_PCI/$dev/driver" ]; then
		echo "$dev" >"$VM_PCI/$dev/driver/unbind" || return 1
	fi
	echo "$dev" >/sys/bus/pci/drivers_probe
	[ "$(vm_pci_driver "$dev")" = "$drv" ]
}

# vm_pci_release DEV: unbind DEV, clear driver_override and re-probe (the host driver, if
# loaded, takes it back).
vm_pci_release() {
	local dev=$1

	if [ -e "$VM_PCI/$dev/driver" ]; then
		echo "$dev" >"$VM_PCI/$dev/driver/unbind" || return 1
	fi
	echo >"$VM_PCI/$dev/driver_override" || return 1
	echo "$dev" >/sys/bus/pci/drivers_probe
	return 0
}

# vm_lspci: vendor, device, subsystem, class, IOMMU group and driver of every PCI function.
vm_lspci() {
	local d v i sv sd c

	for d in "$VM_PCI"/*; do
		read -r v <"$d/vendor"
		read -r i <"$d/device"
		read -r sv <"$d/subsystem_vendor"
		read -r sd <"$d/subsystem_device"
		read -r c <"$d/class"
		echo "${d##*/} ${v#0x}:${i#0x} sub ${sv#0x}:${sd#0x} class ${c#0x}" \
			"group $(vm_pci_group "${d##*/}") driver $(vm_pci_driver "${d##*/}")"
	done
}

# until_ok SECONDS CMD...: run CMD every 0.2 s until it succeeds, for at most SECONDS.
until_ok() {
	local n=$(($1 * 5))
	shift
	while ! "$@"; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.2
	done
}

# ARGS run on a pseudo-terminal (tests/sysfs/ptyrun.py), as at a terminal: what it wrote there.
vm_on_pty() {
	python3 -c 'import os, sys
sys.path.insert(0, sys.argv[1])
import ptyrun
rc, out = ptyrun.run(sys.argv[2:], dict(os.environ))
sys.stdout.write(out)
sys.exit(rc)' "$(dirname "${BASH_SOURCE[0]}")/../sysfs" "$@"
}

# wait_for SECONDS CMD...: poll every 50 ms (fork-free where CMD is a function) until CMD
# succeeds; 1 when SECONDS pass first.
wait_for() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.05
	done
}
