# SPDX-License-Identifier: LGPL-2.1-or-later
"""The libvirt hook against vfiod on a private bus, as libvirtd runs it.

libvirtd runs every executable of /etc/libvirt/hooks/qemu.d/ as
`HOOK DOMAIN OPERATION SUB-OPERATION -` with the domain's XML on stdin and
takes a non-zero exit at "prepare begin" as a refusal to start the guest,
with the hook's stderr in its error.  The real libvirt runs it in the VM
suite (tests/vm/case-libvirt.sh); here every path of the hook is driven
against the fake kernel: what it makes, what it records, what it gives back,
and that it gives back only what it made.
"""
import json
import os
import subprocess
import time
import unittest

from fakekernel import DeviceLock
from test_dbus import NVME, OTHER, VDSUB, Base, group_of_two

HOOK = os.environ.get("VFIOD_LIBVIRT_HOOK", "vfiod-libvirt-hook")
NS = "http://vfiod.org/xmlns/libvirt/domain/1.0"
UUID = "c7a5fdbd-edaf-9455-926a-d65c16db1809"
MDEV_UUID = "2b7b9a3e-5f1a-4c0c-9f5e-6a1d0c2b4e11"


def pci(addr, managed="no"):
    d, rest = addr.split(":", 1)
    b, rest = rest.split(":")
    s, f = rest.split(".")
    return (f"<hostdev mode='subsystem' type='pci' managed='{managed}'><source>"
            f"<address domain='0x{d}' bus='0x{b}' slot='0x{s}' function='0x{f}'/>"
            "</source></hostdev>")


def domain(devices, metadata="", uuid=UUID):
    return (f"<domain type='qemu'><name>guest</name><uuid>{uuid}</uuid>"
            f"<metadata>{metadata}</metadata><memory unit='MiB'>64</memory>"
            f"<devices>{''.join(devices)}</devices></domain>")


def vfiod_meta(inner, timeout=None):
    t = f" timeout='{timeout}'" if timeout else ""
    return f"<vfiod:devices xmlns:vfiod='{NS}'{t}>{inner}</vfiod:devices>"


class TestLibvirtHook(Base):
    fake_kernel = True

    def extra_fixture(self):
        # A function in a group of two: not viable alone.
        self.group_native = group_of_two(self.sys)

    def native(self):
        return self.group_native

    def setUp(self):
        super().setUp()
        self.hook_state = os.path.join(self.tmp, "hook-state")

    def hook(self, op, sub, xml, rc=0, timeout=120, libvirt=None):
        env = dict(self.env, VFIOD_LIBVIRT_STATE_DIR=self.hook_state)
        if libvirt:
            env["VFIOD_LIBVIRT_VERSION"] = libvirt
        start = time.monotonic()
        p = subprocess.run([HOOK, "guest", op, sub, "-"], input=xml, env=env,
                           capture_output=True, text=True, timeout=timeout)
        self.elapsed = time.monotonic() - start
        self.assertNotIn("runtime error", p.stderr)
        self.assertNotIn("AddressSanitizer", p.stderr)
        if rc is not None:
            self.assertEqual(p.returncode, rc, f"{op} {sub}: {p.stdout}{p.stderr}")
        return p

    def record(self, uuid=UUID):
        path = os.path.join(self.hook_state, uuid + ".json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def recorded(self):
        r = self.record()
        return [d["name"] for d in r["devices"]] if r else []

    def test_prepare_assigns_records_and_release_gives_back(self):
        xml = domain([pci(NVME)])
        self.hook("prepare", "begin", xml)
        self.assertEqual(self.driver_of(NVME), VDSUB)
        r = self.record()
        self.assertEqual((r["domain"], r["uuid"]), ("guest", UUID))
        self.assertEqual(r["devices"], [{"kind": "pci", "name": NVME, "undo": "destroy"}])
        # The operations libvirt calls in between change nothing.
        for op, sub in (("start", "begin"), ("started", "begin"), ("stopped", "end"),
                        ("reconnect", "begin")):
            self.hook(op, sub, xml)
        self.assertEqual(self.driver_of(NVME), VDSUB)
        self.hook("release", "end", xml)
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIsNone(self.record())
        self.assert_consistent()
        # A second release (libvirt after a failed start) has nothing to do.
        self.hook("release", "end", xml)

    def test_vfio_pci_for_a_libvirt_that_knows_no_variant_driver(self):
        xml = domain([pci(NVME)])
        p = self.hook("prepare", "begin", xml, libvirt="9.0.0")
        self.assertEqual((self.driver_of(NVME), p.stderr), ("vfio-pci", ""))
        self.hook("release", "end", xml)
        self.assertEqual(self.driver_of(NVME), "nvme")
        # libvirt 10 takes any vfio driver; a driver named in the metadata is always taken.
        p = self.hook("prepare", "begin", xml, libvirt="10.0.0")
        self.assertEqual((self.driver_of(NVME), p.stderr), (VDSUB, ""))
        self.hook("release", "end", xml)
        meta = vfiod_meta(f"<vfiod:hostdev address='{NVME}' driver='{VDSUB}'/>")
        p = self.hook("prepare", "begin", domain([pci(NVME)], meta), libvirt="9.0.0")
        self.assertEqual((self.driver_of(NVME), p.stderr), (VDSUB, ""))
        self.hook("release", "end", xml)
        self.assert_consistent()

    def test_record_alone_decides_what_is_released(self):
        # libvirtd restarted, the domain's XML changed meanwhile: the record is what counts.
        self.hook("prepare", "begin", domain([pci(NVME)]))
        self.hook("release", "end", domain([]))
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIsNone(self.record())

    def test_managed_yes_is_left_to_libvirt(self):
        p = self.hook("prepare", "begin", domain([pci(NVME, managed="yes")]))
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIsNone(self.record())
        self.assertEqual(p.stderr, "")

    def test_a_device_assigned_before_is_not_given_back(self):
        self.create(NVME)
        xml = domain([pci(NVME)])
        self.hook("prepare", "begin", xml)
        self.assertEqual(self.recorded(), [])
        self.hook("release", "end", xml)
        self.assertEqual(self.driver_of(NVME), VDSUB, "the hook gave back what it did not make")
        # Nor when its Create would time out: no undo is queued for what is not the hook's.
        lock = DeviceLock(self.sys, NVME).hold()
        self.addCleanup(lock.release)
        p = self.hook("prepare", "begin", domain([pci(NVME)], vfiod_meta("", timeout="3")),
                      libvirt="9.0.0")
        self.assertNotIn("queued", p.stderr)
        lock.release()
        self.idle()
        self.assertEqual(self.driver_of(NVME), VDSUB)

    def test_metadata_driver_group_and_skip(self):
        meta = vfiod_meta(f"<vfiod:hostdev address='{NVME}' driver='vfio-pci'/>"
                          "<vfiod:hostdev address='0000:00:07.0' group='yes'/>"
                          f"<vfiod:hostdev address='{OTHER}' skip='yes'/>")
        xml = domain([pci(NVME), pci("0000:00:07.0"), pci(OTHER)], meta)
        self.hook("prepare", "begin", xml)
        self.assertEqual(self.driver_of(NVME), "vfio-pci")
        self.assertTrue(self.driver_of("0000:00:07.1").startswith("vfio"))
        self.assertIsNone(self.driver_of(OTHER))
        self.assertEqual(sorted(self.recorded()), sorted([NVME, "0000:00:07.0", "0000:00:07.1"]))
        self.hook("release", "end", xml)
        for name in (NVME, "0000:00:07.0", "0000:00:07.1"):
            self.assertEqual(self.driver_of(name), "nvme", name)
        self.assert_consistent()

    def test_a_failure_gives_back_what_was_made_and_says_why(self):
        # The nvme is made first; the group of two then refuses: nothing stays assigned.
        xml = domain([pci(NVME), pci("0000:00:07.0")])
        p = self.hook("prepare", "begin", xml, rc=1)
        self.assertIn("vfiod: guest: pci 0000:00:07.0: ", p.stderr)
        self.assertIn("group", p.stderr)
        self.assertIn("nothing was left assigned", p.stderr)
        self.assertEqual(self.driver_of(NVME), "nvme")
        self.assertIsNone(self.record())
        self.assert_consistent()

    def test_an_mdev_present_is_used_and_one_without_a_recipe_refused(self):
        os.makedirs(os.path.join(self.sys.root, "bus/mdev/devices", MDEV_UUID))
        mdev = ("<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
                f"<address uuid='{MDEV_UUID}'/></source></hostdev>")
        p = self.hook("prepare", "begin", domain([mdev]))
        self.assertEqual((p.stderr, self.record()), ("", None))
        os.rmdir(os.path.join(self.sys.root, "bus/mdev/devices", MDEV_UUID))
        # Not there, no metadata, no definition: Start names the missing definition.
        p = self.hook("prepare", "begin", domain([pci(NVME), mdev]), rc=1)
        self.assertIn(f"mdev {MDEV_UUID}: ", p.stderr)
        self.assertEqual(self.driver_of(NVME), "nvme")
        # Half a recipe is refused before anything is made.
        meta = vfiod_meta(f"<vfiod:mdev uuid='{MDEV_UUID}' type='i915-GVTg_V5_4'/>")
        p = self.hook("prepare", "begin", domain([pci(NVME), mdev], meta), rc=1)
        self.assertIn("needs both parent and type", p.stderr)
        self.assertEqual(self.driver_of(NVME), "nvme")

    def test_a_vdpa_interface_needs_its_node_or_a_name(self):
        vdpa = "<interface type='vdpa'><source dev='/dev/vhost-vdpa-77'/></interface>"
        p = self.hook("prepare", "begin", domain([vdpa]), rc=1)
        self.assertIn("/dev/vhost-vdpa-77 does not exist", p.stderr)

    def test_bad_input_is_named(self):
        p = self.hook("prepare", "begin", "<domain><uuid>", rc=1)
        self.assertIn("does not parse", p.stderr)
        p = self.hook("prepare", "begin", "<domain><uuid>nope</uuid></domain>", rc=1)
        self.assertIn("no valid <uuid>", p.stderr)
        bad = ("<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' "
               "bus='0x300' slot='0x00' function='0x0'/></source></hostdev>")
        p = self.hook("prepare", "begin", domain([bad]), rc=1)
        self.assertIn("no valid source address", p.stderr)
        p = self.hook("prepare", "begin", domain([pci(NVME)], vfiod_meta("", timeout="0")), rc=1)
        self.assertIn("timeout='0'", p.stderr)
        self.assertEqual(self.driver_of(NVME), "nvme")
        # An entity is not expanded and nothing is fetched from the network.
        xxe = ("<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
               f"<domain><uuid>{UUID}</uuid><name>&e;</name></domain>")
        p = self.hook("prepare", "begin", xxe)
        self.assertNotIn("root:", p.stderr)

    def test_a_stuck_device_is_bounded_and_its_undo_queued(self):
        lock = DeviceLock(self.sys, NVME).hold()
        self.addCleanup(lock.release)
        xml = domain([pci(NVME)], vfiod_meta("", timeout="3"))
        p = self.hook("prepare", "begin", xml, rc=1, timeout=60)
        self.assertLess(self.elapsed, 15, p.stderr)
        self.assertIn(f"pci {NVME}: vfiod did not answer within the hook's 3 s", p.stderr)
        self.assertIn("queued behind it", p.stderr)
        lock.release()
        # Whatever the Create did once the lock went, the queued Destroy undid it.
        self.bus.wait_for(lambda: self.driver_of(NVME) == "nvme" and not self.describe()["operations"],
                          timeout=60, what="the nvme back on nvme")
        self.assert_consistent()


if __name__ == "__main__":
    unittest.main()
