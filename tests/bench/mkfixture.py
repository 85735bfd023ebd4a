#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A fixture sysfs tree with N PCI functions, for the benchmarks.

    mkfixture.py ROOT N

Functions 0000:BB:DD.F from bus 01 on, each in an IOMMU group of its own,
cycling through a mix of real device kinds (QEMU's nvme and pci-testdev, an
e1000e, a ConnectX VF, a virtio-net, a Samsung NVMe) on their host drivers;
the modules vfio_pci and the kernel fixture variants are "loaded" (their
/sys/module entries name their drivers).  Prints one line per device kind:
the PCI name of its first function and its modalias.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../sysfs"))
from fixture import Sysfs  # noqa: E402

# vendor, device, subvendor, subdevice, class, host driver
KINDS = [
    (0x1B36, 0x0010, 0x1AF4, 0x1100, 0x010802, "nvme"),
    (0x1B36, 0x0005, 0x1AF4, 0x1100, 0x00FF00, None),
    (0x8086, 0x10D3, 0x8086, 0x0000, 0x020000, "e1000e"),
    (0x15B3, 0x101E, 0x15B3, 0x0000, 0x020000, "mlx5_core"),
    (0x1AF4, 0x1041, 0x1AF4, 0x1100, 0x020000, "virtio-pci"),
    (0x144D, 0xA808, 0x144D, 0xA801, 0x010802, "nvme"),
]


def main():
    root, n = sys.argv[1], int(sys.argv[2])
    s = Sysfs(root)
    s.module("vfio_pci", ["vfio-pci"])
    for m in ("vfio_fixture_vd", "vfio_fixture_vdsub", "vfio_fixture_other"):
        s.module(m, [m.replace("_", "-")])
    for d in ("nvme", "e1000e", "mlx5_core", "virtio-pci"):
        s.driver(d, d.replace("-", "_"))
    for i in range(n):
        v, d, sv, sd, cls, drv = KINDS[i % len(KINDS)]
        name = "0000:%02x:%02x.%x" % (1 + i // 256, (i // 8) % 32, i % 8)
        s.pci(name, v, d, subvendor=sv, subdevice=sd, cls=cls, driver=drv, group=100 + i)
        if i < len(KINDS):
            print(name, s.read("devices/pci0000:00/%s/modalias" % name).strip())


if __name__ == "__main__":
    main()
