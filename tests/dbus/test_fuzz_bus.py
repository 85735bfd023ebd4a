# SPDX-License-Identifier: LGPL-2.1-or-later
"""The D-Bus API fuzzed as nobody (fuzzbus.py): vfiod keeps answering, does
not crash, and an unprivileged caller changes nothing.

VFIOD_FUZZ_BUS_CALLS (default 1500) calls; VFIOD_FUZZ_BUS_SEED picks the
sequence (default: a fixed one, so a failure reproduces).
"""
import json
import os
import shutil
import subprocess
import unittest

from service import PYTHON, Polkit, is_root
from test_dbus import HERE, NVME, Base


@unittest.skipUnless(is_root() and shutil.which("setpriv"), "needs root to run callers as nobody")
class TestFuzzBus(Base):
    fake_kernel = True

    def setUp(self):
        super().setUp()
        self.polkit = Polkit(self.bus)
        self.addCleanup(self.polkit.stop)

    def test_random_calls_as_nobody_change_nothing(self):
        self.create(NVME)  # one device object to aim at
        before = (self.sys.snapshot(), self.call("List"), self.objects().keys(),
                  sorted(os.listdir(self.run_dir)))
        calls = int(os.environ.get("VFIOD_FUZZ_BUS_CALLS", "1500"))
        seed = int(os.environ.get("VFIOD_FUZZ_BUS_SEED", "20261121"))
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "--", PYTHON, os.path.join(HERE, "fuzzbus.py"), self.bus.address,
                            str(calls), str(seed)], capture_output=True, text=True,
                           timeout=1800, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        summary = json.loads(p.stdout)
        print(f"\nfuzz-bus: seed {seed}: {json.dumps(summary)}")
        self.assertEqual(summary["calls"], calls)
        self.assertNotIn("org.freedesktop.DBus.Error.NoReply", summary["answers"])
        # Every refusal is a precise one.
        self.assertNotIn("org.vfiod1.Error.Failed", summary["answers"], summary["generic"])
        self.assertGreater(summary["answers"].get("org.freedesktop.DBus.Error.AccessDenied", 0), 0)
        # Still alive, still answering, nothing changed.
        self.assertIsNone(self.vfiod.proc.poll())
        after = (self.sys.snapshot(), self.call("List"), self.objects().keys(),
                 sorted(os.listdir(self.run_dir)))
        self.assertEqual(before, after)
        self.assertEqual({str(c[1]) for c in self.polkit.checks()}, {"org.vfiod1.manage"})
        self.destroy(NVME)
        self.assert_consistent()


if __name__ == "__main__":
    unittest.main()
