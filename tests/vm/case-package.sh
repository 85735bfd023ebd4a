#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case: the Debian packages installed with dpkg in the guest (its root is the host's,
# read-only, under a tmpfs overlay), their vfioctl used on the real nvme, then removed and
# purged without a trace. The guest has no systemd as PID 1: the unit is only checked to be
# installed and enabled, not started.
#
#   case-package.sh DEB_DIR      (DEB_DIR: from tests/package/test-package.sh --keep)
set -uo pipefail

DEBS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

if [ "${VFIOD_VM:-}" != 1 ]; then
	echo "case-package.sh runs inside the test VM: see tests/vm/README.md" >&2
	exit 2
fi

VFIOD_DEB=$(ls "$DEBS"/vfiod_*.deb 2>/dev/null)
LIB_DEB=$(ls "$DEBS"/libvfiod0_*.deb 2>/dev/null)
vm_check "the packages are there" test -f "$VFIOD_DEB" -a -f "$LIB_DEB" || vm_summary
VERSION=$(dpkg-deb -f "$VFIOD_DEB" Version)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
vm_check_not "vfiod is not installed before" sh -c 'dpkg -s vfiod 2>/dev/null | grep -q "ok installed"'

: >"$RESULTS/figures"
# man-db's trigger would rebuild the index of every page (minutes under TCG).
rm -f /var/lib/man-db/auto-update
t0=$(date +%s%N)
vm_check "dpkg -i vfiod libvfiod0" dpkg -i "$VFIOD_DEB" "$LIB_DEB"
echo "dpkg-install-ms $((($(date +%s%N) - t0) / 1000000))" >>"$RESULTS/figures"
FILES=$(dpkg -L vfiod libvfiod0 | sort)
vm_check "dpkg: vfiod and libvfiod0 installed" \
	sh -c 'dpkg -s vfiod libvfiod0 | grep -c "Status: install ok installed" | grep -qx 2'
for f in /usr/bin/vfioctl /usr/libexec/vfiod /lib/systemd/system/vfiod.service \
	/usr/share/dbus-1/system.d/org.vfiod1.conf /usr/share/polkit-1/actions/org.vfiod1.policy \
	/etc/vfiod/vfiod.conf /usr/share/bash-completion/completions/vfioctl \
	/usr/share/man/man5/vfiod.conf.5.gz "/usr/lib/$MULTIARCH/libvfiod.so.0"; do
	vm_check "installed: $f" test -e "$f"
done
vm_check "postinst enabled vfiod.service" test -L /etc/systemd/system/multi-user.target.wants/vfiod.service
vm_check "vfioctl --version" test "$(/usr/bin/vfioctl --version)" = "vfioctl $VERSION"
vm_check "vfiod --version" test "$(/usr/libexec/vfiod --version)" = "vfiod $VERSION"
vm_check "vfioctl uses the packaged libvfiod" sh -c \
	"test \"\$(realpath \"\$(ldd /usr/bin/vfioctl | awk '/libvfiod.so.0/ { print \$3 }')\")\" = \
	 \"\$(realpath /usr/lib/$MULTIARCH/libvfiod.so.0)\""
vm_check "the completion registers for vfioctl" \
	bash -c '. /usr/share/bash-completion/completions/vfioctl && complete -p vfioctl'

# The packaged vfioctl on the real kernel: the fixture variant chosen, bound, given back.
modprobe nvme
NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no nvme"; vm_summary; }
vm_check "nvme on its host driver" test "$(vm_pci_driver "$NVME")" = nvme
out=$(/usr/bin/vfioctl --direct --resolver=user -j match "$NVME")
vm_check "packaged vfioctl: match selects vfio_fixture_vdsub" \
	test "$(jget 'd["selected"]["module"]' <<<"$out")" = vfio_fixture_vdsub
vm_check "packaged vfioctl: create" /usr/bin/vfioctl --direct --resolver=user create "$NVME"
vm_check "bound to vfio-fixture-vdsub" test "$(vm_pci_driver "$NVME")" = vfio-fixture-vdsub
vm_check "packaged vfioctl: destroy" /usr/bin/vfioctl --direct --resolver=user destroy "$NVME"
vm_check "nvme back on nvme" test "$(vm_pci_driver "$NVME")" = nvme

# Remove and purge: no file of the packages, no state, no enablement left.
mkdir -p /run/vfiod/journal /var/lib/vfiod/devices
echo '{}' >/var/lib/vfiod/devices/x.json
vm_check "dpkg -r vfiod libvfiod0" dpkg -r vfiod libvfiod0
vm_check "removed: /usr/bin/vfioctl" test ! -e /usr/bin/vfioctl
vm_check "removed: /run/vfiod" test ! -e /run/vfiod
vm_check "dpkg -P vfiod libvfiod0" dpkg -P vfiod libvfiod0
left=$(for f in $FILES; do { [ -f "$f" ] || [ -L "$f" ]; } && [ ! -d "$f" ] && echo "$f"; done)
vm_check "purge left none of the packages' files: $left" test -z "$left"
vm_check "purge left no definitions, configuration or enablement" test ! -e /var/lib/vfiod \
	-a ! -e /etc/vfiod -a ! -e /etc/systemd/system/multi-user.target.wants/vfiod.service
sed 's/^/# /' "$RESULTS/figures" 2>/dev/null
vm_no_kernel_warnings
vm_summary
