# SPDX-License-Identifier: LGPL-2.1-or-later
"""A private dbus-daemon, vfiod on it, and dbusmock's polkit beside it.

When the tests run as root the bus gets a system-bus-like policy (default
deny) plus vfiod's real systemd/org.vfiod1.conf, so that the policy file is
what lets callers in; otherwise a permissive one (and the tests that need
other users are skipped).
"""
import os
import resource
import signal
import subprocess
import sys
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
POLICY = os.path.join(SOURCE, "systemd", "org.vfiod1.conf")
VFIOD = os.environ.get("VFIOD", "vfiod")
PYTHON = os.environ.get("VFIOD_DBUS_PYTHON", sys.executable)

# The system bus's rules (as root), or anything goes (as a user, who cannot own names
# under those rules).
SYSTEM_LIKE = os.path.join(HERE, "system-like-bus.conf.in")

PERMISSIVE = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>vfiod-test</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def is_root():
    return os.geteuid() == 0


def no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Bus:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "bus")
        os.makedirs(self.dir)
        os.chmod(tmp, 0o755)
        os.chmod(self.dir, 0o755)
        self.system_like = is_root()
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            sock = os.path.join(self.dir, "socket")
            if self.system_like:
                with open(SYSTEM_LIKE) as t:
                    f.write(t.read().replace("@SOCKET@", sock).replace("@POLICY@", POLICY))
            else:
                f.write(PERMISSIVE.format(socket=sock))
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork",
                                      "--print-address"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start")
        os.chmod(os.path.join(self.dir, "socket"), 0o777)
        self.conn = dbus.bus.BusConnection(self.address,
                                           mainloop=dbus.mainloop.glib.DBusGMainLoop())

    def has_owner(self, name):
        return bool(self.conn.name_has_owner(name))

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(10)

    @staticmethod
    def pump(seconds=0.0):
        ctx = GLib.MainContext.default()
        end = time.monotonic() + seconds
        while True:
            while ctx.pending():
                ctx.iteration(False)
            if time.monotonic() >= end:
                return
            time.sleep(0.01)

    def wait_for(self, pred, timeout=10, what="condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump()
            v = pred()
            if v:
                return v
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")


class Polkit:
    """dbusmock's polkitd template (or TEMPLATE, a file of ours) on the test bus."""

    def __init__(self, bus, template="polkitd"):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address,
                   DBUS_SESSION_BUS_ADDRESS=bus.address, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen([PYTHON, "-m", "dbusmock", "--system", "--template",
                                      template], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        bus.wait_for(lambda: bus.has_owner("org.freedesktop.PolicyKit1"), what="polkit mock")
        obj = bus.conn.get_object("org.freedesktop.PolicyKit1",
                                  "/org/freedesktop/PolicyKit1/Authority")
        self.mock = dbus.Interface(obj, "org.freedesktop.DBus.Mock")

    def allow(self, actions):
        self.mock.SetAllowed(dbus.Array(actions, signature="s"))

    def checks(self):
        return [c[1] for c in self.mock.GetMethodCalls("CheckAuthorization")]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Vfiod:
    def __init__(self, bus, env, log_path):
        self.bus = bus
        self.log_path = log_path
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen([VFIOD, "--debug"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=no_core)
        try:
            bus.wait_for(lambda: bus.has_owner("org.vfiod1") or self.proc.poll() is not None,
                         what="vfiod on the bus")
        except AssertionError:
            self.proc.kill()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"vfiod exited with {self.proc.returncode}:\n{self.output()}")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait(self, timeout=20):
        rc = self.proc.wait(timeout)
        self.log.close()
        return rc

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()
