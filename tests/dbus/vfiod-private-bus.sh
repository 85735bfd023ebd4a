#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run vfiod on a private dbus-daemon of its own, where there is no system bus
# (the VM guest, a container, a developer's machine).
#
#   vfiod-private-bus.sh start DIR BUILD_DIR [VAR=VALUE...]   bus (once) and vfiod; prints the address
#   vfiod-private-bus.sh stop DIR      SIGTERM to vfiod, waits until it is gone
#   vfiod-private-bus.sh kill DIR      SIGKILL to vfiod (a crash), waits until it is gone
#   vfiod-private-bus.sh down DIR      stop vfiod, then the bus
#
# DIR holds bus.conf, the socket, address, the pids and vfiod.log. The bus gets
# a system-bus-like policy plus vfiod's own systemd/org.vfiod1.conf, so root
# owns org.vfiod1 and other users may only call its interfaces. VAR=VALUE
# pairs go to vfiod's environment (VFIOD_ABORT_AT=assign:unbind,
# VFIOD_OPERATION_TIMEOUT_SEC=5, ...); RUNTIME_DIRECTORY and STATE_DIRECTORY
# default to /run/vfiod and DIR/state. Callers then use
#   VFIOD_BUS_ADDRESS=$(cat DIR/address) vfioctl ...
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
cmd=$1 dir=$2

start() {
	local build=$1 addr i
	shift
	mkdir -p "$dir"
	if [ ! -e "$dir/bus.pid" ] || ! kill -0 "$(cat "$dir/bus.pid")" 2>/dev/null; then
		sed -e "s|@SOCKET@|$dir/socket|" -e "s|@POLICY@|$SRC/systemd/org.vfiod1.conf|" \
			"$SRC/tests/dbus/system-like-bus.conf.in" >"$dir/bus.conf"
		dbus-daemon --config-file="$dir/bus.conf" --fork --print-address=3 \
			--print-pid=4 3>"$dir/address" 4>"$dir/bus.pid"
		chmod 0777 "$dir/socket"
	fi
	addr=$(cat "$dir/address")
	env VFIOD_BUS_ADDRESS="$addr" RUNTIME_DIRECTORY=/run/vfiod STATE_DIRECTORY="$dir/state" \
		"$@" "$build/daemon/vfiod" --debug >>"$dir/vfiod.log" 2>&1 &
	echo $! >"$dir/vfiod.pid"
	for ((i = 0; i < 200; i++)); do
		if busctl --address="$addr" status org.vfiod1 >/dev/null 2>&1; then
			echo "$addr"
			return 0
		fi
		kill -0 "$(cat "$dir/vfiod.pid")" 2>/dev/null || break
		sleep 0.05
	done
	echo "vfiod did not come up; see $dir/vfiod.log" >&2
	return 1
}

stop() { # signal pidfile
	local pid
	[ -e "$dir/$2" ] || return 0
	pid=$(cat "$dir/$2")
	kill "-$1" "$pid" 2>/dev/null || true
	# Not our child (an earlier call started it): wait for it to go.
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$dir/$2"
}

case $cmd in
start) start "${@:3}" ;;
stop) stop TERM vfiod.pid ;;
kill) stop KILL vfiod.pid ;;
down) stop TERM vfiod.pid && stop TERM bus.pid ;;
*)
	echo "usage: $0 start|stop|kill|down DIR [BUILD_DIR [VAR=VALUE...]]" >&2
	exit 2
	;;
esac
