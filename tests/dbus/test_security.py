# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon's answers to hostile callers, on a private dbus-daemon.

- polkit checks are capped and shared: with a polkit whose authentication
  agent never answers (polkit_agentless.py), a flood of calls from nobody is
  refused at once with org.vfiod1.Error.TooManyRequests past the caps, while
  root and a user polkit allows keep being served; identical calls share one
  CheckAuthorization;
- polkit is told the canonical device, its kind and the operation;
- a caller the bus names no user for (an ANONYMOUS connection) is refused,
  not taken for whoever /proc says owns its pid;
- text from callers and from the file system cannot forge a log line;
- oversized arguments are refused with InvalidArgs naming the limit.
"""
import ctypes
import json
import os
import shutil
import subprocess
import time
import unittest
from unittest import mock

import dbus

import service
from service import PYTHON, Polkit, is_root
from test_dbus import HERE, NVME, NVME_PATH, OTHER, VDSUB, Base, object_path

POLKIT_TEMPLATE = os.path.join(HERE, "polkit_agentless.py")
# Users of the base system (dbus-daemon wants callers it can look up).
ALLOWED_USER, ALLOWED_UID = "daemon", 1
FLOODERS = ["bin", "sys", "games", "man", "lp"]
TOO_MANY = "org.vfiod1.Error.TooManyRequests"
DENIED = "org.freedesktop.DBus.Error.AccessDenied"
# Fixture devices for distinct checks: 0000:01:DD.F, one IOMMU group each.
FLOOD_DEVICES = [f"0000:01:{d:02x}.{f}" for d in range(5) for f in range(8)]
# vfiod's caps (daemon/daemon.h), as org.vfiod1(5) documents them.
CHECKS_MAX, CHECKS_PER_UID, CHECKS_PER_SENDER, WAITING_PER_UID = 64, 16, 8, 64

needs_root = unittest.skipUnless(is_root() and shutil.which("setpriv"),
                                 "needs root to run callers as other users")


class AgentlessPolkit(Polkit):
    """polkit_agentless.py on the test bus."""

    def __init__(self, bus):
        super().__init__(bus, POLKIT_TEMPLATE)

    def allow_uids(self, uids):
        self.mock.SetAllowedUids(dbus.Array(uids, signature="u"))

    def hanging(self):
        return int(self.mock.HangingCount())

    def release(self):
        return int(self.mock.ReleaseHanging())


def setpriv(uid):
    return ["setpriv", f"--reuid={uid}", "--regid=nogroup", "--clear-groups", "--"]


def as_user(uid, argv):
    cmd = setpriv(uid) + argv
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


def flood(address, uid, calls, connections=1, wait=5.0):
    """Start floodcall.py as UID; returns the process (communicate() for the results)."""
    p = as_user(uid, [PYTHON, os.path.join(HERE, "floodcall.py"), address, str(connections),
                      str(wait), "-"])
    p.stdin.write(json.dumps(calls))
    p.stdin.close()
    p.stdin = None
    return p


def results(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(err)
    return json.loads(out)


def create_call(path, interactive=True):
    return {"path": "/org/vfiod1", "iface": "org.vfiod1.Manager", "method": "Create",
            "sig": "sa{sv}", "args": [path, []], "interactive": interactive}


def call_as(address, uid, method, args):
    p = subprocess.run(setpriv(uid) + [PYTHON, os.path.join(HERE, "call.py"), address, method,
                                       json.dumps(list(args))], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    return json.loads(p.stdout)


class PolkitBase(Base):
    fake_kernel = True

    def extra_fixture(self):
        for i, d in enumerate(FLOOD_DEVICES):
            self.sys.pci(d, 0x1b36, 0x0010, driver="nvme", group=100 + i)

    def native(self):
        return {d: "nvme" for d in FLOOD_DEVICES}

    def setUp(self):
        super().setUp()
        self.polkit = AgentlessPolkit(self.bus)
        self.addCleanup(self.polkit.stop)
        self.polkit.allow_uids([ALLOWED_UID])

    def wait_hanging(self, n, what):
        self.bus.wait_for(lambda: self.polkit.hanging() >= n, timeout=30, what=what)
        # Nothing more arrives.
        time.sleep(0.5)
        return self.polkit.hanging()


@needs_root
class TestPolkitLimits(PolkitBase):
    def test_flood_is_capped_and_the_others_are_served(self):
        # nobody: 4 connections x 40 interactive Creates of distinct devices, 160 checks,
        # more than the 128 replies dbus-daemon lets vfiod's connection wait for.
        calls = [create_call(d) for d in FLOOD_DEVICES for _ in range(4)]
        t0 = time.monotonic()
        p = flood(self.bus.address, "nobody", calls, connections=4, wait=8)
        hanging = self.wait_hanging(CHECKS_PER_UID, "nobody's checks at polkit")
        self.assertEqual(hanging, CHECKS_PER_UID)
        # A user polkit allows, and root, are served meanwhile.
        out = call_as(self.bus.address, ALLOWED_USER, "Create", [NVME, {}])
        self.assertEqual(out.get("reply", [None])[0], object_path(NVME),
                         out)
        self.assertEqual(self.driver_of(NVME), VDSUB)
        self.create(OTHER)
        self.assertEqual(self.driver_of(OTHER), "vfio-fixture-other")
        res = results(p)
        refused = [r for r in res if r.get("error") == TOO_MANY]
        pending = [r for r in res if r.get("pending")]
        self.assertEqual(len(pending), CHECKS_PER_UID, res)
        self.assertEqual(len(refused), len(calls) - CHECKS_PER_UID,
                         {json.dumps(r) for r in res if r not in refused and r not in pending})
        # Refused at once, each naming the cap.
        self.assertLess(max(r["sec"] for r in refused), 5.0)
        self.assertTrue(all("wait for polkit already" in r["message"] for r in refused))
        self.assertTrue(any(f"{CHECKS_PER_UID} checks of one user" in r["message"]
                            for r in refused), refused[:3])
        self.assertEqual(self.polkit.release(), CHECKS_PER_UID)
        sent = len(self.polkit.checks())
        print(f"\npolkit flood: {len(calls)} calls as nobody over 4 connections in "
              f"{time.monotonic() - t0:.1f} s: {hanging} checks at polkit, {len(refused)} "
              f"refused with TooManyRequests within {max(r['sec'] for r in refused):.2f} s; "
              f"{sent} CheckAuthorization in all; {ALLOWED_USER} and root served")
        self.destroy(OTHER)
        self.destroy(NVME)

    def test_connection_cap(self):
        calls = [create_call(d) for d in FLOOD_DEVICES[:20]]
        p = flood(self.bus.address, "bin", calls, connections=1, wait=5)
        self.assertEqual(self.wait_hanging(CHECKS_PER_SENDER, "bin's checks"), CHECKS_PER_SENDER)
        res = results(p)
        self.assertEqual(sum(1 for r in res if r.get("pending")), CHECKS_PER_SENDER)
        refused = [r for r in res if r.get("error") == TOO_MANY]
        self.assertEqual(len(refused), len(calls) - CHECKS_PER_SENDER, res)
        self.assertTrue(all(f"{CHECKS_PER_SENDER} checks of one connection" in r["message"]
                            for r in refused), refused)
        self.polkit.release()

    def test_total_cap(self):
        # Five users flood; the fifth finds the total taken.  Root is still served.
        procs = []
        for k, uid in enumerate(FLOODERS):
            calls = [create_call(d) for d in FLOOD_DEVICES[:CHECKS_PER_SENDER * 2]]
            procs.append(flood(self.bus.address, uid, calls, connections=2, wait=6))
            self.wait_hanging(min(CHECKS_MAX, CHECKS_PER_UID * (k + 1)), f"uid {uid}'s checks")
        self.assertEqual(self.polkit.hanging(), CHECKS_MAX)
        self.create(OTHER)
        res = [results(p) for p in procs]
        pending = sum(1 for r in res for x in r if x.get("pending"))
        self.assertEqual(pending, CHECKS_MAX)
        last = [x for r in res for x in r if x.get("error") == TOO_MANY]
        self.assertTrue(any(f"{CHECKS_MAX} checks in all" in x["message"] for x in last), last)
        self.polkit.release()
        self.destroy(OTHER)

    def test_identical_calls_share_one_check(self):
        n = WAITING_PER_UID + 6
        p = flood(self.bus.address, "nobody", [create_call(NVME)] * n, wait=20)
        self.wait_hanging(1, "the shared check")
        self.bus.wait_for(lambda: len(self.polkit.checks()) >= 1, what="a check")
        time.sleep(1.0)
        self.assertEqual(len(self.polkit.checks()), 1)
        self.assertEqual(self.polkit.release(), 1)
        res = results(p)
        # Calls reach polkit once resolved, in the order their reads end: which ones
        # are past the cap is not the order they were sent in, how many is.
        errors = [r.get("error") for r in res]
        self.assertEqual((errors.count(DENIED), errors.count(TOO_MANY)), (WAITING_PER_UID, 6),
                         res)
        self.assertEqual(len(self.polkit.checks()), 1)
        self.assertEqual(self.driver_of(NVME), "nvme")
        # A new call after the answer asks again.
        out = call_as(self.bus.address, "nobody", "Create", [NVME, {}])
        self.assertEqual(out["error"], "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")
        self.assertEqual(len(self.polkit.checks()), 2)

    def test_stop_answers_the_waiting_calls(self):
        p = flood(self.bus.address, "nobody", [create_call(NVME)] * 3, wait=15)
        self.wait_hanging(1, "the shared check")
        # No leak at exit (stop_vfiod checks), and each waiting call is answered.
        self.stop_vfiod()
        res = results(p)
        self.assertEqual([r.get("error") for r in res], ["org.vfiod1.Error.ShuttingDown"] * 3,
                         res)


@needs_root
class TestPolkitDetails(PolkitBase):
    def test_device_kind_and_operation_reach_polkit(self):
        self.create(NVME)
        out = call_as(self.bus.address, "nobody", "Destroy", [NVME, {}])
        self.assertIn("error", out)
        out = call_as(self.bus.address, "nobody", "Create", [OTHER, {}])
        self.assertIn("error", out)
        details = [{str(k): str(v) for k, v in c[2].items()} for c in self.polkit.checks()]
        # The device as vfiod resolved it, the path as the caller gave it, what it makes.
        self.assertEqual(details, [
            {"org.vfiod1.operation": "destroy", "org.vfiod1.device": NVME_PATH,
             "org.vfiod1.kind": "pci", "org.vfiod1.path": NVME_PATH,
             "org.vfiod1.name": NVME},
            {"org.vfiod1.operation": "create",
             "org.vfiod1.device": "/sys/devices/pci0000:00/" + OTHER, "org.vfiod1.kind": "pci",
             "org.vfiod1.path": OTHER, "org.vfiod1.name": OTHER}])
        # Define and Undefine: asked once the definition is known, with its device too.
        self.call("Define", OTHER, dbus.Dictionary({}, signature="sv"))
        n = len(self.polkit.checks())
        for method, args in (("Define", [NVME, {}]), ("Undefine", [OTHER]),
                             ("Modify", [OTHER, {"driver": "vfio-pci"}])):
            out = call_as(self.bus.address, "nobody", method, args)
            self.assertIn("error", out)
        details = [{str(k): str(v) for k, v in c[2].items()} for c in self.polkit.checks()[n:]]
        self.assertEqual(details, [
            {"org.vfiod1.operation": "define", "org.vfiod1.device": NVME_PATH,
             "org.vfiod1.kind": "pci", "org.vfiod1.name": NVME},
            {"org.vfiod1.operation": "undefine",
             "org.vfiod1.device": "/sys/devices/pci0000:00/" + OTHER, "org.vfiod1.kind": "pci",
             "org.vfiod1.name": OTHER},
            {"org.vfiod1.operation": "modify",
             "org.vfiod1.device": "/sys/devices/pci0000:00/" + OTHER, "org.vfiod1.kind": "pci",
             "org.vfiod1.name": OTHER}])
        self.call("Undefine", OTHER)
        # A path that names no device is answered before polkit is asked.
        n = len(self.polkit.checks())
        out = call_as(self.bus.address, "nobody", "Create", ["0000:00:1e.0", {}])
        self.assertEqual(out["error"], "org.vfiod1.Error.NoSuchDevice", out)
        self.assertEqual(len(self.polkit.checks()), n)
        self.destroy(NVME)


def anonymous_call(address, method, *args):
    """METHOD of the manager over a connection authenticated as ANONYMOUS (sd-bus)."""
    lib = ctypes.CDLL("libsystemd.so.0")

    class Err(ctypes.Structure):
        _fields_ = [("name", ctypes.c_char_p), ("message", ctypes.c_char_p),
                    ("need_free", ctypes.c_int)]

    bus, reply, err = ctypes.c_void_p(), ctypes.c_void_p(), Err()
    assert lib.sd_bus_new(ctypes.byref(bus)) >= 0
    lib.sd_bus_set_address(bus, address.encode())
    lib.sd_bus_set_anonymous(bus, 1)
    lib.sd_bus_set_bus_client(bus, 1)
    assert lib.sd_bus_start(bus) >= 0
    r = lib.sd_bus_call_method(bus, b"org.vfiod1", b"/org/vfiod1", b"org.vfiod1.Manager",
                               method.encode(), ctypes.byref(err), ctypes.byref(reply),
                               b"sa{sv}", args[0].encode(), ctypes.c_uint(0))
    out = (r, err.name and err.name.decode(), err.message and err.message.decode())
    lib.sd_bus_error_free(ctypes.byref(err))
    lib.sd_bus_message_unref(reply)
    lib.sd_bus_flush_close_unref(bus)
    return out


@needs_root
class TestAnonymousCaller(Base):
    """The bus gives a pid but no uid for an ANONYMOUS connection."""
    fake_kernel = True

    def setUp(self):
        conf = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vfiod-anon-{os.getpid()}.conf")
        with open(service.SYSTEM_LIKE) as f:
            text = f.read().replace("<auth>EXTERNAL</auth>", "<auth>EXTERNAL</auth>\n"
                                    "  <auth>ANONYMOUS</auth>\n  <allow_anonymous/>")
        with open(conf, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, conf)
        with mock.patch.object(service, "SYSTEM_LIKE", conf):
            super().setUp()

    def test_root_over_anonymous_is_refused(self):
        r, name, message = anonymous_call(self.bus.address, "Create", NVME)
        self.assertLess(r, 0)
        self.assertEqual(name, DENIED, message)
        self.assertIn("the bus does not say which user is calling", message)
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIn("refused: the bus does not say which user is calling", self.vfiod.output())


FORGED = "\n<0>FORGED"


class TestLogForging(Base):
    fake_kernel = True

    def extra_fixture(self):
        # An mdevctl directory whose parent's name carries a line of its own.
        self.mdevctl = os.path.join(self.tmp, "mdevctl.d")
        parent = os.path.join(self.mdevctl, "0000:00:05.0" + FORGED + "-MDEVCTL")
        os.makedirs(parent)
        with open(os.path.join(parent, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003"), "w") as f:
            json.dump({"mdev_type": "nosuch", "start": "manual", "attrs": []}, f)
        self.env_extra = {"VFIOD_MDEVCTL_DIR": self.mdevctl}

    def start_vfiod(self, **env):
        return super().start_vfiod(**dict(getattr(self, "env_extra", {}), **env))

    def assert_no_forged_line(self, log):
        lines = log.split("\n")[:-1]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>", line)
            self.assertNotIn("FORGED", line[:12], line)
        self.assertNotRegex(log, r"(?m)^<[0-3]>")

    def test_caller_and_file_system_text_is_escaped(self):
        for method, args in (("Create", (dbus.Dictionary({}, signature="sv"),)),
                             ("Destroy", (dbus.Dictionary({}, signature="sv"),)),
                             ("Define", (dbus.Dictionary({}, signature="sv"),)),
                             ("Match", ())):
            with self.assertRaises(dbus.exceptions.DBusException):
                self.call(method, NVME_PATH + FORGED, *args)
        with self.assertRaises(dbus.exceptions.DBusException):
            self.call("Create", NVME, dbus.Dictionary({"type": "x" + FORGED}, signature="sv"))
        self.idle()
        log = self.vfiod.output()
        self.assert_no_forged_line(log)
        # The text is there, escaped: the caller's path and the mdevctl parent's name.
        self.assertIn(NVME_PATH + "\\x0a<0>FORGED", log)
        self.assertIn("0000:00:05.0\\x0a<0>FORGED-MDEVCTL", log)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


class TestArgumentBounds(Base):
    fake_kernel = True

    def invalid(self, method, *args):
        t0 = time.monotonic()
        with self.assertRaises(dbus.exceptions.DBusException) as c:
            self.call(method, *args)
        self.assertEqual(c.exception.get_dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs",
                         c.exception.get_dbus_message())
        return c.exception.get_dbus_message(), time.monotonic() - t0

    def test_huge_attrs_and_long_paths_refused_before_anything(self):
        # ASan keeps freed memory in a quarantine: VmRSS would measure it, not vfiod.
        self.stop_vfiod()
        asan = os.environ.get("ASAN_OPTIONS", "")
        self.start_vfiod(ASAN_OPTIONS=(asan + ":" if asan else "") + "quarantine_size_mb=0")
        before = self.sys.snapshot()
        pid = self.vfiod.proc.pid
        self.call("List")
        rss0 = rss_kb(pid)
        n = 200000
        attrs = dbus.Dictionary({f"knob{i}": "v" for i in range(n)}, signature="ss")
        msg, sec = self.invalid("Create", NVME, dbus.Dictionary(
            {"type": "small", "attrs": attrs}, signature="sv"))
        self.assertIn('the list of option "attrs" is too big: at most 1024 entries', msg)
        rss1 = rss_kb(pid)
        # A 4 KB path, to every method that takes one; a 4095-byte one is not refused so.
        long_path = "/sys/devices/" + "a" * (4096 - len("/sys/devices/"))
        for method, args in (("Create", (dbus.Dictionary({}, signature="sv"),)),
                             ("Destroy", (dbus.Dictionary({}, signature="sv"),)),
                             ("Define", (dbus.Dictionary({}, signature="sv"),)),
                             ("Match", ()), ("MdevTypes", ()), ("Start", ()), ("Undefine", ())):
            with self.subTest(method=method):
                msg, _ = self.invalid(method, long_path, *args)
                self.assertEqual(msg, "argument 1 is too big: at most 4095 bytes")
        with self.assertRaises(dbus.exceptions.DBusException) as c:
            self.call("Match", long_path[:-1])
        self.assertNotIn("too big", c.exception.get_dbus_message())
        # Names and values of options.
        msg, _ = self.invalid("Create", NVME, dbus.Dictionary({"type": "t" * 256},
                                                              signature="sv"))
        self.assertEqual(msg, 'the value of option "type" is too big: at most 255 bytes')
        msg, _ = self.invalid("Create", NVME, dbus.Dictionary(
            {"attrs": dbus.Dictionary({"k": "v" * 4096}, signature="ss")}, signature="sv"))
        self.assertEqual(msg, 'an entry\'s value of option "attrs" is too big: at most 4095 bytes')
        msg, _ = self.invalid("Create", NVME, dbus.Dictionary({"x" * 65: "y"}, signature="sv"))
        self.assertEqual(msg, "an option's name is too big: at most 64 bytes")
        self.assertEqual(before, self.sys.snapshot())
        self.assertLess(rss1 - rss0, 16 * 1024, f"VmRSS {rss0} -> {rss1} kB")
        print(f"\nbounds: Create with {n} attrs refused in {sec:.2f} s, vfiod VmRSS "
              f"{rss0} -> {rss1} kB; 4096-byte paths refused by every method")


class TestFileModes(Base):
    """What vfiod writes is root's alone: files 0600, directories 0700."""
    fake_kernel = True

    def modes(self):
        out = {}
        for top in (self.state_dir, self.run_dir):
            for dp, dns, fns in os.walk(top):
                out[dp] = (os.stat(dp).st_mode & 0o7777, 0o700)
                for n in fns:
                    out[os.path.join(dp, n)] = (os.stat(os.path.join(dp, n)).st_mode & 0o7777,
                                                0o600)
        return out

    def test_definitions_records_and_journal(self):
        self.create(NVME, persistent=True)
        self.call("Define", OTHER, dbus.Dictionary({}, signature="sv"))
        seen = self.modes()
        # The journal: an operation stopped right after writing it (a test-hooks build).
        self.stop_vfiod()
        v = self.start_vfiod(VFIOD_ABORT_AT="release:unbind")
        if "has no test hooks" not in v.output():
            with self.assertRaises(dbus.exceptions.DBusException):
                self.destroy(NVME)
            v.wait()
            self.vfiod = None
            self.assertTrue(self.journal())
            seen.update(self.modes())
            self.start_vfiod()
        files = {p for p, (_, want) in seen.items() if want == 0o600}
        for want in (os.path.join(self.state_dir, "devices", NVME + ".json"),
                     os.path.join(self.state_dir, "devices", OTHER + ".json"),
                     os.path.join(self.run_dir, "assigned", NVME + ".json")):
            self.assertIn(want, files)
        wrong = {p: oct(m) for p, (m, want) in seen.items() if m != want}
        self.assertEqual(wrong, {})
        print(f"\nfile modes: {len(files)} files 0600, {len(seen) - len(files)} directories 0700"
              f" ({', '.join(sorted(os.path.relpath(p, self.tmp) for p in files))})")
        self.idle()
        self.call("Undefine", NVME)
        self.call("Undefine", OTHER)


if __name__ == "__main__":
    unittest.main()
