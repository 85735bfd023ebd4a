#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what building and testing vfiod needs on a Debian bookworm machine.
# Idempotent: does nothing when everything is installed already.
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake pkg-config
	libkmod-dev libudev-dev libpci-dev pci.ids libjansson-dev libnl-3-dev libnl-genl-3-dev
	libsystemd-dev libxml2-dev
	# install paths (pkg-config systemd, udev, bash-completion) and the Debian packages
	bash-completion debhelper dh-dkms
	# tests on the host; libfuse3-dev: the fixture trees' driver core (tests/fakekernel)
	python3 python3-dbusmock dbus kmod util-linux libfuse3-dev
	# the documentation test renders every man page
	groff-base
	# the VM suite: QEMU, the guest's init, kernel module builds against the
	# downloaded headers (gcc-12 is the compiler Debian's 6.12 kernel was built with);
	# qemu-system-common has qemu-storage-daemon (the VDUSE export of vm-vdpa)
	qemu-system-x86 busybox-static cpio dwarves gcc-12 make libelf1 bc systemd udev iproute2
	qemu-system-common
	# run.sh --systemd: the real polkitd decides for vfiod in the guest (tests/vm/case-systemd.sh)
	polkitd
	# libvirt starts guests with vfiod's hook in the guest (tests/vm/case-libvirt.sh)
	libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
	# podman runs a container with a device named by vfiod's CDI spec (tests/vm/case-cdi.sh)
	podman crun conmon
	# Claim= in the initramfs (tests/vm/case-initramfs.sh): Debian's mkinitramfs, lsinitramfs
	# and unmkinitramfs, and dracut's tools beside them (dracut-core does not replace
	# initramfs-tools, as dracut would); zstd is initramfs-tools' default compressor
	initramfs-tools dracut-core zstd
	# the kernel lint (tests/kernel-lint.sh): sparse on kernel/, beside checkpatch.pl
	sparse
	# the benchmarks (tests/bench): the baseline the VM figures compare with
	driverctl
	# the libFuzzer harnesses (tests/fuzz): clang and its runtimes
	clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
