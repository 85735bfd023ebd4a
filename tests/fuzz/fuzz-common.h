/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the libFuzzer harnesses share: a scratch directory on a tmpfs when
 * there is one, files written whole, and a small fixture /sys.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline char *fuzz_scratch(const char *what)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char *d;

	if (asprintf(&d, "%s/vfiod-fuzz-%s-XXXXXX", base, what) < 0 || !mkdtemp(d))
		abort();
	return d;
}

static inline void fuzz_mkdir(const char *root, const char *rel)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		abort();
}

static inline void fuzz_write(const char *root, const char *rel, const void *data, size_t size)
{
	char p[4096];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
}

static inline void fuzz_text(const char *root, const char *rel, const char *text)
{
	fuzz_write(root, rel, text, strlen(text));
}

static inline void fuzz_link(const char *root, const char *rel, const char *target)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	unlink(p);
	if (symlink(target, p) < 0)
		abort();
}

/*
 * A /sys with one PCI function on nvme in group 3, a bus link, a class link,
 * an mdev parent, a link that leaves the tree, one to a file, and a loop.
 */
static inline char *fuzz_sysfs(void)
{
	char *root = fuzz_scratch("sys");
	static const char *dev = "devices/pci0000:00/0000:00:03.0";

	fuzz_mkdir(root, dev);
	fuzz_text(root, "devices/pci0000:00/0000:00:03.0/vendor", "0x1b36\n");
	fuzz_text(root, "devices/pci0000:00/0000:00:03.0/device", "0x0010\n");
	fuzz_text(root, "devices/pci0000:00/0000:00:03.0/subsystem_vendor", "0x1af4\n");
	fuzz_text(root, "devices/pci0000:00/0000:00:03.0/subsystem_device", "0x1100\n");
	fuzz_text(root, "devices/pci0000:00/0000:00:03.0/class", "0x010802\n");
	fuzz_text(root, "devices/pci0000:00/0000:00:03.0/modalias",
		  "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02\n");
	fuzz_text(root, "devices/pci0000:00/0000:00:03.0/driver_override", "(null)\n");
	fuzz_mkdir(root, "bus/pci/drivers/nvme");
	fuzz_mkdir(root, "bus/pci/devices");
	fuzz_mkdir(root, "kernel/iommu_groups/3/devices");
	fuzz_mkdir(root, "class/nvme");
	fuzz_mkdir(root, "module");
	fuzz_link(root, "devices/pci0000:00/0000:00:03.0/driver", "../../../bus/pci/drivers/nvme");
	fuzz_link(root, "devices/pci0000:00/0000:00:03.0/iommu_group",
		  "../../../kernel/iommu_groups/3");
	fuzz_link(root, "devices/pci0000:00/0000:00:03.0/subsystem", "../../../bus/pci");
	fuzz_link(root, "bus/pci/devices/0000:00:03.0", "../../../devices/pci0000:00/0000:00:03.0");
	fuzz_link(root, "kernel/iommu_groups/3/devices/0000:00:03.0",
		  "../../../../devices/pci0000:00/0000:00:03.0");
	fuzz_link(root, "class/nvme/nvme0", "../../devices/pci0000:00/0000:00:03.0");
	fuzz_link(root, "class/nvme/out", "/etc");
	fuzz_link(root, "class/nvme/attr", "../../devices/pci0000:00/0000:00:03.0/vendor");
	fuzz_link(root, "class/nvme/loop", "loop");
	return root;
}
