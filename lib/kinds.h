/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kinds of device vfiod makes and gives back, behind vfiod_create() and
 * vfiod_destroy() (ops.c).  Each kind lives in a file of its own and
 * exports one `const struct kind`.
 *
 * Options are a JSON object whose keys are those of options.c; a kind reads
 * the ones it takes and refuses values it cannot use with -EINVAL and a
 * message (vfiod_error()).  Results are JSON objects (or arrays of them)
 * with at least "kind", "name" and "device" (the sysfs path of the device
 * made or given back, or null).
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "vfiod.h"

/* What an operation acts on, known before it starts. */
struct target {
	const char *kind;
	char *device;	 /* sysfs path (under /sys/devices) acted on: the PCI function, the mdev
			    parent, the PF, the vdpa management device; NULL when none */
	char *name;	 /* name of the device made or given back (BDF, UUID, vdpa name, ...) */
	char *key;	 /* operations with equal keys run one after the other */
	bool key_shared; /* ... unless both say so and name different devices: the kernel
			    serialises them itself (mdev creates and removes of one parent) */
	int iommu_group; /* -1 when none or not known yet */
};

void target_done(struct target *t);
/*
 * The key of the hardware at or above SYSPATH: the IOMMU group of the PCI
 * function it is or is under, a VF's PF's; NULL (returning 0) when there is
 * none.  Every kind keys its targets so, by the device it changes.
 */
int hardware_key(struct vfiod_ctx *ctx, const char *syspath, char **ret);
/* Set T's key from T->device, or to FALLBACK when no PCI function is there. */
int target_set_key(struct vfiod_ctx *ctx, struct target *t, const char *fallback);
/* T for the PCI function at PATH: its path, name, IOMMU group and the group's key. Returns 1. */
int target_of_pci(struct vfiod_ctx *ctx, const char *path, struct target *t);

struct kind {
	const char *name;
	/* Option whose presence makes a create (or destroy) one of this kind; NULL for pci. */
	const char *selector;
	/*
	 * Fill T for PATH.  For create, OPTS may be completed (a generated
	 * UUID, say) so that the operation is named before it starts.  For a
	 * destroy without the selector: return 0 when PATH is not of this
	 * kind, 1 when it is.  Otherwise 1, or a negative errno.
	 */
	int (*target)(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
		      struct target *t);
	/* 0 when something was made, 1 when it already was as asked. */
	int (*create)(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret);
	/* -ENOENT when there is nothing of this kind to give back. */
	int (*destroy)(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret);
	/* Append this kind's devices to A (for vfiod_list()); NULL when none. */
	int (*list)(struct vfiod_ctx *ctx, json_t *a);
	/* Drop what this kind keeps of NAME, which is gone (vfiod_forget()); NULL when nothing. */
	int (*forget)(struct vfiod_ctx *ctx, const char *name);
	/*
	 * vfiod_show() of PATH, read only: 0 when PATH is not of this kind, 1
	 * with *RET the whole object (at least "kind", "name" and "device"), or
	 * a negative errno with a message.  NULL for kinds whose devices are
	 * PCI functions (pci, vfs): show.c shows those itself.
	 */
	int (*show)(struct vfiod_ctx *ctx, const char *path, json_t **ret);
};

/* Each kind, in the order a destroy without a selector asks them; NULL after the last. */
const struct kind *kind_at(size_t i);

/* What vfiod's record says it did with NAME (a PCI function's only), or null (show.c). */
json_t *held_json(struct vfiod_ctx *ctx, const char *name);

/*
 * vfiod_device_assign() and vfiod_device_release() for the kinds: the
 * result as JSON, or nothing when RET is NULL.
 */
int pci_assign(struct vfiod_device *dev, const char *driver, unsigned int flags, json_t **ret);
int pci_release(struct vfiod_device *dev, unsigned int flags, json_t **ret);

extern const struct kind kind_pci;  /* pci.c */
extern const struct kind kind_vfs;  /* sriov.c */
extern const struct kind kind_mdev; /* mdev.c */
extern const struct kind kind_vdpa; /* vdpa.c */
extern const struct kind kind_sf;   /* sf.c */

/* Option values, with the type options.c gives them; DEF when absent. */
const char *opt_str(json_t *opts, const char *key, const char *def);
bool opt_bool(json_t *opts, const char *key, bool def);
/* -1 when absent. */
long long opt_uint(json_t *opts, const char *key);
