# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bash completion of vfioctl (cli/vfioctl.bash-completion), run in bash.

Its keyword tables are compared with the code's (cli/vfioctl.c's verbs[] and
lib/options.c's option_defs[]); devices, mdev types and definitions come
from a fixture sysfs tree (VFIOD_SYSFS_ROOT) and the built vfioctl.
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "sysfs"))

from fixture import ModulesDir, Sysfs, tempdir  # noqa: E402

COMPLETION = os.path.join(SOURCE, "cli", "vfioctl.bash-completion")
VFIOCTL = os.environ.get("VFIOCTL", "vfioctl")
NVME = "0000:00:03.0"
PARENT = "0000:00:05.0"
UUID = "2b7b9a3e-5f1a-4c0c-9f5e-6a1d0c2b4e11"


def code_verbs():
    """{verb: OPT_* mask words} from cli/vfioctl.c's verbs[]."""
    with open(os.path.join(SOURCE, "cli", "vfioctl.c")) as f:
        text = f.read()
    table = text.split("static const struct verb verbs[] = {", 1)[1].split("\n};", 1)[0]
    verbs = {}
    for m in re.finditer(r'\{\s*"([a-z-]+)",\s*"[^"]*",\s*(?:"\w+"|NULL),\s*(?:"\w+"|NULL),'
                         r'\s*([A-Z_| 0]+),', table):
        verbs[m.group(1)] = {w.strip() for w in m.group(2).split("|")} - {"0"}
    return verbs


def code_options():
    """[(word, type, {OPT_*})] from lib/options.c's option_defs[]."""
    with open(os.path.join(SOURCE, "lib", "options.c")) as f:
        text = f.read()
    flags = {"C": "OPT_CREATE", "D": "OPT_DESTROY", "F": "OPT_DEFINE"}
    out = []
    for m in re.finditer(r'^\t\{ "\w+", "(\w+)", "([^"]+)", ([CDF |]+),', text, re.M):
        out.append((m.group(1), m.group(2), {flags[c.strip()] for c in m.group(3).split("|")}))
    return out


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.sys = Sysfs(os.path.join(self.tmp, "sys"))
        self.sys.driver("nvme", "nvme")
        self.sys.pci(NVME, 0x1b36, 0x0010, driver="nvme", group=3)
        self.sys.pci(PARENT, 0x8086, 0x1234, cls=0x030000, group=5)
        self.sys.module("vfio_pci", ["vfio-pci"])
        # An mdev parent with two types, one mdev, a class/mdev_bus parent, a vdpa device.
        for t in ("i915-GVTg_V5_4", "i915-GVTg_V5_8"):
            os.makedirs(os.path.join(self.sys.root, "devices/pci0000:00", PARENT,
                                     "mdev_supported_types", t))
        mtty = os.path.join(self.sys.root, "devices/virtual/mtty/mtty")
        os.makedirs(os.path.join(mtty, "mdev_supported_types", "mtty-1"))
        os.makedirs(os.path.join(self.sys.root, "class/mdev_bus"))
        os.symlink(mtty, os.path.join(self.sys.root, "class/mdev_bus/mtty"))
        mdev = os.path.join(self.sys.root, "devices/pci0000:00", PARENT, UUID)
        os.makedirs(mdev)
        os.makedirs(os.path.join(self.sys.root, "bus/mdev/devices"))
        os.symlink(mdev, os.path.join(self.sys.root, "bus/mdev/devices", UUID))
        vdpa = os.path.join(self.sys.root, "devices/virtual/vduse/vduse0/vdpa0")
        os.makedirs(vdpa)
        os.makedirs(os.path.join(self.sys.root, "bus/vdpa/devices"))
        os.symlink(vdpa, os.path.join(self.sys.root, "bus/vdpa/devices/vdpa0"))
        self.mods = ModulesDir(os.path.join(self.tmp, "modroot"))
        self.mods.add("vfio_pci", ["vfio_pci:v*d*sv*sd*bc*sc*i*"])
        self.mods.depmod()
        self.state = os.path.join(self.tmp, "state")
        self.env = dict(os.environ, VFIOD_SYSFS_ROOT=self.sys.root,
                        VFIOD_MODULES_DIR=self.mods.dir,
                        VFIOD_MODPROBE_CONFIG=os.path.join(self.tmp, "none"),
                        RUNTIME_DIRECTORY=os.path.join(self.tmp, "run"),
                        STATE_DIRECTORY=self.state, VFIOD_NO_KERNEL="1",
                        VFIOD_BUS_ADDRESS="unix:path=" + os.path.join(self.tmp, "nobus"))
        self.env["PATH"] = os.path.dirname(shutil.which(VFIOCTL) or VFIOCTL) + ":" + \
            self.env["PATH"]

    def complete(self, line):
        """COMPREPLY for LINE, completing its last word (empty after a trailing space)."""
        words = line.split(" ")
        script = (f'source "$1"; COMP_WORDS=({" ".join(self.quote(w) for w in words)}); '
                  f'COMP_CWORD={len(words) - 1}; COMP_LINE={self.quote(line)}; '
                  f'COMP_POINT=${{#COMP_LINE}}; _vfioctl; printf "%s\\n" "${{COMPREPLY[@]}}"')
        p = subprocess.run(["bash", "-c", script, "bash", COMPLETION], env=self.env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        return sorted(w for w in p.stdout.split("\n") if w)

    @staticmethod
    def quote(s):
        return "'" + s.replace("'", "'\\''") + "'"

    def table(self, verb):
        p = subprocess.run(["bash", "-c", f'source "$1"; v=_vfioctl_kw_{verb}; '
                            'printf "%s" "${!v-}"', "bash", COMPLETION],
                           capture_output=True, text=True, check=True)
        return set(p.stdout.split())


class TestTables(Base):
    def test_verbs_are_the_code_s(self):
        verbs = code_verbs()
        self.assertGreater(len(verbs), 8)
        self.assertEqual(self.complete("vfioctl "), sorted(verbs))
        self.assertEqual(self.complete("vfioctl --direct -j st"), ["start", "stop"])

    def test_keywords_per_verb_are_the_code_s(self):
        options = code_options()
        self.assertGreater(len(options), 10)
        for verb, mask in code_verbs().items():
            want = {w + ("" if t == "b" else "=") for w, t, methods in options
                    if methods & mask}
            with self.subTest(verb=verb):
                self.assertEqual(self.table(verb), want)
                if want:
                    self.assertEqual(self.complete(f"vfioctl {verb} {NVME} "),
                                     sorted({w.rstrip("=") for w in want}))

    def test_global_options(self):
        got = self.complete("vfioctl --")
        for o in ("--json", "--pretty", "--direct", "--resolver=", "--verbose", "--version",
                  "--help"):
            self.assertIn(o, got)
        self.assertEqual(self.complete("vfioctl --resolver = "), ["auto", "kernel", "user"])
        self.assertEqual(self.complete("vfioctl --resolver = user --direct ma"), ["match"])

    def test_color(self):
        got = self.complete("vfioctl -")
        for o in ("-c", "--color", "--color="):
            self.assertIn(o, got)
        self.assertEqual(self.complete("vfioctl --color = "), ["always", "auto", "never"])
        self.assertEqual(self.complete("vfioctl --color=n"), ["never"])
        # Its value only ever after '=': "--color" alone takes no word after it.
        self.assertEqual(self.complete("vfioctl --color = never --direct ma"), ["match"])
        self.assertEqual(self.complete("vfioctl --color ma"), ["match"])
        self.assertEqual(self.complete("vfioctl -c li"), ["list"])


class TestValues(Base):
    def test_devices(self):
        self.assertEqual(self.complete("vfioctl create "), sorted([NVME, PARENT, UUID, "vdpa0"]))
        self.assertEqual(self.complete("vfioctl -j destroy 2b7"), [UUID])
        self.assertEqual(self.complete("vfioctl match 0000:00:0"), [NVME, PARENT])

    def test_mdev_parents_and_types(self):
        self.assertEqual(self.complete("vfioctl types "), sorted([PARENT, "mtty"]))
        self.assertEqual(self.complete(f"vfioctl create {PARENT} type "),
                         ["i915-GVTg_V5_4", "i915-GVTg_V5_8"])
        self.assertEqual(self.complete(f"vfioctl create {PARENT} uuid {UUID} type i915-GVTg_V5_8"),
                         ["i915-GVTg_V5_8"])
        self.assertEqual(self.complete("vfioctl define mtty type "), ["mtty-1"])
        self.assertEqual(
            self.complete(f"vfioctl create /sys/devices/pci0000:00/{PARENT} type "),
            ["i915-GVTg_V5_4", "i915-GVTg_V5_8"])
        self.assertEqual(self.complete(f"vfioctl create {NVME} type "), [])

    def test_values_that_are_not_completed(self):
        self.assertEqual(self.complete(f"vfioctl create {NVME} vfs "), [])
        self.assertEqual(self.complete(f"vfioctl create {NVME} uuid "), [])
        self.assertEqual(self.complete("vfioctl list "), [])
        self.assertEqual(self.complete(f"vfioctl create {NVME} driver "),
                         sorted(["vhost_vdpa", "vfio-pci", "virtio_vdpa"]))

    def test_definitions(self):
        # Nothing defined: nothing offered (and no error from a missing vfiod).
        self.assertEqual(self.complete("vfioctl start "), [])
        p = subprocess.run([VFIOCTL, "--direct", "-j", "define", NVME], env=self.env,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.complete("vfioctl --direct start "), [NVME])
        self.assertEqual(self.complete("vfioctl --direct undefine 0000"), [NVME])
        self.assertEqual(self.complete("vfioctl --direct modify "), [NVME])
        # Not active: nothing to stop.
        self.assertEqual(self.complete("vfioctl --direct stop "), [])
        # start takes several: a name after a name, not an option word.
        p = subprocess.run([VFIOCTL, "--direct", "-j", "define", PARENT], env=self.env,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.complete(f"vfioctl --direct start {NVME} "), sorted([NVME, PARENT]))
        self.assertEqual(self.complete(f"vfioctl --direct undefine {NVME} "), [])


if __name__ == "__main__":
    unittest.main()
