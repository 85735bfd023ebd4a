#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Figures, not a test: Create/Destroy over D-Bus from one long-running client,
against the raw sysfs writes that do the same rebinding, interleaved (A B A B),
on one device whose drivers are already loaded.

    dbus-roundtrip.py ADDRESS PCI_NAME DRIVER ROUNDS
"""
import os
import statistics
import sys
import time

import dbus

addr, name, driver, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
dev = f"/sys/bus/pci/devices/{name}"


def write(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def host_driver():
    return os.path.basename(os.readlink(dev + "/driver"))


def raw_assign():
    write(dev + "/driver_override", driver)
    write(dev + "/driver/unbind", name)
    write("/sys/bus/pci/drivers_probe", name)


def raw_release():
    write(dev + "/driver/unbind", name)
    write(dev + "/driver_override", "\n")
    write("/sys/bus/pci/drivers_probe", name)


bus = dbus.bus.BusConnection(addr)
mgr = dbus.Interface(bus.get_object("org.vfiod1", "/org/vfiod1"), "org.vfiod1.Manager")
opts = dbus.Dictionary({"driver": dbus.String(driver)}, signature="sv")
host = host_driver()
t = {k: [] for k in ("raw-create", "raw-destroy", "dbus-create", "dbus-destroy")}
for _ in range(rounds):
    for kind in ("raw", "dbus"):
        t0 = time.monotonic()
        raw_assign() if kind == "raw" else mgr.Create(dev, opts, timeout=600)
        t1 = time.monotonic()
        assert host_driver() == driver, f"{kind} create left {host_driver()}"
        raw_release() if kind == "raw" else mgr.Destroy(name, dbus.Dictionary({}, signature="sv"),
                                                        timeout=600)
        t2 = time.monotonic()
        assert host_driver() == host, f"{kind} destroy left {host_driver()}"
        t[kind + "-create"].append((t1 - t0) * 1000)
        t[kind + "-destroy"].append((t2 - t1) * 1000)
med = {k: statistics.median(v) for k, v in t.items()}
for op in ("create", "destroy"):
    print(f"{op}: raw sysfs {med['raw-' + op]:.1f} ms, vfiod over D-Bus {med['dbus-' + op]:.1f} ms,"
          f" ratio {med['dbus-' + op] / med['raw-' + op]:.2f}x (median of {rounds})")
