#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   run.sh --modroot DIR --results DIR [--timeout SEC] [--qemu 'ARGS'] [--no-default-devices]
#          [--qmp] [--systemd [--preboot]] -- GUEST_COMMAND [ARGS...]
#
# Boot the kernel fetched by fetch-kernel.sh in QEMU (q35, TCG, intel-iommu) and run
# GUEST_COMMAND in it as root. The guest sees the host's / read-only through 9p under a
# tmpfs overlay, so GUEST_COMMAND is a host path and runs in the host's current folder;
# DIR/lib/modules of --modroot is mounted on the guest's /lib/modules; the --results folder
# is shared writable at the same path. The command gets VFIOD_VM=1 and RESULTS=<that path>;
# its output goes to this script's stdout (and RESULTS/console.log); the guest's dmesg is
# saved to RESULTS/dmesg.txt.
#
# Exit status: the command's own, or 124 if the VM timed out, or 125 if the VM crashed or
# the harness failed before the command ended. A message on stderr always says which.
#
# Default devices: nvme (1b36:0010), pci-testdev (1b36:0005), and an SR-IOV capable nvme
# PF on its own PCIe root port. --qemu adds QEMU arguments (may be given more than once);
# --no-default-devices drops the default devices.
#
# --qmp gives the guest QEMU's QMP monitor on a virtio-serial port named org.vfiod.qmp, so
# that a guest script drives device_add/device_del itself (tests/vm/qmp.py): the monitor
# listens on a unix socket that QEMU's own port backend connects to (a chardev has one
# frontend, so the monitor and the port each get one end). Unix sockets do not cross 9p,
# and a host-side relay would poll files; this keeps the guest in charge and the round trip
# short.
#
# --systemd boots the host's own systemd as PID 1 on the guest's root (guest-init.sh hands
# over to it) and runs GUEST_COMMAND as a oneshot unit once multi-user.target is reached,
# with the system bus, polkitd (activated), systemd-udevd and journald running. The
# guest's journal is saved to RESULTS/journal.txt beside dmesg.txt. systemd's boot empties
# /tmp (tmpfiles' "D /tmp"), so nothing the guest needs may lie under /tmp: the command,
# its folder and arguments, the module tree and the results are refused there.
#
# --preboot (with --systemd) runs GUEST_COMMAND once more before systemd starts, with
# VM_PHASE=preboot, on the root systemd will boot: what it installs and configures there
# (packages, definitions, udev rules) is what an administrator's machine has at boot. Its
# output goes to RESULTS/preboot.txt; if it fails, the VM ends with its status.
#
# Environment: VFIOD_VM_CACHE (see fetch-kernel.sh), VFIOD_VM_QEMU (QEMU binary),
# VFIOD_VM_MEM (default 1G), VFIOD_VM_SMP (default 2), VFIOD_VM_APPEND (extra kernel args).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
QEMU=${VFIOD_VM_QEMU:-qemu-system-x86_64}
RC_TIMEOUT=124
RC_CRASH=125

usage() {
	echo "usage: run.sh --modroot DIR --results DIR [--timeout SEC] [--qemu 'ARGS']" \
		"[--no-default-devices] [--qmp] [--systemd [--preboot]] -- GUEST_COMMAND [ARGS...]" >&2
	exit 2
}

die() {
	echo "vm: $*" >&2
	exit $RC_CRASH
}

# Single-quote a word for a POSIX shell.
q() {
	local s=${1//\'/\'\\\'\'}
	printf "'%s'" "$s"
}

modroot=
results=
timeout=600
extra=()
defaults=1
qmp=0
systemd=0
preboot=0
while [ $# -gt 0 ]; do
	case $1 in
	--modroot) [ $# -ge 2 ] || usage; modroot=$2; shift 2 ;;
	--results) [ $# -ge 2 ] || usage; results=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
	--qemu)
		[ $# -ge 2 ] || usage
		read -r -a words <<<"$2"
		extra+=("${words[@]}")
		shift 2
		;;
	--no-default-devices) defaults=0; shift ;;
	--qmp) qmp=1; shift ;;
	--systemd) systemd=1; shift ;;
	--preboot) preboot=1; shift ;;
	--) shift; break ;;
	*) echo "vm: unknown argument '$1'" >&2; usage ;;
	esac
done
[ -n "$modroot" ] && [ -n "$results" ] && [ $# -ge 1 ] || usage
[ $preboot = 0 ] || [ $systemd = 1 ] || die "--preboot needs --systemd"
[[ $timeout =~ ^[0-9]+$ ]] || usage

t0=$(date +%s%N)
[ -s "$CACHE/KV" ] || die "no kernel in $CACHE: run tests/vm/fetch-kernel.sh first"
KV=$(cat "$CACHE/KV")
kernel="$CACHE/root/boot/vmlinuz-$KV"
[ -f "$kernel" ] || die "no $kernel"
modroot=$(realpath -e "$modroot") || die "no module tree $modroot"
[ -d "$modroot/lib/modules/$KV" ] || die "no $modroot/lib/modules/$KV (run build-modules.sh)"
mkdir -p "$results" && results=$(realpath -e "$results") || die "cannot make $results"
command -v "$QEMU" >/dev/null || die "no $QEMU (install qemu-system-x86)"

initrd="$CACHE/initrd-$KV.img"
(flock 9 && "$HERE/mkinitramfs.sh" "$initrd" "$KV") 9>"$CACHE/.lock" ||
	die "cannot make the initramfs"

cmd=$1
shift
case $cmd in
*/*)
	[ -e "$cmd" ] || {
		echo "vm: no command $cmd" >&2
		exit 127
	}
	cmd=$(realpath -se "$cmd")
	;;
esac
cwd=$(pwd -P)

# A tmpfs on the guest's /tmp would hide whatever the job needs from the host's /tmp: then
# the guest keeps the host's /tmp as seen through the overlay (private, writable).
tmpfs_tmp=1
for p in "$cwd" "$cmd" "$modroot" "$HERE" "$@"; do
	case $p in /tmp | /tmp/*) tmpfs_tmp=0 ;; esac
done
# Under systemd that is no way out: its boot empties /tmp, whatever is mounted there.
if [ $systemd = 1 ]; then
	for p in "$cwd" "$cmd" "$modroot" "$results" "$HERE" "$@"; do
		case $p in
		/tmp | /tmp/*) die "--systemd: $p is under /tmp, which systemd empties at boot" ;;
		esac
	done
fi

ctl=$(mktemp -d "${TMPDIR:-/var/tmp}/vfiod-vm-run.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$ctl"' EXIT
{
	echo "VM_MODROOT=$(q "$modroot")"
	echo "VM_RESULTS=$(q "$results")"
	echo "VM_TMPFS_TMP=$tmpfs_tmp"
	echo "VM_STAGE2=$(q "$HERE/guest-init.sh")"
} >"$ctl/mounts"
{
	echo "VM_CWD=$(q "$cwd")"
	echo "VM_RESULTS=$(q "$results")"
	echo "VM_SYSTEMD=$systemd"
	echo "VM_PREBOOT=$preboot"
	printf 'VM_CMD=(%s' "$(q "$cmd")"
	for a in "$@"; do
		printf ' %s' "$(q "$a")"
	done
	printf ')\n'
} >"$ctl/job"
rm -f "$results/dmesg.txt" "$results/console.log" "$results/journal.txt"

devices=()
if [ $defaults = 1 ]; then
	# shellcheck disable=SC2054 # commas are QEMU's
	devices=(
		-device nvme,serial=a
		-device pci-testdev
		-device pcie-root-port,id=rp1,chassis=1,slot=1
		-device nvme-subsys,id=s0
		-device nvme,serial=pf,subsys=s0,bus=rp1,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2
	)
fi

if [ $qmp = 1 ]; then
	# shellcheck disable=SC2054
	devices+=(
		-chardev "socket,id=qmpmon,path=$ctl/qmp.sock,server=on,wait=off"
		-mon chardev=qmpmon,mode=control
		-chardev "socket,id=qmpport,path=$ctl/qmp.sock"
		-device virtio-serial-pci,id=vser0
		-device virtserialport,bus=vser0.0,chardev=qmpport,name=org.vfiod.qmp
	)
fi

append="console=ttyS0 intel_iommu=on quiet panic=-1 no_timer_check"
[ $systemd = 1 ] && append+=" systemd.unit=multi-user.target"

p9=security_model=none,multidevs=remap
# shellcheck disable=SC2054
qemu=(
	"$QEMU" -machine q35,kernel-irqchip=split -accel tcg -cpu max
	-m "${VFIOD_VM_MEM:-1G}" -smp "${VFIOD_VM_SMP:-2}"
	-device intel-iommu,intremap=on
	-device isa-debug-exit,iobase=0xf4,iosize=4
	-display none -no-reboot -nodefaults -serial stdio
	-kernel "$kernel" -initrd "$initrd"
	-append "$append ${VFIOD_VM_APPEND:-}"
	-virtfs "local,path=/,mount_tag=hostroot,readonly=on,$p9"
	-virtfs "local,path=$results,mount_tag=results,$p9"
	-virtfs "local,path=$ctl,mount_tag=vfiodctl,$p9"
	"${devices[@]}" "${extra[@]}"
)

# One VM at a time on this machine: two TCG guests on two cores slow each other past
# their timeouts. Every checkout's run.sh takes the same lock in the shared cache.
mkdir -p "$CACHE"
exec 8>"$CACHE/.vm-lock"
if ! flock -n 8; then
	echo "vm: waiting for another VM on this machine to end" >&2
	flock 8
fi
t0=$(date +%s%N)

# A TCG guest now and then dies in early boot, before any of our code runs (an
# int3 oops in the kernel's own text patching, under a loaded host). That proves
# nothing about the command: boot once more, saying so. A crash after the command
# started is retried only when it is that same oops: "Oops: int3" with the RIP in
# the core kernel's text. TCG can go on running its translation of an instruction
# the kernel has just patched (a static key flipped on the other vCPU, as a cgroup
# with a cpuset does), and hits the int3 the patch had put there; the emulator's
# fault, not the command's. Each boot is a fresh guest, so the command runs again
# whole. An int3 in a module's text (ours or any) is never retried.
tcg_text_poke_oops() {
	local rip
	grep -q '^\[ *[0-9.]*\] Oops: int3' "$1" || return 1
	rip=$(grep -m1 'RIP: 0010:' "$1") || return 1
	rip=${rip#*RIP: 0010:}
	[[ $rip != *'['* ]]
}
figures_size=$(stat -c %s "$results/figures" 2>/dev/null || echo 0)
for attempt in 1 2; do
	timeout -k 10 "$timeout" "${qemu[@]}" </dev/null 2>&1 | sed -u 's/\r//g' |
		tee "$results/console.log"
	qrc=${PIPESTATUS[0]}
	if [ $attempt = 2 ] || [ -f "$ctl/rc" ] || [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		break
	fi
	if grep -q '^# vm: kernel .* running: ' "$results/console.log"; then
		tcg_text_poke_oops "$results/console.log" || break
		cp "$results/console.log" "$results/console-int3-crash.log"
		# What the crashed run appended to the figures is dropped.
		[ ! -f "$results/figures" ] || truncate -s "$figures_size" "$results/figures"
		echo "vm: the guest died of TCG's text-patching int3 oops in core kernel text" \
			"while the command ran (see console-int3-crash.log); booting again, once," \
			"and running the command again" >&2
	else
		cp "$results/console.log" "$results/console-boot-crash.log"
		echo "vm: the guest died while booting, before the command ran" \
			"(see console-boot-crash.log); booting again, once" >&2
	fi
	rm -f "$ctl/qmp.sock"
done
secs=$((($(date +%s%N) - t0) / 1000000))
secs="$((secs / 1000)).$(printf %03d $((secs % 1000)))"

if [ -f "$ctl/rc" ]; then
	rc=$(cat "$ctl/rc")
	if [ "$rc" = 0 ]; then
		echo "# vm: guest command passed (${secs} s in all)"
	elif [ "$rc" = 126 ] && [ ! -f "$results/dmesg.txt" ]; then
		echo "vm: CRASH: the guest's init failed before the command ran (see above)" >&2
		rc=$RC_CRASH
	else
		echo "vm: FAILED: guest command exited with $rc (${secs} s in all)" >&2
	fi
	exit "$rc"
fi
case $qrc in
124 | 137)
	echo "vm: TIMEOUT: the VM did not end within ${timeout} s" >&2
	exit $RC_TIMEOUT
	;;
253)
	echo "vm: CRASH: the initramfs failed to set up the guest (see above)" >&2
	;;
0)
	echo "vm: CRASH: the VM stopped without an exit status (kernel panic?)" >&2
	;;
*)
	echo "vm: CRASH: QEMU exited with $qrc and no exit status from the guest" >&2
	;;
esac
exit $RC_CRASH
