# SPDX-License-Identifier: LGPL-2.1-or-later
"""One client of the stress test: random calls to org.vfiod1 for a while.

    stressclient.py ADDRESS SECONDS SEED DEVICE[,group]...

Each call is Create, Destroy, Define, Undefine, Match, List or Describe on one
of the devices (",group": one of a multi-device group, created with group).
Prints a JSON object: answers per method and outcome, the longest call (s).
"""
import json
import os
import random
import sys
import time

import dbus

address, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
devices = [d.split(",") for d in sys.argv[4:]]
r = random.Random(seed)
METHODS = os.environ.get("VFIOD_STRESS_METHODS", "").split(",") if os.environ.get(
    "VFIOD_STRESS_METHODS") else ["Create", "Create", "Destroy", "Destroy", "Define", "Undefine",
                                  "Match", "List", "Describe"]
bus = dbus.bus.BusConnection(address)
mgr = dbus.Interface(bus.get_object("org.vfiod1", "/org/vfiod1", introspect=False),
                     "org.vfiod1.Manager")
out = {"answers": {}, "longest": 0.0, "calls": 0, "generic": []}
end = time.monotonic() + seconds
while time.monotonic() < end:
    dev = r.choice(devices)
    name, grouped = dev[0], len(dev) > 1
    method = r.choice(METHODS)
    opts = dbus.Dictionary({}, signature="sv")
    if method in ("Create", "Define") and grouped and r.random() < 0.8:
        opts["group"] = dbus.Boolean(True)
    args = {"Create": (name, opts), "Destroy": (name, dbus.Dictionary({}, signature="sv")),
            "Define": (name, opts), "Undefine": (name,), "Match": (name,), "List": (),
            "Describe": ()}[method]
    t0 = time.monotonic()
    try:
        getattr(mgr, method)(*args, timeout=120)
        key = "ok"
    except dbus.exceptions.DBusException as e:
        key = e.get_dbus_name()
        if key in ("org.vfiod1.Error.Failed", "org.freedesktop.DBus.Error.NoMemory",
                   "org.freedesktop.DBus.Error.Failed") and len(out["generic"]) < 5:
            out["generic"].append([method, [str(a) for a in args], e.get_dbus_message()])
    dt = time.monotonic() - t0
    out["longest"] = max(out["longest"], dt)
    out["calls"] += 1
    k = f"{method} {key}"
    out["answers"][k] = out["answers"].get(k, 0) + 1
print(json.dumps(out))
