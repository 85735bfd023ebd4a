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
#
# A job with VM_SYSTEMD=1 (run.sh --systemd) hands PID 1 over to the host's own systemd
# instead: this script masks what a case does not need, writes a oneshot unit that runs it
# again as "guest-init.sh --unit" once multi-user.target is reached, and execs systemd.
# The unit runs the command as above and also saves the journal (RESULTS/journal.txt) and
# the units' activation times (RESULTS/units.txt).
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CTL=/run/vfiod-vm
UNIT=vfiod-vm-case.service

vm_exit() {
	local rc=$1

	echo "$rc" >"$CTL/rc.tmp" && mv "$CTL/rc.tmp" "$CTL/rc"
	sync
	printf "\\x$(printf %02x $((rc & 0xff)))" | dd of=/dev/port bs=1 seek=244 count=1 status=none
	# Not reached unless the machine has no isa-debug-exit.
	echo o >/proc/sysrq-trigger
	sleep 10
}

# The host's units that a case does not need, and that would cost boot time under TCG or
# wait for what the guest lacks; masked in /run, which is the guest's own:
# - every unit the host's administrator enabled (/etc/systemd/system/*.wants: a database
#   server, time sync, gettys, e2scrub, ...), and the timers, which start apt and man-db;
# - the gettys: the case's output goes to the serial console;
# - systemd-firstboot, which prompts on the console where /etc/machine-id is missing, and
#   systemd-remount-fs, which would apply the host's fstab to the overlay root.
# What runs: journald, udevd and its coldplug, dbus.socket, logind, tmpfiles (quick: the
# guest's /tmp is an empty tmpfs), and polkitd once the bus activates it.
vm_systemd_masks() {
	local w u

	for w in /etc/systemd/system/*.wants/*; do
		[ -e "$w" ] || [ -L "$w" ] || continue
		u=${w##*/}
		case $u in *.target) continue ;; esac
		echo "$u"
	done
	echo timers.target getty.target systemd-firstboot.service systemd-remount-fs.service
}
# The generators that make units of the host's fstab, disks, rc.local, SysV scripts and
# consoles, and the host's own (postgresql-generator): none of that is the guest's.
VM_GENERATORS_MASKED="systemd-fstab-generator systemd-gpt-auto-generator
	systemd-rc-local-generator systemd-sysv-generator systemd-getty-generator
	postgresql-generator"

# Hand PID 1 over to the host's systemd on the overlay root.
vm_systemd() {
	local self u masks rc systemd=/lib/systemd/systemd

	self=$(realpath -e "$0")
	[ -x "$systemd" ] || {
		echo "vm: no $systemd on the host"
		vm_exit 126
	}
	# The host's units, before the preboot enables the guest's own.
	masks=$(vm_systemd_masks)
	# Before anything of systemd's is in /run (a postinst would take /run/systemd/system
	# for a running systemd and ask it to start units).
	if [ "${VM_PREBOOT:-0}" = 1 ]; then
		(cd "$VM_CWD" && env -i PATH="$PATH" HOME=/root USER=root LOGNAME=root \
			SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 VFIOD_VM=1 VM_PHASE=preboot \
			RESULTS="$VM_RESULTS" "${VM_CMD[@]}" </dev/null >"$VM_RESULTS/preboot.txt" 2>&1)
		rc=$?
		echo "# vm: preboot: ${VM_CMD[*]}: exit $rc"
		if [ $rc != 0 ]; then
			sed 's/^/# preboot: /' "$VM_RESULTS/preboot.txt"
			vm_exit $rc
		fi
	fi
	mkdir -p /run/systemd/system/multi-user.target.wants /run/systemd/system-generators
	for u in $masks; do
		ln -sfn /dev/null "/run/systemd/system/$u"
	done
	for u in $VM_GENERATORS_MASKED; do
		ln -sfn /dev/null "/run/systemd/system-generators/$u"
	done
	# A host that is a container image says so in its root, and systemd believes it: it
	# would then take the guest for a Docker container, skip what containers skip and
	# ignore the kernel's command line. This is a VM (the overlay hides the file).
	rm -f /.dockerenv /run/.containerenv
	# Ordered after multi-user.target, not only wanted by it: the case starts on a system
	# that is up. Its output goes straight to the console, as without systemd.
	{
		echo "[Unit]"
		echo "Description=vfiod VM test case"
		echo "After=multi-user.target"
		echo
		echo "[Service]"
		echo "Type=oneshot"
		echo "ExecStart=/bin/bash $self --unit"
		echo "StandardInput=null"
		echo "StandardOutput=tty"
		echo "StandardError=inherit"
		echo "TTYPath=/dev/console"
		echo "TTYReset=no"
		echo "TTYVHangup=no"
		echo "TimeoutStartSec=infinity"
	} >"/run/systemd/system/$UNIT"
	ln -sfn "../$UNIT" "/run/systemd/system/multi-user.target.wants/$UNIT"
	read -r up _ </proc/uptime
	echo "# vm: kernel $(uname -r) up after ${up} s, handing over to $systemd"
	exec "$systemd"
}

# The units' activation times, longest first: systemd-analyze blame refuses to answer
# while the case's own oneshot job keeps the boot unfinished.
vm_units() {
	systemctl show -p Id -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic \
		-p ActiveState '*' 2>/dev/null | awk -F= '
		function out() {
			if (id != "" && s > 0 && e >= s)
				printf "%9.3f s  %s (%s)\n", (e - s) / 1e6, id, st
			id = ""; s = 0; e = 0; st = ""
		}
		/^Id=/ { id = $2 }
		/^InactiveExitTimestampMonotonic=/ { s = $2 }
		/^ActiveEnterTimestampMonotonic=/ { e = $2 }
		/^ActiveState=/ { st = $2 }
		/^$/ { out() }
		END { out() }' | sort -rn
}

# Microseconds as seconds with milliseconds.
vm_secs() {
	printf '%d.%03d' $(($1 / 1000000)) $(($1 / 1000 % 1000))
}

if ! . "$CTL/job"; then
	echo "vm: cannot read the job"
	vm_exit 126
fi

if [ "${1:-}" = --unit ]; then
	# Run by $UNIT: the system is up and has made its own mounts. What the case needs
	# must have survived the boot: the module tree first.
	[ -e "/lib/modules/$(uname -r)/modules.dep" ] || {
		echo "vm: no module tree /lib/modules/$(uname -r) once systemd is up"
		vm_exit 126
	}
	us=$(systemctl show -p UserspaceTimestampMonotonic --value)
	mu=$(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target)
	echo "# vm: systemd started after $(vm_secs "$us") s," \
		"reached multi-user.target after $(vm_secs "$mu") s"
	failed=$(systemctl list-units --failed --plain --no-legend 2>/dev/null | awk '{ printf " %s", $1 }')
	[ -n "$failed" ] && echo "# vm: failed units:$failed"
elif [ "${VM_SYSTEMD:-0}" = 1 ]; then
	vm_systemd
	echo "vm: cannot exec systemd"
	vm_exit 126
else
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
fi

read -r up _ </proc/uptime
echo "# vm: kernel $(uname -r) up after ${up} s, running: ${VM_CMD[*]}"

cd "$VM_CWD" || {
	echo "vm: no folder $VM_CWD in the guest"
	vm_exit 126
}
env -i PATH="$PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb \
	LANG=C.UTF-8 VFIOD_VM=1 RESULTS="$VM_RESULTS" "${VM_CMD[@]}" </dev/null
rc=$?

if [ "${1:-}" = --unit ]; then
	journalctl -b --no-pager -o short-monotonic >"$VM_RESULTS/journal.txt" 2>&1
	vm_units >"$VM_RESULTS/units.txt"
fi
dmesg >"$VM_RESULTS/dmesg.txt" 2>&1
read -r up _ </proc/uptime
echo "# vm: command exited with $rc, guest uptime ${up} s"
vm_exit "$rc"
