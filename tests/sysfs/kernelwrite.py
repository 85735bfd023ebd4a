# SPDX-License-Identifier: LGPL-2.1-or-later
"""The kernel's part in one sysfs write, for a fixture tree.

A fixture tree is files: a write to sriov_numvfs or an mdev type's create
lands, and nothing appears.  KernelWrite(path, act) makes the attribute at
PATH a FIFO whose buffer it fills itself, so that the writer's write(2)
blocks as a write to a real attribute does while the kernel works.  Once
the process watched (vfioctl) has the attribute open, act() plays the
kernel (makes the VFs, the mdev, ...); only then is the buffer drained, so
that the write returns with the tree already changed, as it does on a
real kernel.  The value written is kept in .value.
"""
import os
import select
import threading
import time


class KernelWrite:
    def __init__(self, path, act):
        self.path, self.act, self.value = path, act, None
        if os.path.lexists(path):
            os.unlink(path)
        os.mkfifo(path, 0o600)
        # Both ends, so that the writer's open(2) does not wait for a reader.
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        st = os.fstat(self.fd)
        self.ident = (st.st_dev, st.st_ino)
        self.filler = 0
        for size in (4096, 1):
            while True:
                try:
                    self.filler += os.write(self.fd, b"\0" * size)
                except BlockingIOError:
                    break
        self.thread = None

    def watch(self, pid):
        self.thread = threading.Thread(target=self._serve, args=(pid,), daemon=True)
        self.thread.start()

    def join(self):
        if self.thread:
            self.thread.join(10)
        os.close(self.fd)

    def _held_by(self, pid):
        """True when PID has the FIFO open, None when PID is gone."""
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or a zombie
            return None
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == self.ident:
                return True
        return False

    def _read(self, n, timeout=10):
        data, deadline = b"", time.monotonic() + timeout
        while len(data) < n and time.monotonic() < deadline:
            select.select([self.fd], [], [], 0.1)
            try:
                data += os.read(self.fd, n - len(data))
            except BlockingIOError:
                pass
        return data

    def _serve(self, pid):
        while True:
            held = self._held_by(pid)
            if held is None:
                return
            if held:
                break
            time.sleep(0.002)
        self.act()
        self._read(self.filler)
        # The writer's value, written in one write(2) now that there is room.
        first = self._read(1)
        time.sleep(0.01)
        try:
            rest = os.read(self.fd, 4096)
        except BlockingIOError:
            rest = b""
        self.value = (first + rest).decode()
