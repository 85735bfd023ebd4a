/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The client of the kernel module vfio_select (generic netlink family
 * "vfio_select", <linux/vfio_select.h>).
 *
 * Every call returns 0 or a positive value on success and a negative errno
 * on failure.  When the kernel refused a request with an extended ack
 * message, vfiod_kernel_errmsg() returns that message verbatim until the
 * next call on the same handle.  Nothing here prints.
 *
 * A device is named by its sysfs path ("/sys/devices/...",
 * "/sys/bus/pci/devices/NAME"), or, when the string does not start with '/',
 * by its PCI name ("0000:00:03.0").  The kernel checks either form itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <linux/vfio_select.h> /* VFIO_SELECT_CMD_*, VFIO_SELECT_F_* */

struct vfiod_kernel;

/* -ENOENT when the family "vfio_select" is not registered (module not loaded). */
int vfiod_kernel_open(struct vfiod_kernel **out);
void vfiod_kernel_close(struct vfiod_kernel *k);

/* The extended ack text of the last failed call, or NULL. */
const char *vfiod_kernel_errmsg(struct vfiod_kernel *k);

struct vfiod_kernel_candidate {
	char driver[64];
	char module[64];
	char alias[128];
	unsigned int rank;	/* 1 = selected */
	uint32_t key;		/* <vfio_select/rank.h> */
	bool tie;
};

#define VFIOD_KERNEL_MAX_CANDIDATES 32

struct vfiod_kernel_match {
	char dev_name[32];
	char modalias[128];	/* "vfio_pci:v..." */
	unsigned int n;
	struct vfiod_kernel_candidate cand[VFIOD_KERNEL_MAX_CANDIDATES];
};

/* MATCH: the ranked candidates, best first.  -E2BIG if they do not fit. */
int vfiod_kernel_match(struct vfiod_kernel *k, const char *syspath, struct vfiod_kernel_match *out);

struct vfiod_kernel_binding {
	char dev_name[32];
	char driver[64];	/* "" when none */
	char prev_driver[64];	/* "" when none or not reported */
	int iommu_group;	/* -1 unknown */
};

/*
 * BIND: driver NULL for the best candidate; modules NULL or a NULL-terminated
 * list of module names for the kernel to load first (it then sets
 * VFIO_SELECT_F_LOAD_MODULES itself); flags VFIO_SELECT_F_*.
 */
int vfiod_kernel_bind(struct vfiod_kernel *k, const char *syspath, const char *driver,
		      const char *const *modules, uint32_t flags, struct vfiod_kernel_binding *out);

/*
 * UNBIND: out->driver is the driver bound after the re-probe, "" if none.
 * flags VFIO_SELECT_F_FORCE: also a device vfio_select did not bind.
 */
int vfiod_kernel_unbind(struct vfiod_kernel *k, const char *syspath, uint32_t flags,
			struct vfiod_kernel_binding *out);

/*
 * GET: one device (syspath) or, with syspath NULL, every device vfio_select
 * bound.  cb is called once per device; a negative return from it stops the
 * walk and is returned.  Returns the number of devices reported.
 */
int vfiod_kernel_get(struct vfiod_kernel *k, const char *syspath,
		     int (*cb)(const struct vfiod_kernel_binding *b, void *userdata),
		     void *userdata);

/* A handle joined to the "events" multicast group. */
int vfiod_kernel_monitor_open(struct vfiod_kernel **out);
/* Its file descriptor, for poll(); readable when an event is queued. */
int vfiod_kernel_monitor_fd(struct vfiod_kernel *k);
/*
 * One event, blocking unless the fd was made non-blocking (-EAGAIN then).
 * *cmd is VFIO_SELECT_CMD_BIND or VFIO_SELECT_CMD_UNBIND.  -ENOBUFS when
 * the socket overran and events were lost.
 */
int vfiod_kernel_monitor_read(struct vfiod_kernel *k, int *cmd, struct vfiod_kernel_binding *out);
