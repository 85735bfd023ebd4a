/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfio-open GROUP DEVICE: prove a device assigned to vfio is usable, the way
 * QEMU opens it through the group API: open the container and the group, check
 * the group is viable, attach it to a type1 IOMMU container, get the device fd
 * and read its region and IRQ info and the IDs at the start of its config
 * space.  Exit 0 on success; each failure names the step.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

/* Config space up to the subsystem IDs. */
#define PCI_CONFIG_IDS 0x30

static int fail(const char *step)
{
	fprintf(stderr, "vfio-open: %s: %s\n", step, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	char path[64];
	int container, group, device;

	if (argc != 3) {
		fprintf(stderr, "usage: vfio-open GROUP DEVICE\n");
		return 2;
	}
	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0)
		return fail("open /dev/vfio/vfio");
	if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		return fail("VFIO_GET_API_VERSION");
	if (!ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)) {
		errno = ENOTSUP;
		return fail("VFIO_CHECK_EXTENSION type1v2");
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", argv[1]);
	group = open(path, O_RDWR | O_CLOEXEC);
	if (group < 0)
		return fail(path);
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0)
		return fail("VFIO_GROUP_GET_STATUS");
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EBUSY;
		return fail("group not viable");
	}
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
		return fail("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
		return fail("VFIO_SET_IOMMU");
	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2]);
	if (device < 0)
		return fail("VFIO_GROUP_GET_DEVICE_FD");
	if (ioctl(device, VFIO_DEVICE_GET_INFO, &info) < 0)
		return fail("VFIO_DEVICE_GET_INFO");
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI)) {
		errno = ENODEV;
		return fail("not a PCI vfio device");
	}
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0)
		return fail("VFIO_DEVICE_GET_REGION_INFO config");
	printf("%s: %u regions, %u irqs, config space %llu bytes\n", argv[2], info.num_regions,
	       info.num_irqs, (unsigned long long)reg.size);
	if (reg.size >= PCI_CONFIG_IDS) {
		unsigned char c[PCI_CONFIG_IDS];

		if (pread(device, c, sizeof(c), reg.offset) != (ssize_t)sizeof(c))
			return fail("read config space");
		/* Little endian: vendor, device at 0; subsystem vendor, device at 0x2c. */
		printf("%s: config %02x%02x:%02x%02x subsystem %02x%02x:%02x%02x\n", argv[2], c[1],
		       c[0], c[3], c[2], c[0x2d], c[0x2c], c[0x2f], c[0x2e]);
	}
	close(device);
	close(group);
	close(container);
	return 0;
}
