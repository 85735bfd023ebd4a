/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Open a vhost-vdpa node as a VMM would and ask it what it is:
 *   vhost-vdpa-open /dev/vhost-vdpa-N
 * prints "device_id ID features 0xBITS"; exit 1 when the node does not work.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vhost.h>

int main(int argc, char **argv)
{
	uint64_t features = 0;
	uint32_t id = 0;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: vhost-vdpa-open /dev/vhost-vdpa-N\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (ioctl(fd, VHOST_VDPA_GET_DEVICE_ID, &id) < 0 ||
	    ioctl(fd, VHOST_GET_FEATURES, &features) < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		close(fd);
		return 1;
	}
	printf("device_id %u features 0x%llx\n", id, (unsigned long long)features);
	close(fd);
	return 0;
}
