#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The demo: set up, build the Debian packages, boot Debian's 6.12 kernel in QEMU with
# systemd as PID 1, emulated NVMe, SR-IOV and test devices and our fixture drivers, install
# vfiod in it as an administrator would, and show vfioctl driving vfiod over the system bus.
set -euo pipefail
cd "$(dirname "$0")/../.."

tests/setup.sh
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-demo -j"$(nproc)" >/dev/null
tests/vm/fetch-kernel.sh
mkdir -p build-demo/vm
tests/vm/build-modules.sh build-demo/vm >/dev/null
echo "Building the Debian packages (tests/package/test-package.sh) ..."
tests/package/test-package.sh --keep "$PWD/build-demo/debs" >build-demo/package.log 2>&1 ||
	{ tail -20 build-demo/package.log; exit 1; }
echo "Booting the test VM under systemd ..."
exec tests/vm/run.sh --modroot build-demo/vm/modroot --results "$PWD/build-demo/vm/demo" \
	--systemd -- tests/vm/demo-guest.sh "$PWD/build-demo/debs"
