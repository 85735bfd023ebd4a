# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixture trees for the sysfs tests.

A Sysfs object builds a directory that looks like /sys to libvfiod
(VFIOD_SYSFS_ROOT): devices with their attributes, bus and driver links,
IOMMU groups, modules.  A ModulesDir holds a real modules.alias and its
binary indexes, made by the real depmod from small .ko files whose only
content is a .modinfo section (what depmod reads).
"""
import os
import shutil
import subprocess
import tempfile


class Sysfs:
    def __init__(self, root):
        self.root = root
        for d in ("devices", "bus/pci/devices", "bus/pci/drivers", "module",
                  "kernel/iommu_groups", "class/net", "devices/virtual/net"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        self._write("bus/pci/drivers_probe", "")

    def _write(self, rel, text):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def _link(self, rel, target_rel):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if os.path.lexists(p):
            os.unlink(p)
        os.symlink(os.path.relpath(os.path.join(self.root, target_rel), os.path.dirname(p)), p)

    def module(self, name, drivers=(), builtin=False):
        os.makedirs(os.path.join(self.root, "module", name, "drivers"), exist_ok=True)
        if not builtin:
            self._write(f"module/{name}/initstate", "live\n")
        for d in drivers:
            self.driver(d, name)

    def driver(self, name, module=None):
        base = f"bus/pci/drivers/{name}"
        os.makedirs(os.path.join(self.root, base), exist_ok=True)
        self._write(base + "/bind", "")
        self._write(base + "/unbind", "")
        if module:
            os.makedirs(os.path.join(self.root, "module", module, "drivers"), exist_ok=True)
            self._link(base + "/module", f"module/{module}")
            self._link(f"module/{module}/drivers/pci:{name}", base)

    def pci(self, name, vendor, device, subvendor=0x1AF4, subdevice=0x1100, cls=0x010802,
            driver=None, group=None, parent="pci0000:00", physfn=None):
        rel = f"devices/{parent}/{name}"
        os.makedirs(os.path.join(self.root, rel), exist_ok=True)
        attrs = {
            "uevent": f"PCI_SLOT_NAME={name}\n",
            "vendor": f"0x{vendor:04x}\n", "device": f"0x{device:04x}\n",
            "subsystem_vendor": f"0x{subvendor:04x}\n",
            "subsystem_device": f"0x{subdevice:04x}\n",
            "class": f"0x{cls:06x}\n",
            "modalias": "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X\n" % (
                vendor, device, subvendor, subdevice, cls >> 16, (cls >> 8) & 0xff,
                cls & 0xff),
            "driver_override": "(null)\n",
        }
        for k, v in attrs.items():
            self._write(f"{rel}/{k}", v)
        self._link(f"{rel}/subsystem", "bus/pci")
        self._link(f"bus/pci/devices/{name}", rel)
        if driver:
            if not os.path.isdir(os.path.join(self.root, "bus/pci/drivers", driver)):
                self.driver(driver)
            self._link(f"{rel}/driver", f"bus/pci/drivers/{driver}")
        if group is not None:
            self._link(f"{rel}/iommu_group", f"kernel/iommu_groups/{group}")
            self._link(f"kernel/iommu_groups/{group}/devices/{name}", rel)
        if physfn:
            self._link(f"{rel}/physfn", f"devices/{parent}/{physfn}")
        return "/sys/" + rel

    def netdev(self, name, pci=None):
        rel = f"devices/virtual/net/{name}"
        os.makedirs(os.path.join(self.root, rel), exist_ok=True)
        self._write(rel + "/uevent", f"INTERFACE={name}\n")
        self._link(rel + "/subsystem", "class/net")
        if pci:
            self._link(rel + "/device", f"bus/pci/devices/{pci}")
        return "/sys/" + rel

    def node(self, rel, subsystem, dev=None, **attrs):
        """A class device at REL: its subsystem link, `dev` ("MAJ:MIN") and any
        attributes (ATTR=TEXT; a slash in ATTR is a sub-folder)."""
        self._link(rel + "/subsystem", "class/" + subsystem)
        if dev:
            self._write(rel + "/dev", dev + "\n")
            self._write(rel + "/uevent", "DEVNAME=%s\n" % rel.rsplit("/", 1)[1])
        for k, v in attrs.items():
            self._write(f"{rel}/{k}", v + "\n")
        return rel

    def read(self, rel):
        with open(os.path.join(self.root, rel.removeprefix("/sys/"))) as f:
            return f.read()

    def snapshot(self):
        """Every regular file's content and every link's target."""
        out = {}
        for dp, dns, fns in os.walk(self.root):
            for n in fns + dns:
                p = os.path.join(dp, n)
                if os.path.islink(p):
                    out[p] = "->" + os.readlink(p)
                elif os.path.isfile(p):
                    with open(p) as f:
                        out[p] = f.read()
        return out


MODINFO_C = """static const char __attribute__((section(".modinfo"), used, aligned(1)))
m%d[] = "%s";
"""


class ModulesDir:
    """<base>/lib/modules/<kv>, indexed by the real depmod."""
    KV = "6.12.0-vfiod-test"

    def __init__(self, base):
        self.base = base
        self.dir = os.path.join(base, "lib/modules", self.KV)
        os.makedirs(os.path.join(self.dir, "kernel"), exist_ok=True)
        self.builtin = []

    def add(self, name, aliases):
        src = os.path.join(self.base, name + ".c")
        lines = [f"name={name}", "license=GPL"] + [f"alias={a}" for a in aliases]
        with open(src, "w") as f:
            for i, l in enumerate(lines):
                f.write(MODINFO_C % (i, l))
        subprocess.run(["cc", "-c", src, "-o", os.path.join(self.dir, "kernel", name + ".ko")],
                       check=True)

    def add_builtin(self, name, aliases):
        self.builtin += [f"{name}.alias={a}" for a in aliases]

    def depmod(self):
        with open(os.path.join(self.dir, "modules.builtin"), "w") as f:
            f.write("".join(f"kernel/{b.split('.')[0]}.ko\n" for b in self.builtin))
        with open(os.path.join(self.dir, "modules.builtin.modinfo"), "wb") as f:
            f.write(b"".join(b.encode() + b"\0" for b in self.builtin))
        with open(os.path.join(self.dir, "modules.order"), "w") as f:
            f.write("".join(f"kernel/{n}\n" for n in sorted(os.listdir(
                os.path.join(self.dir, "kernel")))))
        depmod = shutil.which("depmod") or "/sbin/depmod"
        subprocess.run([depmod, "-b", self.base, self.KV], check=True)


def tempdir():
    return tempfile.mkdtemp(prefix="vfiod-test-")
