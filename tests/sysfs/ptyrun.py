# SPDX-License-Identifier: LGPL-2.1-or-later
"""A program on a pseudo-terminal, as a person at a terminal runs it: what it wrote there."""
import os
import pty
import time


def spawn(argv, env):
    """Start ARGV with a pseudo-terminal as its stdout (and stdin, stderr): (pid, fd)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid, fd


def wait_exec(pid, path, timeout=10):
    """Until PID runs PATH: before its execve the child still holds what the parent had open."""
    want, end = os.path.realpath(path), time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if os.readlink(f"/proc/{pid}/exe") == want:
                return
        except OSError:
            pass
        time.sleep(0.002)
    raise AssertionError(f"{path} did not start")


def collect(pid, fd):
    """Everything PID writes until it ends: (exit code, text with the terminal's \\r\\n as \\n)."""
    out = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child is gone and the terminal closed
            break
        if not data:
            break
        out += data
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode().replace("\r\n", "\n")


def run(argv, env):
    return collect(*spawn(argv, env))
