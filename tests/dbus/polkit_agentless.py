# SPDX-License-Identifier: LGPL-2.1-or-later
"""A dbusmock template: polkitd as it behaves when the action needs an
administrator's password and the caller's authentication agent never answers.

    python3 -m dbusmock --system --template tests/dbus/polkit_agentless.py

Like the real polkitd it asks the bus who the subject (a system-bus-name) is.
A uid given to SetAllowedUids() is allowed at once, as a polkit rule granting
it would be; any other caller is refused at once, unless the call allows
interaction: then the check waits for the agent, which never answers, until
ReleaseHanging() refuses them all.  Every call is recorded by dbusmock
(GetMethodCalls), details included.
"""
import dbus

from dbusmock import MOCK_IFACE

BUS_NAME = "org.freedesktop.PolicyKit1"
MAIN_OBJ = "/org/freedesktop/PolicyKit1/Authority"
MAIN_IFACE = "org.freedesktop.PolicyKit1.Authority"
SYSTEM_BUS = True
ALLOW_INTERACTION = 1


def load(mock, _parameters):
    mock.AddProperties(MAIN_IFACE, dbus.Dictionary({
        "BackendName": "agentless", "BackendVersion": "0",
        "BackendFeatures": dbus.UInt32(1, variant_level=1)}, signature="sv"))
    mock.allowed_uids = set()
    mock.hanging = []


@dbus.service.method(MAIN_IFACE, in_signature="(sa{sv})sa{ss}us", out_signature="(bba{ss})",
                     async_callbacks=("ok_cb", "_err_cb"))
def CheckAuthorization(self, subject, _action_id, _details, flags, _cancellation_id, ok_cb,
                       _err_cb):
    uid = None
    if subject[0] == "system-bus-name":
        uid = int(self.connection.get_unix_user(str(subject[1]["name"])))
    if uid in self.allowed_uids:
        ok_cb((True, False, {}))
    elif flags & ALLOW_INTERACTION:
        self.hanging.append(ok_cb)
    else:
        ok_cb((False, True, {}))


@dbus.service.method(MOCK_IFACE, in_signature="au", out_signature="")
def SetAllowedUids(self, uids):
    self.allowed_uids = {int(u) for u in uids}


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="u")
def HangingCount(self):
    return len(self.hanging)


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="u")
def ReleaseHanging(self):
    """The agent gives up: every waiting check is refused."""
    n = len(self.hanging)
    for cb in self.hanging:
        cb((False, False, {}))
    self.hanging = []
    return n
