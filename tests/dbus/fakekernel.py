# SPDX-License-Identifier: LGPL-2.1-or-later
"""A driver core for fixture trees.

A fixture tree is files: a write to driver/unbind or drivers_probe lands and
nothing binds.  FakeKernel serves the tree through vfiod-fakekernel
(tests/fakekernel), a FUSE file system mounted over it that plays the
kernel's part before the write returns, as the kernel does: a name written
to D/unbind drops the device's driver link when it points to D (else
ENODEV); a name written to drivers_probe binds an unbound device to the
driver its driver_override names (when that driver exists) or else to its
native driver; D/bind binds a device D matches.  So a reader never sees the
driver it has just unbound, which a fake acting later would let it see.

hang(driver) makes every write to that driver's unbind block in write(2), as
a write to a real unbind can block in the kernel; release(driver) lets it
through.

DeviceLock(sysfs, name) holds a device's lock as the kernel's device_lock()
does for what libvfiod reads and writes of it: while held, a read or write
of the device's driver_override (whose show and store take the lock on
kernels before its rework into struct device) or sriov_numvfs (whose store
holds it while VFs are made, and whose show waits for that), and its probe
and unbind, block in the kernel until release().  A blocked caller that is
killed gets EINTR.
"""
import os
import subprocess
import time


def binary():
    path = os.environ.get("VFIOD_FAKEKERNEL")
    if not path:
        raise RuntimeError("VFIOD_FAKEKERNEL is not set: the path of the vfiod-fakekernel "
                           "built in tests/fakekernel (ctest sets it)")
    return path


class DeviceLock:
    """A device's lock, held from hold() to release(); see the module's doc."""

    def __init__(self, sysfs, name):
        self.kernel = getattr(sysfs, "kernel", None)
        if self.kernel is None:
            raise RuntimeError("DeviceLock needs the tree served by a FakeKernel")
        self.name = name
        self.held = False

    def hold(self):
        self.kernel._ask("lock " + self.name)
        self.held = True
        return self

    def release(self):
        if self.held:
            self.held = False
            self.kernel._ask("unlock " + self.name)


class FakeKernel:
    """The driver core of SYSFS's tree; NATIVE maps a device to its host driver."""

    def __init__(self, sysfs, native):
        self.sysfs = sysfs
        self.native = dict(native)
        self.root = sysfs.root
        self.tree = self.root + ".tree"
        os.rename(self.root, self.tree)
        os.mkdir(self.root)
        self.proc = subprocess.Popen(
            [binary(), self.tree, self.root] + [f"{k}={v}" for k, v in self.native.items()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self._answer("mount")
        except RuntimeError:
            self._put_back()
            raise RuntimeError(f"vfiod-fakekernel could not mount the fixture tree on "
                               f"{self.root} (its error is above): the sysfs and dbus tests "
                               "need /dev/fuse and root to mount it") from None
        sysfs.kernel = self

    def _answer(self, what):
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"fake kernel: {what}: {answer!r}")

    def _ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        self._answer(line)

    def hang(self, driver):
        self._ask("hang " + driver)

    def release(self, driver):
        self._ask("release " + driver)

    def _put_back(self):
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # Gone with the process; a mount left behind is taken off here.
        if os.path.ismount(self.root):
            subprocess.run(["umount", "-l", self.root], check=False)
        for _ in range(100):
            try:
                os.rmdir(self.root)
                break
            except OSError:
                time.sleep(0.05)
        os.rename(self.tree, self.root)

    def close(self):
        if getattr(self.sysfs, "kernel", None) is not self:
            return
        self.sysfs.kernel = None
        try:
            self._ask("quit")
        except (BrokenPipeError, RuntimeError, ValueError, OSError):
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._put_back()
