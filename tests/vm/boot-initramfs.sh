#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Boot the Debian initramfs that case-initramfs.sh made (RESULTS/initrd.img, with
# Claim=0000:00:0a.0) on the same kernel, with the same two nvme functions at 0a.0 and 0b.0,
# and no root file system: in the initramfs, udev's coldplug loads nvme, modprobe loads
# vfio_select first (the image's softdep) with the claim table, and the claimed 0a.0 never
# meets nvme while 0b.0 gets it. initramfs-report.sh (an init-premount script of the image,
# acting only with vfiod_test_report on the command line) prints the state and powers off.
#
#   boot-initramfs.sh RESULTS
#
# Runs on the host, as run.sh does (one VM at a time: the same lock).
set -uo pipefail

RESULTS=$1
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
QEMU=${VFIOD_VM_QEMU:-qemu-system-x86_64}
KV=$(cat "$CACHE/KV") || exit 125
IMAGE=$RESULTS/initrd.img
LOG=$RESULTS/boot-console.log
CLAIMED=0000:00:0a.0
FREE=0000:00:0b.0
[ -s "$IMAGE" ] || {
	echo "vm: no $IMAGE (run vm-initramfs first)" >&2
	exit 125
}

exec 8>"$CACHE/.vm-lock"
if ! flock -n 8; then
	echo "vm: waiting for another VM on this machine to end" >&2
	flock 8
fi
t0=$(date +%s%N)
# shellcheck disable=SC2054 # commas are QEMU's
qemu=("$QEMU" -machine q35,kernel-irqchip=split -accel tcg -cpu max -m 1G -smp 2
	-device intel-iommu,intremap=on -display none -no-reboot -nodefaults -serial stdio
	-kernel "$CACHE/root/boot/vmlinuz-$KV" -initrd "$IMAGE"
	-append "console=ttyS0 intel_iommu=on no_timer_check panic=-1 vfiod_test_report"
	-device nvme,serial=i1,addr=0a.0 -device nvme,serial=i2,addr=0b.0)
# As run.sh: a TCG guest now and then dies in early boot, before any of this ran; once more.
for attempt in 1 2; do
	timeout -k 10 300 "${qemu[@]}" </dev/null 2>&1 | sed -u 's/\r//g' >"$LOG"
	grep -q '^vfiod-report: end' "$LOG" && break
	[ $attempt = 1 ] && echo "# the guest did not report; booting again, once" &&
		cp "$LOG" "$RESULTS/boot-console-1.log"
done
ms=$((($(date +%s%N) - t0) / 1000000))

passed=0
failed=0
n=0
check() { # NAME COMMAND...
	local name=$1
	shift
	n=$((n + 1))
	if "$@" >/dev/null 2>&1; then
		passed=$((passed + 1))
		echo "ok $n - $name"
	else
		failed=$((failed + 1))
		echo "not ok $n - $name"
	fi
}
has() { grep -qxF -- "$1" "$LOG"; }
kline() { grep -nE "^\[ *[0-9.]+\] $1" "$LOG" | head -1 | cut -d: -f1; }
grep -E 'vfiod-report:|vfio_select: |nvme nvme[0-9]+: pci function' "$LOG" | sed 's/^/# /'
check "the image's init reported" has "vfiod-report: end"
# (An image of an earlier case may have the line after init's "Begin: ... ".)
check "vfio_select and nvme loaded in the initramfs" \
	grep -qE "(^| )vfiod-report: modules: vfio_select nvme\$" "$LOG"
check "... vfio_select with the image's claim table" grep -qE "^vfiod-report: claim=$CLAIMED(,|$)" "$LOG"
check "$CLAIMED held: the placeholder, no driver" \
	has "vfiod-report: $CLAIMED override=vfiod-claim driver=none"
check "$FREE on nvme" has "vfiod-report: $FREE override=(null) driver=nvme"
check "kernel: vfio_select held $CLAIMED" grep -qF "vfio_select: $CLAIMED: claimed" "$LOG"
check "kernel: no nvme controller for $CLAIMED" sh -c \
	"! grep -qE 'nvme nvme[0-9]+: pci function $CLAIMED\$' '$LOG'"
claim_at=$(kline "vfio_select: $CLAIMED: claimed")
nvme_at=$(kline "nvme nvme[0-9]+: pci function $FREE")
check "kernel: the claim came before nvme's first probe (lines ${claim_at:-?} < ${nvme_at:-?})" \
	test "${claim_at:-0}" -gt 0 -a "${nvme_at:-0}" -gt "${claim_at:-0}"
check "no kernel warnings" sh -c \
	"! grep -qE 'WARNING:|BUG:|Oops|Call Trace:' '$LOG'"
echo "# boot of the image: $ms ms (console in $LOG)"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
