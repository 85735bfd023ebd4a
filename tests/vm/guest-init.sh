#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Second stage of the VM's init, run as PID 1 by the host's own bash after the initramfs
# has switch_root-ed into the overlay of the host's /. Not for running by hand.
#
# Reads the job written by run.sh from /run/vfiod-vm/job, mounts the remaining pseudo
# file systems, runs the job's command as root in its folder with a clean environment
# (VFIOD_VM=1, RESULTS=...), saves dmesg to RESULTS/dmesg.txt, writes the exit status to
# /run/vfiod-vm/rc and ends the VM through isa-debug-exit (QEMU exits with rc << 1 | 1).
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CTL=/run/vfiod-vm

vm_exit() {
	local rc=$1

	echo "$rc" >"$CTL/rc.tmp" && mv "$CTL/rc.tmp" "$CTL/rc"
	sync
	printf "\\x$(printf %02x $((rc & 0xff)))" | dd of=/dev/port bs=1 seek=244 count=1 status=none
	# Not reached unless the machine has no isa-debug-exit.
	echo o >/proc/sysrq-trigger
	sleep 10
}

if ! . "$CTL/job"; then
	echo "vm: cannot read the job"
	vm_exit 126
fi

mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
[ -e /proc/self/fd ] && ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
ln -sfn /proc/kcore /dev/core 2>/dev/null
mkdir -p /run/lock
hostname vfiod-vm 2>/dev/null
ip link set lo up 2>/dev/null

read -r up _ </proc/uptime
echo "# vm: kernel $(uname -r) up after ${up} s, running: ${VM_CMD[*]}"

cd "$VM_CWD" || {
	echo "vm: no folder $VM_CWD in the guest"
	vm_exit 126
}
env -i PATH="$PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb \
	LANG=C.UTF-8 VFIOD_VM=1 RESULTS="$VM_RESULTS" "${VM_CMD[@]}" </dev/null
rc=$?

dmesg >"$VM_RESULTS/dmesg.txt" 2>&1
read -r up _ </proc/uptime
echo "# vm: command exited with $rc, guest uptime ${up} s"
vm_exit "$rc"
