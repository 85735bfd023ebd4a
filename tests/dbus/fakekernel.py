# SPDX-License-Identifier: LGPL-2.1-or-later
"""A driver core for fixture trees.

A fixture tree is files: a write to driver/unbind or drivers_probe lands and
nothing binds.  FakeKernel makes bus/pci/drivers_probe and each driver's
unbind a FIFO and plays the kernel's part in a process of its own (so that
a busy test never starves it): a name written to D/unbind drops the
device's driver link if it points to D; a name written to drivers_probe
binds an unbound device to the driver its driver_override names (when that
driver exists) or else to its native driver.  libvfiod's writes are single
write(2) calls of a 12-character PCI name, so a FIFO carries them intact
and in order.

hang(driver) leaves that driver's unbind FIFO without a reader: a writer
blocks in open(2), as a write to a real unbind can block in the kernel;
release(driver) lets it through.

DeviceLock(sysfs, name) holds a device's lock as the kernel's device_lock()
does for what libvfiod reads and writes of it: while held, opening the
device's driver_override (whose show and store take the lock on kernels
before its rework into struct device) or sriov_numvfs (whose store holds it
while VFs are made, and whose show waits for that) blocks, for reading and
for writing, until release().  Both become FIFOs nobody holds; release()
puts the files back and lets every blocked open through, with the value for
a reader and the value written kept.
"""
import json
import os
import select
import stat
import subprocess
import sys
import time

NAME_LEN = 12


def make_fifo(path):
    if os.path.lexists(path) and not stat.S_ISFIFO(os.lstat(path).st_mode):
        os.unlink(path)
    if not os.path.exists(path):
        os.mkfifo(path, 0o600)


LOCKED_ATTRS = ("driver_override", "sriov_numvfs")


class DeviceLock:
    """A device's lock, held from hold() to release(); see the module's doc."""

    def __init__(self, sysfs, name):
        self.dev = os.path.realpath(os.path.join(sysfs.root, "bus/pci/devices", name))
        self.keep = os.path.join(os.path.dirname(sysfs.root), "locks", name)
        self.saved = {}

    def hold(self):
        os.makedirs(self.keep, exist_ok=True)
        for attr in LOCKED_ATTRS:
            path = os.path.join(self.dev, attr)
            if not os.path.isfile(path):
                continue
            with open(path) as f:
                self.saved[attr] = f.read()
            fifo = os.path.join(self.keep, attr)
            os.mkfifo(fifo, 0o600)
            tmp = path + ".locked"
            os.link(fifo, tmp)
            os.rename(tmp, path)
        return self

    def release(self):
        held = []
        for attr, value in self.saved.items():
            path = os.path.join(self.dev, attr)
            fifo = os.path.join(self.keep, attr)
            # New opens find the file again...
            with open(path + ".new", "w") as f:
                f.write(value)
            os.rename(path + ".new", path)
            # ...and those blocked on the FIFO get through: both ends are open now.
            fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
            os.write(fd, value.encode())
            held.append((attr, path, fifo, fd))
        self.saved = {}
        time.sleep(0.3)  # let blocked readers read and writers write
        for attr, path, fifo, fd in held:
            try:
                written = os.read(fd, 4096).decode()
            except BlockingIOError:
                written = ""
            os.close(fd)
            os.unlink(fifo)
            # What a writer wrote while waiting (after the value we put for readers).
            with open(path) as f:
                value = f.read()
            if written.startswith(value):
                written = written[len(value):]
            if written:
                with open(path, "w") as f:
                    f.write(written)


class FakeKernel:
    """The test's handle on the driver core process."""

    def __init__(self, sysfs, native):
        self.native = dict(native)
        make_fifo(os.path.join(sysfs.root, "bus/pci/drivers_probe"))
        for d in os.listdir(os.path.join(sysfs.root, "bus/pci/drivers")):
            make_fifo(os.path.join(sysfs.root, "bus/pci/drivers", d, "unbind"))
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), sysfs.root,
                                      json.dumps(self.native)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self._ask("ping")

    def _ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"fake kernel: {line}: {answer!r}")

    def hang(self, driver):
        self._ask("hang " + driver)

    def release(self, driver):
        self._ask("release " + driver)

    def close(self):
        try:
            self._ask("quit")
        except (BrokenPipeError, RuntimeError):
            pass
        self.proc.wait(10)


class Core:
    def __init__(self, root, native):
        self.root = root
        self.native = native
        self.fds = {}  # fd -> ("probe", None) | ("unbind", driver)
        self.adopt(os.path.join(root, "bus/pci/drivers_probe"), ("probe", None))
        for d in os.listdir(os.path.join(root, "bus/pci/drivers")):
            self.adopt(self.unbind_path(d), ("unbind", d))

    def unbind_path(self, driver):
        return os.path.join(self.root, "bus/pci/drivers", driver, "unbind")

    def adopt(self, path, what):
        make_fifo(path)
        # O_RDWR: we hold both ends, so writers never block and we never see EOF.
        self.fds[os.open(path, os.O_RDWR | os.O_NONBLOCK)] = what

    def command(self, line):
        words = line.split()
        if words[0] == "hang":
            for fd, what in list(self.fds.items()):
                if what == ("unbind", words[1]):
                    del self.fds[fd]
                    os.close(fd)
        elif words[0] == "release":
            self.adopt(self.unbind_path(words[1]), ("unbind", words[1]))
        return words[0] != "quit"

    def dev(self, name):
        return os.path.realpath(os.path.join(self.root, "bus/pci/devices", name))

    @staticmethod
    def driver_of(dev):
        link = os.path.join(dev, "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def unbind(self, driver, name):
        dev = self.dev(name)
        if self.driver_of(dev) == driver:
            os.unlink(os.path.join(dev, "driver"))

    def probe(self, name):
        dev = self.dev(name)
        if self.driver_of(dev):
            return
        with open(os.path.join(dev, "driver_override")) as f:
            override = f.read().strip()
        if override and override != "(null)":
            target = override if os.path.isdir(
                os.path.join(self.root, "bus/pci/drivers", override)) else None
        else:
            target = self.native.get(name)
        if not target:
            return
        link = os.path.join(dev, "driver")
        os.symlink(os.path.relpath(os.path.join(self.root, "bus/pci/drivers", target), dev),
                   link + ".new")
        os.rename(link + ".new", link)

    def serve(self):
        while True:
            ready, _, _ = select.select([sys.stdin] + list(self.fds), [], [])
            # Unbinds before probes: a probe is always written after its unbind.  So take
            # the probes first, then every unbind pipe (ready or not: an unbind written
            # after select() returned may belong to a probe just taken), then act.
            batches = {}
            for fd in sorted(self.fds, key=lambda fd: self.fds[fd][0] == "unbind"):
                try:
                    batches[fd] = os.read(fd, NAME_LEN * 256).decode()
                except BlockingIOError:
                    continue
            for fd in sorted(batches, key=lambda fd: self.fds[fd][0] != "unbind"):
                kind, driver = self.fds[fd]
                data = batches[fd]
                for i in range(0, len(data) - NAME_LEN + 1, NAME_LEN):
                    if kind == "unbind":
                        self.unbind(driver, data[i:i + NAME_LEN])
                    else:
                        self.probe(data[i:i + NAME_LEN])
            if sys.stdin in ready:
                line = sys.stdin.readline()
                if not line:
                    return
                keep = self.command(line)
                print("ok", flush=True)
                if not keep:
                    return


if __name__ == "__main__":
    Core(sys.argv[1], json.loads(sys.argv[2])).serve()
