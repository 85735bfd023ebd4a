# SPDX-License-Identifier: LGPL-2.1-or-later
"""The hostile input corpus of this folder, against vfiod on a private bus
and vfioctl --direct, on a fixture tree.

Every bad path (paths.txt), option (options.json) and name (names.txt) gets
a clear error and changes nothing: the fixture tree (driver links, override
files), the state and the runtime directories are compared before and
after.  Corrupt configuration and state files (state/) do not stop vfiod:
it starts, names each file it ignored, and keeps the rest.
"""
import codecs
import json
import os
import shutil
import subprocess
import sys
import unittest

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "dbus"))

from rawcall import to_dbus  # noqa: E402
from test_dbus import NVME, OTHER, VFIOCTL, Base  # noqa: E402

ERROR_PREFIXES = ("org.vfiod1.Error.", "org.freedesktop.DBus.Error.InvalidArgs")


def corpus_lines(name):
    with open(os.path.join(HERE, name), "rb") as f:
        for line in f.read().split(b"\n"):
            if line.startswith(b"#") or line == b"":
                continue
            yield codecs.escape_decode(line)[0]


def generated_paths():
    """What does not fit a line: long paths and many components."""
    yield b"/sys/devices/" + b"a" * 5000
    yield b"/sys/" + b"devices/" * 600
    yield b"/sys/devices/pci0000:00/" + b"x" * 300
    yield b"/sys/devices/pci0000:00/0000:00:03.0" + b"/." * 3000


class HostileBase(Base):
    fake_kernel = True

    def extra_fixture(self):
        root = self.sys.root
        os.makedirs(os.path.join(root, "class/nvme"), exist_ok=True)
        os.symlink("/etc", os.path.join(root, "class/nvme/out"))
        os.symlink("../../devices/pci0000:00/0000:00:03.0/vendor",
                   os.path.join(root, "class/nvme/attr"))
        os.symlink("loop", os.path.join(root, "class/nvme/loop"))
        os.symlink("../../devices/nosuch", os.path.join(root, "class/nvme/dangling"))
        os.makedirs(os.path.join(root, "devices/pci0000:00/0000:00:03.0/notadevice"))

    def world(self):
        """The fixture tree, the state and the runtime directories, whole."""
        out = dict(self.sys.snapshot())
        for d in (self.state_dir, self.run_dir):
            for dp, dns, fns in os.walk(d):
                for n in fns:
                    p = os.path.join(dp, n)
                    with open(p, "rb") as f:
                        out[p] = f.read()
        return out

    def refused_over_bus(self, method, *args):
        try:
            self.call(method, *args)
        except dbus.exceptions.DBusException as e:
            name, msg = e.get_dbus_name(), e.get_dbus_message()
            self.assertTrue(name.startswith(ERROR_PREFIXES), f"{method} {args!r}: {name}: {msg}")
            self.assertTrue(msg, f"{method} {args!r}: {name} without a message")
            return name
        self.fail(f"{method} {args!r} was not refused")


class TestHostilePaths(HostileBase):
    def test_every_path_refused_nothing_changed(self):
        before = self.world()
        tried = {"bus": 0, "direct": 0, "unsendable": 0}
        errors = {}
        for raw in list(corpus_lines("paths.txt")) + list(generated_paths()):
            with self.subTest(path=raw[:80]):
                try:
                    text = raw.decode("utf-8")
                    sendable = "\0" not in text
                except UnicodeDecodeError:
                    sendable = False
                if sendable:
                    for method, args in (("Create", (dbus.Dictionary({}, signature="sv"),)),
                                         ("Destroy", (dbus.Dictionary({}, signature="sv"),)),
                                         ("Define", (dbus.Dictionary({}, signature="sv"),)),
                                         ("Match", ())):
                        name = self.refused_over_bus(method, text, *args)
                        errors[name] = errors.get(name, 0) + 1
                        if name == "org.vfiod1.Error.Failed":
                            print(f"\n{method} {text!r}: generic failure")
                        tried["bus"] += 1
                else:
                    tried["unsendable"] += 1
                if b"\0" in raw:
                    continue
                for verb in ("create", "destroy", "match"):
                    p = subprocess.run([VFIOCTL, "--direct", verb, raw], env=self.env,
                                       capture_output=True, timeout=60)
                    err = p.stderr.decode("utf-8", "replace")
                    self.assertIn(p.returncode, (1, 2), f"vfioctl {verb} {raw!r}: {err}")
                    self.assertIn("vfioctl", err)
                    self.assertNotIn("Sanitizer", err)
                    self.assertNotIn("runtime error", err)
                    tried["direct"] += 1
        self.assertEqual(before, self.world())
        self.assertEqual(self.objects(), {})
        # No path made a log line of its own (each line is one call's, at its priority).
        log = self.vfiod.output()
        for line in log.split("\n")[:-1]:
            self.assertRegex(line, r"^<[4-7]>", line)
        self.assertNotIn("\x1b", log)
        print(f"\nhostile paths: {tried['bus']} bus calls, {tried['direct']} vfioctl --direct, "
              f"{tried['unsendable']} not sendable over D-Bus; errors {json.dumps(errors)}")


class TestHostileOptions(HostileBase):
    def test_options_refused_naming_the_key(self):
        with open(os.path.join(HERE, "options.json")) as f:
            cases = json.load(f)["cases"]
        before = self.world()
        for method, opts, words in cases:
            with self.subTest(method=method, opts=opts):
                d = dbus.Dictionary({k: to_dbus("v", [sig, v]) for k, sig, v in opts},
                                    signature="sv")
                try:
                    self.call(method, NVME, d)
                    self.fail("accepted")
                except dbus.exceptions.DBusException as e:
                    self.assertEqual(e.get_dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs",
                                     e.get_dbus_message())
                    self.assertIn(words, e.get_dbus_message())
        self.assertEqual(before, self.world())
        print(f"\nhostile options: {len(cases)} refused with InvalidArgs naming the key")

    def test_bad_names_refused_nothing_changed(self):
        before = self.world()
        n = 0
        for line in corpus_lines("names.txt"):
            key, _, value = line.partition(b"\t")
            key, value = key.decode(), value.decode("utf-8")
            with self.subTest(key=key, value=value):
                opts = {key: value}
                # The option's kind: vdpa and mdev names go with their selector.
                if key == "uuid":
                    opts["type"] = "small"
                if key == "mac":
                    opts["vdpa"] = "vdpa0"
                name = self.refused_over_bus("Create", NVME,
                                             dbus.Dictionary(opts, signature="sv"))
                self.assertNotEqual(name, "org.vfiod1.Error.Failed")
                p = self.vfioctl("--direct", "create", NVME,
                                 *sum(([k, v] for k, v in opts.items()), []), rc=None)
                self.assertIn(p.returncode, (1, 2), p.stdout + p.stderr)
                n += 1
        self.assertEqual(before, self.world())
        print(f"\nhostile names: {n} refused over the bus and by vfioctl --direct")


class TestHostileState(HostileBase):
    GOOD = {"name": OTHER, "kind": "pci", "path": "/sys/devices/pci0000:00/" + OTHER,
            "options": {}, "undo": {"path": "/sys/devices/pci0000:00/" + OTHER, "options": {}},
            "start": "manual"}

    def test_corrupt_files_named_and_the_rest_kept(self):
        self.stop_vfiod()
        src = os.path.join(HERE, "state")
        places = {"conf.d": os.path.join(self.tmp, "etc", "conf.d"),
                  "devices": os.path.join(self.state_dir, "devices"),
                  "journal": os.path.join(self.run_dir, "journal"),
                  "assigned": os.path.join(self.run_dir, "assigned")}
        bad = []
        for sub, dest in places.items():
            os.makedirs(dest, exist_ok=True)
            for f in sorted(os.listdir(os.path.join(src, sub))):
                shutil.copy(os.path.join(src, sub, f), dest)
                if not f.startswith("90-good"):
                    bad.append((sub, os.path.join(dest, f)))
        with open(os.path.join(places["devices"], OTHER + ".json"), "w") as f:
            json.dump(self.GOOD, f)
        # What vfiod imported from mdevctl, as something else than a list of UUIDs.
        imported = os.path.join(self.state_dir, "mdevctl-imported.json")
        with open(imported, "w") as f:
            json.dump({"uuids": []}, f)
        bad.append(("state", imported))
        self.env.pop("VFIOD_OPERATION_TIMEOUT_SEC")  # the configuration's word, here
        self.start_vfiod()
        # Read leniently for failure messages; the check below wants UTF-8 throughout.
        log_path = self.vfiod.log_path
        self.vfiod.output = lambda: open(log_path, "rb").read().decode("utf-8", "replace")
        self.idle()
        with open(self.vfiod.log_path, "rb") as f:
            raw = f.read()
        # Bytes that are not UTF-8 are quoted, so the log itself is UTF-8.
        log = raw.decode("utf-8")
        self.assertIn("OperationTimeoutSec=\\xff\\xfe is not a number", log)
        for sub, path in bad:
            with self.subTest(file=path):
                lines = [l for l in log.splitlines() if path in l]
                self.assertTrue(lines, f"{path} not named in the log")
                self.assertTrue(any(w in l for l in lines for w in ("ignoring", "removing")),
                                lines)
        # The rest is kept: the good definition, the good drop-in.
        listed = {e["name"]: e for e in json.loads(str(self.call("List")))}
        self.assertEqual(listed[OTHER]["state"], "defined", listed)
        self.assertEqual(self.describe()["operation_timeout_sec"], 7, self.describe())
        # The journal is empty: nothing left half-way, nothing corrupt kept.
        self.assertEqual(self.journal(), [])
        self.assertEqual(self.driver_of(NVME), "nvme")
        print(f"\nhostile state: {len(bad)} corrupt files; vfiod started, named each, kept "
              f"the good definition and drop-in")


if __name__ == "__main__":
    unittest.main()
