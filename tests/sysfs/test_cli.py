# SPDX-License-Identifier: LGPL-2.1-or-later
"""vfioctl and libvfiod against fixture sysfs trees and depmod-made module dirs."""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

import ptyrun
from fixture import ModulesDir, Sysfs, tempdir
from kernelwrite import KernelWrite

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dbus"))
from fakekernel import FakeKernel  # noqa: E402  (the driver core of tests/dbus)

VFIOCTL = os.environ.get("VFIOCTL", "vfioctl")
NVME = "0000:00:03.0"
NVME_PATH = "/sys/devices/pci0000:00/0000:00:03.0"

# The aliases depmod writes for the kernel fixture variants and vfio-pci.
ALIAS_VFIO_PCI = "vfio_pci:v*d*sv*sd*bc*sc*i*"
ALIAS_VD = "vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*"
ALIAS_VDSUB = "vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc*sc*i*"
ALIAS_OTHER = "vfio_pci:v00001B36d00000005sv*sd*bc*sc*i*"


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.sys = Sysfs(os.path.join(self.tmp, "sys"))
        self.mods = ModulesDir(os.path.join(self.tmp, "modroot"))
        self.conf = os.path.join(self.tmp, "modprobe.d")
        os.makedirs(self.conf)
        self.run_dir = os.path.join(self.tmp, "run")
        self.env = dict(os.environ, VFIOD_SYSFS_ROOT=self.sys.root,
                        VFIOD_MODULES_DIR=self.mods.dir, VFIOD_MODPROBE_CONFIG=self.conf,
                        RUNTIME_DIRECTORY=self.run_dir, VFIOD_NO_KERNEL="1")
        self.sys.driver("nvme", "nvme")
        self.sys.pci(NVME, 0x1b36, 0x0010, driver="nvme", group=3)
        self.sys.pci("0000:00:04.0", 0x1b36, 0x0005, cls=0x00ff00, group=4)

    def standard_modules(self):
        self.mods.add("vfio_pci", [ALIAS_VFIO_PCI])
        self.mods.add("vfio_fixture_vd", [ALIAS_VD])
        self.mods.add("vfio_fixture_vdsub", [ALIAS_VDSUB])
        self.mods.add("vfio_fixture_other", [ALIAS_OTHER])
        self.mods.add("nvme", ["pci:v*d*sv*sd*bc01sc08i02*"])
        self.mods.depmod()

    def vfioctl(self, *args, rc=0):
        # --direct: these tests are of libvfiod; vfiod has its own (tests/dbus).
        p = subprocess.run([VFIOCTL, "--direct", *args], env=self.env, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, rc,
                         f"vfioctl {' '.join(args)}: rc {p.returncode}\n{p.stdout}{p.stderr}")
        self.assertNotIn("runtime error", p.stderr)  # UBSan
        self.assertNotIn("AddressSanitizer", p.stderr)
        return p

    def match(self, path=NVME):
        return json.loads(self.vfioctl("-j", "match", path).stdout)

    def conf_file(self, text):
        with open(os.path.join(self.conf, "test.conf"), "w") as f:
            f.write(text)


class TestMatch(Base):
    def test_most_specific_wins_and_json_shape(self):
        self.standard_modules()
        m = self.match()
        self.assertEqual(m["device"], NVME_PATH)
        self.assertEqual(m["modalias"],
                         "vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02")
        self.assertEqual(m["resolver"], "user space")
        mods = [c["module"] for c in m["candidates"]]
        self.assertEqual(mods, ["vfio_fixture_vdsub", "vfio_fixture_vd", "vfio_pci"])
        self.assertEqual([c["rank"] for c in m["candidates"]], [1, 2, 3])
        self.assertEqual([c["alias"] for c in m["candidates"]],
                         [ALIAS_VDSUB, ALIAS_VD, ALIAS_VFIO_PCI])
        self.assertEqual([c["exact_fields"] for c in m["candidates"]], [4, 2, 0])
        self.assertEqual(m["selected"]["module"], "vfio_fixture_vdsub")
        self.assertNotIn("skipped", m["candidates"][0])

    def test_device_missing_from_pci_ids_is_shown(self):
        # libpci reports an id pci.ids lacks through a callback that pci_alloc() leaves
        # unset: a device the table does not know (a new card) once crashed every command.
        self.standard_modules()
        self.sys.pci("0000:00:07.0", 0x1b36, 0xfff7, cls=0x00ff00, group=7)
        d = json.loads(self.vfioctl("-j", "show", "0000:00:07.0").stdout)
        self.assertEqual(d["id"], "1b36:fff7")
        self.assertNotIn("fff7", d.get("description") or "")
        self.assertEqual(self.match("0000:00:07.0")["selected"]["module"], "vfio_pci")

    def test_other_device_matches_only_its_variant(self):
        self.standard_modules()
        m = self.match("0000:00:04.0")
        self.assertEqual([c["module"] for c in m["candidates"]],
                         ["vfio_fixture_other", "vfio_pci"])

    def test_driver_name_from_loaded_module(self):
        self.standard_modules()
        self.sys.module("vfio_fixture_vdsub", ["vfio-fixture-vdsub"])
        m = self.match()
        c = m["candidates"][0]
        self.assertTrue(c["loaded"])
        self.assertEqual(c["driver"], "vfio-fixture-vdsub")
        self.assertEqual(m["selected"]["driver"], "vfio-fixture-vdsub")
        self.assertFalse(m["candidates"][1]["loaded"])
        self.assertIsNone(m["candidates"][1]["driver"])

    def test_blacklisted_module_skipped_with_reason(self):
        self.standard_modules()
        self.conf_file("blacklist vfio_fixture_vdsub\n")
        m = self.match()
        self.assertEqual(m["candidates"][0]["module"], "vfio_fixture_vdsub")
        self.assertEqual(m["candidates"][0]["skipped"], "blacklisted in modprobe.d")
        self.assertEqual(m["selected"]["module"], "vfio_fixture_vd")
        text = self.vfioctl("match", NVME).stdout
        self.assertIn("skipped: blacklisted in modprobe.d", text)
        self.assertIn("selected vfio_fixture_vd:", text)

    def test_modprobe_d_alias_takes_precedence(self):
        self.standard_modules()
        self.conf_file("alias vfio_pci:v00001B36d00000010sv*sd*bc01sc08i02 vfio_fixture_other\n")
        m = self.match()
        self.assertEqual([c["module"] for c in m["candidates"]], ["vfio_fixture_other"])
        self.assertEqual(m["candidates"][0]["source"], "modprobe.d")
        self.assertEqual(m["candidates"][0]["exact_fields"], 5)

    def test_tie_broken_by_module_name_and_reported(self):
        self.mods.add("vfio_pci", [ALIAS_VFIO_PCI])
        self.mods.add("zz_vfio_b", [ALIAS_VD])
        self.mods.add("aa_vfio_a", ["vfio_pci:v00001B36d*sv00001AF4sd*bc*sc*i*"])
        self.mods.depmod()
        m = self.match()
        self.assertEqual(m["candidates"][0]["exact_fields"], 2)
        self.assertEqual(m["candidates"][1]["exact_fields"], 2)
        # Same count: vendor+device outranks vendor+subvendor (the device field weighs more).
        self.assertEqual(m["candidates"][0]["module"], "zz_vfio_b")
        self.assertNotIn("tie", m["candidates"][0])
        self.mods.add("mm_vfio_c", [ALIAS_VD])
        self.mods.depmod()
        m = self.match()
        self.assertEqual([c["module"] for c in m["candidates"][:2]], ["mm_vfio_c", "zz_vfio_b"])
        self.assertTrue(m["candidates"][0]["tie"])
        self.assertTrue(m["candidates"][1]["tie"])
        self.assertIn("tie", m["selected"]["reason"])

    def test_real_glob_semantics(self):
        # depmod ends an alias whose last field is exact with "*": "i02*" must match
        # prog-if 02 (a byte-equal field comparison never matches it).
        self.mods.add("vfio_pci", [ALIAS_VFIO_PCI])
        self.mods.add("vfio_progif", ["vfio_pci:v00001B36d00000010sv*sd*bc01sc08i02*"])
        self.mods.add("vfio_partial", ["vfio_pci:v00001B3?d0000001*sv*sd*bc*sc*i*"])
        self.mods.add("vfio_nomatch", ["vfio_pci:v00001B36d00000010sv*sd*bc01sc08i03*"])
        self.mods.depmod()
        m = self.match()
        self.assertEqual([c["module"] for c in m["candidates"]],
                         ["vfio_progif", "vfio_partial", "vfio_pci"])
        self.assertEqual(m["candidates"][0]["exact_fields"], 5)
        self.assertEqual(m["candidates"][1]["exact_fields"], 0)

    def test_builtin_module(self):
        self.mods.add_builtin("vfio_pci", [ALIAS_VFIO_PCI])
        self.mods.depmod()
        self.sys.module("vfio_pci", ["vfio-pci"], builtin=True)
        m = self.match()
        self.assertEqual(m["candidates"][0]["module"], "vfio_pci")
        self.assertTrue(m["candidates"][0]["builtin"])
        self.assertEqual(m["candidates"][0]["source"], "modules.builtin.modinfo")
        self.assertEqual(m["selected"]["driver"], "vfio-pci")

    def test_no_candidates(self):
        self.mods.add("nvme", ["pci:v*d*sv*sd*bc01sc08i02*"])
        self.mods.depmod()
        m = self.match()
        self.assertEqual(m["candidates"], [])
        self.assertIsNone(m["selected"])
        p = self.vfioctl("create", NVME, rc=1)
        self.assertIn("no vfio driver claims this device", p.stderr)


class TestPaths(Base):
    def setUp(self):
        super().setUp()
        self.standard_modules()

    def test_every_form_names_the_same_device(self):
        forms = [NVME, "00:03.0", "/sys/bus/pci/devices/" + NVME, NVME_PATH, NVME_PATH + "/",
                 self.sys.root + "/bus/pci/devices/" + NVME]
        for f in forms:
            with self.subTest(form=f):
                self.assertEqual(self.match(f)["device"], NVME_PATH)

    def refused(self, path, words, rc=1):
        before = self.sys.snapshot()
        p = self.vfioctl("create", path, rc=rc)
        for w in words:
            self.assertIn(w, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(before, self.sys.snapshot(), "the tree was changed")
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "assigned", NVME + ".json")))

    def test_refusals_name_the_problem_and_change_nothing(self):
        os.symlink("/tmp", os.path.join(self.sys.root, "bus/pci/devices/escape"))
        os.makedirs(os.path.join(self.sys.root, "devices/pci0000:00/notadevice"))
        self.sys.netdev("eth0", pci=NVME)
        cases = [
            (NVME_PATH + "/vendor", ["is a file"]),
            (NVME_PATH + "/../0000:00:04.0", ["'..'"]),
            ("/sys/bus/pci/devices/escape", ["not under /sys/devices"]),
            ("/sys/devices/pci0000:00/notadevice", ["not a device"]),
            ("/sys/devices/virtual/net/eth0", ["net device", "its PCI function is " + NVME]),
            ("/sys/bus/pci/devices/0000:00:09.0", ["no such device"]),
            ("0000:00:09.0", ["no such device"]),
            ("/etc/passwd", ["not a path under /sys"]),
            ("eth0", ["not a sysfs path nor a PCI address"]),
            ("/sys/" + "a" * 5000, ["too long"]),
            ("/sys/devices", ["not under /sys/devices"]),
        ]
        for path, words in cases:
            with self.subTest(path=path[:80]):
                self.refused(path, words)

    def test_usage_errors_name_the_word(self):
        cases = [(("frobnicate",), "unknown verb 'frobnicate'"),
                 (("create", NVME, "colour", "blue"), "unknown argument 'colour'"),
                 (("create", NVME, "driver"), "'driver' needs a value (NAME)"),
                 (("match",), "missing device path"),
                 (("--resolver=magic", "list"), "unknown value 'magic'"),
                 ((), "missing verb")]
        for args, words in cases:
            with self.subTest(args=args):
                p = self.vfioctl(*args, rc=2)
                self.assertIn(words, p.stderr)
                self.assertLess(len(p.stderr.splitlines()), 4, "usage errors do not dump help")


class TestAssign(Base):
    def setUp(self):
        super().setUp()
        self.standard_modules()
        self.sys.module("vfio_fixture_vdsub", ["vfio-fixture-vdsub"])
        self.sys.module("vfio_pci", ["vfio-pci"])

    def test_group_not_viable_refused_naming_members(self):
        self.sys.driver("ahci", "ahci")
        self.sys.pci("0000:00:1f.2", 0x8086, 0x2922, cls=0x010601, driver="ahci", group=3)
        self.sys.pci("0000:00:1f.3", 0x8086, 0x2930, cls=0x0c0500, group=3)
        before = self.sys.snapshot()
        p = self.vfioctl("create", NVME, rc=1)
        self.assertIn("IOMMU group 3 is not viable: 0000:00:1f.2 on ahci", p.stderr)
        self.assertNotIn("1f.3", p.stderr)  # unbound members are fine
        self.assertIn("group", p.stderr)
        self.assertEqual(before, self.sys.snapshot())

    def test_group_member_on_vfio_driver_is_viable(self):
        self.sys.pci("0000:00:1f.2", 0x8086, 0x2922, cls=0x010601, driver="vfio-pci", group=3)
        p = self.vfioctl("create", NVME, rc=1)  # the fixture kernel never binds
        self.assertNotIn("not viable", p.stderr)

    def test_no_iommu_group(self):
        self.sys.pci("0000:00:05.0", 0x1b36, 0x0010, driver="nvme")
        p = self.vfioctl("create", "0000:00:05.0", rc=1)
        self.assertIn("has no IOMMU group", p.stderr)

    def test_forced_driver_must_claim_the_device(self):
        p = self.vfioctl("create", NVME, "driver", "vfio_fixture_other", rc=1)
        self.assertIn("does not claim this device", p.stderr)

    def test_failed_bind_is_rolled_back(self):
        # Files, not a driver core: the writes land but nothing binds, so verify fails
        # and every step is undone.
        p = self.vfioctl("create", NVME, rc=1)
        self.assertIn("did not bind", p.stderr)
        self.assertEqual(self.sys.read(NVME_PATH + "/driver_override"), "\n")
        self.assertEqual(self.sys.read(NVME_PATH + "/driver/unbind"), NVME)
        self.assertEqual(self.sys.read("bus/pci/drivers_probe"), NVME)
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "assigned", NVME + ".json")))
        self.assertEqual(json.loads(self.vfioctl("-j", "list").stdout), [])

    def in_use_tree(self):
        # What sysfs shows below a device the host uses: an interface that is up and
        # enslaved, a disk a device-mapper target is stacked on, the console's framebuffer.
        dev = NVME_PATH.removeprefix("/sys/")
        net = self.sys.node(f"{dev}/net/eth7", "net", flags="0x1003")
        self.sys._link(net + "/master", self.sys.node("devices/virtual/net/br0", "net"))
        disk = self.sys.node(f"{dev}/nvme/nvme0/nvme0n1", "block", "511:0")
        dm = self.sys.node("devices/virtual/block/dm-0", "block", "511:9", **{"dm/name": "data"})
        self.sys._link(disk + "/holders/dm-0", dm)
        self.sys.node(f"{dev}/graphics/fb0", "graphics", "511:29")
        self.sys._write("class/vtconsole/vtcon1/name", "(M) frame buffer device\n")
        self.sys._write("class/vtconsole/vtcon1/bind", "1\n")

    def test_in_use_refused_naming_each_use(self):
        self.in_use_tree()
        before = self.sys.snapshot()
        p = self.vfioctl("create", NVME, rc=1)
        self.assertIn(NVME_PATH + ": in use by the host, nothing changed:", p.stderr)
        for use in ("network interface eth7 is up",
                    "network interface eth7 is enslaved to br0",
                    "/dev/nvme0n1 is held by /dev/dm-0 (/dev/mapper/data)",
                    "the console is on /dev/fb0",
                    "Stop using it, or add `force` to take it anyway."):
            self.assertIn("\n  " + use if "Stop" not in use else use, p.stderr)
        self.assertEqual(before, self.sys.snapshot())
        self.assertEqual(json.loads(self.vfioctl("-j", "list").stdout), [])
        m = json.loads(self.vfioctl("-j", "match", NVME).stdout)
        self.assertEqual(sorted(u["kind"] for u in m["in_use"]["uses"]),
                         ["console", "holder", "net-master", "net-up"])
        self.assertIn("in use by the host", self.vfioctl("match", NVME).stdout)

    def test_in_use_forced_goes_on(self):
        self.in_use_tree()
        # Forced, the steps run (the fixture kernel then never binds: verify fails).
        p = self.vfioctl("create", NVME, "force", rc=1)
        self.assertNotIn("in use by the host, nothing changed", p.stderr)
        self.assertIn("did not bind", p.stderr)
        self.assertEqual(self.sys.read("bus/pci/drivers_probe"), NVME)

    def test_group_member_in_use_blocks_group(self):
        self.sys.pci("0000:00:03.1", 0x8086, 0x10d3, cls=0x020000, driver="e1000e", group=3)
        self.sys.node("devices/pci0000:00/0000:00:03.1/net/eth8", "net", flags="0x1003")
        before = self.sys.snapshot()
        p = self.vfioctl("create", NVME, "group", rc=1)
        self.assertIn("IOMMU group 3: in use by the host, nothing changed:", p.stderr)
        self.assertIn("0000:00:03.1: network interface eth8 is up", p.stderr)
        self.assertEqual(before, self.sys.snapshot())

    def test_destroy_of_unassigned_device(self):
        p = self.vfioctl("destroy", NVME, rc=1)
        self.assertIn("is not assigned to a vfio driver (nvme)", p.stderr)

    def test_release_after_assign_stopped_before_unbind(self):
        # Our record and a vfio override, but still on the host driver: what an assign
        # interrupted between set-override and unbind leaves. Release restores the override.
        os.makedirs(os.path.join(self.run_dir, "assigned"))
        with open(os.path.join(self.run_dir, "assigned", NVME + ".json"), "w") as f:
            json.dump({"device": NVME_PATH, "name": NVME, "driver": "vfio-fixture-vdsub",
                       "previous_driver": "nvme", "previous_override": None}, f)
        with open(os.path.join(self.sys.root, NVME_PATH[5:], "driver_override"), "w") as f:
            f.write("vfio-fixture-vdsub\n")
        out = json.loads(self.vfioctl("-j", "destroy", NVME).stdout)
        self.assertTrue(out["restored"])
        self.assertEqual(out["driver"], "nvme")
        self.assertEqual(self.sys.read(NVME_PATH + "/driver_override"), "\n")
        self.assertEqual(self.sys.read(NVME_PATH + "/driver/unbind"), "")  # never unbound
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "assigned", NVME + ".json")))

    def test_already_assigned_is_a_no_op(self):
        self.sys.pci(NVME, 0x1b36, 0x0010, driver="vfio-fixture-vdsub", group=3)
        before = self.sys.snapshot()
        out = json.loads(self.vfioctl("-j", "create", NVME).stdout)
        self.assertFalse(out["changed"])
        self.assertEqual(out["driver"], "vfio-fixture-vdsub")
        self.assertEqual(before, self.sys.snapshot())

    def test_sriov_relations_shown(self):
        self.sys.pci("0000:00:06.0", 0x1b36, 0x0010, driver="nvme", group=6)
        pf = os.path.join(self.sys.root, "devices/pci0000:00/0000:00:06.0")
        for attr, v in (("sriov_totalvfs", "16\n"), ("sriov_numvfs", "2\n")):
            with open(os.path.join(pf, attr), "w") as f:
                f.write(v)
        for i in range(2):
            vf = f"0000:00:06.{i + 1}"
            self.sys.pci(vf, 0x1b36, 0x0010, group=7 + i, physfn="0000:00:06.0")
            os.symlink(f"../{vf}", os.path.join(pf, f"virtfn{i}"))
        # Devices already on vfio-pci: create changes nothing and prints the device.
        self.sys.pci("0000:00:06.1", 0x1b36, 0x0010, group=7, physfn="0000:00:06.0",
                     driver="vfio-pci")
        vf = json.loads(self.vfioctl("-j", "create", "0000:00:06.1", "driver", "vfio-pci").stdout)
        self.assertEqual(vf["physfn"], "0000:00:06.0")
        self.sys.pci("0000:00:06.0", 0x1b36, 0x0010, driver="vfio-pci", group=6)
        pfj = json.loads(self.vfioctl("-j", "create", "0000:00:06.0", "driver", "vfio-pci").stdout)
        self.assertEqual(pfj["sriov_totalvfs"], 16)
        self.assertEqual(pfj["sriov_numvfs"], 2)
        self.assertEqual(pfj["virtfns"], ["0000:00:06.1", "0000:00:06.2"])

    def test_list_empty(self):
        self.assertEqual(json.loads(self.vfioctl("-j", "list").stdout), [])
        self.assertIn("KIND", self.vfioctl("list").stdout)


class TestDefinitions(Base):
    """define/modify/start/stop/undefine with --direct, on the definitions directory."""

    def setUp(self):
        super().setUp()
        self.standard_modules()
        self.env["STATE_DIRECTORY"] = os.path.join(self.tmp, "state")
        self.defs = os.path.join(self.tmp, "state", "devices")

    def test_define_modify_undefine(self):
        # (start and stop act as create and destroy: the VM and D-Bus suites drive them.)
        before = self.sys.snapshot()
        d = json.loads(self.vfioctl("-j", "define", NVME).stdout)
        self.assertEqual((d["name"], d["kind"], d["start"], d["options"]),
                         (NVME, "pci", "auto", {}))
        self.assertEqual(before, self.sys.snapshot())  # defined, nothing made
        listed = json.loads(self.vfioctl("-j", "list").stdout)
        self.assertEqual([(e["name"], e["state"]) for e in listed], [(NVME, "defined")])
        self.assertIn("defined already", self.vfioctl("define", NVME, rc=1).stderr)
        self.vfioctl("modify", NVME, "driver", "vfio_fixture_vd")
        with open(os.path.join(self.defs, NVME + ".json")) as f:
            self.assertEqual(json.load(f)["options"], {"driver": "vfio_fixture_vd"})
        self.vfioctl("undefine", NVME)
        self.assertEqual(json.loads(self.vfioctl("-j", "list").stdout), [])
        self.assertIn("is not defined", self.vfioctl("start", NVME, rc=1).stderr)

    def test_unreadable_definition_named_and_undefinable(self):
        os.makedirs(self.defs)
        with open(os.path.join(self.defs, "x.json"), "w") as f:
            f.write('{"name": broken')
        err = self.vfioctl("start", "x", rc=1).stderr
        self.assertIn("unreadable", err)
        self.assertIn("undefine it", err)
        # Several at once: each failure said, in order, exit 1, nothing on stdout.
        p = self.vfioctl("start", "x", "nothing-here", rc=1)
        self.assertEqual([line.split(":")[0] for line in p.stderr.splitlines()],
                         ["vfioctl", "vfioctl"], p.stderr)
        self.assertIn("unreadable", p.stderr.splitlines()[0])
        self.assertIn("nothing-here is not defined", p.stderr.splitlines()[1])
        self.assertEqual(p.stdout, "")
        self.vfioctl("undefine", "x")
        self.assertFalse(os.path.exists(os.path.join(self.defs, "x.json")))



class TestGroups(Base):
    """vfioctl groups: every IOMMU group, its devices, what is in the way, what each would get."""

    def fixture(self):
        self.standard_modules()
        # Group 3: the nvme, a SATA controller on ahci, an unbound SMBus function and a bridge.
        self.sys.driver("ahci", "ahci")
        self.sys.driver("pcieport", None)
        self.sys.pci("0000:00:1f.2", 0x8086, 0x2922, cls=0x010601, driver="ahci", group=3)
        self.sys.pci("0000:00:1f.3", 0x8086, 0x2930, cls=0x0c0500, group=3)
        self.sys.pci("0000:00:1c.0", 0x8086, 0x2940, cls=0x060400, driver="pcieport", group=3)
        # Group 12: a VF on vfio-pci (its PF is the nvme): it lets vfio open its group.
        self.sys.driver("vfio-pci", "vfio_pci")
        self.sys.pci("0000:00:03.1", 0x1b36, 0x0010, driver="vfio-pci", group=12, physfn=NVME)

    def test_every_group_in_number_order_json_field_by_field(self):
        self.fixture()
        groups = json.loads(self.vfioctl("-j", "groups").stdout)
        self.assertEqual([g["group"] for g in groups], [3, 4, 12])
        g3 = groups[0]
        self.assertFalse(g3["viable"])
        # The nvme itself is on a host driver too: every member on one is in the way.
        self.assertEqual(g3["in_the_way"], [{"name": "0000:00:03.0", "driver": "nvme"},
                                            {"name": "0000:00:1f.2", "driver": "ahci"}])
        devs = {d["name"]: d for d in g3["devices"]}
        self.assertEqual(sorted(devs), ["0000:00:03.0", "0000:00:1c.0", "0000:00:1f.2",
                                        "0000:00:1f.3"])
        nvme = devs[NVME]
        self.assertEqual((nvme["device"], nvme["subsystem"], nvme["driver"], nvme["ids"],
                          nvme["class"]),
                         (NVME_PATH, "pci", "nvme", "1b36:0010", "0x010802"))
        self.assertEqual(nvme["vfio_driver"]["module"], "vfio_fixture_vdsub")
        self.assertTrue(devs["0000:00:1c.0"]["bridge"])
        self.assertNotIn("vfio_driver", devs["0000:00:1c.0"])
        self.assertIsNone(devs["0000:00:1f.3"]["driver"])
        self.assertEqual(devs["0000:00:1f.3"]["vfio_driver"]["module"], "vfio_pci")
        g4, g12 = groups[1], groups[2]
        self.assertTrue(g4["viable"])
        self.assertEqual(g4["in_the_way"], [])
        self.assertEqual(g4["devices"][0]["vfio_driver"]["module"], "vfio_fixture_other")
        self.assertTrue(g12["viable"])
        self.assertEqual(g12["devices"][0]["driver"], "vfio-pci")

    def test_one_group_by_number_or_by_device(self):
        self.fixture()
        by_number = json.loads(self.vfioctl("-j", "groups", "3").stdout)
        by_device = json.loads(self.vfioctl("-j", "groups", "0000:00:1f.3").stdout)
        self.assertEqual([g["group"] for g in by_number], [3])
        self.assertEqual(by_number, by_device)
        p = self.vfioctl("groups", "0000:00:09.0", rc=1)
        self.assertIn("0000:00:09.0", p.stderr)
        p = self.vfioctl("groups", "77", rc=1)
        self.assertIn("IOMMU group 77: no such group", p.stderr)

    def test_text_reads_as_sentences(self):
        self.fixture()
        out = self.vfioctl("groups").stdout
        self.assertIn("IOMMU group 3: vfio cannot open it while 0000:00:03.0 is on nvme, "
                      "0000:00:1f.2 is on ahci (a create of one device with `group` takes "
                      "them all)\n", out)
        self.assertIn("  0000:00:1c.0 8086:2940", out)
        self.assertIn(": pcieport, a bridge: it stays with the host\n", out)
        self.assertIn("  0000:00:03.0 1b36:0010", out)
        self.assertIn(": nvme, would get vfio_fixture_vdsub\n", out)
        self.assertIn("IOMMU group 4: vfio can open it as it stands\n", out)
        self.assertIn(": no driver, would get vfio_fixture_other\n", out)
        self.assertNotIn("{", out)

    def test_no_groups_at_all(self):
        shutil.rmtree(os.path.join(self.sys.root, "kernel/iommu_groups"))
        p = self.vfioctl("groups", rc=1)
        self.assertIn("no IOMMU groups", p.stderr)


class TestShow(Base):
    """vfioctl show: one device in full, changing nothing."""

    def test_an_unassigned_pf_in_full(self):
        self.standard_modules()
        self.sys.driver("ahci", "ahci")
        self.sys.pci("0000:00:1f.2", 0x8086, 0x2922, cls=0x010601, driver="ahci", group=3)
        self._sriov()
        before = self.sys.snapshot()
        o = json.loads(self.vfioctl("-j", "show", NVME).stdout)
        self.assertEqual((o["name"], o["device"], o["id"], o["driver"], o["iommu_group"]),
                         (NVME, NVME_PATH, "1b36:0010", "nvme", 3))
        self.assertIsNone(o["assigned"])
        self.assertEqual(o["would_get"]["module"], "vfio_fixture_vdsub")
        self.assertEqual(o["group"]["group"], 3)
        self.assertEqual(o["group"]["in_the_way"], [{"name": NVME, "driver": "nvme"},
                                                    {"name": "0000:00:1f.2", "driver": "ahci"}])
        self.assertEqual(o["in_use"]["uses"], [])
        self.assertEqual((o["sriov_totalvfs"], o["sriov_numvfs"], o["virtfns"]),
                         (4, 1, ["0000:00:03.1"]))
        self.assertIsNone(o["mdev_types"])
        self.assertEqual(o["group"], json.loads(self.vfioctl("-j", "groups", NVME).stdout)[0])
        text = self.vfioctl("show", NVME).stdout
        self.assertIn(f"{NVME} 1b36:0010", text)
        self.assertIn("  driver: nvme\n", text)
        self.assertIn("  vfiod: holds nothing of it\n", text)
        self.assertIn("  would get: vfio_fixture_vdsub (`match` says why)\n", text)
        self.assertIn("  SR-IOV: 1 of 4 VFs: 0000:00:03.1\n", text)
        self.assertIn("  IOMMU group 3: vfio cannot open it while", text)
        self.assertNotIn("{", text)
        self.assertEqual(before, self.sys.snapshot())

    def test_the_host_driver_module_and_what_a_claim_can_do(self):
        self.standard_modules()
        # nvme, from modules.alias, loaded: a module, which a claim can come before.
        self.sys._write("module/nvme/initstate", "live\n")
        o = json.loads(self.vfioctl("-j", "show", NVME).stdout)
        self.assertEqual(o["host_modules"], [{"module": "nvme", "state": "loaded"}])
        text = self.vfioctl("show", NVME).stdout
        self.assertIn("  host driver modules: nvme (loaded)\n", text)
        self.assertNotIn("built into this kernel", text)
        # Not loaded: its module directory gone.
        shutil.rmtree(os.path.join(self.sys.root, "module/nvme"))
        self.assertIn("  host driver modules: nvme (not loaded)\n",
                      self.vfioctl("show", NVME).stdout)

    def test_a_built_in_host_driver_is_said_so(self):
        self.mods.add("vfio_fixture_vdsub", [ALIAS_VDSUB])
        self.mods.add_builtin("nvme", ["pci:v*d*sv*sd*bc01sc08i02*"])
        self.mods.depmod()
        shutil.rmtree(os.path.join(self.sys.root, "module/nvme"))  # only the index says so
        o = json.loads(self.vfioctl("-j", "show", NVME).stdout)
        self.assertEqual(o["host_modules"], [{"module": "nvme", "state": "built in"}])
        self.assertIn("  host driver modules: nvme (built in)\n  built into this kernel: it "
                      "binds at boot before any module can hold the device; only the kernel "
                      "command line keeps it off (vfio-pci.ids=1b36:0010 where vfio-pci is "
                      "built in too)\n", self.vfioctl("show", NVME).stdout)

    def _sriov(self):
        base = f"devices/pci0000:00/{NVME}"
        self.sys._write(f"{base}/sriov_totalvfs", "4\n")
        self.sys._write(f"{base}/sriov_numvfs", "1\n")
        self.sys.pci("0000:00:03.1", 0x1b36, 0x0010, group=12, physfn=NVME)
        self.sys._link(f"{base}/virtfn0", "devices/pci0000:00/0000:00:03.1")

    def test_what_vfiod_holds_and_since_when(self):
        self.standard_modules()
        rec = {"device": NVME_PATH, "name": NVME, "driver": "vfio-fixture-vdsub",
               "module": "vfio_fixture_vdsub", "previous_driver": "nvme",
               "previous_override": None, "resolver": "user space"}
        os.makedirs(os.path.join(self.run_dir, "assigned"))
        path = os.path.join(self.run_dir, "assigned", NVME + ".json")
        with open(path, "w") as f:
            json.dump(rec, f)
        os.utime(path, (1795230127, 1795230127))
        o = json.loads(self.vfioctl("-j", "show", NVME).stdout)
        self.assertEqual(o["assigned"], {"driver": "vfio-fixture-vdsub",
                                         "module": "vfio_fixture_vdsub",
                                         "previous_driver": "nvme", "previous_override": None,
                                         "resolver": "user space", "claimed": False,
                                         "since_usec": 1795230127000000})
        self.assertIn("  vfiod: assigned it to vfio-fixture-vdsub (it was on nvme) at ",
                      self.vfioctl("show", NVME).stdout)

    def test_an_mdev_parent_and_bad_paths(self):
        self.standard_modules()
        t = "devices/pci0000:00/0000:00:04.0/mdev_supported_types/fix-small"
        for k, v in (("available_instances", "2\n"), ("name", "small\n"),
                     ("device_api", "vfio-pci\n"), ("create", "")):
            self.sys._write(f"{t}/{k}", v)
        os.makedirs(os.path.join(self.sys.root, t, "devices"), exist_ok=True)
        self.sys._link("class/mdev_bus/0000:00:04.0", "devices/pci0000:00/0000:00:04.0")
        o = json.loads(self.vfioctl("-j", "show", "0000:00:04.0").stdout)
        self.assertEqual([(m["name"], m["available_instances"]) for m in o["mdev_types"]],
                         [("fix-small", 2)])
        self.assertIn("  mdev type fix-small: 2 available (vfio-pci)\n",
                      self.vfioctl("show", "0000:00:04.0").stdout)
        self.assertIn("0000:00:09.0", self.vfioctl("show", "0000:00:09.0", rc=1).stderr)
        self.assertIn("missing device path", self.vfioctl("show", rc=2).stderr)


PF = "0000:00:06.0"
PF_DIR = "devices/pci0000:00/" + PF
VFS = ["0000:00:06.1", "0000:00:06.2"]
PARENT = "0000:00:04.0"
TYPE_DIR = f"devices/pci0000:00/{PARENT}/mdev_supported_types/fix-small"
UUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
MDEV_DIR = f"devices/pci0000:00/{PARENT}/{UUID}"
JSON_MARKS = ("{", "}", "[", "]", '":')


class MdevTree(Base):
    """An mdev parent with one type, fix-small; make_mdev() plays the kernel's create."""

    def setUp(self):
        super().setUp()
        self.standard_modules()
        for k, v in (("available_instances", "2\n"), ("name", "small\n"),
                     ("device_api", "vfio-pci\n"), ("create", "")):
            self.sys._write(f"{TYPE_DIR}/{k}", v)
        os.makedirs(os.path.join(self.sys.root, TYPE_DIR, "devices"))
        self.sys._link(f"class/mdev_bus/{PARENT}", f"devices/pci0000:00/{PARENT}")
        os.makedirs(os.path.join(self.sys.root, "bus/mdev/drivers/vfio_mdev"))

    def make_mdev(self):
        self.sys._link(f"{MDEV_DIR}/subsystem", "bus/mdev")
        self.sys._link(f"{MDEV_DIR}/mdev_type", TYPE_DIR)
        self.sys._link(f"{MDEV_DIR}/driver", "bus/mdev/drivers/vfio_mdev")
        self.sys._link(f"{MDEV_DIR}/iommu_group", "kernel/iommu_groups/12")
        self.sys._write(f"{MDEV_DIR}/remove", "")
        self.sys._write(f"{MDEV_DIR}/weight", "0\n")  # a vendor attribute
        self.sys._link(f"bus/mdev/devices/{UUID}", MDEV_DIR)

    def remove_mdev(self):
        os.unlink(os.path.join(self.sys.root, f"bus/mdev/devices/{UUID}"))
        shutil.rmtree(os.path.join(self.sys.root, MDEV_DIR))


class TestKindsText(MdevTree):
    """Each kind's create and destroy in text: its sentence with the fixture's values, no JSON.

    The kernel's part is played: FakeKernel binds and unbinds PCI drivers, KernelWrite
    makes the VFs and the mdev while libvfiod's write to sriov_numvfs or create waits.
    """

    def setUp(self):
        super().setUp()
        self.sys.module("vfio_fixture_vdsub", ["vfio-fixture-vdsub"])
        self.sys.module("vfio_pci", ["vfio-pci"])
        self.sys.pci(PF, 0x1b36, 0x0010, driver="nvme", group=6)
        for attr, v in (("sriov_totalvfs", "4\n"), ("sriov_numvfs", "0\n"),
                        ("sriov_drivers_autoprobe", "1\n")):
            self.sys._write(f"{PF_DIR}/{attr}", v)
        self.kernel = FakeKernel(self.sys, {NVME: "nvme"})
        self.addCleanup(self.kernel.close)

    def text(self, *args, write=None, act=None, rc=0):
        """vfioctl's stdout, with ACT played when it writes the attribute WRITE."""
        kw = KernelWrite(os.path.join(self.sys.root, write), act) if write else None
        p = subprocess.Popen([VFIOCTL, "--direct", *args], env=self.env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if kw:
            kw.watch(p.pid)
        out, err = p.communicate(timeout=60)
        if kw:
            kw.join()
        self.assertEqual(p.returncode, rc, f"vfioctl {' '.join(args)}: {out}{err}")
        self.assertNotIn("AddressSanitizer", err)
        self.assertNotIn("runtime error", err)
        if "-j" not in args:
            for mark in JSON_MARKS:
                self.assertNotIn(mark, out, f"JSON in the text of {args}:\n{out}")
        return out

    def make_vfs(self):
        for i, vf in enumerate(VFS):
            self.sys.pci(vf, 0x1b36, 0x0010, group=7 + i, physfn=PF)
            self.sys._link(f"{PF_DIR}/virtfn{i}", f"devices/pci0000:00/{vf}")

    def remove_vfs(self):
        for i, vf in enumerate(VFS):
            os.unlink(os.path.join(self.sys.root, f"{PF_DIR}/virtfn{i}"))
            os.unlink(os.path.join(self.sys.root, f"bus/pci/devices/{vf}"))
            os.unlink(os.path.join(self.sys.root, f"kernel/iommu_groups/{7 + i}/devices/{vf}"))
            shutil.rmtree(os.path.join(self.sys.root, f"devices/pci0000:00/{vf}"))

    def test_pci(self):
        out = self.text("create", NVME)
        self.assertEqual(out, f"{NVME}: assigned to vfio-fixture-vdsub (was nvme), IOMMU group 3, "
                              "/dev/vfio/3\n")
        self.assertEqual(self.text("create", NVME),
                         f"{NVME}: already assigned to vfio-fixture-vdsub, nothing changed, "
                         "IOMMU group 3, /dev/vfio/3\n")
        self.assertEqual(self.text("destroy", NVME), f"{NVME}: released, nvme\n")

    def test_vfs_assigned_then_given_back(self):
        out = self.text("create", PF, "vfs", "2", "assign", write=f"{PF_DIR}/sriov_numvfs",
                        act=self.make_vfs)
        self.assertEqual(out, f"{PF}: 2 VFs created, each assigned to vfio:\n"
                              "  VF             DRIVER               GROUP  VFIO\n"
                              "  0000:00:06.1   vfio-fixture-vdsub   7      /dev/vfio/7\n"
                              "  0000:00:06.2   vfio-fixture-vdsub   8      /dev/vfio/8\n")
        # The JSON the text came from, untouched.
        o = json.loads(self.text("-j", "create", PF, "vfs", "2", "assign"))
        self.assertEqual((o["kind"], o["numvfs"], o["assigned"]), ("vfs", 2, VFS))
        self.assertEqual([(v["name"], v["driver"], v["vfio"]) for v in o["vfs"]],
                         [(VFS[0], "vfio-fixture-vdsub", ["/dev/vfio/7"]),
                          (VFS[1], "vfio-fixture-vdsub", ["/dev/vfio/8"])])
        out = self.text("destroy", PF, "vfs", write=f"{PF_DIR}/sriov_numvfs",
                        act=self.remove_vfs)
        self.assertEqual(out, f"{PF}: VF count set back to 0; released from vfio first: "
                              f"{VFS[0]}, {VFS[1]}\n")

    def on_pty(self, *args, write, act):
        """vfioctl on a terminal, with ACT played when it writes WRITE: what the terminal got."""
        kw = KernelWrite(os.path.join(self.sys.root, write), act)
        pid, fd = ptyrun.spawn([VFIOCTL, "--direct", "--color=never", *args], self.env)
        ptyrun.wait_exec(pid, VFIOCTL)
        kw.watch(pid)
        rc, out = ptyrun.collect(pid, fd)
        kw.join()
        self.assertEqual(rc, 0, out)
        return out

    def test_vfs_progress_on_a_terminal_only(self):
        out = self.on_pty("create", PF, "vfs", "2", "assign", write=f"{PF_DIR}/sriov_numvfs",
                          act=self.make_vfs)
        line = "\r\x1b[K" + PF + ": {} of 2 done{}"
        # The line rewritten in place at the start and after each VF, then wiped for the result.
        self.maxDiff = None
        self.assertEqual(out, line.format(0, "") + line.format(1, f" ({VFS[0]})") +
                         line.format(2, f" ({VFS[1]})") + "\r\x1b[K" +
                         f"{PF}: 2 VFs created, each assigned to vfio:\n"
                         "  VF             DRIVER               GROUP  VFIO\n"
                         "  0000:00:06.1   vfio-fixture-vdsub   7      /dev/vfio/7\n"
                         "  0000:00:06.2   vfio-fixture-vdsub   8      /dev/vfio/8\n")
        out = self.on_pty("destroy", PF, "vfs", write=f"{PF_DIR}/sriov_numvfs",
                          act=self.remove_vfs)
        # In the order the release loop goes, as the result lists them.
        self.assertTrue(out.startswith(line.format(0, "") + line.format(1, f" ({VFS[0]})")),
                        repr(out))
        self.assertTrue(out.endswith("\r\x1b[K" + f"{PF}: VF count set back to 0; released "
                                     f"from vfio first: {VFS[0]}, {VFS[1]}\n"), repr(out))

    def test_no_progress_in_json_on_a_terminal(self):
        out = self.on_pty("-j", "create", PF, "vfs", "2", "assign",
                          write=f"{PF_DIR}/sriov_numvfs", act=self.make_vfs)
        self.assertNotIn("\r", out)
        self.assertEqual(json.loads(out)["assigned"], VFS)

    def test_vfs_left_to_the_host(self):
        out = self.text("create", PF, "vfs", "2", write=f"{PF_DIR}/sriov_numvfs",
                        act=self.make_vfs)
        self.assertEqual(out, f"{PF}: 2 VFs created:\n"
                              "  VF             DRIVER               GROUP  VFIO\n"
                              "  0000:00:06.1   -                    7      -\n"
                              "  0000:00:06.2   -                    8      -\n")
        # Asked again: vfiod's record says 0 before it, yet nothing is created this time.
        self.assertEqual(self.text("create", PF, "vfs", "2"),
                         f"{PF}: has 2 VFs already, nothing changed:\n"
                         "  VF             DRIVER               GROUP  VFIO\n"
                         "  0000:00:06.1   -                    7      -\n"
                         "  0000:00:06.2   -                    8      -\n")
        self.assertEqual(self.text("destroy", PF, "vfs", write=f"{PF_DIR}/sriov_numvfs",
                                   act=self.remove_vfs), f"{PF}: VF count set back to 0\n")

    def test_vfs_there_already(self):
        self.make_vfs()
        self.assertEqual(self.text("create", PF, "vfs", "2"),
                         f"{PF}: has 2 VFs already, nothing changed:\n"
                         "  VF             DRIVER               GROUP  VFIO\n"
                         "  0000:00:06.1   -                    7      -\n"
                         "  0000:00:06.2   -                    8      -\n")

    def test_mdev(self):
        out = self.text("create", PARENT, "type", "small", "uuid", UUID, "attr", "weight=5",
                        write=f"{TYPE_DIR}/create", act=self.make_mdev)
        self.assertEqual(out, f"mdev {UUID}: created on {PARENT}, type fix-small, bound to "
                              "vfio_mdev, IOMMU group 12, /dev/vfio/12\n"
                              "  attribute weight = 5\n"
                              '  note: type "small" taken as fix-small\n')
        self.assertEqual(self.sys.read(f"{MDEV_DIR}/weight").strip(), "5")
        self.assertEqual(self.text("create", PARENT, "type", "fix-small", "uuid", UUID),
                         f"mdev {UUID}: there already (on {PARENT}, type fix-small, on "
                         "vfio_mdev, IOMMU group 12, /dev/vfio/12), nothing changed\n")
        self.assertEqual(self.text("destroy", UUID, write=f"{MDEV_DIR}/remove",
                                   act=self.remove_mdev),
                         f"mdev {UUID}: removed from {PARENT} (type fix-small)\n")

    def test_every_verb_of_definitions_and_types(self):
        self.env["STATE_DIRECTORY"] = os.path.join(self.tmp, "state")
        self.assertEqual(self.text("define", NVME, "driver", "vfio_fixture_vd"),
                         f"{NVME}: defined: pci on {NVME_PATH}, with driver vfio_fixture_vd, "
                         "start auto\n")
        self.assertEqual(self.text("modify", NVME, "group"),
                         f"{NVME}: definition changed: pci on {NVME_PATH}, with driver "
                         "vfio_fixture_vd group, start auto\n")
        self.assertEqual(self.text("undefine", NVME),
                         f"{NVME}: undefined (it was pci on {NVME_PATH}, with driver "
                         "vfio_fixture_vd group, start auto)\n")
        self.assertEqual(self.text("types", PARENT),
                         "fix-small (small): 2 available, device API vfio-pci\n")


class TestShowKinds(MdevTree):
    """show of an mdev (and a vdpa device) from the fixture's sysfs, field by field."""

    def setUp(self):
        super().setUp()
        self.make_mdev()
        self.sys._write(f"{TYPE_DIR}/description", "a small one\nfor tests\n")
        self.sys._link(f"{TYPE_DIR}/devices/{UUID}", MDEV_DIR)
        self.sys._write(f"{MDEV_DIR}/uevent", "MDEV_TYPE=fix-small\n")

    def text(self, *args, rc=0):
        """vfioctl's stdout; never JSON in text."""
        out = self.vfioctl(*args, rc=rc).stdout
        if "-j" not in args:
            for mark in JSON_MARKS:
                self.assertNotIn(mark, out, f"JSON in the text of {args}:\n{out}")
        return out

    def mdev_json(self, name):
        return json.loads(self.text("-j", "show", name))

    def test_mdev_json_by_each_name(self):
        for name in (UUID, UUID.upper(), f"/sys/bus/mdev/devices/{UUID}", "/sys/" + MDEV_DIR):
            o = self.mdev_json(name)
            self.assertEqual((o["kind"], o["name"], o["uuid"], o["device"]),
                             ("mdev", UUID, UUID, "/sys/" + MDEV_DIR), name)
            self.assertEqual(o["parent"], {"name": PARENT,
                                           "device": f"/sys/devices/pci0000:00/{PARENT}"})
            self.assertEqual(o["type"], {"name": "fix-small", "pretty_name": "small",
                                         "device_api": "vfio-pci", "available_instances": 2,
                                         "description": "a small one, for tests",
                                         "devices": [UUID]})
            self.assertEqual((o["driver"], o["iommu_group"], o["vfio"]),
                             ("vfio_mdev", 12, ["/dev/vfio/12"]))
            self.assertIsNone(o["assigned"])

    def test_mdev_text(self):
        self.assertEqual(self.text("show", UUID),
                         f"mdev {UUID}\n"
                         f"  device: /sys/{MDEV_DIR}\n"
                         f"  parent: {PARENT} (/sys/devices/pci0000:00/{PARENT})\n"
                         "  type: fix-small (small)\n"
                         "  device API: vfio-pci\n"
                         "  available instances: 2\n"
                         "  description: a small one, for tests\n"
                         "  driver: vfio_mdev\n"
                         "  vfiod: holds nothing of it\n"
                         "  IOMMU group: 12\n"
                         "  vfio: /dev/vfio/12\n")

    def test_mdev_unbound_with_a_cdev(self):
        # No driver: no vfio node, even with a group; a cdev shows once bound.
        os.unlink(os.path.join(self.sys.root, MDEV_DIR, "driver"))
        o = self.mdev_json(UUID)
        self.assertEqual((o["driver"], o["vfio"]), (None, []))
        self.assertIn("  driver: none\n  vfiod: holds nothing of it\n  IOMMU group: 12\n"
                      "  vfio: no node\n", self.text("show", UUID))
        self.sys._link(f"{MDEV_DIR}/driver", "bus/mdev/drivers/vfio_mdev")
        self.sys._write(f"{MDEV_DIR}/vfio-dev/vfio0/dev", "511:0\n")
        self.assertEqual(self.mdev_json(UUID)["vfio"],
                         ["/dev/vfio/12", "/dev/vfio/devices/vfio0", "/dev/iommu"])
        self.sys._write(f"{TYPE_DIR}/available_instances", "1\n")
        self.assertEqual(self.mdev_json(UUID)["type"]["available_instances"], 1)

    def test_names_that_are_no_device(self):
        other = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002"
        p = self.vfioctl("show", other, rc=1)
        self.assertIn(f"{other}: no such mdev", p.stderr)
        p = self.vfioctl("show", "blk9", rc=1)
        self.assertIn("blk9: not a sysfs path nor a PCI address", p.stderr)
        self.assertIn("nor is it an mdev (a UUID), a vdpa device (its name) or a subfunction "
                      "(PF-sfN)", p.stderr)
        p = self.vfioctl("show", "/sys/devices/virtual/net/lo", rc=1)
        self.assertIn("/sys/devices/virtual/net/lo: no such device; nor is it an mdev",
                      p.stderr)
        # A subfunction's name: its PF is looked up, and the kernel alone knows its ports.
        p = self.vfioctl("show", f"{NVME}-sf7", rc=1)
        self.assertIn(f"{NVME}-sf7: only the kernel's devlink knows subfunctions", p.stderr)
        p = self.vfioctl("show", "0000:00:09.0-sf7", rc=1)
        self.assertIn("0000:00:09.0: no such device", p.stderr)

    def test_vdpa_from_sysfs(self):
        dev = "devices/virtual/vdpa_fixture/blk0"
        self.sys._link(f"{dev}/subsystem", "bus/vdpa")
        self.sys._link(f"{dev}/driver", "bus/vdpa/drivers/vhost_vdpa")
        os.makedirs(os.path.join(self.sys.root, dev, "vhost-vdpa-3"))
        self.sys._link("bus/vdpa/devices/blk0", dev)
        for name in ("blk0", "/sys/bus/vdpa/devices/blk0"):
            o = json.loads(self.text("-j", "show", name))
            # The kernel knows nothing of a fixture: no management device, class or config.
            self.assertEqual(o, {"kind": "vdpa", "name": "blk0", "device": "/sys/" + dev,
                                 "driver": "vhost_vdpa", "node": "/dev/vhost-vdpa-3",
                                 "mgmtdev": None, "mgmtdev_device": None, "class": None,
                                 "config": None})
        self.assertEqual(self.text("show", "blk0"),
                         "vdpa blk0\n"
                         f"  device: /sys/{dev}\n"
                         "  management device: unknown\n"
                         "  class: unknown\n"
                         "  driver: vhost_vdpa\n"
                         "  node: /dev/vhost-vdpa-3\n"
                         "  config: not reported by the kernel\n")
        # A namesake elsewhere is not that device.
        self.sys._write("devices/virtual/other/blk0/uevent", "")
        p = self.vfioctl("show", "/sys/devices/virtual/other/blk0", rc=1)
        self.assertIn("nor is it an mdev", p.stderr)


CLAIMED = "0000:00:08.0"


class TestClaimed(Base):
    """A device held from host drivers by a claim, as vfio_select leaves it: the override
    vfiod-claim and no driver.  Assigned as any other, recorded as claimed, and given on
    destroy the host driver it never had; an unbound device not claimed stays unbound."""

    def setUp(self):
        super().setUp()
        self.standard_modules()
        self.sys.module("vfio_fixture_vdsub", ["vfio-fixture-vdsub"])
        self.sys.module("vfio_pci", ["vfio-pci"])
        self.sys.module("nvme", ["nvme"])
        self.sys.module("vfio_fixture_other", ["vfio-fixture-other"])
        self.sys.pci(CLAIMED, 0x1b36, 0x0010, group=8)
        self.sys._write(f"devices/pci0000:00/{CLAIMED}/driver_override", "vfiod-claim\n")
        self.kernel = FakeKernel(self.sys, {NVME: "nvme", CLAIMED: "nvme"})
        self.addCleanup(self.kernel.close)

    def state(self, name):
        dev = os.path.join(self.sys.root, "bus/pci/devices", name)
        drv = os.path.join(dev, "driver")
        with open(os.path.join(dev, "driver_override")) as f:
            override = f.read().strip()
        return (os.path.basename(os.readlink(drv)) if os.path.islink(drv) else None,
                None if override in ("", "(null)") else override)

    def test_claimed_assigned_then_given_its_host_driver(self):
        self.assertEqual(self.vfioctl("create", CLAIMED).stdout,
                         f"{CLAIMED}: assigned to vfio-fixture-vdsub (claimed before any host "
                         "driver), IOMMU group 8, /dev/vfio/8\n")
        with open(os.path.join(self.run_dir, "assigned", CLAIMED + ".json")) as f:
            rec = json.load(f)
        # The placeholder is not an override to give back.
        self.assertEqual((rec["claimed"], rec["previous_driver"], rec["previous_override"]),
                         (True, None, None))
        listed = json.loads(self.vfioctl("-j", "list").stdout)
        self.assertEqual([(e["name"], e["claimed"]) for e in listed], [(CLAIMED, True)])
        self.assertRegex(self.vfioctl("list").stdout,
                         rf"(?m)^pci +{CLAIMED} +vfio-fixture-vdsub +\(claimed\) +8 +assigned ")
        self.assertIn("  vfiod: assigned it to vfio-fixture-vdsub (claimed before any host "
                      "driver) at ", self.vfioctl("show", CLAIMED).stdout)
        self.assertEqual(self.vfioctl("destroy", CLAIMED).stdout, f"{CLAIMED}: released, nvme\n")
        self.assertEqual(self.state(CLAIMED), ("nvme", None))

    def test_unbound_but_not_claimed_stays_unbound(self):
        other = "0000:00:04.0"
        out = self.vfioctl("create", other).stdout
        self.assertIn("(was unbound)", out)
        self.assertFalse(json.loads(self.vfioctl("-j", "list").stdout)[0]["claimed"])
        self.vfioctl("destroy", other)
        self.assertEqual(self.state(other), (None, None))


class TestApplyClaims(Base):
    """vfiod --apply-claims, as vfiod-claims.service runs it before udev's coldplug: the
    claimed functions with no driver get the placeholder, vfio_select's options are written;
    bound, overridden and unclaimed ones are left alone; no claims, no file."""

    def setUp(self):
        super().setUp()
        self.etc = os.path.join(self.tmp, "etc")
        self.modprobe_d = os.path.join(self.tmp, "run-modprobe.d")
        os.makedirs(self.etc)
        # 0a.0: another ID that pci.ids has (see test_a_failed_look_costs_only_the_softdeps).
        for name, dev in (("0000:00:08.0", 0x0010), ("0000:00:09.0", 0x0010),
                          ("0000:00:0a.0", 0x000d)):
            self.sys.pci(name, 0x1b36, dev, group=20)
        self.sys._write("devices/pci0000:00/0000:00:09.0/driver_override", "vfio-pci\n")

    def apply(self, conf):
        with open(os.path.join(self.etc, "vfiod.conf"), "w") as f:
            f.write(conf)
        env = dict(self.env, CONFIGURATION_DIRECTORY=self.etc,
                   VFIOD_MODPROBE_DIR=self.modprobe_d)
        p = subprocess.run([os.environ["VFIOD"], "--apply-claims"], env=env,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("runtime error", p.stderr)
        self.assertNotIn("AddressSanitizer", p.stderr)
        return p.stderr

    def override(self, name):
        with open(os.path.join(self.sys.root, "bus/pci/devices", name, "driver_override")) as f:
            return f.read().strip()

    def test_held_before_coldplug(self):
        log = self.apply("Claim=1b36:0010\nClaim=class=010802/ffffff\n")
        # 08.0: claimed, free: held.  NVME (03.0): claimed, bound to nvme: left to vfiod.
        # 09.0: claimed, an override of its own: left.  0a.0: by class, free: held.
        self.assertEqual([self.override(n) for n in (NVME, "0000:00:08.0", "0000:00:09.0",
                                                     "0000:00:0a.0")],
                         ["(null)", "vfiod-claim", "vfio-pci", "vfiod-claim"])
        self.assertIn(f"{NVME}: claimed by 1b36:0010, but a driver has it already", log)
        self.assertIn("0000:00:09.0: claimed by 1b36:0010, left alone: its driver_override is "
                      "vfio-pci", log)
        with open(os.path.join(self.modprobe_d, "vfiod.conf")) as f:
            self.assertIn("\noptions vfio_select claim=1b36:0010,class=010802\n", f.read())
        # Claims gone: the file goes with them; what was held stays held (vfiod assigns it).
        self.apply("")
        self.assertFalse(os.path.exists(os.path.join(self.modprobe_d, "vfiod.conf")))
        self.assertEqual(self.override("0000:00:08.0"), "vfiod-claim")



class TestClaimsModprobeConf(Base):
    """vfiod --claims-modprobe-conf, which the initramfs hooks put in the image: vfio_select's
    options, one softdep per host driver module of the claimed functions present (none for a
    built-in one, none for a claim that names nothing present), the vfio module each would
    get; it changes nothing, and --apply-claims writes the same text."""

    def setUp(self):
        super().setUp()
        self.etc = os.path.join(self.tmp, "etc")
        self.modprobe_d = os.path.join(self.tmp, "run-modprobe.d")
        os.makedirs(self.etc)
        self.sys.pci("0000:00:08.0", 0x1b36, 0x0010, group=8)
        self.standard_modules()
        self.sys._write("module/nvme/initstate", "live\n")  # a module, loaded
        # The test device (04.0): a driver built into the kernel.
        self.mods.add_builtin("pcitest", ["pci:v00001B36d00000005sv*sd*bc*sc*i*"])
        self.mods.depmod()

    def run_vfiod(self, option, conf):
        with open(os.path.join(self.etc, "vfiod.conf"), "w") as f:
            f.write(conf)
        env = dict(self.env, CONFIGURATION_DIRECTORY=self.etc,
                   VFIOD_MODPROBE_DIR=self.modprobe_d)
        p = subprocess.run([os.environ["VFIOD"], option], env=env, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("runtime error", p.stderr)
        self.assertNotIn("AddressSanitizer", p.stderr)
        return p.stdout

    def test_softdeps_and_vfio_modules_of_the_claimed_present(self):
        before = self.sys.snapshot()
        conf = "Claim=1b36:0010,1b36:0005\nClaim=0000:00:1f.7\n"
        text = self.run_vfiod("--claims-modprobe-conf", conf)
        lines = text.splitlines()
        self.assertTrue(all(line.startswith("# ") for line in lines[:4]), text)
        self.assertEqual(lines[4], "options vfio_select claim=1b36:0010,1b36:0005,0000:00:1f.7")
        # nvme once for its two functions; none for the built-in pcitest.
        self.assertEqual([line for line in lines[5:] if not line.startswith("#")],
                         ["softdep nvme pre: vfio_select"])
        for name in (NVME, "0000:00:08.0"):
            self.assertIn(f"# {name} claimed by 1b36:0010: host modules: nvme; vfio module: "
                          "vfio_fixture_vdsub\n", text)
        self.assertIn("# 0000:00:04.0 claimed by 1b36:0005: host modules: pcitest (built in); "
                      "vfio module: vfio_fixture_other\n", text)
        self.assertNotIn("1f.7 claimed", text)
        # Nothing changed: no override, no file.
        self.assertEqual(before, self.sys.snapshot())
        self.assertFalse(os.path.exists(self.modprobe_d))
        # --apply-claims writes that same text.
        self.run_vfiod("--apply-claims", conf)
        with open(os.path.join(self.modprobe_d, "vfiod.conf")) as f:
            self.assertEqual(f.read(), text)

    def test_a_failed_look_costs_only_the_softdeps(self):
        # An ID pci.ids lacks: libvfiod's name lookup (libpci's hwdb path) has been seen to
        # die on it.  Whether it does or not, the options are there and vfiod itself exits 0.
        self.sys.pci("0000:00:0c.0", 0x1b36, 0x0011, group=12)
        with open(os.path.join(self.etc, "vfiod.conf"), "w") as f:
            f.write("Claim=1b36:0011\n")
        env = dict(self.env, CONFIGURATION_DIRECTORY=self.etc, ASAN_OPTIONS="detect_leaks=0")
        p = subprocess.run([os.environ["VFIOD"], "--claims-modprobe-conf"], env=env,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("\noptions vfio_select claim=1b36:0011\n", p.stdout)
        if "0000:00:0c.0 claimed" not in p.stdout:
            self.assertIn("claims: the look at the claimed devices' driver modules failed",
                          p.stderr)

    def test_absent_devices_and_no_claims(self):
        text = self.run_vfiod("--claims-modprobe-conf", "Claim=8086:1572\n")
        self.assertEqual([line for line in text.splitlines() if not line.startswith("#")],
                         ["options vfio_select claim=8086:1572"])
        self.assertEqual(self.run_vfiod("--claims-modprobe-conf", ""), "")
        self.assertEqual(self.run_vfiod("--claims-modprobe-conf", "Claim=8086:1572\nClaim=\n"),
                         "")


class TestColour(Base):
    """Colour on a terminal (a pseudo-terminal here), never in a pipe unless asked for."""

    ESC = "\x1b["

    def setUp(self):
        super().setUp()
        self.standard_modules()
        self.env.pop("NO_COLOR", None)

    def on_pty(self, *args, env=None):
        rc, out = ptyrun.run([VFIOCTL, "--direct", *args], env or self.env)
        self.assertEqual(rc, 0, out)
        return out

    def in_pipe(self, *args, env=None):
        p = subprocess.run([VFIOCTL, "--direct", *args], env=env or self.env,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_auto_colours_a_terminal_only(self):
        painted = self.on_pty("groups")
        self.assertIn(f"\x1b[31mvfio cannot open it\x1b[0m while \x1b[36m{NVME}\x1b[0m is on "
                      "\x1b[33mnvme\x1b[0m", painted)
        self.assertIn(", would get \x1b[32mvfio_fixture_vdsub\x1b[0m", painted)
        plain = self.in_pipe("groups")
        self.assertNotIn(self.ESC, plain)
        # The same words: colour adds escapes and nothing else.
        self.assertEqual(re_strip(painted), plain)
        self.assertIn(self.ESC, self.on_pty("--color=auto", "show", NVME))

    def test_no_color(self):
        self.assertNotIn(self.ESC, self.on_pty("groups", env=dict(self.env, NO_COLOR="1")))
        # Set but empty: as if unset (no-color.org).
        self.assertIn(self.ESC, self.on_pty("groups", env=dict(self.env, NO_COLOR="")))
        # Asked for, colour even so, and even in a pipe.
        for opt in ("--color=always", "-c", "--color"):
            with self.subTest(opt=opt):
                self.assertIn(self.ESC, self.in_pipe(opt, "groups",
                                                     env=dict(self.env, NO_COLOR="1")))

    def test_never_and_json(self):
        self.assertNotIn(self.ESC, self.on_pty("--color=never", "groups"))
        self.assertNotIn(self.ESC, self.on_pty("-c", "-j", "groups"))
        self.assertNotIn(self.ESC, self.in_pipe("--color=always", "-p", "match", NVME))
        # The last one given counts.
        self.assertIn(self.ESC, self.in_pipe("--color=never", "-c", "groups"))
        p = self.vfioctl("--color=sometimes", "list", rc=2)
        self.assertIn("--color: unknown value 'sometimes' (auto, always or never)", p.stderr)


def re_strip(text):
    """TEXT without its colour escapes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


if __name__ == "__main__":
    unittest.main()
