/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vsctl: drive the vfio_select kernel module from a shell, through libvfiod's
 * netlink client (lib/kernel.c).  A test tool, not installed.
 *
 *   vsctl match DEV
 *   vsctl bind DEV [DRIVER] [--module M]... [--load]
 *   vsctl unbind DEV [--force]
 *   vsctl get [DEV]
 *   vsctl monitor [COUNT [TIMEOUT_S]]
 *   vsctl hold GROUP DEV SECONDS
 *
 * --module names a module for BIND to load (repeatable); --load sets the
 * flag LOAD_MODULES by itself (the kernel wants names with it).  hold opens
 * DEV through its group as QEMU does, prints "held", and keeps it open for
 * SECONDS (a VM using the device).
 *
 * DEV is a sysfs path or a PCI name.  Output is key=value lines; on failure
 * the kernel's message (or strerror) goes to stderr and the exit status is 1
 * (2 for a usage error).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "kernel.h"

static int fail(struct vfiod_kernel *k, const char *what, int r)
{
	const char *msg = k ? vfiod_kernel_errmsg(k) : NULL;

	fprintf(stderr, "vsctl: %s: %s (%s)\n", what, msg ? msg : strerror(-r), strerrorname_np(-r));
	return 1;
}

static void print_binding(const char *event, const struct vfiod_kernel_binding *b)
{
	if (event)
		printf("event=%s ", event);
	printf("dev=%s driver=%s prev=%s group=%d\n", b->dev_name, b->driver[0] ? b->driver : "-",
	       b->prev_driver[0] ? b->prev_driver : "-", b->iommu_group);
}

static int print_cb(const struct vfiod_kernel_binding *b, void *userdata)
{
	(void)userdata;
	print_binding(NULL, b);
	return 0;
}

static int monitor(int count, int timeout_s)
{
	struct vfiod_kernel *k;
	struct timespec t0, t;
	int r, seen = 0;

	r = vfiod_kernel_monitor_open(&k);
	if (r < 0)
		return fail(NULL, "monitor", r);
	/* Tell a waiting script that the listener is joined. */
	printf("ready\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (count <= 0 || seen < count) {
		struct pollfd p = { .fd = vfiod_kernel_monitor_fd(k), .events = POLLIN };
		struct vfiod_kernel_binding b;
		int left = -1, cmd;

		if (timeout_s > 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			left = timeout_s * 1000 - (int)((t.tv_sec - t0.tv_sec) * 1000 +
							(t.tv_nsec - t0.tv_nsec) / 1000000);
			if (left <= 0)
				break;
		}
		r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		r = vfiod_kernel_monitor_read(k, &cmd, &b);
		if (r < 0) {
			vfiod_kernel_close(k);
			return fail(NULL, "monitor read", r);
		}
		print_binding(cmd == VFIO_SELECT_CMD_BIND ? "bind" : "unbind", &b);
		fflush(stdout);
		seen++;
	}
	vfiod_kernel_close(k);
	printf("events=%d\n", seen);
	return 0;
}

static int hold(const char *group_id, const char *dev, int seconds)
{
	char path[64];
	int container, group, device;

	snprintf(path, sizeof(path), "/dev/vfio/%s", group_id);
	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	group = open(path, O_RDWR | O_CLOEXEC);
	if (container < 0 || group < 0 ||
	    ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		perror("vsctl: hold: group");
		return 1;
	}
	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, dev);
	if (device < 0) {
		perror("vsctl: hold: device");
		return 1;
	}
	printf("held\n");
	fflush(stdout);
	sleep(seconds);
	close(device);
	close(group);
	close(container);
	return 0;
}

int main(int argc, char **argv)
{
	struct vfiod_kernel *k = NULL;
	const char *verb = argc > 1 ? argv[1] : "";
	int r, rc = 0;

	if (!strcmp(verb, "monitor"))
		return monitor(argc > 2 ? atoi(argv[2]) : 0, argc > 3 ? atoi(argv[3]) : 0);
	if (!strcmp(verb, "hold") && argc == 5)
		return hold(argv[2], argv[3], atoi(argv[4]));

	r = vfiod_kernel_open(&k);
	if (r < 0)
		return fail(NULL, "open", r);

	if (!strcmp(verb, "match") && argc == 3) {
		struct vfiod_kernel_match m;

		r = vfiod_kernel_match(k, argv[2], &m);
		if (r < 0) {
			rc = fail(k, "match", r);
		} else {
			printf("dev=%s\nmodalias=%s\n", m.dev_name, m.modalias);
			for (unsigned int i = 0; i < m.n; i++)
				printf("cand=%u driver=%s module=%s key=0x%06x tie=%d alias=%s\n",
				       m.cand[i].rank, m.cand[i].driver, m.cand[i].module,
				       m.cand[i].key, m.cand[i].tie, m.cand[i].alias);
		}
	} else if (!strcmp(verb, "bind") && argc >= 3) {
		struct vfiod_kernel_binding b;
		const char *driver = NULL, *modules[VFIO_SELECT_MODULES_MAX + 2] = { NULL };
		uint32_t flags = 0;
		int n = 0;

		for (int i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "--load"))
				flags |= VFIO_SELECT_F_LOAD_MODULES;
			else if (!strcmp(argv[i], "--module") && i + 1 < argc &&
				 n <= VFIO_SELECT_MODULES_MAX)
				modules[n++] = argv[++i];
			else
				driver = argv[i];
		}
		r = vfiod_kernel_bind(k, argv[2], driver, modules, flags, &b);
		if (r < 0)
			rc = fail(k, "bind", r);
		else
			print_binding(NULL, &b);
	} else if (!strcmp(verb, "unbind") && (argc == 3 || (argc == 4 && !strcmp(argv[3], "--force")))) {
		struct vfiod_kernel_binding b;

		r = vfiod_kernel_unbind(k, argv[2], argc == 4 ? VFIO_SELECT_F_FORCE : 0, &b);
		if (r < 0)
			rc = fail(k, "unbind", r);
		else
			print_binding(NULL, &b);
	} else if (!strcmp(verb, "get") && argc <= 3) {
		r = vfiod_kernel_get(k, argc == 3 ? argv[2] : NULL, print_cb, NULL);
		if (r < 0)
			rc = fail(k, "get", r);
		else
			printf("count=%d\n", r);
	} else {
		fprintf(stderr, "usage: vsctl match DEV | bind DEV [DRIVER] [--module M]... [--load] |"
				" unbind DEV [--force] | get [DEV] | monitor [COUNT [TIMEOUT_S]] |"
				" hold GROUP DEV SECONDS\n");
		rc = 2;
	}
	vfiod_kernel_close(k);
	return rc;
}
