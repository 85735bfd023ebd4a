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
"""
import json
import os
import select
import stat
import subprocess
import sys

NAME_LEN = 12


def make_fifo(path):
    if os.path.lexists(path) and not stat.S_ISFIFO(os.lstat(path).st_mode):
        os.unlink(path)
    if not os.path.exists(path):
        os.mkfifo(path, 0o600)


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
