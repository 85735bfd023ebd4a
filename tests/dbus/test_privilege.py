# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every method vfiod introspects, called as nobody with polkit saying no.

The methods that change anything must be refused by polkit (AccessDenied
naming the action org.vfiod1.manage, after a CheckAuthorization); the
read-only ones, listed here, must answer without asking polkit.  A new
method that is in neither set fails the test: give it an entry in
daemon/auth.c and here.  Nothing in the fixture tree or the state changes.
"""
import json
import os
import shutil
import subprocess
import unittest
import xml.etree.ElementTree as ET

import dbus

from service import PYTHON, Polkit, is_root
from test_dbus import HERE, NVME, OTHER, Base, object_path

READ_ONLY = {"Match", "List", "Describe", "MdevTypes", "VdpaManagementDevices", "Groups", "Show"}
STANDARD = ("org.freedesktop.DBus.",)


def dummy(sig, name=None):
    """A well-typed argument for SIG; a string names the definition or the device."""
    return {"s": OTHER if name == "name" else NVME, "o": "/org/vfiod1", "g": "s", "b": False, "y": 0, "n": 0, "q": 0, "i": 0,
            "u": 0, "x": 0, "t": 0, "d": 0.0, "a{sv}": [], "as": [], "v": ["s", ""]}[sig]


def run_as_nobody(address, calls):
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                        PYTHON, os.path.join(HERE, "rawcall.py"), address, "-"],
                       input=json.dumps(calls), capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    return json.loads(p.stdout)


@unittest.skipUnless(is_root() and shutil.which("setpriv"), "needs root to run callers as nobody")
class TestPrivilege(Base):
    fake_kernel = True

    def setUp(self):
        super().setUp()
        self.polkit = Polkit(self.bus)
        self.addCleanup(self.polkit.stop)

    def introspect(self, path):
        obj = self.bus.conn.get_object("org.vfiod1", path)
        xml = dbus.Interface(obj, "org.freedesktop.DBus.Introspectable").Introspect()
        root = ET.fromstring(str(xml))
        methods = []
        for iface in root.findall("interface"):
            name = iface.get("name")
            if name.startswith(STANDARD):
                continue
            for m in iface.findall("method"):
                sig = "".join(a.get("type") for a in m.findall("arg")
                              if a.get("direction", "in") == "in")
                methods.append((name, m.get("name"), [(a.get("type"), a.get("name"))
                                                      for a in m.findall("arg")
                                                      if a.get("direction", "in") == "in"], sig))
            for p in iface.findall("property"):
                methods.append((name, "@" + p.get("name"), p.get("type"), p.get("access")))
        return methods

    def test_every_mutating_method_refused_without_the_grant(self):
        # A device object exists, so its interfaces are introspected too, and a
        # definition, so that Start, Stop, Modify and Undefine reach the authorization.
        self.create(NVME)
        self.call("Define", OTHER, dbus.Dictionary({}, signature="sv"))
        defs = [e["name"] for e in json.loads(str(self.call("List"))) if e.get("defined")]
        self.assertEqual(defs, [OTHER])
        paths = ["/org/vfiod1", object_path(NVME)]
        before = (self.sys.snapshot(), self.call("List"), sorted(os.listdir(self.run_dir)))
        calls, what = [], []
        for path in paths:
            for iface, method, args, sig in self.introspect(path):
                if method.startswith("@"):
                    # Properties: none may be set by anyone.
                    calls.append({"path": path, "iface": "org.freedesktop.DBus.Properties",
                                  "method": "Set", "sig": "ssv",
                                  "args": [iface, method[1:], [args, dummy(args)]]})
                    what.append((path, iface, "Set " + method[1:]))
                    continue
                calls.append({"path": path, "iface": iface, "method": method, "sig": sig,
                              "args": [dummy(t, n) for t, n in args]})
                what.append((path, iface, method))
        self.assertGreaterEqual(len([w for w in what if not w[2].startswith("Set ")]), 12)
        results = run_as_nobody(self.bus.address, calls)
        refused = set()
        for (path, iface, method), res in zip(what, results):
            with self.subTest(path=path, method=method):
                if method.startswith("Set "):
                    self.assertIn("error", res)
                    continue
                if method in READ_ONLY:
                    self.assertNotEqual(res.get("error"), "org.freedesktop.DBus.Error.AccessDenied",
                                        res)
                    continue
                self.assertEqual(res.get("error"), "org.freedesktop.DBus.Error.AccessDenied", res)
                # Refused by polkit for the manage action, not for lack of a rule.
                self.assertIn("org.vfiod1.manage", res["message"])
                self.assertNotIn("without an authorization rule", res["message"])
                refused.add(method)
        self.assertTrue({"Create", "Destroy", "Define", "Modify", "Undefine", "Start",
                         "Stop"} <= refused, refused)
        asked = [str(c[1]) for c in self.polkit.checks()]
        self.assertEqual(len(asked), len(refused), asked)
        self.assertEqual(set(asked), {"org.vfiod1.manage"})
        after = (self.sys.snapshot(), self.call("List"), sorted(os.listdir(self.run_dir)))
        self.assertEqual(before, after)
        print(f"\nprivilege: {len(calls)} calls as nobody, {len(refused)} mutating methods "
              f"refused ({', '.join(sorted(refused))}), {len(READ_ONLY)} read-only answered")
        self.destroy(NVME)
        self.call("Undefine", OTHER)
        self.assert_consistent()

    def test_grant_of_another_action_does_not_help(self):
        self.polkit.allow(["org.freedesktop.other"])
        res = run_as_nobody(self.bus.address, [
            {"path": "/org/vfiod1", "iface": "org.vfiod1.Manager", "method": "Create",
             "sig": "sa{sv}", "args": [NVME, []]}])
        self.assertEqual(res[0].get("error"), "org.freedesktop.DBus.Error.AccessDenied", res)
        self.assertEqual(self.driver_of(NVME), "nvme")


if __name__ == "__main__":
    unittest.main()
