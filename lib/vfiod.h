/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvfiod: hand a device to VFIO, choosing and loading the most specific
 * vfio driver, and give it back to its host driver exactly as it was.
 *
 * Objects are opaque and reference counted.  Functions that can fail return
 * a negative errno; vfiod_ctx_get_error() then names the problem in words.
 * The library never prints; it logs through the callback it is given.
 * It is synchronous and keeps no threads; a context must not be used by two
 * threads at once.
 */
#ifndef VFIOD_H
#define VFIOD_H

#include <stdarg.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vfiod_ctx;
struct vfiod_device;
struct vfiod_match;

/* Context: where sysfs and the modules are, how decisions are made. */
int vfiod_ctx_new(struct vfiod_ctx **ret);
struct vfiod_ctx *vfiod_ctx_ref(struct vfiod_ctx *ctx);
struct vfiod_ctx *vfiod_ctx_unref(struct vfiod_ctx *ctx);

typedef void (*vfiod_log_fn)(void *userdata, int priority, const char *format, va_list ap);
void vfiod_ctx_set_log_fn(struct vfiod_ctx *ctx, vfiod_log_fn fn, void *userdata);
void vfiod_ctx_set_log_priority(struct vfiod_ctx *ctx, int priority);

/* The message of the last failed call on this context, or NULL. */
const char *vfiod_ctx_get_error(struct vfiod_ctx *ctx);

/* The sysfs root in use ("/sys" unless VFIOD_SYSFS_ROOT says otherwise). */
const char *vfiod_ctx_get_sysfs_root(struct vfiod_ctx *ctx);

/*
 * Which path decides and binds: the kernel module vfio_select when its
 * generic netlink family is present (AUTO), always the user-space path
 * (USER), or the kernel only (KERNEL: fail with -ENOENT when it is absent).
 */
enum vfiod_resolver {
	VFIOD_RESOLVER_AUTO,
	VFIOD_RESOLVER_USER,
	VFIOD_RESOLVER_KERNEL,
};
int vfiod_ctx_set_resolver(struct vfiod_ctx *ctx, enum vfiod_resolver resolver);

/*
 * Called before each step of a multi-step operation with the step's name
 * ("load-module", "record", "set-override", "unbind", "probe", "verify",
 * ...).  A negative return aborts the operation there; what was done is
 * undone.  Lets a caller journal progress and tests inject faults.
 */
typedef int (*vfiod_step_fn)(void *userdata, const char *operation, const char *device,
			     const char *step);
void vfiod_ctx_set_step_fn(struct vfiod_ctx *ctx, vfiod_step_fn fn, void *userdata);

/*
 * Called as an operation over several devices goes (the VFs of a PF, the
 * members of an IOMMU group): DONE of TOTAL are through, DEVICE the one
 * just finished (NULL at the start, when DONE is 0).  It only informs: a
 * progress line, a signal; it cannot stop the operation.
 */
typedef void (*vfiod_progress_fn)(void *userdata, const char *operation, const char *device,
				  unsigned int done, unsigned int total);
void vfiod_ctx_set_progress_fn(struct vfiod_ctx *ctx, vfiod_progress_fn fn, void *userdata);

/*
 * Devices.  PATH may be /sys/devices/..., /sys/bus/pci/devices/NAME, a
 * /sys/class/... link to a device, or a PCI address ("0000:03:00.0",
 * "03:00.0").  It is resolved to one real path under /sys/devices; anything
 * else is refused with -ENOENT (no such device), -ENOTDIR (not a device
 * path) or -ENODEV (not a PCI device).  Across libvfiod, -EINVAL means a bad
 * argument other than the path (an option, a name, a number).
 */
int vfiod_device_new(struct vfiod_ctx *ctx, const char *path, struct vfiod_device **ret);
struct vfiod_device *vfiod_device_ref(struct vfiod_device *dev);
struct vfiod_device *vfiod_device_unref(struct vfiod_device *dev);
const char *vfiod_device_get_syspath(struct vfiod_device *dev);
const char *vfiod_device_get_name(struct vfiod_device *dev);
const char *vfiod_device_get_driver(struct vfiod_device *dev);
int vfiod_device_get_iommu_group(struct vfiod_device *dev);
/* The device as JSON (object), as `vfioctl list` prints it. */
int vfiod_device_to_json(struct vfiod_device *dev, char **ret);

/* Driver choice: every candidate, ranked, with the reason for each. */
int vfiod_device_match(struct vfiod_device *dev, struct vfiod_match **ret);
struct vfiod_match *vfiod_match_ref(struct vfiod_match *m);
struct vfiod_match *vfiod_match_unref(struct vfiod_match *m);
const char *vfiod_match_get_module(struct vfiod_match *m);
const char *vfiod_match_get_driver(struct vfiod_match *m);
const char *vfiod_match_get_resolver(struct vfiod_match *m);
int vfiod_match_to_json(struct vfiod_match *m, char **ret);

/* Assign: every member of the IOMMU group, not only this function. */
#define VFIOD_ASSIGN_GROUP (1u << 0)
/*
 * Assign although the host still uses the device (a mounted file system,
 * an interface that is up, an open node: see vfioctl(8) `force`); the uses
 * are logged.  Without it such a device is refused with -ETXTBSY, nothing
 * changed.  The device holding the root file system is refused even so.
 */
#define VFIOD_ASSIGN_FORCE (1u << 1)
/*
 * Release although a process (a VM) holds the device's vfio nodes open:
 * the kernel then asks it to let go and waits.  Without it such a device
 * is refused at once with -ETXTBSY, naming the process.
 */
#define VFIOD_RELEASE_FORCE (1u << 0)

/*
 * Bind DEV to DRIVER (a driver or module name), or to the best candidate
 * when DRIVER is NULL, loading its module.  *RET receives a JSON object
 * describing the result.  Returns 0 when a change was made, 1 when the
 * device was already assigned to that driver.
 */
int vfiod_device_assign(struct vfiod_device *dev, const char *driver, unsigned int flags,
			char **ret);
/* Give DEV back to the driver it had before vfiod assigned it. */
int vfiod_device_release(struct vfiod_device *dev, unsigned int flags, char **ret);

/*
 * Every kind through one call.  OPTIONS is a JSON object (NULL for none)
 * whose keys are those of org.vfiod1(5): "driver" and "group" assign a PCI
 * function; "type" (with "uuid", "attrs": [{"name": "value"}, ...] in order,
 * a name as often as wanted; an object is read as that list) makes an mdev
 * on the parent PATH;
 * "vfs" sets a PF's VF count ("assign" hands the new VFs to vfio); "vdpa"
 * makes a vdpa device on the management device PATH; "sf" a devlink
 * subfunction on the PF PATH.  Destroy gives back what PATH names (a PCI
 * function, an mdev UUID, a vdpa device) or, with "vfs" or "sf", the PF's
 * VFs or subfunction.  *RET receives the result as JSON.  Returns 0 when a
 * change was made, 1 when there was nothing to do.
 */
int vfiod_create(struct vfiod_ctx *ctx, const char *path, const char *options, char **ret);
int vfiod_destroy(struct vfiod_ctx *ctx, const char *path, const char *options, char **ret);
/*
 * What vfiod_create() (or, with DESTROY, vfiod_destroy()) would act on,
 * without acting: {"kind", "device", "name", "key", "key_shared", "iommu_group",
 * "options"}; operations with equal "key" must not run at once, but for
 * those with "key_shared" and different names.  "options"
 * is OPTIONS completed (a generated mdev UUID, say); pass it to the call.
 */
int vfiod_target(struct vfiod_ctx *ctx, const char *path, const char *options, bool destroy,
		 char **ret);

/*
 * One operation resolved once, run later (possibly in another thread, one
 * at a time with anything else on CTX).  vfiod_op_new() reads what
 * vfiod_target() reads and fails the same way; the getters then say what
 * it acts on without reading anything; vfiod_op_run() does what
 * vfiod_create() (or, with VFIOD_OP_DESTROY, vfiod_destroy()) would, with
 * the completed options, and returns as it does.  The key is that of the
 * hardware the operation changes: the IOMMU group of the PCI function the
 * device is, or is on or under (a VF's PF, an mdev's parent, a
 * subfunction's PF, a vdpa device's parent function), so that operations
 * with equal keys never run at once, but for those whose key is shared.
 * The op holds a reference on CTX.
 */
struct vfiod_op;
#define VFIOD_OP_DESTROY (1u << 0)
int vfiod_op_new(struct vfiod_ctx *ctx, const char *path, const char *options,
		 unsigned int flags, struct vfiod_op **ret);
struct vfiod_op *vfiod_op_ref(struct vfiod_op *op);
struct vfiod_op *vfiod_op_unref(struct vfiod_op *op);
struct vfiod_ctx *vfiod_op_get_ctx(struct vfiod_op *op);
const char *vfiod_op_get_kind(struct vfiod_op *op);
/* The sysfs path acted on (the function, the parent, the PF), or NULL. */
const char *vfiod_op_get_device(struct vfiod_op *op);
/* The name of what is made or given back (BDF, UUID, vdpa name, ...). */
const char *vfiod_op_get_name(struct vfiod_op *op);
const char *vfiod_op_get_key(struct vfiod_op *op);
/*
 * 1 when the operation may run beside others of its key that share it too,
 * as long as they name different devices: the kernel serialises them itself
 * (the creates and removes of one mdev parent's mdevs); 0 when it needs its
 * key alone (anything that changes the hardware itself).
 */
int vfiod_op_get_key_shared(struct vfiod_op *op);
int vfiod_op_get_iommu_group(struct vfiod_op *op);
/* The options, completed (a generated mdev UUID, say), as a JSON object. */
int vfiod_op_get_options(struct vfiod_op *op, char **ret);
/* A create's undo, {"path", "options"} for the destroy; *RET NULL for a destroy. */
int vfiod_op_get_undo(struct vfiod_op *op, char **ret);
int vfiod_op_run(struct vfiod_op *op, char **ret);

/*
 * Bring a context that has served before up to date with the system:
 * module indexes and configuration reloaded when they changed on disk,
 * vfio_select looked for again when it came or went.  Cheap when nothing
 * changed (a few stats); a long-lived program calls it before each use
 * instead of making a context each time.
 */
int vfiod_ctx_revalidate(struct vfiod_ctx *ctx);

/* 1 when libvfiod keeps a record of NAME (it changed the device), 0 when not. */
int vfiod_recorded(struct vfiod_ctx *ctx, const char *name);

/*
 * The mdev types a parent offers, as a JSON array of {"name", "pretty_name",
 * "device_api", "available_instances", "description", "devices"}.  PATH is
 * the parent's sysfs path, PCI address or name under /sys/class/mdev_bus.
 */
int vfiod_mdev_types(struct vfiod_ctx *ctx, const char *path, char **ret);
/*
 * mdevctl's persistent definitions, DIR/<parent>/<uuid> (DIR NULL:
 * $VFIOD_MDEVCTL_DIR, else /etc/mdevctl.d), as a JSON array of {"uuid",
 * "parent", "parent_path", "type", "start", "attrs" (as the file has them:
 * [{"name": "value"}, ...]), "source", "mtime_ns" (the file's modification
 * time)}.  Files are opened below DIR, never through a symbolic link.  A
 * file that cannot be read as a definition, or whose UUID an earlier file
 * has (under another parent, or in another case), is an entry with "error"
 * saying why, never quoting the file.
 */
int vfiod_mdevctl_read(struct vfiod_ctx *ctx, const char *dir, char **ret);
/* The vdpa management devices and what they support, as a JSON array. */
int vfiod_vdpa_mgmtdevs(struct vfiod_ctx *ctx, char **ret);

/*
 * NAME (a PCI function, or a PF whose VFs vfiod made) has gone away, with
 * nothing to give back: drop what libvfiod keeps of it.  -EBUSY while it
 * is still there.
 */
int vfiod_forget(struct vfiod_ctx *ctx, const char *name);

/*
 * The machine's IOMMU groups (WHICH NULL or ""), or one: WHICH a group
 * number ("7") or a device path, as a JSON array of {"group", "viable"
 * (vfio can open it as it stands), "in_the_way" ([{"name", "driver"}]: the
 * members on a host driver), "devices": [{"name", "device", "subsystem",
 * "driver", "ids", "description", "class", "bridge" (a pcieport: stays with
 * the host) or "vfio_driver" ({"module", "driver"} match would choose, or
 * null)}]}.  Reads only.
 */
int vfiod_groups(struct vfiod_ctx *ctx, const char *which, char **ret);

/*
 * The PCI function at PATH in full, as a JSON object: what
 * vfiod_device_to_json() says (ids, description, driver, driver_override,
 * IOMMU group, SR-IOV counts and VFs, vfio nodes), and "assigned" (what
 * vfiod's record says it did: driver, module, previous_driver,
 * previous_override, resolver, since_usec; null when it holds nothing),
 * "group" (its IOMMU group as vfiod_groups() has it), "would_get" (the
 * vfio driver match would choose: module, driver, alias; null: none),
 * "in_use" (how the host uses it, as match says) and "mdev_types" (what it
 * offers as an mdev parent, as vfiod_mdev_types(); null when none).  Reads only.
 */
int vfiod_show(struct vfiod_ctx *ctx, const char *path, char **ret);

/* The devices vfiod made or assigned, of every kind, as a JSON array. */
int vfiod_list(struct vfiod_ctx *ctx, char **ret);

/* "1.0" */
const char *vfiod_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VFIOD_H */
