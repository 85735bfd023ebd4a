# SPDX-License-Identifier: LGPL-2.1-or-later
"""Call one method of org.vfiod1 and print the outcome as JSON; run as any user.

    call.py ADDRESS METHOD [JSON-ARGS]     (ARGS: a JSON list)
Options for Create/Destroy are given as a JSON object and sent as a{sv}.
"""
import json
import sys

import dbus

address, method = sys.argv[1], sys.argv[2]
args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else []
interactive = "--interactive" in sys.argv
bus = dbus.bus.BusConnection(address)
obj = bus.get_object("org.vfiod1", "/org/vfiod1", introspect=False)
conv = []
for a in args:
    if isinstance(a, dict):
        conv.append(dbus.Dictionary(a, signature="sv"))
    else:
        conv.append(a)
try:
    if interactive:
        # dbus-python cannot set the flag; send the message by hand.
        msg = dbus.lowlevel.MethodCallMessage("org.vfiod1", "/org/vfiod1", "org.vfiod1.Manager",
                                              method)
        msg.append(*conv, signature="sa{sv}")
        msg.set_allow_interactive_authorization(True)
        reply = bus.send_message_with_reply_and_block(msg, 30)
        out = [str(x) for x in reply.get_args_list()]
    else:
        out = obj.get_dbus_method(method, "org.vfiod1.Manager")(*conv, timeout=30)
        out = [str(x) for x in out] if isinstance(out, tuple) else [str(out)]
    print(json.dumps({"reply": out}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
