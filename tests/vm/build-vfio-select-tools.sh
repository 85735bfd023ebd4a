#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   build-vfio-select-tools.sh OUTDIR
#
# Build the test programs of the vfio_select VM case (case-vfio-select.sh) on the host,
# into OUTDIR:
#   vsctl                 drives vfio_select from a shell, through lib/kernel.c
#   vfio-select-hostile   malformed, lying and racing requests
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: build-vfio-select-tools.sh OUTDIR" >&2
	exit 2
}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
mkdir -p "$1"
read -r -a NL_CFLAGS <<<"$(pkg-config --cflags libnl-3.0 libnl-genl-3.0)"
read -r -a NL_LIBS <<<"$(pkg-config --libs libnl-3.0 libnl-genl-3.0)"
CFLAGS=(-O2 -g -Wall -Wextra -Wshadow -D_GNU_SOURCE -I"$TOP/lib" -I"$TOP/kernel/include/uapi"
	"${NL_CFLAGS[@]}")

gcc "${CFLAGS[@]}" -o "$1/vsctl" "$HERE/vsctl.c" "$TOP/lib/kernel.c" "${NL_LIBS[@]}"
gcc "${CFLAGS[@]}" -pthread -o "$1/vfio-select-hostile" "$HERE/vfio-select-hostile.c" \
	"${NL_LIBS[@]}"
