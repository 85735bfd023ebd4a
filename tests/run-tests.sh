#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Set up a Debian bookworm machine, build vfiod with ASan/UBSan and run every
# test: unit, sysfs fixtures, D-Bus, and the real kernel in QEMU (label vm).
# Extra arguments go to ctest, e.g. `tests/run-tests.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/setup.sh
cmake -S . -B build-test -DVFIOD_SANITIZE=ON -DVFIOD_TEST_HOOKS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
exec ctest --output-on-failure "$@"
