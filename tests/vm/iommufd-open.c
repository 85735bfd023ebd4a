/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iommufd-open [--hold SECONDS] CDEV: prove a device assigned to vfio is usable
 * through its vfio device cdev (/dev/vfio/devices/vfioN), the way QEMU's iommufd
 * backend opens it: open /dev/iommu and the cdev, bind the device to the
 * iommufd, allocate an IOAS, attach the device to it, map a page of our own
 * memory into it and read the device's info.  One line per step on stdout;
 * exit 0 on success, 1 naming the failing step and errno, 2 on a usage error.
 * --hold keeps everything open for SECONDS after the last step (a line
 * "holding" says when), so that a test can show the device is in use.
 *
 * The ioctls come from the 6.12 uapi (include/uapi/linux/vfio.h and iommufd.h):
 * bookworm's <linux/vfio.h> (6.1) lacks the cdev ones and it has no
 * <linux/iommufd.h>.  They are copied here, each guarded, rather than included
 * from the kernel source the VM suite caches: this program builds with every
 * build of the project, also where that cache does not exist, and uapi does
 * not change.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/types.h>
#include <linux/vfio.h>

/* include/uapi/linux/vfio.h of 6.12 */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif
#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

/* include/uapi/linux/iommufd.h of 6.12 */
#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')
#endif
#ifndef IOMMU_IOAS_ALLOC
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81) /* IOMMUFD_CMD_IOAS_ALLOC */
#endif
#ifndef IOMMU_IOAS_MAP
#define IOMMU_IOAS_MAP_FIXED_IOVA (1 << 0)
#define IOMMU_IOAS_MAP_WRITEABLE (1 << 1)
#define IOMMU_IOAS_MAP_READABLE (1 << 2)
struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, 0x85) /* IOMMUFD_CMD_IOAS_MAP */
#endif

/* Config space up to the subsystem IDs. */
#define PCI_CONFIG_IDS 0x30

static int fail(const char *step)
{
	int e = errno;

	printf("FAIL %s: %s (errno %d)\n", step, strerror(e), e);
	fprintf(stderr, "iommufd-open: %s: %s (errno %d)\n", step, strerror(e), e);
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: iommufd-open [--hold SECONDS] /dev/vfio/devices/vfioN\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_map map = { .size = sizeof(map) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	const char *cdev;
	long page = sysconf(_SC_PAGESIZE);
	unsigned int hold = 0;
	int iommufd, device;
	void *buf;

	if (argc == 4 && !strcmp(argv[1], "--hold")) {
		char *end;

		errno = 0;
		hold = strtoul(argv[2], &end, 10);
		if (errno || end == argv[2] || *end)
			return usage();
		cdev = argv[3];
	} else if (argc == 2 && argv[1][0] != '-') {
		cdev = argv[1];
	} else {
		return usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (iommufd < 0)
		return fail("open /dev/iommu");
	printf("ok open /dev/iommu: fd %d\n", iommufd);

	device = open(cdev, O_RDWR | O_CLOEXEC);
	if (device < 0)
		return fail("open cdev");
	printf("ok open %s: fd %d\n", cdev, device);

	bind.iommufd = iommufd;
	if (ioctl(device, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0)
		return fail("VFIO_DEVICE_BIND_IOMMUFD");
	printf("ok VFIO_DEVICE_BIND_IOMMUFD: devid %u\n", bind.out_devid);

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0)
		return fail("IOMMU_IOAS_ALLOC");
	printf("ok IOMMU_IOAS_ALLOC: ioas %u\n", alloc.out_ioas_id);

	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0)
		return fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	/* The kernel returns the ID of the page table it attached (an auto domain). */
	printf("ok VFIO_DEVICE_ATTACH_IOMMUFD_PT: ioas %u, pt %u\n", alloc.out_ioas_id,
	       attach.pt_id);

	buf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return fail("mmap a page");
	memset(buf, 0x5a, page);
	map.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
	map.ioas_id = alloc.out_ioas_id;
	map.user_va = (unsigned long)buf;
	map.length = page;
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &map) < 0)
		return fail("IOMMU_IOAS_MAP");
	printf("ok IOMMU_IOAS_MAP: %ld bytes at iova 0x%llx\n", page,
	       (unsigned long long)map.iova);

	if (ioctl(device, VFIO_DEVICE_GET_INFO, &info) < 0)
		return fail("VFIO_DEVICE_GET_INFO");
	printf("ok VFIO_DEVICE_GET_INFO: flags 0x%x%s, %u regions, %u irqs\n", info.flags,
	       info.flags & VFIO_DEVICE_FLAGS_PCI ? " (pci)" : "", info.num_regions,
	       info.num_irqs);

	if (info.flags & VFIO_DEVICE_FLAGS_PCI) {
		unsigned char c[PCI_CONFIG_IDS];

		reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
		if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0)
			return fail("VFIO_DEVICE_GET_REGION_INFO config");
		if (reg.size < sizeof(c)) {
			errno = EIO;
			return fail("config region too small");
		}
		if (pread(device, c, sizeof(c), reg.offset) != (ssize_t)sizeof(c))
			return fail("read config space");
		printf("ok config space: %llu bytes, id %02x%02x:%02x%02x\n",
		       (unsigned long long)reg.size, c[1], c[0], c[3], c[2]);
	}

	if (hold) {
		printf("holding %s for %u s\n", cdev, hold);
		sleep(hold);
	}
	return 0;
}
