/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How the host, or a VM, still uses a device (inuse.c).  Found from sysfs and
 * /proc only, never by guessing from device names.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "vfiod.h"

enum {
	/*
	 * What the host does with the device before vfiod takes it: block
	 * devices below it mounted, swap, stacked on or backing a loop device;
	 * network interfaces below it up, with addresses or enslaved; the
	 * console on a framebuffer below it; any device node below it open.
	 */
	INUSE_HOST = 1 << 0,
	/*
	 * Who holds it through VFIO or vhost before vfiod gives it back: the
	 * IOMMU group's node /dev/vfio/N and every node below the device
	 * (/dev/vfio/devices/vfioX, /dev/vhost-vdpa-N) open by a process.
	 */
	INUSE_HOLDERS = 1 << 1,
};

struct inuse {
	json_t *uses;	/* [{"device", "use", "pid"?, "command"?}], one per use */
	json_t *unseen; /* ["what could not be checked, and why"] */
	bool root;	/* holds the root filesystem: never taken, even forced */
	bool udev_busy; /* open in udev's workers only, still after waiting for them */
};

/*
 * Add to U how the device at REALPATH (on disk, under the sysfs root) is
 * used; IOMMU_GROUP (or -1) names its group node for INUSE_HOLDERS.  NAME
 * prefixes each use ("0000:00:04.0: ...") when not NULL: for a group or a
 * PF's VFs, where several devices are checked together.
 */
int inuse_scan(struct vfiod_ctx *ctx, const char *realpath, const char *name, int iommu_group,
	       unsigned int what, struct inuse *u);
void inuse_done(struct inuse *u);
/* Whether anything was found. */
bool inuse_any(const struct inuse *u);

/*
 * Refuse, or with FORCE log and go on.  Returns -ETXTBSY with the message
 * set (SUBJECT, VERB: "create" or "destroy"), or 0.  The root filesystem's
 * device is refused even forced.
 */
int inuse_check(struct vfiod_ctx *ctx, const char *subject, bool destroy, struct inuse *u,
		bool force);

/*
 * One device: scan and check in one call (what: INUSE_HOST or INUSE_HOLDERS).
 * 1 when forced over a use, 0 when there was none.
 */
int inuse_refuse(struct vfiod_ctx *ctx, const char *realpath, const char *subject, int iommu_group,
		 unsigned int what, bool force);

/*
 * For each of N devices (REALPATHS[i], IOMMU_GROUPS[i] or -1), the pid of a
 * process holding its vfio nodes open into PIDS[i] (0: none seen), from one
 * read of /proc for all of them.
 */
int inuse_holders(struct vfiod_ctx *ctx, const char *const *realpaths, const int *iommu_groups,
		  size_t n, pid_t *pids);

/*
 * The host's uses looked at twice: first before any step of an assign, then
 * right before the unbind.  The first look (inuse_refuse() with INUSE_HOST,
 * *KEEP set to what it walked) keeps the nodes found below the device and a
 * uevent socket opened before that walk; the second reuses them unless the kernel
 * told of anything below the device in between (a node added, renamed or
 * removed), or lost a message: then it walks again.  KEEP may be NULL (a
 * fixture tree, no uevent socket): the second look walks again.
 */
struct inuse_nodes;
int inuse_refuse_first(struct vfiod_ctx *ctx, const char *realpath, const char *subject,
		       bool force, struct inuse_nodes **keep);
int inuse_refuse_again(struct vfiod_ctx *ctx, struct inuse_nodes *keep, const char *realpath,
		       const char *subject, bool force);
void inuse_nodes_free(struct inuse_nodes *k);

/* The uses as JSON ({"uses": [...], "unseen": [...]}), for match and results. */
json_t *inuse_json(const struct inuse *u);

/*
 * Wait until no process holds the device's vfio nodes (at most TIMEOUT_MS):
 * a VM lets go of the device first and of its group a moment later, and
 * the host driver cannot probe while the group still has its user.  The
 * milliseconds waited, or -ETIMEDOUT.
 */
int inuse_wait_released(struct vfiod_ctx *ctx, const char *realpath, int iommu_group,
			int timeout_ms);

/* The same for the device at SYSPATH ("/sys/devices/..."), its IOMMU group read from sysfs. */
int inuse_refuse_syspath(struct vfiod_ctx *ctx, const char *syspath, const char *subject,
			 unsigned int what, bool force);

/* How long a forced destroy waits for a holder to let go: under vfiod's OperationTimeoutSec. */
#define INUSE_DESTROY_WAIT_MS 60000

/*
 * Destroy of a device a process may hold (an mdev's group, /dev/vhost-vdpa-N),
 * whose kernel removal would block until the holder lets go: refused at once
 * when held; with FORCE, the holder is waited for here, at most TIMEOUT_MS.
 * 0: nobody held it; 1: held, and let go while we waited (NOTE set to what
 * happened, for the result); -ETIMEDOUT (message set): still held, nothing
 * done.
 */
int inuse_destroy_wait_syspath(struct vfiod_ctx *ctx, const char *syspath, const char *subject,
			       bool force, int timeout_ms, char **note);
