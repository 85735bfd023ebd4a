# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fixture trees' driver core behaves as the kernel's where libvfiod relies on it.

Each write acts before write(2) returns, with the kernel's errors; a hung
driver blocks its unbind, a held device lock blocks the reads and writes
that take it, and nothing else; a killed caller gets out; the tree is put
back whole when the file system goes.
"""
import errno
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "dbus"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sysfs"))

from fakekernel import DeviceLock, FakeKernel  # noqa: E402
from fixture import Sysfs, tempdir  # noqa: E402

A = "0000:00:03.0"
B = "0000:00:04.0"


class TestFakeKernel(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.sys = Sysfs(os.path.join(self.tmp, "sys"))
        self.sys.driver("nvme", "nvme")
        self.sys.driver("vfio-pci", "vfio_pci")
        self.sys.pci(A, 0x1b36, 0x0010, driver="nvme", group=3)
        self.sys.pci(B, 0x1b36, 0x0005, cls=0x00ff00, group=4)
        self.kernel = FakeKernel(self.sys, {A: "nvme"})
        self.addCleanup(self.kernel.close)

    def path(self, rel):
        return os.path.join(self.sys.root, rel)

    def driver_of(self, name):
        link = self.path(f"bus/pci/devices/{name}/driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def write(self, rel, text):
        fd = os.open(self.path(rel), os.O_WRONLY)
        try:
            return os.write(fd, text.encode())
        finally:
            os.close(fd)

    def test_each_write_acts_before_it_returns(self):
        # Through the device's own driver link, as libvfiod writes it.
        self.assertEqual(self.write(f"bus/pci/devices/{A}/driver/unbind", A), len(A))
        self.assertIsNone(self.driver_of(A))
        self.write(f"bus/pci/devices/{A}/driver_override", "vfio-pci\n")
        self.write("bus/pci/drivers_probe", A)
        self.assertEqual(self.driver_of(A), "vfio-pci")
        # The link is relative, from the device's directory, as sysfs makes it.
        self.assertEqual(os.readlink(self.path(f"bus/pci/devices/{A}/driver")),
                         "../../../bus/pci/drivers/vfio-pci")
        self.write("bus/pci/drivers/vfio-pci/unbind", A + "\n")
        # A store replaces the value; a lone newline clears it, shown as "(null)".
        self.write(f"bus/pci/devices/{A}/driver_override", "\n")
        with open(self.path(f"bus/pci/devices/{A}/driver_override")) as f:
            self.assertEqual(f.read(), "(null)\n")
        self.write("bus/pci/drivers_probe", A)
        self.assertEqual(self.driver_of(A), "nvme")

    def test_the_kernels_errors(self):
        def err(rel, text):
            with self.assertRaises(OSError) as cm:
                self.write(rel, text)
            return cm.exception.errno

        # unbind_store(): a device not bound to this driver, or none of that name.
        self.assertEqual(err("bus/pci/drivers/vfio-pci/unbind", A), errno.ENODEV)
        self.assertEqual(err("bus/pci/drivers/nvme/unbind", "0000:00:09.0"), errno.ENODEV)
        self.assertEqual(err("bus/pci/drivers_probe", "0000:00:09.0"), errno.ENODEV)
        # bind_store(): a driver that does not match it, or a device that has one.
        self.assertEqual(err("bus/pci/drivers/vfio-pci/bind", B), errno.ENODEV)
        self.assertEqual(err("bus/pci/drivers/nvme/bind", A), errno.EBUSY)
        self.write(f"bus/pci/devices/{B}/driver_override", "vfio-pci")
        self.write("bus/pci/drivers/vfio-pci/bind", B)
        self.assertEqual(self.driver_of(B), "vfio-pci")
        # An override naming no driver there binds nothing, and is no error.
        self.write("bus/pci/drivers/vfio-pci/unbind", B)
        self.write(f"bus/pci/devices/{B}/driver_override", "vfio-none")
        self.write("bus/pci/drivers_probe", B)
        self.assertIsNone(self.driver_of(B))
        self.assertEqual(self.driver_of(A), "nvme")

    def blocked(self, fn):
        """FN in a thread: (thread, box) where box gets its result or exception."""
        box = []

        def run():
            try:
                box.append(fn())
            except OSError as e:
                box.append(e)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, box

    def test_a_hung_driver_blocks_its_unbind_only(self):
        self.kernel.hang("nvme")
        t, box = self.blocked(lambda: self.write("bus/pci/drivers/nvme/unbind", A))
        t.join(0.5)
        self.assertTrue(t.is_alive(), box)
        self.assertEqual(self.driver_of(A), "nvme")
        # Everything else goes on: another device binds, the tree reads.
        self.write(f"bus/pci/devices/{B}/driver_override", "vfio-pci")
        self.write("bus/pci/drivers_probe", B)
        self.assertEqual(self.driver_of(B), "vfio-pci")
        self.kernel.release("nvme")
        t.join(5)
        self.assertEqual(box, [len(A)])
        self.assertIsNone(self.driver_of(A))

    def test_a_held_device_lock_blocks_what_takes_it(self):
        lock = DeviceLock(self.sys, A).hold()
        self.addCleanup(lock.release)
        override = self.path(f"bus/pci/devices/{A}/driver_override")
        # The open is not the kernel's show: it goes through, the read waits.
        fd = os.open(override, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        t, box = self.blocked(lambda: os.read(fd, 64))
        t2, box2 = self.blocked(lambda: self.write("bus/pci/drivers_probe", A))
        t.join(0.5)
        self.assertTrue(t.is_alive() and t2.is_alive(), (box, box2))
        # The other device, and the locked one's other attributes, answer.
        with open(self.path(f"bus/pci/devices/{B}/driver_override")) as f:
            self.assertEqual(f.read(), "(null)\n")
        with open(self.path(f"bus/pci/devices/{A}/vendor")) as f:
            self.assertEqual(f.read(), "0x1b36\n")
        lock.release()
        t.join(5)
        t2.join(5)
        self.assertEqual((box, box2), ([b"(null)\n"], [len(A)]))

    def test_a_killed_caller_gets_out(self):
        self.kernel.hang("nvme")
        p = subprocess.Popen([sys.executable, "-c", "import os, sys\n"
                              "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
                              "print('open', flush=True)\n"
                              "os.write(fd, sys.argv[2].encode())\n",
                              self.path("bus/pci/drivers/nvme/unbind"), A],
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline(), "open\n")
        time.sleep(0.3)
        self.assertIsNone(p.poll())
        p.kill()
        self.assertEqual(p.wait(5), -9)
        p.stdout.close()
        self.assertEqual(self.driver_of(A), "nvme")

    def test_the_tree_is_put_back_on_close(self):
        self.write(f"bus/pci/devices/{A}/driver/unbind", A)
        self.assertTrue(os.path.ismount(self.sys.root))
        self.kernel.close()
        self.assertFalse(os.path.ismount(self.sys.root))
        self.assertFalse(os.path.exists(self.sys.root + ".tree"))
        self.assertIsNone(self.driver_of(A))
        self.assertTrue(os.path.isfile(self.path(f"bus/pci/devices/{A}/vendor")))


if __name__ == "__main__":
    unittest.main()
