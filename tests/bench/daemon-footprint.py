#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Figures, not a test: vfiod's footprint on a private bus and a fixture tree.

    daemon-footprint.py BUILD_DIR MODULES_DIR [--devices N] [--idle SECONDS]

For an empty tree and for one with N assigned functions (vfiod-bench records
writes libvfiod's records, as vfiod would after N creates): the time from
exec to the bus name org.vfiod1 acquired (NameOwnerChanged seen by a client
already on the bus), and to the last of the N device objects announced
(vfiod reads its records after taking the name: InterfacesAdded), the
device objects it then serves, VmRSS at that point and after the idle period, and the context switches of all of vfiod's
threads over the idle period (voluntary + involuntary, /proc/PID/task/*/status),
as wakeups per minute.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "../.."))


def switches(pid):
    n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    n += int(line.split()[1])
    return n


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(args, tmp, label, n):
    root = os.path.join(tmp, label, "sys")
    run = os.path.join(tmp, label, "run")
    env = dict(os.environ, VFIOD_SYSFS_ROOT=root, RUNTIME_DIRECTORY=run,
               STATE_DIRECTORY=os.path.join(tmp, label, "state"),
               VFIOD_MODULES_DIR=args.modules_dir, VFIOD_NO_KERNEL="1")
    subprocess.run([sys.executable, os.path.join(HERE, "mkfixture.py"), root, str(n)],
                   check=True, stdout=subprocess.DEVNULL)
    if n:
        subprocess.run([os.path.join(args.build, "tests/bench/vfiod-bench"), "records"],
                       env=env, check=True)
    bus_dir = os.path.join(tmp, "bus")
    addr = subprocess.run([os.path.join(SRC, "tests/dbus/vfiod-private-bus.sh"), "start",
                           bus_dir, args.build], check=True, capture_output=True,
                          text=True).stdout.strip()
    # That started a vfiod on the empty default tree: stop it, keep the bus.
    subprocess.run([os.path.join(SRC, "tests/dbus/vfiod-private-bus.sh"), "stop", bus_dir],
                   check=True)
    env["VFIOD_BUS_ADDRESS"] = addr
    bus = dbus.bus.BusConnection(addr, mainloop=dbus.mainloop.glib.DBusGMainLoop())
    loop = GLib.MainLoop()
    got = {}

    added = set()

    def owner_changed(name, old, new):
        if name == "org.vfiod1" and new:
            got["t"] = time.monotonic()
            if not n:
                loop.quit()

    def interfaces_added(path, ifaces):
        if "/device/" in path:
            added.add(str(path))
            if len(added) == n:
                got["loaded"] = time.monotonic()
                loop.quit()

    bus.add_signal_receiver(interfaces_added, "InterfacesAdded",
                            "org.freedesktop.DBus.ObjectManager", None, "/org/vfiod1")

    bus.add_signal_receiver(owner_changed, "NameOwnerChanged", "org.freedesktop.DBus",
                            "org.freedesktop.DBus", "/org/freedesktop/DBus")
    bus.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                      "GetId", "", [])  # the match rule is in place
    log = open(os.path.join(tmp, label + "-vfiod.log"), "w")
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(args.build, "daemon/vfiod")], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
    GLib.timeout_add_seconds(120, loop.quit)
    loop.run()
    if "t" not in got:
        p.kill()
        sys.exit(f"vfiod did not take the bus name; see {log.name}")
    ready_ms = (got["t"] - t0) * 1000
    loaded_ms = (got.get("loaded", got["t"]) - t0) * 1000
    mgr = dbus.Interface(bus.get_object("org.vfiod1", "/org/vfiod1"),
                         "org.freedesktop.DBus.ObjectManager")
    objects = [o for o in mgr.GetManagedObjects() if "/device/" in o]
    time.sleep(1)  # start-up jobs, if any, settle
    rss0 = rss_kib(p.pid)
    s0 = switches(p.pid)
    time.sleep(args.idle)
    s1 = switches(p.pid)
    rss1 = rss_kib(p.pid)
    p.terminate()
    p.wait()
    subprocess.run([os.path.join(SRC, "tests/dbus/vfiod-private-bus.sh"), "down", bus_dir],
                   check=True)
    shutil.rmtree(bus_dir, ignore_errors=True)
    print("%-8d %8d %12.1f %12.1f %10d %10d %14.1f" % (n, len(objects), ready_ms, loaded_ms,
                                                       rss0, rss1,
                                                       (s1 - s0) * 60.0 / args.idle))
    if len(objects) != n:
        sys.exit(f"vfiod serves {len(objects)} device objects, expected {n}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("modules_dir")
    ap.add_argument("--devices", type=int, default=4096)
    ap.add_argument("--idle", type=float, default=60)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="vfiod-footprint.")
    try:
        print("%-8s %8s %12s %12s %10s %10s %14s" % ("devices", "objects", "name_ms",
                                                      "objects_ms", "rss_kib", "rss_idle",
                                                      "wakeups/min"))
        for label, n in (("empty", 0), ("full", args.devices)):
            measure(args, tmp, label, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
