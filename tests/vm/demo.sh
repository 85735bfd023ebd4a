#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The demo: set up, build, boot Debian's 6.12 kernel in QEMU with an emulated NVMe
# controller and our fixture variant drivers, and show vfioctl at work on it.
set -euo pipefail
cd "$(dirname "$0")/../.."

tests/setup.sh
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-demo -j"$(nproc)" >/dev/null
tests/vm/fetch-kernel.sh
mkdir -p build-demo/vm
tests/vm/build-modules.sh build-demo/vm >/dev/null
exec tests/vm/run.sh --modroot build-demo/vm/modroot --results build-demo/vm/demo \
	-- tests/vm/demo-guest.sh "$PWD/build-demo"
