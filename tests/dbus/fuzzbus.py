# SPDX-License-Identifier: LGPL-2.1-or-later
"""Random method calls to org.vfiod1; run as any user.

    fuzzbus.py ADDRESS COUNT SEED

Members, interfaces and paths are taken from vfiod's introspection or made
up; arguments are random values of the member's signature or of a random
one.  Prints a JSON summary: how many calls, and how many answers of each
error name (a reply counts as "reply"); exits 1 if vfiod stops answering.
"""
import json
import random
import sys
import xml.etree.ElementTree as ET

import dbus
import dbus.lowlevel

from rawcall import split_sig, to_dbus

BASIC = "ybnqiuxtdsog"
WORDS = ["0000:00:03.0", "/sys/devices/pci0000:00/0000:00:03.0", "/sys/../etc", "..", "",
         "/sys/bus/pci/devices/0000:00:03.0/vendor", "x" * 5000, "vdpa0", "driver", "group",
         "type", "uuid", "attrs", "vfs", "sf", "mac", "persistent", "83b8f4f2-509f-382f-3c1e",
         "\u00e9\u2603", "a{sv}", "/org/vfiod1", "%s%n%x", "\x7f", "nvme", "vfio-pci"]
OPTION_KEYS = ["driver", "group", "persistent", "type", "uuid", "attrs", "vfs", "assign",
               "autoprobe", "force", "vdpa", "mac", "mtu", "max_vqp", "features", "sf",
               "pfnum", "controller", "colour", ""]


def rand_sig(r, depth=0):
    c = r.random()
    if depth > 2 or c < 0.6:
        return r.choice(BASIC)
    if c < 0.75:
        return "a" + rand_sig(r, depth + 1)
    if c < 0.85:
        return "a{" + r.choice(BASIC) + rand_sig(r, depth + 1) + "}"
    if c < 0.95:
        return "(" + "".join(rand_sig(r, depth + 1) for _ in range(r.randint(1, 3))) + ")"
    return "v"


def rand_val(r, sig, depth=0):
    if sig == "s":
        return r.choice(WORDS) if r.random() < 0.7 else "".join(
            chr(r.choice([r.randint(1, 0x7f), r.randint(0x80, 0xd7ff)]))
            for _ in range(r.randint(0, 40)))
    if sig == "o":
        return r.choice(["/", "/org/vfiod1", "/org/vfiod1/device/_30000_3a00_3a03_2e0",
                         "/org/vfiod1/device/x"])
    if sig == "g":
        return r.choice(["", "s", "a{sv}", "(ii)"])
    if sig == "b":
        return r.random() < 0.5
    if sig == "d":
        return r.choice([0.0, -1.0, 1e308, float("inf")])
    if sig in "ybnqiuxt":
        bits = {"y": 8, "n": 16, "q": 16, "i": 32, "u": 32, "x": 64, "t": 64, "b": 1}[sig]
        signed = sig in "nix"
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return r.choice([lo, hi, 0, 1, r.randint(lo, hi)])
    if sig == "v":
        inner = rand_sig(r, depth + 1)
        return [inner, rand_val(r, inner, depth + 1)]
    if sig == "a{sv}" and r.random() < 0.8:
        out = []
        for _ in range(r.randint(0, 4)):
            inner = rand_sig(r, depth + 1) if r.random() < 0.5 else r.choice("sbu")
            out.append([r.choice(OPTION_KEYS), [inner, rand_val(r, inner, depth + 1)]])
        return out
    if sig.startswith("a{"):
        k, v = split_sig(sig[2:-1])
        return [[rand_val(r, k, depth + 1), rand_val(r, v, depth + 1)]
                for _ in range(r.randint(0, 3))]
    if sig.startswith("a"):
        return [rand_val(r, sig[1:], depth + 1) for _ in range(r.randint(0, 3))]
    if sig.startswith("("):
        return [rand_val(r, s, depth + 1) for s in split_sig(sig[1:-1])]
    raise ValueError(sig)


def introspect(bus, path):
    msg = dbus.lowlevel.MethodCallMessage("org.vfiod1", path,
                                          "org.freedesktop.DBus.Introspectable", "Introspect")
    xml = str(bus.send_message_with_reply_and_block(msg, 30).get_args_list()[0])
    root = ET.fromstring(xml)
    out = []
    for iface in root.findall("interface"):
        for m in iface.findall("method"):
            out.append((iface.get("name"), m.get("name"),
                        "".join(a.get("type") for a in m.findall("arg")
                                if a.get("direction", "in") == "in")))
    children = [path.rstrip("/") + "/" + n.get("name") for n in root.findall("node")]
    return out, children


def main():
    address, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    r = random.Random(seed)
    bus = dbus.bus.BusConnection(address)
    methods, todo, paths = [], ["/"], []
    while todo:
        p = todo.pop()
        paths.append(p)
        m, c = introspect(bus, p)
        methods += [(p,) + x for x in m]
        todo += c
    answers, generic = {}, []
    for _ in range(count):
        path, iface, member, sig = r.choice(methods)
        c = r.random()
        if c < 0.15:
            sig = "".join(rand_sig(r) for _ in range(r.randint(0, 3)))
        elif c < 0.2:
            member = r.choice(["Create2", "destroy", "", "Crea\u00e9te", "X" * 255])
        elif c < 0.25:
            iface = r.choice([None, "org.vfiod1.Nope", "org.vfiod1.Device"])
        if r.random() < 0.1:
            path = r.choice(paths + ["/org/vfiod1/device", "/org/vfiod1/x/y"])
        try:
            msg = dbus.lowlevel.MethodCallMessage("org.vfiod1", path, iface, member)
            if sig:
                msg.append(*[to_dbus(s, rand_val(r, s)) for s in split_sig(sig)], signature=sig)
            msg.set_allow_interactive_authorization(r.random() < 0.3)
            bus.send_message_with_reply_and_block(msg, 30)
            key = "reply"
        except dbus.exceptions.DBusException as e:
            key = e.get_dbus_name()
            if key == "org.vfiod1.Error.Failed":
                generic.append([path, iface, member, sig, e.get_dbus_message()])
            if key in ("org.freedesktop.DBus.Error.NoReply",
                       "org.freedesktop.DBus.Error.ServiceUnknown",
                       "org.freedesktop.DBus.Error.Disconnected"):
                print(json.dumps({"stopped": key, "message": e.get_dbus_message(),
                                  "path": path, "member": member, "sig": sig}))
                sys.exit(1)
        except (ValueError, TypeError, UnicodeError, OverflowError):
            key = "unsendable"
        answers[key] = answers.get(key, 0) + 1
    print(json.dumps({"calls": count, "answers": answers, "methods": len(methods),
                      "generic": generic[:10]}))


if __name__ == "__main__":
    main()
