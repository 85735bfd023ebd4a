# SPDX-License-Identifier: LGPL-2.1-or-later
"""Send many method calls at once, without waiting for any, and report each; run as any user.

    floodcall.py ADDRESS CONNECTIONS WAIT_SEC CALLS.json   (or - for stdin)

CALLS as for rawcall.py, each optionally with "interactive": true (the
allow-interactive-authorization flag).  The calls are spread round-robin over
CONNECTIONS connections and all sent before any answer is read; then answers
are collected for WAIT_SEC seconds.  Output: a JSON list, in order, of
{"reply": [...], "sec": S}, {"error": NAME, "message": TEXT, "sec": S} or
{"pending": true} for a call not answered by then.
"""
import json
import sys
import time

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
from gi.repository import GLib

from rawcall import split_sig, to_dbus


def main():
    address, nconn, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    calls = json.load(sys.stdin if sys.argv[4] == "-" else open(sys.argv[4]))
    loop = dbus.mainloop.glib.DBusGMainLoop()
    conns = [dbus.bus.BusConnection(address, mainloop=loop) for _ in range(nconn)]
    out = [{"pending": True} for _ in calls]
    t0 = time.monotonic()

    def handler(i):
        def on_reply(msg):
            sec = round(time.monotonic() - t0, 3)
            if isinstance(msg, dbus.lowlevel.ErrorMessage):
                args = msg.get_args_list()
                out[i] = {"error": msg.get_error_name(), "message": str(args[0]) if args else "",
                          "sec": sec}
            else:
                out[i] = {"reply": [str(x) for x in msg.get_args_list()], "sec": sec}
        return on_reply

    for i, c in enumerate(calls):
        msg = dbus.lowlevel.MethodCallMessage(c.get("dest", "org.vfiod1"), c["path"],
                                              c.get("iface") or None, c["method"])
        if c.get("sig"):
            msg.append(*[to_dbus(s, a) for s, a in zip(split_sig(c["sig"]), c["args"])],
                       signature=c["sig"])
        if c.get("interactive"):
            msg.set_allow_interactive_authorization(True)
        conns[i % nconn].send_message_with_reply(msg, handler(i), timeout_s=wait + 60,
                                                 require_main_loop=True)
    ctx = GLib.MainContext.default()
    end = time.monotonic() + wait
    while time.monotonic() < end and any("pending" in o for o in out):
        while ctx.pending():
            ctx.iteration(False)
        time.sleep(0.01)
    json.dump(out, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
