#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""QMP from inside the test VM (run.sh --qmp).

    qmp.py COMMAND [ARGUMENTS-JSON] [COMMAND ARGUMENTS-JSON]...
    e.g. qmp.py device_add '{"driver": "nvme", "id": "a", "bus": "rp1"}'

run.sh --qmp connects QEMU's QMP monitor to a virtio-serial port named
org.vfiod.qmp; this speaks QMP over /dev/vportNpM: the capabilities
handshake (once a boot: later runs find it done), then the command.  Prints
each "return" value as JSON, a line each, with the wall-clock time (ns) the
reply arrived as "ns" when it is an object; several commands go back to back
in one connection; exits 1 with QMP's error message at the first error.
Events waiting in the port (left by earlier runs) are skipped.
"""
import glob
import json
import os
import select
import subprocess
import sys
import time

NAME = "org.vfiod.qmp"


def port():
    for _ in range(2):
        for n in glob.glob("/sys/class/virtio-ports/vport*/name"):
            with open(n) as f:
                if f.read().strip() == NAME:
                    return "/dev/" + n.split("/")[-2]
        subprocess.run(["modprobe", "virtio_console"], check=False)
        time.sleep(0.5)
    sys.exit(f"qmp: no virtio port named {NAME} (run.sh --qmp?)")


class Qmp:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self.buf = b""
        self.n = 0

    def read(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError("QEMU did not answer")
            self.buf += os.read(self.fd, 65536)
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line) if line.strip() else None

    def call(self, cmd, args=None, timeout=60):
        self.n += 1
        tag = f"vfiod-{os.getpid()}-{self.n}"
        msg = {"execute": cmd, "id": tag}
        if args:
            msg["arguments"] = args
        os.write(self.fd, json.dumps(msg).encode() + b"\r\n")
        while True:
            m = self.read(timeout)
            if m and m.get("id") == tag:
                return m


def main():
    words = sys.argv[1:]
    if not words or (len(words) > 2 and len(words) % 2):
        sys.exit(__doc__)
    calls = [(words[i], json.loads(words[i + 1]) if i + 1 < len(words) else None)
             for i in range(0, len(words), 2)]
    q = Qmp(port())
    r = q.call("qmp_capabilities")
    if "error" in r and r["error"].get("class") != "CommandNotFound":
        sys.exit(f"qmp: qmp_capabilities: {r['error'].get('desc')}")
    for cmd, args in calls:
        r = q.call(cmd, args)
        ns = time.time_ns()
        if "error" in r:
            sys.exit(f"qmp: {cmd}: {r['error'].get('desc')}")
        ret = r.get("return")
        if isinstance(ret, dict):
            ret["ns"] = ns
        print(json.dumps(ret), flush=True)


if __name__ == "__main__":
    main()
