# SPDX-License-Identifier: LGPL-2.1-or-later
"""Send method calls given as JSON to a bus and print each outcome; run as any user.

    rawcall.py ADDRESS CALLS.json      (or - for stdin)

CALLS: a list of {"dest", "path", "iface", "method", "sig", "args"}; "args" is
JSON made D-Bus by the signature (see to_dbus).  Output: a JSON list with
{"reply": [...]} or {"error": NAME, "message": TEXT} per call, in order.
"""
import json
import sys

import dbus
import dbus.lowlevel


def split_sig(sig):
    """'sa{sv}(ii)' -> ['s', 'a{sv}', '(ii)']"""
    out, i = [], 0
    while i < len(sig):
        j = i
        while sig[j] == "a":
            j += 1
        if sig[j] in "({":
            depth, k = 0, j
            while True:
                depth += sig[k] in "({"
                depth -= sig[k] in ")}"
                k += 1
                if depth == 0:
                    break
            j = k
        else:
            j += 1
        out.append(sig[i:j])
        i = j
    return out


BASIC = {"y": dbus.Byte, "b": dbus.Boolean, "n": dbus.Int16, "q": dbus.UInt16, "i": dbus.Int32,
         "u": dbus.UInt32, "x": dbus.Int64, "t": dbus.UInt64, "d": dbus.Double, "s": dbus.String,
         "o": dbus.ObjectPath, "g": dbus.Signature}


def to_dbus(sig, v):
    if sig in BASIC:
        return BASIC[sig](v)
    if sig == "v":  # [signature, value]
        return to_dbus_variant(v[0], v[1])
    if sig.startswith("a{"):
        k, val = split_sig(sig[2:-1])
        return dbus.Dictionary({to_dbus(k, a): to_dbus(val, b) for a, b in v}, signature=k + val)
    if sig.startswith("a"):
        return dbus.Array([to_dbus(sig[1:], e) for e in v], signature=sig[1:])
    if sig.startswith("("):
        return dbus.Struct([to_dbus(s, e) for s, e in zip(split_sig(sig[1:-1]), v)],
                           signature=sig[1:-1])
    raise ValueError(sig)


def to_dbus_variant(sig, v):
    x = to_dbus(sig, v)
    if isinstance(x, (dbus.Array, dbus.Dictionary, dbus.Struct)):
        return x
    return x.__class__(x, variant_level=1)


def main():
    address, src = sys.argv[1], sys.argv[2]
    calls = json.load(sys.stdin if src == "-" else open(src))
    bus = dbus.bus.BusConnection(address)
    out = []
    for c in calls:
        try:
            msg = dbus.lowlevel.MethodCallMessage(c.get("dest", "org.vfiod1"), c["path"],
                                                  c.get("iface") or None, c["method"])
            if c.get("sig"):
                args = [to_dbus(s, a) for s, a in zip(split_sig(c["sig"]), c["args"])]
                msg.append(*args, signature=c["sig"])
            reply = bus.send_message_with_reply_and_block(msg, c.get("timeout", 30))
            out.append({"reply": [str(x) for x in reply.get_args_list()]})
        except dbus.exceptions.DBusException as e:
            out.append({"error": e.get_dbus_name(), "message": e.get_dbus_message()})
        except (ValueError, TypeError, UnicodeError) as e:
            out.append({"unsendable": str(e)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
