#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   mkinitramfs.sh OUTFILE [KV]
#
# Make the small busybox-static initramfs that run.sh boots. Its /init loads the 9p and
# overlay modules, mounts the host's / (9p, read-only) under a tmpfs overlay, mounts the
# module tree, the results folder and the run's control folder, and switch_roots into the
# host's own tests/vm/guest-init.sh. KV defaults to the one fetch-kernel.sh fetched.
# Rebuilt only when its inputs change.
set -euo pipefail

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: mkinitramfs.sh OUTFILE [KV]"
OUTFILE=$1
CACHE=${VFIOD_VM_CACHE:-/var/tmp/vfiod-vm}
KV=${2:-$(cat "$CACHE/KV")}
MODS="$CACHE/root/lib/modules/$KV"
BUSYBOX=${VFIOD_VM_BUSYBOX:-/bin/busybox}
# In load order.
FSMODS="kernel/fs/netfs/netfs kernel/net/9p/9pnet kernel/net/9p/9pnet_virtio kernel/fs/9p/9p
	kernel/fs/overlayfs/overlay"

[ -d "$MODS" ] || die "no $MODS (run fetch-kernel.sh)"
[ -x "$BUSYBOX" ] || die "no $BUSYBOX (install busybox-static)"
if command -v readelf >/dev/null && readelf -l "$BUSYBOX" 2>/dev/null | grep -q INTERP; then
	die "$BUSYBOX is linked dynamically (install busybox-static)"
fi

read -r -d '' INIT <<'EOF' || true
#!/bin/sh
# /init of the vfiod VM test initramfs (made by tests/vm/mkinitramfs.sh).
PATH=/bin
fail() {
	echo "vm-init: $*"
	echo "vm-init: FAILED" >/dev/console
	# isa-debug-exit: QEMU exits with (126 << 1) | 1.
	printf '\176' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	poweroff -f
}
arg() {
	for a in $(cat /proc/cmdline); do
		case $a in "$1"=*) echo "${a#*=}" ;; esac
	done
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /lib/vm/*.ko; do
	insmod "$m" || fail "insmod $m"
done

P9="trans=virtio,version=9p2000.L,msize=512000"
mkdir -p /lower /rw /newroot
mount -t 9p -o "$P9,ro,cache=loose" hostroot /lower || fail "mount the host root over 9p"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,xino=off,index=off,redirect_dir=off,metacopy=off \
	overlay /newroot || fail "mount the overlay"

# The run's control folder: the job, and where the exit status goes.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mkdir -p /newroot/run/vfiod-vm
mount -t 9p -o "$P9" vfiodctl /newroot/run/vfiod-vm || fail "mount the control folder"
. /newroot/run/vfiod-vm/mounts || fail "read the mounts"

# Module tree: bind it from the host's view so that the guest's kmod sees it. /lib may be a
# symlink (merged /usr); resolve an absolute one inside the new root.
ml=/newroot/lib/modules
l=$(readlink /newroot/lib) && case $l in /*) ml=/newroot$l/modules ;; esac
mkdir -p "$ml"
mount --bind "/newroot$VM_MODROOT/lib/modules" "$ml" || fail "bind the module tree"

[ "$VM_TMPFS_TMP" = 1 ] && mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mkdir -p "/newroot$VM_RESULTS"
mount -t 9p -o "$P9" results "/newroot$VM_RESULTS" || fail "mount the results folder"

mount --move /dev /newroot/dev
mount --move /sys /newroot/sys
mount --move /proc /newroot/proc
exec switch_root /newroot "$VM_STAGE2"
EOF

sum=$( (echo "$KV"; echo "$INIT"; sha256sum "$BUSYBOX"; for m in $FSMODS; do
	ls -l "$MODS/$m.ko"*; done) | sha256sum | cut -d' ' -f1)
if [ -f "$OUTFILE" ] && [ "$(cat "$OUTFILE.stamp" 2>/dev/null)" = "$sum" ]; then
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$OUTFILE.tmp.$$"' EXIT
mkdir -p "$tmp/bin" "$tmp/lib/vm" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/run"
cp "$BUSYBOX" "$tmp/bin/busybox"
for a in sh mount insmod mkdir cat dd printf poweroff switch_root echo readlink; do
	ln -s busybox "$tmp/bin/$a"
done
i=0
for m in $FSMODS; do
	i=$((i + 1))
	n=$(basename "$m")
	if [ -f "$MODS/$m.ko.xz" ]; then
		"$BUSYBOX" xzcat "$MODS/$m.ko.xz" >"$tmp/lib/vm/$i-$n.ko"
	elif [ -f "$MODS/$m.ko.zst" ]; then
		zstd -qdc "$MODS/$m.ko.zst" >"$tmp/lib/vm/$i-$n.ko"
	elif [ -f "$MODS/$m.ko" ]; then
		cp "$MODS/$m.ko" "$tmp/lib/vm/$i-$n.ko"
	else
		die "no module $m in $MODS"
	fi
done
printf '%s\n' "$INIT" >"$tmp/init"
chmod 0755 "$tmp/init"
mkdir -p "$(dirname "$OUTFILE")"
(cd "$tmp" && find . -print0 | cpio -0 -o -H newc --quiet -R 0:0) >"$OUTFILE.tmp.$$"
mv "$OUTFILE.tmp.$$" "$OUTFILE"
echo "$sum" >"$OUTFILE.stamp"
