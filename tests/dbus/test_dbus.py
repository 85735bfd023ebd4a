# SPDX-License-Identifier: LGPL-2.1-or-later
"""vfiod and vfioctl on a private dbus-daemon, against fixture sysfs trees."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sysfs"))

from fakekernel import DeviceLock, FakeKernel  # noqa: E402
from fixture import ModulesDir, Sysfs, tempdir  # noqa: E402
import ptyrun  # noqa: E402
from service import PYTHON, SOURCE, Bus, Polkit, Vfiod, is_root  # noqa: E402

VFIOCTL = os.environ.get("VFIOCTL", "vfioctl")
MAN = os.path.join(SOURCE, "man", "org.vfiod1.5")

NVME = "0000:00:03.0"
NVME_PATH = "/sys/devices/pci0000:00/0000:00:03.0"
OTHER = "0000:00:04.0"
VDSUB = "vfio-fixture-vdsub"
MANAGER = "org.vfiod1.Manager"
DEVICE = "org.vfiod1.Device"
PROPS = "org.freedesktop.DBus.Properties"
ERR = "org.vfiod1.Error."

ALIAS_VFIO_PCI = "vfio_pci:v*d*sv*sd*bc*sc*i*"
ALIAS_VDSUB = "vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc*sc*i*"
ALIAS_OTHER = "vfio_pci:v00001B36d00000005sv*sd*bc*sc*i*"


def object_path(name):
    # sd_bus_path_encode(): every byte but [A-Za-z0-9], and a leading digit, as _xx.
    return "/org/vfiod1/device/" + "".join(
        c if c.isascii() and (c.isalpha() or (c.isdigit() and i > 0)) else "_%02x" % ord(c)
        for i, c in enumerate(name))


class Inotify:
    """The names made or moved into DIR while in the with block (inotify, through libc)."""
    IN_CREATE, IN_MOVED_TO = 0x100, 0x80

    def __init__(self, path):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(
                self.fd, os.fsencode(path), self.IN_CREATE | self.IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify " + path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

    def names(self):
        import struct
        out = []
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return out
        while buf:
            _, _, _, n = struct.unpack_from("iIII", buf)
            out.append(buf[16:16 + n].rstrip(b"\0").decode())
            buf = buf[16 + n:]
        return out


class Base(unittest.TestCase):
    fake_kernel = False
    timeout_sec = "30"

    def setUp(self):
        self.tmp = tempdir()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sys = Sysfs(os.path.join(self.tmp, "sys"))
        self.mods = ModulesDir(os.path.join(self.tmp, "modroot"))
        self.run_dir = os.path.join(self.tmp, "run")
        self.state_dir = os.path.join(self.tmp, "state")
        self.sys.driver("nvme", "nvme")
        self.sys.pci(NVME, 0x1b36, 0x0010, driver="nvme", group=3)
        self.sys.pci(OTHER, 0x1b36, 0x0005, cls=0x00ff00, group=4)
        self.mods.add("vfio_pci", [ALIAS_VFIO_PCI])
        self.mods.add("vfio_fixture_vdsub", [ALIAS_VDSUB])
        self.mods.add("vfio_fixture_other", [ALIAS_OTHER])
        self.mods.add("nvme", ["pci:v*d*sv*sd*bc01sc08i02*"])
        self.mods.depmod()
        self.sys.module("vfio_fixture_vdsub", [VDSUB])
        self.sys.module("vfio_pci", ["vfio-pci"])
        self.sys.module("vfio_fixture_other", ["vfio-fixture-other"])
        self.extra_fixture()

        self.bus = Bus(self.tmp)
        self.addCleanup(self.bus.stop)
        self.env = dict(os.environ, VFIOD_SYSFS_ROOT=self.sys.root,
                        VFIOD_MODULES_DIR=self.mods.dir, RUNTIME_DIRECTORY=self.run_dir,
                        STATE_DIRECTORY=self.state_dir,
                        CONFIGURATION_DIRECTORY=os.path.join(self.tmp, "etc"),
                        VFIOD_NO_KERNEL="1", VFIOD_BUS_ADDRESS=self.bus.address,
                        VFIOD_OPERATION_TIMEOUT_SEC=self.timeout_sec)
        self.env.pop("VFIOD_ABORT_AT", None)
        self.kernel = None
        if self.fake_kernel:
            self.kernel = FakeKernel(self.sys, {NVME: "nvme", **self.native()})
            self.addCleanup(self.kernel.close)
        self.signals = []
        self.bus.conn.add_signal_receiver(self.on_signal, path_keyword="path",
                                          member_keyword="member", sender_keyword="sender")
        self.vfiod = None
        self.start_vfiod()

    def extra_fixture(self):
        pass

    def native(self):
        return {}

    def on_signal(self, *args, path=None, member=None, sender=None):
        if member in ("InterfacesAdded", "InterfacesRemoved", "PropertiesChanged"):
            self.signals.append((member, str(path), args))
        elif member == "Progress" and path == "/org/vfiod1":
            self.signals.append((member, str(path), json.loads(str(args[0]))))

    def start_vfiod(self, **env):
        e = dict(self.env, **env)
        self.vfiod = Vfiod(self.bus, e, os.path.join(self.tmp, "vfiod.log"))
        self.addCleanup(self.stop_vfiod)
        return self.vfiod

    def stop_vfiod(self, expect_rc=0):
        if not self.vfiod:
            return
        v, self.vfiod = self.vfiod, None
        rc = v.stop()
        out = v.output()
        self.assertNotIn("AddressSanitizer", out)
        self.assertNotIn("runtime error", out)
        self.assertNotIn("LeakSanitizer", out)
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, out)

    # Calls.
    def manager(self):
        return dbus.Interface(self.bus.conn.get_object("org.vfiod1", "/org/vfiod1"), MANAGER)

    def call(self, method, *args, timeout=60):
        return getattr(self.manager(), method)(*args, timeout=timeout)

    def create(self, path, **options):
        o, j = self.call("Create", path, dbus.Dictionary(options, signature="sv"))
        return str(o), json.loads(str(j))

    def destroy(self, path):
        return json.loads(str(self.call("Destroy", path, dbus.Dictionary({}, signature="sv"))))

    def error_of(self, method, *args):
        with self.assertRaises(dbus.exceptions.DBusException) as c:
            self.call(method, *args)
        return c.exception.get_dbus_name(), c.exception.get_dbus_message()

    def props(self, path):
        obj = self.bus.conn.get_object("org.vfiod1", path)
        p = dbus.Interface(obj, PROPS).GetAll(DEVICE)
        return {str(k): (list(map(str, v)) if isinstance(v, dbus.Array) else
                         bool(v) if isinstance(v, dbus.Boolean) else
                         int(v) if isinstance(v, dbus.Int32) else str(v)) for k, v in p.items()}

    def objects(self):
        obj = self.bus.conn.get_object("org.vfiod1", "/org/vfiod1")
        mo = dbus.Interface(obj, "org.freedesktop.DBus.ObjectManager").GetManagedObjects()
        return {str(k): v for k, v in mo.items()}

    def describe(self):
        return json.loads(str(self.call("Describe")))

    def idle(self):
        self.bus.wait_for(lambda: not self.describe()["operations"], what="no operations")

    def vfioctl(self, *args, rc=0, env=None, user=None):
        cmd = [VFIOCTL, *args]
        if user:
            cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", "--"] + cmd
        p = subprocess.run(cmd, env=env or self.env, capture_output=True, text=True, timeout=120)
        if rc is not None:
            self.assertEqual(p.returncode, rc,
                             f"vfioctl {' '.join(args)}: rc {p.returncode}\n{p.stdout}{p.stderr}")
        self.assertNotIn("runtime error", p.stderr)
        self.assertNotIn("AddressSanitizer", p.stderr)
        return p

    # The fixture tree.
    def driver_of(self, name):
        link = os.path.join(self.sys.root, "bus/pci/devices", name, "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def override_of(self, name):
        with open(os.path.join(self.sys.root, "bus/pci/devices", name, "driver_override")) as f:
            v = f.read().strip()
        return None if v in ("", "(null)") else v

    def record_exists(self, name):
        return os.path.exists(os.path.join(self.run_dir, "assigned", name + ".json"))

    def journal(self):
        d = os.path.join(self.run_dir, "journal")
        return sorted(f for f in os.listdir(d) if not f.startswith(".")) if os.path.isdir(d) else []

    def assert_consistent(self):
        """Objects, libvfiod's records and the tree tell the same story; nothing half-done."""
        self.idle()
        self.assertEqual(self.journal(), [])
        listed = {e["name"]: e for e in json.loads(str(self.call("List")))}
        objs = self.objects()
        for name, e in listed.items():
            if e["state"] == "defined":
                # Defined and not made: a definition, and nothing of it active.
                self.assertTrue(os.path.exists(os.path.join(self.state_dir, "devices",
                                                            name + ".json")), e)
                self.assertNotIn(object_path(name), objs, e)
                continue
            self.assertEqual(e["state"], "assigned", e)
            self.assertIn(object_path(name), objs)
            self.assertEqual(self.props(object_path(name))["State"], "assigned")
        for path in objs:
            p = self.props(path)
            self.assertEqual(p["State"], "assigned", p)
            self.assertTrue(p["Driver"].startswith("vfio"), p)
            self.assertEqual(self.driver_of(p["Name"]), p["Driver"])
        for name in os.listdir(os.path.join(self.sys.root, "bus/pci/devices")):
            drv = self.driver_of(name)
            if drv is None:
                self.assertIsNone(self.kernel and self.kernel.native.get(name), name + " driverless")


class TestParity(Base):
    """What vfiod answers is what libvfiod gives vfioctl --direct, byte for byte."""

    def test_match_byte_identical(self):
        for path in (NVME, "00:03.0", "/sys/bus/pci/devices/" + NVME, NVME_PATH, OTHER,
                     self.sys.root + "/bus/pci/devices/" + OTHER):
            with self.subTest(path=path):
                direct = self.vfioctl("--direct", "-j", "match", path).stdout
                self.assertEqual(str(self.call("Match", path)) + "\n", direct)
                self.assertEqual(self.vfioctl("-j", "match", path).stdout, direct)
                for mode in ((), ("-p",)):
                    self.assertEqual(self.vfioctl(*mode, "match", path).stdout,
                                     self.vfioctl("--direct", *mode, "match", path).stdout)

    def test_groups_identical(self):
        for which in ("", "3", OTHER):
            with self.subTest(which=which):
                arg = [which] if which else []
                direct = self.vfioctl("--direct", "-j", "groups", *arg).stdout
                self.assertEqual(str(self.call("Groups", which)) + "\n", direct)
                self.assertEqual(self.vfioctl("groups", *arg).stdout,
                                 self.vfioctl("--direct", "groups", *arg).stdout)
        self.assertEqual(json.loads(str(self.call("Groups", "")))[0]["group"], 3)
        for path in (NVME, OTHER):
            with self.subTest(show=path):
                self.assertEqual(str(self.call("Show", path)) + "\n",
                                 self.vfioctl("--direct", "-j", "show", path).stdout)
                self.assertEqual(self.vfioctl("show", path).stdout,
                                 self.vfioctl("--direct", "show", path).stdout)
        self.assertEqual(self.error_of("Show", "0000:00:09.0")[0], ERR + "NoSuchDevice")
        # An empty path is a bad path, for every method that reads one (vfiod lives on).
        for method in ("Match", "Show", "MdevTypes"):
            with self.subTest(empty=method):
                self.assertEqual(self.error_of(method, "")[0], ERR + "InvalidPath")
        name, msg = self.error_of("Groups", "0000:00:09.0")
        self.assertEqual(name, ERR + "NoSuchDevice")

    def test_list_identical(self):
        self.assertEqual(str(self.call("List")) + "\n",
                         self.vfioctl("--direct", "-j", "list").stdout)
        self.assertEqual(self.vfioctl("list").stdout, self.vfioctl("--direct", "list").stdout)

    def test_errors_named_and_worded_as_direct(self):
        self.sys.driver("ahci", "ahci")
        self.sys.pci("0000:00:06.0", 0x8086, 0x1234, cls=0x020000, group=6)
        self.sys.pci("0000:00:06.1", 0x8086, 0x2922, cls=0x010601, driver="ahci", group=6)
        self.sys.pci("0000:00:05.0", 0x1b36, 0x0010, driver="nvme")
        E = dbus.Dictionary({}, signature="sv")
        cases = [
            (("create", "0000:00:09.0"), ("Create", "0000:00:09.0", E), "NoSuchDevice"),
            (("create", "/etc/passwd"), ("Create", "/etc/passwd", E), "InvalidPath"),
            (("create", NVME_PATH + "/vendor"), ("Create", NVME_PATH + "/vendor", E),
             "InvalidPath"),
            (("match", "eth0"), ("Match", "eth0"), "InvalidPath"),
            (("create", "0000:00:06.0"), ("Create", "0000:00:06.0", E), "GroupNotViable"),
            (("create", "0000:00:05.0"), ("Create", "0000:00:05.0", E), "NotSupported"),
            (("create", NVME, "driver", "vfio-fixture-other"),
             ("Create", NVME, dbus.Dictionary({"driver": "vfio-fixture-other"}, signature="sv")),
             "NoDriver"),
            (("destroy", OTHER), ("Destroy", OTHER, E), "NotAssigned"),
            # A fixture tree never binds: verify fails and everything is undone.
            (("create", NVME), ("Create", NVME, E), "Failed"),
        ]
        for argv, call, name in cases:
            with self.subTest(argv=argv):
                before = self.sys.snapshot()
                got, msg = self.error_of(*call)
                self.assertEqual(got, ERR + name, msg)
                bus = self.vfioctl(*argv, rc=1).stderr
                direct = self.vfioctl("--direct", *argv, rc=1).stderr
                self.assertEqual(bus, direct)
                self.assertEqual(bus, f"vfioctl: {argv[0]}: {msg}\n")
                if name != "Failed":
                    self.assertEqual(before, self.sys.snapshot())
        self.assertEqual(self.objects(), {})
        self.assertEqual(self.journal(), [])

    def test_unreachable_daemon(self):
        env = dict(self.env, VFIOD_BUS_ADDRESS="unix:path=" + os.path.join(self.tmp, "nobus"))
        p = self.vfioctl("list", rc=1, env=env)
        self.assertIn("vfioctl: list: cannot reach vfiod on unix:path=", p.stderr)
        self.assertIn("--direct", p.stderr)
        self.stop_vfiod()
        p = self.vfioctl("-j", "match", NVME, rc=1)
        self.assertIn("cannot reach vfiod", p.stderr)
        self.assertIn("--direct", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_resolver_needs_direct(self):
        p = self.vfioctl("--resolver=user", "list", rc=2)
        self.assertIn("--resolver needs --direct", p.stderr)


class TestOptions(Base):
    def test_invalid_args_name_the_key(self):
        before = self.sys.snapshot()
        cases = [
            ({"colour": dbus.String("blue")}, '"colour"'),
            ({"driver": dbus.Int32(3)}, '"driver" must be of type s, not i'),
            ({"group": dbus.String("yes")}, '"group" must be of type b, not s'),
            ({"persistent": dbus.UInt32(1)}, '"persistent" must be of type b, not u'),
            ({"driver": dbus.String("")}, '"driver"'),
            ({"driver": dbus.String("../x")}, '"driver"'),
        ]
        for opts, words in cases:
            with self.subTest(opts=opts):
                name, msg = self.error_of("Create", NVME, dbus.Dictionary(opts, signature="sv"))
                self.assertEqual(name, "org.freedesktop.DBus.Error.InvalidArgs")
                self.assertIn(words, msg)
        # Words that quote a value cut to a length stay UTF-8, or the reply is never sent.
        for method, path in (("Create", NVME), ("Define", NVME), ("Modify", "x")):
            with self.subTest(method=method):
                name, msg = self.error_of(method, path, dbus.Dictionary(
                    {"driver": dbus.String("x" + "\u00e9" * 100)}, signature="sv"))
                self.assertEqual(name, "org.freedesktop.DBus.Error.InvalidArgs")
                self.assertIn('"driver"', msg)
        name, msg = self.error_of("Destroy", NVME,
                                  dbus.Dictionary({"group": dbus.Boolean(True)}, signature="sv"))
        self.assertEqual(name, "org.freedesktop.DBus.Error.InvalidArgs")
        self.assertIn('"group"', msg)
        self.assertEqual(before, self.sys.snapshot())
        self.assertEqual(self.objects(), {})


class TestObjects(Base):
    fake_kernel = True

    def test_create_destroy_objects_properties_signals(self):
        path, result = self.create(NVME)
        self.assertEqual(path, object_path(NVME))
        self.assertTrue(result["changed"])
        self.assertEqual(result["driver"], VDSUB)
        self.assertEqual(result["previous_driver"], "nvme")
        self.assertEqual(self.driver_of(NVME), VDSUB)
        self.assertEqual(self.props(path), {
            "SysfsPath": NVME_PATH, "Name": NVME, "Kind": "pci", "Driver": VDSUB,
            "PreviousDriver": "nvme", "IommuGroup": 3, "VfioNodes": ["/dev/vfio/3"],
            "State": "assigned", "Persistent": False})
        self.bus.wait_for(lambda: any(s[0] == "PropertiesChanged" and s[1] == path and
                                      s[2][1].get("State") == "assigned" for s in self.signals),
                          what="PropertiesChanged State=assigned")
        added = [s for s in self.signals if s[0] == "InterfacesAdded"]
        self.assertEqual(str(added[0][2][0]), path)
        self.assertIn(DEVICE, added[0][2][1])
        self.assertEqual(str(added[0][2][1][DEVICE]["State"]), "assigning")
        changed = [str(s[2][1]["State"]) for s in self.signals
                   if s[0] == "PropertiesChanged" and "State" in s[2][1]]
        self.assertEqual(changed, ["assigned"])
        self.assertIn(path, self.objects())
        self.assertEqual(self.journal(), [])
        self.assert_consistent()

        # The same again: nothing to do, still assigned.
        path2, again = self.create(NVME)
        self.assertEqual(path2, path)
        self.assertFalse(again["changed"])
        self.assertEqual(self.props(path)["State"], "assigned")

        self.bus.wait_for(lambda: [str(s[2][1]["State"]) for s in self.signals
                                   if s[0] == "PropertiesChanged" and "State" in s[2][1]][-2:] ==
                          ["assigning", "assigned"], what="the second create's signals")
        self.signals.clear()
        out = self.destroy(NVME_PATH)
        self.assertTrue(out["restored"])
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIsNone(self.override_of(NVME))
        self.assertEqual(self.objects(), {})
        self.bus.wait_for(lambda: any(s[0] == "InterfacesRemoved" and str(s[2][0]) == path
                                      for s in self.signals), what="InterfacesRemoved")
        states = [str(s[2][1]["State"]) for s in self.signals
                  if s[0] == "PropertiesChanged" and "State" in s[2][1]]
        self.assertEqual(states, ["releasing"])
        self.assert_consistent()
        self.assertFalse(self.record_exists(NVME))

    def test_cli_prints_the_same_over_the_bus(self):
        outputs = {}
        for mode in ("bus", "direct"):
            pre = () if mode == "bus" else ("--direct",)
            c = self.vfioctl(*pre, "create", NVME).stdout
            lj = self.vfioctl(*pre, "-j", "list").stdout
            lt = self.vfioctl(*pre, "list").stdout
            d = self.vfioctl(*pre, "destroy", NVME).stdout
            outputs[mode] = (c, lj, lt, d)
        self.assertEqual(outputs["bus"], outputs["direct"])
        self.assertIn(f"{NVME}: assigned to {VDSUB} (was nvme), IOMMU group 3", outputs["bus"][0])
        self.assertIn(f"{NVME}: released, nvme", outputs["bus"][3])

    def test_destroy_by_name_and_path_forms(self):
        for form in (NVME, "00:03.0", NVME_PATH, "/sys/bus/pci/devices/" + NVME):
            with self.subTest(form=form):
                self.create(NVME)
                self.destroy(form)
                self.assertEqual(self.driver_of(NVME), "nvme")
                self.assertEqual(self.objects(), {})

    def test_driver_option(self):
        path, result = self.create(NVME, driver=dbus.String("vfio-pci"))
        self.assertEqual(result["driver"], "vfio-pci")
        self.assertEqual(self.props(path)["Driver"], "vfio-pci")
        self.destroy(NVME)


def group_of_two(sys):
    """Two nvme functions in IOMMU group 7: neither can be assigned alone. Their
    native drivers, for the fake kernel."""
    sys.pci("0000:00:07.0", 0x1b36, 0x0010, driver="nvme", group=7)
    sys.pci("0000:00:07.1", 0x1b36, 0x0010, driver="nvme", group=7)
    return {"0000:00:07.0": "nvme", "0000:00:07.1": "nvme"}


class TestGroup(Base):
    fake_kernel = True

    def extra_fixture(self):
        self.group_native = group_of_two(self.sys)

    def native(self):
        return self.group_native

    def test_group_option_assigns_every_member(self):
        name, _ = self.error_of("Create", "0000:00:07.0", {})
        self.assertEqual(name, ERR + "GroupNotViable")
        path, result = self.create("0000:00:07.0", group=dbus.Boolean(True))
        self.assertEqual(path, object_path("0000:00:07.0"))
        self.assertEqual(sorted(r["name"] for r in result), ["0000:00:07.0", "0000:00:07.1"])
        self.assertEqual(sorted(self.objects()),
                         sorted([object_path("0000:00:07.0"), object_path("0000:00:07.1")]))
        self.assert_consistent()
        self.destroy("0000:00:07.1")
        self.destroy("0000:00:07.0")
        self.assertEqual(self.objects(), {})
        self.assert_consistent()

    def progress(self):
        return [s[2] for s in self.signals if s[0] == "Progress"]

    def test_progress_signals_follow_the_members(self):
        self.signals.clear()
        self.create("0000:00:07.0", group=dbus.Boolean(True))
        # Signals sent before the reply are in the bus's order before it; pumped with the next.
        self.bus.wait_for(lambda: self.progress(), what="Progress")
        p = self.progress()
        me = self.bus.conn.get_unique_name()
        self.assertEqual({(o["operation"], o["name"], o["kind"], o["caller"], o["trigger"],
                           o["total"]) for o in p},
                         {("assign", "0000:00:07.0", "pci", me, "call", 2)})
        self.assertEqual(set(p[0]), {"operation", "name", "device", "kind", "caller", "trigger",
                                     "member", "done", "total", "usec"})
        # Coalesced when the work outpaces the bus, but in order, and the last one is the end.
        done = [o["done"] for o in p]
        self.assertEqual(done, sorted(set(done)))
        self.assertEqual((p[-1]["done"], p[-1]["member"]), (2, "0000:00:07.1"))
        self.assertTrue(all(o["member"] is None for o in p if o["done"] == 0))
        # A single device is one step, with no progress of several.
        self.signals.clear()
        self.destroy("0000:00:07.1")
        self.destroy("0000:00:07.0")
        self.describe()
        self.bus.pump()
        self.assertEqual(self.progress(), [])

    def test_vfioctl_shows_the_progress_on_a_terminal(self):
        rc, out = ptyrun.run([VFIOCTL, "--color=never", "create", "0000:00:07.0", "group"],
                             self.env)
        self.assertEqual(rc, 0, out)
        line = "\r\x1b[K0000:00:07.0: {} of 2 done"
        self.assertIn(line.format(2) + " (0000:00:07.1)\r\x1b[K", out)
        self.assertTrue(out.startswith("\r\x1b[K0000:00:07.0: "), repr(out))
        self.assertNotIn("\x1b", out.rsplit("\r\x1b[K", 1)[1])
        # Not in a pipe.
        self.destroy("0000:00:07.1")
        self.destroy("0000:00:07.0")
        p = self.vfioctl("create", "0000:00:07.0", "group")
        self.assertNotIn("\r", p.stdout)
        self.assertNotIn("\x1b", p.stdout)
        self.destroy("0000:00:07.1")
        self.destroy("0000:00:07.0")


class CDISpec:
    """vfiod writes its CDI spec in the test's own directory; reading it back."""

    def start_vfiod(self, **env):
        self.cdi_dir = os.path.join(self.tmp, "cdi")
        return super().start_vfiod(**dict({"VFIOD_CDI_SPEC_DIR": self.cdi_dir}, **env))

    def spec(self):
        try:
            with open(os.path.join(self.cdi_dir, "vfiod.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def devices(self):
        s = self.spec()
        if s is None:
            return None
        self.assertEqual((s["cdiVersion"], s["kind"]), ("0.5.0", "vfiod.org/device"))
        self.assertEqual(set(s), {"cdiVersion", "kind", "devices"})
        return {d["name"]: [n["path"] for n in d["containerEdits"]["deviceNodes"]]
                for d in s["devices"]}


class TestCDI(CDISpec, Base):
    """The CDI spec follows what vfiod holds, as a container runtime reads it."""
    fake_kernel = True

    def test_spec_written_with_each_create_and_destroy(self):
        self.assertIsNone(self.spec(), "a spec with nothing held")
        self.assertEqual(self.describe()["cdi"], {"directory": self.cdi_dir,
                                                  "kind": "vfiod.org/device", "failed": False})
        self.create(NVME)
        # There when the call returns: a runtime started right after finds it.
        self.assertEqual(self.devices(), {NVME: ["/dev/vfio/3", "/dev/vfio/vfio"]})
        st = os.stat(os.path.join(self.cdi_dir, "vfiod.json"))
        self.assertEqual(st.st_mode & 0o777, 0o644)
        self.create(OTHER)
        self.assertEqual(self.devices(), {NVME: ["/dev/vfio/3", "/dev/vfio/vfio"],
                                          OTHER: ["/dev/vfio/4", "/dev/vfio/vfio"]})
        self.destroy(NVME)
        self.assertEqual(self.devices(), {OTHER: ["/dev/vfio/4", "/dev/vfio/vfio"]})
        self.assertEqual([f for f in os.listdir(self.cdi_dir) if f != "vfiod.json"], [],
                         "no temporary file left")
        self.destroy(OTHER)
        self.assertIsNone(self.spec(), "the spec outlived the last device")

    def test_spec_rebuilt_from_the_records_at_start(self):
        self.create(NVME)
        self.stop_vfiod()
        os.unlink(os.path.join(self.cdi_dir, "vfiod.json"))
        self.start_vfiod()
        self.bus.wait_for(lambda: self.spec() is not None, what="the spec after a restart")
        self.assertEqual(self.devices(), {NVME: ["/dev/vfio/3", "/dev/vfio/vfio"]})
        self.destroy(NVME)
        self.assertIsNone(self.spec())

    def test_cdi_off_in_the_configuration(self):
        self.stop_vfiod()
        etc = os.path.join(self.tmp, "etc")
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "vfiod.conf"), "w") as f:
            f.write("[Daemon]\nCDI=no\n")
        # The files say no; an empty VFIOD_CDI_SPEC_DIR would say so too.
        self.start_vfiod(VFIOD_CDI_SPEC_DIR=os.path.join(self.tmp, "cdi"))
        self.assertEqual(self.describe()["cdi"], {"directory": self.cdi_dir,
                                                  "kind": "vfiod.org/device", "failed": False},
                         "the environment names the directory, and wins")
        self.stop_vfiod()
        self.start_vfiod(VFIOD_CDI_SPEC_DIR="")
        self.assertIsNone(self.describe()["cdi"])
        self.create(NVME)
        self.assertFalse(os.path.exists(self.cdi_dir))
        self.destroy(NVME)

    def test_a_fixture_tree_writes_no_spec_unless_asked(self):
        self.stop_vfiod()
        env = dict(self.env)
        env.pop("VFIOD_CDI_SPEC_DIR", None)
        self.vfiod = Vfiod(self.bus, env, os.path.join(self.tmp, "vfiod.log"))
        self.assertIsNone(self.describe()["cdi"], "a spec for nodes of a fixture tree")

    def test_unwritable_directory_logged_once_and_recovers(self):
        # A file where the directory should be fails for root too.
        with open(self.cdi_dir, "w"):
            pass
        self.create(NVME)
        self.assertTrue(self.describe()["cdi"]["failed"])
        self.create(OTHER)
        os.unlink(self.cdi_dir)
        self.destroy(OTHER)
        self.assertFalse(self.describe()["cdi"]["failed"])
        self.assertEqual(self.devices(), {NVME: ["/dev/vfio/3", "/dev/vfio/vfio"]})
        out = self.vfiod.output()
        self.assertEqual(out.count("cannot write the CDI spec"), 1, out)
        self.assertIn("CDI spec in %s written again" % self.cdi_dir, out)
        self.destroy(NVME)


class TestPersistent(Base):
    fake_kernel = True

    def definition(self, name=NVME):
        p = os.path.join(self.state_dir, "devices", name + ".json")
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return json.load(f)

    def test_definition_stored_reapplied_and_removed(self):
        path, _ = self.create(NVME, persistent=dbus.Boolean(True))
        self.assertEqual(self.definition(), {
            "name": NVME, "kind": "pci", "path": NVME_PATH, "options": {},
            "undo": {"path": NVME_PATH, "options": {}}, "start": "auto"})
        self.assertTrue(self.props(path)["Persistent"])
        self.assertEqual(self.describe()["definitions"][0]["name"], NVME)

        # vfiod stops; someone gives the device back behind its back; vfiod starts again.
        self.stop_vfiod()
        self.vfioctl("--direct", "destroy", NVME)
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.start_vfiod()
        self.bus.wait_for(lambda: self.driver_of(NVME) == VDSUB, what="re-applied definition")
        self.idle()
        self.assertEqual(self.props(path)["State"], "assigned")
        self.assertTrue(self.props(path)["Persistent"])

        # persistent=false drops the definition and keeps the device assigned.
        self.create(NVME, persistent=dbus.Boolean(False))
        self.assertIsNone(self.definition())
        self.assertFalse(self.props(path)["Persistent"])
        self.create(NVME, persistent=dbus.Boolean(True))
        self.assertIsNotNone(self.definition())
        self.destroy(NVME)
        self.assertIsNone(self.definition())
        self.stop_vfiod()
        self.start_vfiod()
        self.idle()
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertEqual(self.objects(), {})


    def test_start_and_stop_several_at_once(self):
        for name in (NVME, OTHER):
            self.vfioctl("define", name)
        p = self.vfioctl("start", NVME, OTHER)
        self.assertEqual(p.stdout.splitlines(), [
            f"{NVME}: assigned to {VDSUB} (was nvme), IOMMU group 3, /dev/vfio/3",
            f"{OTHER}: assigned to vfio-fixture-other (was unbound), IOMMU group 4, "
            "/dev/vfio/4"])
        # One that cannot be: said, exit 1; the others are done all the same.
        p = self.vfioctl("stop", NVME, "no-such-definition", OTHER, rc=1)
        self.assertIn("no-such-definition", p.stderr)
        self.assertEqual((self.driver_of(NVME), self.driver_of(OTHER)), ("nvme", None))
        self.assertEqual(len(p.stdout.splitlines()), 2, p.stdout)
        # -j: one array, in the order asked.
        o = json.loads(self.vfioctl("-j", "start", OTHER, NVME).stdout)
        self.assertEqual([r["name"] for r in o], [OTHER, NVME])
        # On a terminal, a line as the replies come.
        rc, out = ptyrun.run([VFIOCTL, "--color=never", "stop", NVME, OTHER], self.env)
        self.assertEqual(rc, 0, out)
        self.assertTrue(out.startswith("\r\x1b[Kstop: 0 of 2 done\r\x1b[Kstop: 1 of 2 done ("),
                        repr(out))
        self.assertIn("\r\x1b[Kstop: 2 of 2 done (", out)
        self.assertEqual((self.driver_of(NVME), self.driver_of(OTHER)), ("nvme", None))


AP = "0000:00:05.0"
AP_PATH = "/sys/devices/pci0000:00/0000:00:05.0"
AP_TYPE = "vfio_ap-passthrough"
U_AP = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003"
AHCI = "0000:00:1f.2"
AP_ATTRS = [("assign_adapter", "5"), ("assign_domain", "4"), ("assign_adapter", "6"),
            ("assign_domain", "0xab"), ("assign_control_domain", "4")]


def attr_list(pairs):
    """attrs as vfiod and mdevctl keep them: [{"name": "value"}, ...]."""
    return [{k: v} for k, v in pairs]


def mdev_parent(sys, driver=None):
    """AP, a PCI function in IOMMU group 5 offering the mdev type AP_TYPE."""
    sys.pci(AP, 0x1b36, 0x0005, cls=0x00ff00, driver=driver, group=5)
    t = f"devices/pci0000:00/{AP}/mdev_supported_types/{AP_TYPE}"
    for k, v in (("available_instances", "4\n"), ("name", "passthrough\n"),
                 ("device_api", "vfio-ap\n"), ("create", "")):
        sys._write(f"{t}/{k}", v)
    os.makedirs(os.path.join(sys.root, t, "devices"), exist_ok=True)
    sys._link(f"class/mdev_bus/{AP}", f"devices/pci0000:00/{AP}")


class TestMdev(Base):
    """mdev definitions: attrs in order with repeats, and living beside mdevctl."""

    def extra_fixture(self):
        # An mdev parent (a type, nothing to create for real): Define reads, never writes.
        mdev_parent(self.sys)
        self.mdevctl = os.path.join(self.tmp, "mdevctl.d")
        os.makedirs(os.path.join(self.mdevctl, AP))
        os.makedirs(os.path.join(self.mdevctl, OTHER))
        self.env_extra = {"VFIOD_MDEVCTL_DIR": self.mdevctl}

    def start_vfiod(self, **env):
        return super().start_vfiod(**dict(getattr(self, "env_extra", {}), **env))

    def definition(self, name=U_AP):
        with open(os.path.join(self.state_dir, "devices", name + ".json")) as f:
            return json.load(f)

    def define(self, attrs):
        return json.loads(str(self.call("Define", AP, dbus.Dictionary(
            {"type": AP_TYPE, "uuid": U_AP, "attrs": attrs}, signature="sv"))))

    def log(self):
        return self.vfiod.output()

    def test_attrs_repeat_in_order_over_dbus_a_ss(self):
        self.define(dbus.Array([dbus.Struct(p, signature="ss") for p in AP_ATTRS],
                               signature="(ss)"))
        self.assertEqual(self.definition()["options"]["attrs"], attr_list(AP_ATTRS))
        d = [e for e in self.describe()["definitions"] if e["name"] == U_AP]
        self.assertEqual(d[0]["options"]["attrs"], attr_list(AP_ATTRS))
        # Modify replaces the list as a whole, in its order.
        self.call("Modify", U_AP, dbus.Dictionary({"attrs": dbus.Array(
            [dbus.Struct(("assign_adapter", "7"), signature="ss")] * 2, signature="(ss)")},
            signature="sv"))
        self.assertEqual(self.definition()["options"]["attrs"],
                         [{"assign_adapter": "7"}, {"assign_adapter": "7"}])

    def test_attrs_as_a_dict_still_served(self):
        self.define(dbus.Dictionary({"assign_adapter": "5", "assign_domain": "4"},
                                    signature="ss"))
        self.assertEqual(self.definition()["options"]["attrs"],
                         [{"assign_adapter": "5"}, {"assign_domain": "4"}])

    def test_attrs_of_another_type_refused_naming_both_forms(self):
        name, msg = self.error_of("Define", AP, dbus.Dictionary(
            {"type": AP_TYPE, "attrs": dbus.Array(["assign_adapter=5"], signature="s")},
            signature="sv"))
        self.assertEqual(name, "org.freedesktop.DBus.Error.InvalidArgs")
        self.assertIn('"attrs" must be of type a(ss) (or a{ss}), not as', msg)

    def test_cli_attr_twice_and_an_old_definition_file(self):
        args = ["define", AP, "type", AP_TYPE, "uuid", U_AP]
        for k, v in AP_ATTRS:
            args += ["attr", f"{k}={v}"]
        self.vfioctl(*args)
        self.assertEqual(self.definition()["options"]["attrs"], attr_list(AP_ATTRS))
        # A definition written before attrs were a list: read as the list.
        self.stop_vfiod()
        old = self.definition()
        old["options"]["attrs"] = {"assign_adapter": "5", "assign_domain": "4"}
        old["start"] = "manual"
        with open(os.path.join(self.state_dir, "devices", U_AP + ".json"), "w") as f:
            json.dump(old, f)
        self.start_vfiod()
        self.idle()
        d = [e for e in self.describe()["definitions"] if e["name"] == U_AP]
        self.assertEqual(d[0]["options"]["attrs"],
                         [{"assign_adapter": "5"}, {"assign_domain": "4"}])

    def put_mdevctl(self, parent, uuid, start, attrs, mtime=None):
        p = os.path.join(self.mdevctl, parent, uuid)
        with open(p, "w") as f:
            json.dump({"mdev_type": AP_TYPE, "start": start, "attrs": attr_list(attrs)}, f)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
        return p

    def restart(self):
        self.stop_vfiod()
        self.start_vfiod()
        self.idle()

    def test_mdevctl_edits_followed_while_newer(self):
        self.stop_vfiod()
        src = self.put_mdevctl(AP, U_AP, "manual", AP_ATTRS[:2], mtime=time.time() - 100)
        self.start_vfiod()
        self.idle()
        self.assertIn(f"imported mdevctl's definition of {U_AP}", self.log())
        d = self.definition()
        self.assertEqual((d["start"], d["options"]["attrs"], d["source"]),
                         ("manual", attr_list(AP_ATTRS[:2]), src))

        # Edited with mdevctl since: an attribute added, start auto.  Followed at the next start.
        self.stop_vfiod()
        self.put_mdevctl(AP, U_AP, "auto", AP_ATTRS)
        self.start_vfiod()
        self.idle()
        self.assertIn(f"changed with mdevctl since vfiod's copy; definition of {U_AP} "
                      "updated from it (start auto)", self.log())
        d = self.definition()
        self.assertEqual((d["start"], d["options"]["attrs"]), ("auto", attr_list(AP_ATTRS)))

        # Changed through vfiod: vfiod's copy is the newer, mdevctl's file no longer wins...
        self.call("Modify", U_AP, dbus.Dictionary({"attrs": dbus.Array(
            [dbus.Struct(("assign_adapter", "9"), signature="ss")], signature="(ss)")},
            signature="sv"))
        self.restart()
        self.assertEqual(self.definition()["options"]["attrs"], [{"assign_adapter": "9"}])
        # ... until it is edited again.
        self.stop_vfiod()
        self.put_mdevctl(AP, U_AP, "manual", AP_ATTRS[:1])
        self.start_vfiod()
        self.idle()
        d = self.definition()
        self.assertEqual((d["start"], d["options"]["attrs"]), ("manual", attr_list(AP_ATTRS[:1])))

        # Undefined here: not imported again, edited or not.
        self.call("Undefine", U_AP)
        self.stop_vfiod()
        self.put_mdevctl(AP, U_AP, "auto", AP_ATTRS)
        self.start_vfiod()
        self.idle()
        self.assertFalse(os.path.exists(os.path.join(self.state_dir, "devices", U_AP + ".json")))

    def test_mdevctl_duplicates_refused_with_a_reason(self):
        self.stop_vfiod()
        # Parents are read in name order: 0000:00:04.0 first.
        first = self.put_mdevctl(OTHER, U_AP, "manual", [])
        second = self.put_mdevctl(AP, U_AP, "manual", AP_ATTRS)
        upper = "AAAAAAAA-2222-3333-4444-555555555555"
        self.put_mdevctl(AP, upper, "manual", [])
        lower = self.put_mdevctl(AP, upper.lower(), "manual", AP_ATTRS[:1])
        self.start_vfiod()
        self.idle()
        log = self.log()
        self.assertIn(f"{second}: not imported: UUID {U_AP} is defined under parent {OTHER} too "
                      f"({first})", log)
        self.assertIn(f"{lower}: not imported: the same UUID as "
                      f"{os.path.join(self.mdevctl, AP, upper)}, in another case", log)
        self.assertEqual(self.definition()["source"], first)
        self.assertEqual(self.definition(upper.lower())["options"].get("attrs"), None)

    def test_mdevctl_link_not_followed_nor_quoted(self):
        self.stop_vfiod()
        secret = os.path.join(self.tmp, "shadow")
        with open(secret, "w") as f:
            f.write("root:$y$j9T$secret:19000:0:99999:7:::\n")
        os.symlink(secret, os.path.join(self.mdevctl, AP, U_AP))
        self.start_vfiod()
        self.idle()
        log = self.log()
        self.assertIn(f"{os.path.join(self.mdevctl, AP, U_AP)}: not imported: a symbolic link; "
                      "not followed", log)
        self.assertNotIn("j9T", log)
        self.assertNotIn("expected near", log)


@unittest.skipUnless(is_root() and shutil.which("setpriv"), "needs root to run callers as nobody")
class TestAuthorization(Base):
    fake_kernel = True

    def setUp(self):
        super().setUp()
        self.polkit = Polkit(self.bus)
        self.addCleanup(self.polkit.stop)

    def as_nobody(self, method, args=(), interactive=False):
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", PYTHON,
               os.path.join(HERE, "call.py"), self.bus.address, method, json.dumps(list(args))]
        if interactive:
            cmd.append("--interactive")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_root_needs_no_polkit(self):
        self.create(NVME)
        self.destroy(NVME)
        self.assertEqual(self.polkit.checks(), [])

    def test_unprivileged_refused_when_polkit_says_no(self):
        before = self.sys.snapshot()
        out = self.as_nobody("Create", [NVME, {}])
        self.assertEqual(out["error"], "org.freedesktop.DBus.Error.AccessDenied")
        self.assertIn("org.vfiod1.manage", out["message"])
        out = self.as_nobody("Destroy", [NVME, {}])
        self.assertEqual(out["error"], "org.freedesktop.DBus.Error.AccessDenied")
        self.assertEqual(before, self.sys.snapshot())
        self.assertEqual(self.objects(), {})
        p = self.vfioctl("create", NVME, rc=1, user="nobody")
        self.assertIn("vfioctl: create: ", p.stderr)
        self.assertIn("not authorized", p.stderr)
        checks = self.polkit.checks()
        self.assertEqual(len(checks), 3)
        subject, action, details, flags, _ = checks[0]
        self.assertEqual(str(subject[0]), "system-bus-name")
        self.assertTrue(str(subject[1]["name"]).startswith(":"))
        self.assertEqual(str(action), "org.vfiod1.manage")
        self.assertEqual(int(flags), 0)
        # vfioctl lets polkit ask for a password.
        self.assertEqual(int(checks[2][3]), 1)

    def test_unprivileged_allowed_by_polkit(self):
        self.polkit.allow(["org.vfiod1.manage"])
        out = self.as_nobody("Create", [NVME, {}], interactive=True)
        self.assertEqual(out["reply"][0], object_path(NVME), out)
        self.assertEqual(self.driver_of(NVME), VDSUB)
        self.assertEqual(int(self.polkit.checks()[0][3]), 1)  # interactive flag passed on
        p = self.vfioctl("destroy", NVME, user="nobody")
        self.assertIn("released, nvme", p.stdout)
        self.assert_consistent()

    def test_unprivileged_may_read(self):
        for method, args in (("Match", [NVME]), ("List", []), ("Describe", [])):
            with self.subTest(method=method):
                self.assertIn("reply", self.as_nobody(method, args))
        self.assertEqual(self.vfioctl("-j", "match", NVME, user="nobody").stdout,
                         self.vfioctl("--direct", "-j", "match", NVME).stdout)
        self.assertEqual(self.polkit.checks(), [])

    def test_no_polkit_refuses(self):
        self.polkit.stop()
        self.bus.wait_for(lambda: not self.bus.has_owner("org.freedesktop.PolicyKit1"))
        out = self.as_nobody("Create", [NVME, {}])
        self.assertEqual(out["error"], "org.freedesktop.DBus.Error.AccessDenied")
        self.assertIn("polkit did not answer", out["message"])
        self.assertEqual(self.driver_of(NVME), "nvme")

    def test_bus_policy_lets_only_root_own_the_name(self):
        code = ("import dbus,sys; b=dbus.bus.BusConnection(sys.argv[1]);\n"
                "try:\n b.request_name('org.vfiod1'); print('owned')\n"
                "except dbus.exceptions.DBusException as e: print(e.get_dbus_name())")
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "--", PYTHON, "-c", code, self.bus.address],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "org.freedesktop.DBus.Error.AccessDenied", p.stderr)


class TestConcurrency(Base):
    fake_kernel = True

    def extra_fixture(self):
        self.sys.driver("ahci", "ahci")
        for i in range(4):
            self.sys.pci(f"0000:00:1{i}.0", 0x1b36, 0x0010, driver="nvme", group=10 + i)

    def native(self):
        return {f"0000:00:1{i}.0": "nvme" for i in range(4)}

    def test_many_clients_same_and_different_devices(self):
        devices = [NVME] + [f"0000:00:1{i}.0" for i in range(4)]
        procs = []
        for round_ in range(3):
            for d in devices:
                for verb in ("create", "create", "destroy", "match", "list"):
                    args = [verb, d] if verb != "list" else [verb]
                    procs.append((verb, d, subprocess.Popen(
                        [VFIOCTL, "-j", *args], env=self.env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)))
        for verb, d, p in procs:
            out, err = p.communicate(timeout=120)
            self.assertNotIn("Sanitizer", err)
            self.assertNotIn("runtime error", err)
            if p.returncode == 0:
                json.loads(out)
            else:
                # Only what a race legitimately gives: destroying what is not assigned.
                self.assertEqual(verb, "destroy", err)
                self.assertIn("is not assigned to a vfio driver", err)
        self.assert_consistent()
        listed = {e["name"] for e in json.loads(str(self.call("List")))}
        self.assertEqual({os.path.basename(p) for p in self.objects()},
                         {object_path(n).rsplit("/", 1)[1] for n in listed})
        for d in devices:
            self.vfioctl("create", d)
        self.assert_consistent()
        self.assertEqual(len(self.objects()), len(devices))
        for d in devices:
            self.vfioctl("destroy", d)
        self.assert_consistent()
        self.assertEqual(self.objects(), {})


def call_async(address, method, *args):
    """METHOD in a process of its own: the test goes on while it waits."""
    return subprocess.Popen([PYTHON, os.path.join(HERE, "call.py"), address, method,
                             json.dumps(list(args))], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


def outcome(p):
    return json.loads(p.communicate(timeout=60)[0])


class TestDeviceLock(Base):
    """A device whose lock the kernel holds blocks its own reads, and nothing else."""
    fake_kernel = True
    read_timeout = "6"

    def extra_fixture(self):
        self.sys.driver("ahci", "ahci")
        self.sys.pci(AHCI, 0x8086, 0x2922, cls=0x010601, driver="ahci", group=31)
        # An mdev parent that is a PCI function (group 5): its mdevs are its hardware's work.
        mdev_parent(self.sys, driver="ahci")

    def native(self):
        return {AHCI: "ahci", AP: "ahci"}

    def start_vfiod(self, **env):
        return super().start_vfiod(**dict({"VFIOD_READ_TIMEOUT_SEC": self.read_timeout}, **env))

    def lock(self, name):
        lock = DeviceLock(self.sys, name).hold()
        self.addCleanup(lock.release)
        return lock

    def test_a_locked_device_blocks_only_its_own_reads(self):
        lock = self.lock(NVME)
        stuck = call_async(self.bus.address, "Match", NVME)
        # While the Match of the locked device waits in the kernel, everything else answers.
        self.assertEqual(json.loads(str(self.call("Match", OTHER)))["name"], OTHER)
        self.assertEqual(json.loads(str(self.call("List"))), [])
        self.assertIn("operations", self.describe())
        path, res = self.create(AHCI)
        self.assertEqual(res["driver"], "vfio-pci")
        self.destroy(AHCI)
        self.assertEqual(self.driver_of(AHCI), "ahci")
        self.assertIsNone(stuck.poll(), "the Match of the locked device answered already")
        # It answers Timeout, naming the device; nothing changed.
        out = outcome(stuck)
        self.assertEqual(out.get("error"), ERR + "Timeout", out)
        self.assertIn(NVME, out["message"])
        # Its thread is still in the kernel: another read of it is refused at once.
        name, msg = self.error_of("Match", NVME)
        self.assertEqual(name, ERR + "Busy")
        self.assertIn("still blocked", msg)
        # So is a Create of it: resolving it reads it.
        self.assertEqual(self.error_of("Create", NVME, {})[0], ERR + "Busy")
        # The kernel lets go: the late read is dropped, and the device reads again.
        lock.release()
        self.bus.wait_for(lambda: self.match_ok(NVME), timeout=20, what="Match after release")
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assert_consistent()

    def match_ok(self, name):
        try:
            return json.loads(str(self.call("Match", name)))["name"] == name
        except dbus.exceptions.DBusException:
            return False

    def test_a_create_whose_device_is_locked_times_out_and_changes_nothing(self):
        lock = self.lock(NVME)
        name, msg = self.error_of("Create", NVME, {})
        self.assertEqual(name, ERR + "Timeout")
        self.assertIn("nothing was changed", msg)
        self.assertEqual(self.journal(), [])
        self.assertFalse(self.record_exists(NVME))
        self.assertEqual(self.objects(), {})
        lock.release()
        self.bus.wait_for(lambda: self.match_ok(NVME), timeout=20, what="Match after release")
        self.create(NVME)
        self.destroy(NVME)
        self.assert_consistent()

    def test_start_with_a_locked_recorded_device_serves(self):
        self.create(NVME)
        self.stop_vfiod()
        lock = self.lock(NVME)
        # The name is taken (start_vfiod waits for it) although the records are not read yet.
        self.start_vfiod()
        self.assertEqual(json.loads(str(self.call("Match", OTHER)))["name"], OTHER)
        self.assertNotIn(object_path(NVME), self.objects())
        path, res = self.create(AHCI)
        self.destroy(AHCI)
        lock.release()
        self.bus.wait_for(lambda: object_path(NVME) in self.objects(), timeout=20,
                          what="the recorded device's object")
        self.assertEqual(self.props(object_path(NVME))["State"], "assigned")
        self.destroy(NVME)
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assert_consistent()

    def test_an_mdev_create_waits_for_its_parents_assign(self):
        self.kernel.hang("ahci")
        assign = call_async(self.bus.address, "Create", AP, {})
        self.bus.wait_for(lambda: [o["state"] for o in self.describe()["operations"]] ==
                          ["running"], what="the parent's assign running")
        mdev = call_async(self.bus.address, "Create", AP, {"type": AP_TYPE, "uuid": U_AP})
        # Listed at once as resolving; queued once its key is known.
        self.bus.wait_for(lambda: [o["state"] for o in self.describe()["operations"]] ==
                          ["running", "queued"], what="both, the second queued")
        ops = self.describe()["operations"]
        # One key, the parent's IOMMU group: the mdev create waits, it does not run beside.
        self.assertEqual([(o["kind"], o["state"], o["key"]) for o in ops],
                         [("pci", "running", "group:5"), ("mdev", "queued", "group:5")], ops)
        time.sleep(0.5)
        self.assertEqual([o["state"] for o in self.describe()["operations"]],
                         ["running", "queued"])
        self.kernel.release("ahci")
        first = outcome(assign)
        self.assertIn("reply", first, first)
        # It runs once the assign has ended, and sees the parent as that left it.
        second = outcome(mdev)
        self.assertEqual(self.driver_of(AP), "vfio-fixture-other")
        self.idle()
        if "reply" in second:
            self.destroy(U_AP)
        self.destroy(AP)
        self.assertEqual(self.driver_of(AP), "ahci")

    def test_mdev_creates_of_one_parent_run_beside_each_other_and_its_assign_waits(self):
        # The type's create blocks its writers in open(2), as the kernel's would while it
        # makes the mdev: a FIFO nobody reads yet.
        create = os.path.join(self.sys.root, "devices/pci0000:00", AP,
                              "mdev_supported_types", AP_TYPE, "create")
        os.unlink(create)
        os.mkfifo(create, 0o600)
        uuids = [U_AP, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1004"]
        creates = [call_async(self.bus.address, "Create", AP, {"type": AP_TYPE, "uuid": u})
                   for u in uuids]
        self.bus.wait_for(lambda: [o["state"] for o in self.describe()["operations"]] ==
                          ["running", "running"], what="both creates running")
        # A second create of a UUID already in the kernel's hands waits for the first.
        again = call_async(self.bus.address, "Create", AP, {"type": AP_TYPE, "uuid": U_AP})
        self.bus.wait_for(lambda: len(self.describe()["operations"]) == 3, what="the third")
        # The parent's own assign changes what both act on: it waits for them.
        assign = call_async(self.bus.address, "Create", AP, {})
        self.bus.wait_for(lambda: len(self.describe()["operations"]) == 4, what="all four")
        time.sleep(0.5)
        ops = self.describe()["operations"]
        self.assertEqual([(o["kind"], o["state"], o["key"]) for o in ops],
                         [("mdev", "running", "group:5")] * 2 +
                         [("mdev", "queued", "group:5"), ("pci", "queued", "group:5")], ops)
        self.assertEqual(self.driver_of(AP), "ahci")
        # The kernel takes both writes; nothing appears in the fixture, so both fail after.
        fd = os.open(create, os.O_RDONLY | os.O_NONBLOCK)
        try:
            got = ""
            for p in creates:
                self.assertIn("error", outcome(p))
            while True:
                try:
                    chunk = os.read(fd, 4096).decode()
                except BlockingIOError:
                    chunk = ""
                if not chunk:
                    break
                got += chunk
            # Written as one 36-byte UUID each; the waiting create of U_AP ran after the
            # first of U_AP ended, and may have written already.
            writes = [got[i:i + 36] for i in range(0, len(got), 36)]
            self.assertEqual(sorted(writes[:2]), sorted(uuids), got)
            self.assertIn(writes[2:], ([], [U_AP]), got)
            self.assertIn("error", outcome(again))
        finally:
            os.close(fd)
        first = outcome(assign)
        self.assertIn("reply", first, first)
        self.assertEqual(self.driver_of(AP), "vfio-fixture-other")
        self.idle()
        self.destroy(AP)
        self.assertEqual(self.driver_of(AP), "ahci")


class TestWarm(Base):
    """vfiod keeps its contexts warm: what changes on disk while it runs is seen at once."""

    def start_vfiod(self, **env):
        self.conf = os.path.join(self.tmp, "modprobe.d")
        os.makedirs(self.conf, exist_ok=True)
        # Not there yet: watched through its parent, a busy directory like /run.
        self.late = os.path.join(self.tmp, "run", "modprobe.d")
        os.makedirs(os.path.dirname(self.late), exist_ok=True)
        return super().start_vfiod(
            **dict({"VFIOD_MODPROBE_CONFIG": self.conf + ":" + self.late}, **env))

    def validations(self):
        return self.vfiod.output().count("validating libkmod's files (a change was seen)")

    def chosen(self, name):
        return json.loads(str(self.call("Match", name)))["selected"]["module"]

    def test_modules_installed_and_configured_while_running_are_seen(self):
        # Several calls, so that the pool's contexts have all served before.
        for _ in range(4):
            self.assertEqual(self.chosen(OTHER), "vfio_fixture_other")
        # A more specific variant installed (depmod replaces modules.alias by rename).
        self.mods.add("vfio_fixture_newer", ["vfio_pci:v00001B36d00000005sv*sd*bc00sc*i*"])
        self.mods.depmod()
        self.sys.module("vfio_fixture_newer", ["vfio-fixture-newer"])
        for _ in range(4):
            self.assertEqual(self.chosen(OTHER), "vfio_fixture_newer")
        # An administrator's modprobe.d alias, as modprobe obeys it (ranked as specific).
        with open(os.path.join(self.conf, "50-pin.conf"), "w") as f:
            f.write("alias vfio_pci:v00001B36d00000005sv*sd*bc00sc*i* vfio_fixture_other\n")
        for _ in range(4):
            m = json.loads(str(self.call("Match", OTHER)))
            cands = {c["module"]: c for c in m["candidates"]}
            self.assertEqual(cands["vfio_fixture_other"].get("source"), "modprobe.d", m)
        # Blacklisted again: gone from the choice at the next call.
        with open(os.path.join(self.conf, "50-pin.conf"), "w") as f:
            f.write("blacklist vfio_fixture_newer\n")
        for _ in range(4):
            self.assertEqual(self.chosen(OTHER), "vfio_fixture_other")

    def test_a_missing_config_directory_counts_when_made_not_when_its_neighbours_change(self):
        for _ in range(4):
            self.assertEqual(self.chosen(OTHER), "vfio_fixture_other")
        before = self.validations()
        # Files made, written and removed beside the missing directory (utmp, pid files).
        run = os.path.dirname(self.late)
        for i in range(8):
            with open(os.path.join(run, "busy-%d" % i), "w") as f:
                f.write("x")
            os.rename(os.path.join(run, "busy-%d" % i), os.path.join(run, "moved-%d" % i))
            os.unlink(os.path.join(run, "moved-%d" % i))
        for _ in range(4):
            self.assertEqual(self.chosen(OTHER), "vfio_fixture_other")
        self.assertEqual(self.validations(), before, self.vfiod.output())
        # The directory itself made, with a file in it: seen at the next call.
        self.mods.add("vfio_fixture_newer", ["vfio_pci:v00001B36d00000005sv*sd*bc00sc*i*"])
        self.mods.depmod()
        self.sys.module("vfio_fixture_newer", ["vfio-fixture-newer"])
        self.assertEqual(self.chosen(OTHER), "vfio_fixture_newer")
        os.mkdir(self.late)
        with open(os.path.join(self.late, "50-no.conf"), "w") as f:
            f.write("blacklist vfio_fixture_newer\n")
        for _ in range(4):
            self.assertEqual(self.chosen(OTHER), "vfio_fixture_other")
        self.assertGreater(self.validations(), before)


class TestTimeout(Base):
    fake_kernel = True
    timeout_sec = "2"

    def extra_fixture(self):
        self.sys.driver("ahci", "ahci")
        self.sys.pci("0000:00:1f.2", 0x8086, 0x2922, cls=0x010601, driver="ahci", group=31)

    def native(self):
        return {"0000:00:1f.2": "ahci"}

    def test_hung_unbind_times_out_and_the_rest_goes_on(self):
        self.kernel.hang("nvme")
        t0 = time.monotonic()
        name, msg = self.error_of("Create", NVME, {})
        self.assertEqual(name, ERR + "Timeout")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("step unbind", msg)
        self.assertEqual(self.props(object_path(NVME))["State"], "failed")
        ops = self.describe()["operations"]
        self.assertEqual([(o["name"], o["state"], o["step"]) for o in ops],
                         [(NVME, "timed-out", "unbind")])
        # The group is closed, the rest of the machine is not.
        self.assertEqual(self.error_of("Destroy", NVME, {})[0], ERR + "Busy")
        self.assertEqual(json.loads(str(self.call("Match", NVME)))["name"], NVME)
        path, res = self.create("0000:00:1f.2")
        self.assertEqual(res["driver"], "vfio-pci")
        self.destroy("0000:00:1f.2")
        self.assertEqual(self.driver_of("0000:00:1f.2"), "ahci")

        # The kernel returns: the assign completes after all.
        self.kernel.release("nvme")
        self.bus.wait_for(lambda: self.props(object_path(NVME))["State"] == "assigned",
                          what="late completion")
        self.assertEqual(self.driver_of(NVME), VDSUB)
        self.assert_consistent()
        self.destroy(NVME)
        self.assert_consistent()

    def test_sigterm_leaves_a_hung_worker_to_the_journal(self):
        self.kernel.hang("nvme")
        self.assertEqual(self.error_of("Create", NVME, {})[0], ERR + "Timeout")
        self.assertEqual(self.journal(), [NVME + ".json"])
        t0 = time.monotonic()
        self.stop_vfiod()  # rc 0, promptly, although a worker is still in the kernel
        self.assertLess(time.monotonic() - t0, 10)
        self.kernel.release("nvme")
        # The worker died with vfiod before its unbind: the device is on nvme with the
        # override naming the vfio driver.  The next start rolls the assign back.
        self.start_vfiod()
        self.idle()
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIsNone(self.override_of(NVME))
        self.assert_consistent()


class TestRecovery(CDISpec, Base):
    fake_kernel = True

    def abort_at(self, step, method="Create"):
        self.stop_vfiod()
        v = self.start_vfiod(VFIOD_ABORT_AT=step)
        name, _ = self.error_of(method, NVME, {})
        self.assertIn(name, ("org.freedesktop.DBus.Error.NoReply",
                             "org.freedesktop.DBus.Error.Disconnected"))
        self.assertEqual(v.wait(), -signal.SIGABRT)
        self.vfiod = None
        self.assertEqual(self.journal(), [NVME + ".json"])
        with open(os.path.join(self.run_dir, "journal", NVME + ".json")) as f:
            entry = json.load(f)
        op, st = step.split(":")
        self.assertEqual((entry["operation"], entry["step"], entry["device"]), (op, st, NVME_PATH))
        return entry

    def recovered(self):
        self.start_vfiod()
        self.idle()
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIsNone(self.override_of(NVME))
        self.assertFalse(self.record_exists(NVME))
        self.assertEqual(self.objects(), {})
        self.assert_consistent()

    def test_interrupted_assign_is_rolled_back(self):
        states = {
            "assign:record": lambda: self.assertFalse(self.record_exists(NVME)),
            "assign:set-override": lambda: self.assertIsNone(self.override_of(NVME)),
            "assign:unbind": lambda: (self.assertEqual(self.override_of(NVME), VDSUB),
                                      self.assertEqual(self.driver_of(NVME), "nvme")),
            "assign:probe": lambda: self.assertIsNone(self.driver_of(NVME)),
            "assign:verify": lambda: self.assertEqual(self.driver_of(NVME), VDSUB),
        }
        for step, check in states.items():
            with self.subTest(step=step):
                entry = self.abort_at(step)
                self.assertEqual(entry["steps"][-1], step.split(":")[1])
                self.bus.pump(0.3)  # let the fake kernel catch up
                check()
                self.recovered()

    def test_an_assign_that_changes_nothing_writes_no_journal(self):
        # The intent is written with the first step: none, nothing written.
        self.create(NVME)
        journal = os.path.join(self.run_dir, "journal")
        with Inotify(journal) as w:
            self.assertEqual(self.create(NVME)[1]["changed"], False)
            self.assertEqual(w.names(), [])
            # A release changes the device: its entry is written (and removed).
            self.destroy(NVME)
            self.assertIn(NVME + ".json", w.names())
        self.assert_consistent()

    def test_cdi_spec_matches_what_is_held_after_a_crash(self):
        held = {OTHER: ["/dev/vfio/4", "/dev/vfio/vfio"]}
        self.create(OTHER)
        # An assign cut off once its device was bound: it never answered, so never listed.
        self.abort_at("assign:verify")
        self.assertEqual(self.devices(), held)
        self.start_vfiod()
        self.idle()
        self.assertEqual(self.driver_of(NVME), "nvme", "rolled back")
        self.assert_consistent()
        self.assertEqual(self.devices(), held)
        # Killed after a create that ended: the spec names it, and so does the next run's.
        self.create(NVME)
        self.vfiod.stop(signal.SIGKILL)
        self.vfiod = None
        both = dict(held, **{NVME: ["/dev/vfio/3", "/dev/vfio/vfio"]})
        self.assertEqual(self.devices(), both)
        os.unlink(os.path.join(self.cdi_dir, "vfiod.json"))
        self.start_vfiod()
        self.bus.wait_for(lambda: self.spec() is not None, what="the spec after the crash")
        self.assertEqual(self.devices(), both)
        self.destroy(NVME)
        self.destroy(OTHER)
        self.assertIsNone(self.spec())

    def test_interrupted_release_is_finished(self):
        for step in ("release:unbind", "release:restore-override", "release:probe",
                     "release:verify"):
            with self.subTest(step=step):
                self.create(NVME)
                self.assertEqual(self.driver_of(NVME), VDSUB)
                self.abort_at(step, method="Destroy")
                self.recovered()


class TestDocumented(Base):
    """Every method, property, signal, error and option is in org.vfiod1(5)."""
    fake_kernel = True

    def test_introspection_matches_the_man_page(self):
        import xml.etree.ElementTree as ET
        with open(MAN) as f:
            man = f.read()
        # The page's text without roff escapes.
        text = re.sub(r"\\f[BIRP]|\\&", "", man).replace("\\(->", "->").replace("\\-", "-")
        self.create(NVME)
        for path, iface in (("/org/vfiod1", MANAGER), (object_path(NVME), DEVICE)):
            xml = dbus.Interface(self.bus.conn.get_object("org.vfiod1", path),
                                 "org.freedesktop.DBus.Introspectable").Introspect()
            node = ET.fromstring(str(xml))
            found = [i for i in node.findall("interface") if i.get("name") == iface]
            self.assertEqual(len(found), 1, iface)
            self.assertIn(f".SS {iface}", man)
            section = text.split(f".SS {iface}", 1)[1].split("\n.SH ", 1)[0]
            for m in found[0].findall("method"):
                ins = ", ".join(f"{a.get('type')} {a.get('name')}" for a in m.findall("arg")
                                if a.get("direction", "in") == "in")
                outs = ", ".join(f"{a.get('type')} {a.get('name')}" for a in m.findall("arg")
                                 if a.get("direction") == "out")
                sig = f"{m.get('name')}({ins}) -> ({outs})"
                with self.subTest(method=sig):
                    self.assertIn(sig, section)
            for p in found[0].findall("property"):
                decl = f"{'readonly' if p.get('access') == 'read' else 'readwrite'} " \
                       f"{p.get('type')} {p.get('name')}"
                with self.subTest(property=decl):
                    self.assertIn(decl, section)
            for s in found[0].findall("signal"):
                with self.subTest(signal=s.get("name")):
                    self.assertIn(s.get("name"), section)
        with open(os.path.join(SOURCE, "lib", "bus", "bus-errors.h")) as f:
            errors = re.findall(r'"(org\.vfiod1\.Error\.\w+)"', f.read())
        self.assertGreater(len(errors), 5)
        for e in errors:
            with self.subTest(error=e):
                self.assertIn(e, text)
        with open(os.path.join(SOURCE, "lib", "bus", "bus-names.h")) as f:
            names = f.read()
        with open(os.path.join(SOURCE, "lib", "options.c")) as f:
            keys = set(re.findall(r'^\t\{ "(\w+)", "\w+", "', f.read(), re.M))
        self.assertGreater(len(keys), 10)
        for key in sorted(keys):
            with self.subTest(option=key):
                self.assertRegex(text, rf"\n\.B {key}\b")
        for state in re.findall(r'#define VFIOD_STATE_\w+ "(\w+)"', names):
            with self.subTest(state=state):
                self.assertRegex(text, rf"\n\.B {state}\b")


if __name__ == "__main__":
    unittest.main()
