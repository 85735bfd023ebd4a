/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Assign a PCI function to a vfio driver and give it back.
 *
 * assign: load-module, check the IOMMU group, record, set-override, unbind,
 * probe, verify.  Each step has its undo; a failure undoes what was done, in
 * reverse, and the device is back on the driver it had.
 * release: unbind, restore-override, probe, verify, forget.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "claim.h"
#include "internal.h"
#include "inuse.h"
#include "kinds.h"
#include "kernel.h"

#define OP_ASSIGN "assign"
#define OP_RELEASE "release"

/* How long a forced release waits for the holder to let go of the group too. */
#define HELD_RELEASE_MS 5000

static int probe(struct vfiod_device *dev)
{
	_cleanup_close_ int fd = root_open(dev->ctx, SYSFS_PCI_DRIVERS_PROBE, O_WRONLY | O_TRUNC);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = write(fd, dev->name, strlen(dev->name));
	/* No driver taking the device is not an error of the write. */
	return n < 0 && errno != ENODEV ? negative_errno() : 0;
}

static int set_override(struct vfiod_device *dev, const char *driver)
{
	/* A lone newline clears the override. */
	return write_attr(dev->dirfd, ATTR_DRIVER_OVERRIDE, driver ? driver : "\n");
}

static int unbind(struct vfiod_device *dev)
{
	int r = write_attr(dev->dirfd, ATTR_DRIVER_UNBIND, dev->name);

	return r == -ENOENT ? 0 : r; /* no driver: nothing to unbind */
}

/*
 * The bind is synchronous for drivers_probe, but a driver may defer its
 * probe; give it a bounded moment before calling the bind failed.  WANT
 * NULL: any driver.
 */
static int wait_driver(struct vfiod_device *dev, const char *want)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	int r;

	for (int i = 0; i < 200; i++) {
		r = device_refresh(dev);
		if (r < 0)
			return r;
		if (want ? dev->driver && streq(dev->driver, want) : dev->driver != NULL)
			return 0;
		nanosleep(&tick, NULL);
	}
	return -ENXIO;
}

static int group_members(struct vfiod_device *dev, char ***ret)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	char **v = NULL;
	size_t n = 0;
	struct dirent *de;
	int r;

	if (asprintf(&p, "%s/%d/devices", SYSFS_IOMMU_GROUPS, dev->iommu_group) < 0)
		return -ENOMEM;
	r = dir_from_fd(root_open(dev->ctx, p, O_RDONLY | O_DIRECTORY), &d);
	if (r < 0)
		return r;
	while ((de = readdir(d))) {
		char **nv;

		if (de->d_name[0] == '.')
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		v[n] = strdup(de->d_name);
		if (!v[n])
			break;
		v[++n] = NULL;
	}
	if (!v)
		v = calloc(1, sizeof(*v));
	*ret = v;
	return v ? 0 : -ENOMEM;
}

bool driver_shares_group(struct vfiod_ctx *ctx, const char *driver)
{
	return !driver || streq(driver, DRIVER_PCI_STUB) || streq(driver, DRIVER_PCIEPORT) ||
	       driver_is_vfio(ctx, driver);
}

static int member_driver(struct vfiod_ctx *ctx, const char *name, char **ret)
{
	int r;

	*ret = NULL;
	r = root_read_link(ctx, SYSFS_PCI_DEVICES, name, ATTR_DRIVER, ret);
	return r == -ENOENT ? 0 : r; /* unbound: *ret stays NULL */
}

/*
 * The kernel lets vfio open a group only when every member is unbound, on
 * pci-stub, pcieport or a vfio driver.  Check before changing anything, and
 * name every member in the way.
 */
static int group_check(struct vfiod_device *dev, bool whole_group)
{
	struct vfiod_ctx *ctx = dev->ctx;
	char **members = NULL, msg[768] = "";
	size_t len = 0;
	int r, bad = 0;

	if (dev->iommu_group < 0)
		return vfiod_error(ctx, -EOPNOTSUPP,
				   "%s has no IOMMU group: enable the IOMMU (intel_iommu=on or "
				   "amd_iommu=on) to use vfio",
				   dev->syspath);
	r = group_members(dev, &members);
	if (r < 0)
		return vfiod_error(ctx, r, "IOMMU group %d: cannot list its devices: %s",
				   dev->iommu_group, strerror(-r));
	for (char **m = members; *m; m++) {
		_cleanup_free_ char *drv = NULL;

		if (streq(*m, dev->name))
			continue;
		(void)member_driver(ctx, *m, &drv);
		if (driver_shares_group(ctx, drv) || whole_group)
			continue;
		bad++;
		len += snprintf(msg + len, len < sizeof(msg) ? sizeof(msg) - len : 0, "%s%s on %s",
				bad > 1 ? ", " : "", *m, drv);
	}
	strv_free(members);
	if (bad)
		return vfiod_error(ctx, -EBUSY,
				   "IOMMU group %d is not viable: %s; every device of the group "
				   "must be unbound, on pci-stub or on a vfio driver "
				   "(add `group` to assign the whole group)",
				   dev->iommu_group, msg);
	return 0;
}

/* Resolve DRIVER or the best candidate to a loaded driver name and its module. */
static int choose_driver(struct vfiod_device *dev, const char *forced, char **driver,
			 char **module)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct vfiod_match *m = NULL;
	const char *mod = NULL;
	int r;

	r = vfiod_device_match(dev, &m);
	if (r < 0)
		return r;
	if (forced) {
		char norm[256];

		snprintf(norm, sizeof(norm), "%s", forced);
		for (char *p = norm; *p; p++)
			if (*p == '-')
				*p = '_';
		for (size_t i = 0; i < m->n_cand && !mod; i++) {
			struct candidate *c = &m->cand[i];

			if (streq(c->module, norm) || (c->driver && streq(c->driver, forced)))
				mod = c->module;
		}
		if (!mod) {
			vfiod_match_unref(m);
			return vfiod_error(ctx, -EINVAL,
					   "%s: driver %s does not claim this device (no vfio_pci: "
					   "alias of its module matches %s); see `vfioctl match`",
					   dev->syspath, forced, dev->modalias);
		}
	} else if (m->selected) {
		mod = m->selected->module;
	} else {
		vfiod_match_unref(m);
		return vfiod_error(ctx, -ENOENT,
				   "%s: no vfio driver claims this device (is vfio-pci installed? "
				   "see `vfioctl match`)",
				   dev->syspath);
	}
	*module = strdup(mod);
	vfiod_match_unref(m);
	if (!*module)
		return -ENOMEM;

	r = vfiod_step(ctx, OP_ASSIGN, dev->name, "load-module");
	if (r < 0)
		return r;
	r = module_load(ctx, *module);
	if (r < 0)
		return r;
	r = module_driver(ctx, *module, driver);
	if (r < 0)
		return vfiod_error(ctx, r, "module %s is loaded but registers no PCI driver",
				   *module);
	return 0;
}

/* The device after the operation, into *RET (nothing when RET is NULL). */
static int result_json(struct vfiod_device *dev, const char *key, bool value,
		       const struct record *rec, json_t **ret)
{
	json_t *o;
	int r;

	if (!ret)
		return 0;
	r = device_refresh(dev);
	if (r < 0)
		return r;
	o = device_json(dev);
	if (!o)
		return -ENOMEM;
	json_object_set_new(o, key, json_boolean(value));
	if (rec) {
		json_object_set_new(o, "previous_driver",
				    rec->previous_driver ? json_string(rec->previous_driver)
							 : json_null());
		json_object_set_new(o, "claimed", json_boolean(rec->claimed));
		if (rec->resolver)
			json_object_set_new(o, "resolver", json_string(rec->resolver));
	}
	*ret = o;
	return 0;
}

/* The override the device had: a claimed one goes back to being held. */
static const char *override_before(const struct record *rec)
{
	return rec->claimed ? CLAIM_OVERRIDE : rec->previous_override;
}

/* Put the device back as the record says it was. Best effort: it is the undo. */
static void rollback(struct vfiod_device *dev, const struct record *rec)
{
	(void)device_refresh(dev);
	if (dev->driver && (!rec->previous_driver || !streq(dev->driver, rec->previous_driver)))
		(void)unbind(dev);
	(void)set_override(dev, override_before(rec));
	(void)probe(dev);
	(void)record_remove(dev->ctx, dev->name);
	(void)device_refresh(dev);
	vfiod_log(dev->ctx, LOG_WARNING, "%s: rolled back, now on %s", dev->syspath,
		  dev->driver ? dev->driver : "no driver");
}

/* Before any change: what the device has now, so that it can be restored. */
static int step_record(struct vfiod_device *dev, const struct record *rec)
{
	int r = vfiod_step(dev->ctx, OP_ASSIGN, dev->name, "record");

	return r < 0 ? r : record_save(dev->ctx, rec);
}

static int assign_kernel(struct vfiod_device *dev, struct vfiod_kernel *k, const char *forced,
			 struct record *rec)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct vfiod_kernel_binding b;
	char **modules = NULL;
	int r;

	rec->resolver = strdup("kernel");
	r = step_record(dev, rec);
	if (r < 0)
		return r;
	r = vfiod_step(ctx, OP_ASSIGN, dev->name, "bind");
	/* The kernel loads by name what libkmod says is missing (the alias is too long). */
	if (r >= 0)
		r = match_unloaded_modules(dev, &modules);
	if (r >= 0)
		r = vfiod_kernel_bind(k, dev->syspath, forced, (const char *const *)modules, 0, &b);
	for (size_t i = 0; modules && modules[i]; i++)
		free(modules[i]);
	free(modules);
	if (r < 0) {
		const char *msg = vfiod_kernel_errmsg(k);

		if (msg)
			vfiod_error(ctx, r, "%s: %s", dev->syspath, msg);
		else if (!vfiod_ctx_get_error(ctx))
			vfiod_error(ctx, r, "%s: vfio_select BIND failed: %s", dev->syspath,
				    strerror(-r));
		(void)record_remove(ctx, dev->name);
		return r;
	}
	free(rec->driver);
	rec->driver = strdup(b.driver);
	(void)driver_module(ctx, b.driver, &rec->module);
	return record_save(ctx, rec);
}

/* The kernel-facing steps of a user-space assign, in order; rollback() undoes them. */
static int step_set_override(struct vfiod_device *dev, const struct record *rec)
{
	int r = set_override(dev, rec->driver);

	if (r < 0)
		return vfiod_error(dev->ctx, r, "%s: cannot set driver_override: %s", dev->syspath,
				   strerror(-r));
	return 0;
}

static int step_unbind(struct vfiod_device *dev, _unused_ const struct record *rec)
{
	int r;

	/*
	 * Looked at again right before the host driver lets go: what the host
	 * began to use since the first look is found here.  What starts between
	 * this look and the unbind itself is not (vfioctl(8), `force`).  The
	 * first look's nodes are reused unless a uevent told of a change below
	 * the device since: nothing we hold stops the host driver from adding
	 * a node (a partition, a namespace, an interface) meanwhile.
	 */
	r = inuse_refuse_again(dev->ctx, dev->inuse_first, dev->realpath, dev->syspath,
			       dev->force);
	if (r < 0)
		return r;
	r = unbind(dev);
	if (r < 0)
		return vfiod_error(dev->ctx, r, "%s: cannot unbind %s: %s", dev->syspath,
				   dev->driver, strerror(-r));
	return 0;
}

static int step_probe(struct vfiod_device *dev, _unused_ const struct record *rec)
{
	int r = probe(dev);

	if (r < 0)
		return vfiod_error(dev->ctx, r, "%s: probe failed: %s", dev->syspath, strerror(-r));
	return 0;
}

static int step_verify(struct vfiod_device *dev, const struct record *rec)
{
	if (wait_driver(dev, rec->driver) < 0)
		return vfiod_error(dev->ctx, -EIO, "%s: %s did not bind (now %s); see dmesg",
				   dev->syspath, rec->driver, dev->driver ? dev->driver : "unbound");
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct vfiod_device *dev, const struct record *rec);
} assign_steps[] = {
	{ "set-override", step_set_override },
	{ "unbind", step_unbind },
	{ "probe", step_probe },
	{ "verify", step_verify },
};

static int assign_user(struct vfiod_device *dev, const char *forced, struct record *rec)
{
	struct vfiod_ctx *ctx = dev->ctx;
	int r;

	rec->resolver = strdup("user space");
	r = choose_driver(dev, forced, &rec->driver, &rec->module);
	if (r < 0)
		return r;
	if (dev->driver && streq(dev->driver, rec->driver))
		return 1;

	r = step_record(dev, rec);
	if (r < 0)
		return r;

	for (size_t i = 0; i < ARRAY_SIZE(assign_steps); i++) {
		r = vfiod_step(ctx, OP_ASSIGN, dev->name, assign_steps[i].name);
		if (r >= 0)
			r = assign_steps[i].run(dev, rec);
		if (r < 0) {
			rollback(dev, rec);
			return r;
		}
	}
	return 0;
}

static int assign_looked(struct vfiod_device *dev, const char *forced, bool whole_group,
			 json_t **ret);

static int assign_one(struct vfiod_device *dev, const char *forced, bool whole_group,
		      json_t **ret)
{
	struct vfiod_ctx *ctx = dev->ctx;
	int r;

	r = device_refresh(dev);
	if (r < 0)
		return vfiod_error(ctx, r, "%s: %s", dev->syspath, strerror(-r));
	/*
	 * Before any step: nothing written, no module loaded.  A device on vfio
	 * already is the VM's, not the host's: a holder there is no host use.
	 */
	if (!driver_is_vfio(ctx, dev->driver)) {
		r = inuse_refuse_first(ctx, dev->realpath, dev->syspath, dev->force,
				       &dev->inuse_first);
		if (r < 0)
			return r;
	}
	r = assign_looked(dev, forced, whole_group, ret);
	inuse_nodes_free(dev->inuse_first);
	dev->inuse_first = NULL;
	return r;
}

static int assign_looked(struct vfiod_device *dev, const char *forced, bool whole_group,
			 json_t **ret)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct record rec = {};
	struct vfiod_kernel *k;
	int r;

	r = group_check(dev, whole_group);
	if (r < 0)
		return r;
	r = vfiod_ctx_kernel(ctx, &k);
	if (r < 0)
		return r;

	/*
	 * Already ours: assigning again (to the same driver, or forcing another)
	 * keeps the record of what the device had before vfiod touched it.
	 */
	if (record_load(ctx, dev->name, &rec) >= 0 && dev->driver && rec.driver &&
	    streq(dev->driver, rec.driver)) {
		if (!forced || streq(forced, dev->driver) ||
		    (rec.module && streq(forced, rec.module))) {
			r = result_json(dev, "changed", false, &rec, ret);
			record_done(&rec);
			return r < 0 ? r : 1;
		}
		free(rec.driver);
		free(rec.module);
		free(rec.resolver);
		rec.driver = rec.module = rec.resolver = NULL;
	} else {
		record_done(&rec);
		rec.syspath = strdup(dev->syspath);
		rec.name = strdup(dev->name);
		rec.previous_driver = dev->driver ? strdup(dev->driver) : NULL;
		/*
		 * Held by a claim: it never had a host driver, and the placeholder
		 * is nothing to restore; destroy gives it its host driver instead.
		 */
		rec.claimed = !dev->driver && str_eq(dev->driver_override, CLAIM_OVERRIDE);
		rec.previous_override = dev->driver_override && !streq(dev->driver_override,
								       CLAIM_OVERRIDE)
						? strdup(dev->driver_override)
						: NULL;
		if (!rec.syspath || !rec.name || (dev->driver && !rec.previous_driver)) {
			record_done(&rec);
			return -ENOMEM;
		}
		if (rec.previous_driver && driver_is_vfio(ctx, rec.previous_driver)) {
			/* Bound to vfio by someone else: there is no host driver to restore. */
			free(rec.previous_driver);
			rec.previous_driver = NULL;
		}
	}

	r = k ? assign_kernel(dev, k, forced, &rec) : assign_user(dev, forced, &rec);
	if (r >= 0) {
		vfiod_log(ctx, LOG_INFO, "%s: %s", dev->syspath,
			  r == 1 ? "already assigned" : "assigned");
		int q = result_json(dev, "changed", r == 0, r == 1 ? NULL : &rec, ret);

		if (q < 0)
			r = q;
	}
	record_done(&rec);
	return r;
}

/* A member of a group that stays on the host: bridges are not assigned. */
static bool is_bridge(struct vfiod_ctx *ctx, const char *member)
{
	_cleanup_free_ char *drv = NULL;

	(void)member_driver(ctx, member, &drv);
	return drv && streq(drv, DRIVER_PCIEPORT);
}

/* Every member of the group (but bridges) looked at before any is taken. */
static int group_inuse(struct vfiod_device *dev, char **members)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct inuse u = {};
	char subject[64];
	int r = 0;

	for (char **m = members; *m && r >= 0; m++) {
		_cleanup_free_ char *drv = NULL;
		struct vfiod_device *member = NULL;

		(void)member_driver(ctx, *m, &drv);
		if (drv && (streq(drv, DRIVER_PCIEPORT) || driver_is_vfio(ctx, drv)))
			continue;
		r = vfiod_device_new(ctx, *m, &member);
		if (r >= 0)
			r = inuse_scan(ctx, member->realpath, member->name, -1, INUSE_HOST, &u);
		vfiod_device_unref(member);
	}
	snprintf(subject, sizeof(subject), "IOMMU group %d", dev->iommu_group);
	if (r >= 0)
		r = inuse_check(ctx, subject, false, &u, dev->force);
	inuse_done(&u);
	return r;
}

int pci_assign(struct vfiod_device *dev, const char *driver, unsigned int flags, json_t **ret)
{
	struct vfiod_ctx *ctx = dev->ctx;
	char **members = NULL;
	unsigned int total = 0, finished = 0;
	json_t *all;
	int r, changed = 1;

	ctx->error[0] = '\0';
	if (flags & ~(VFIOD_ASSIGN_GROUP | VFIOD_ASSIGN_FORCE))
		return vfiod_error(ctx, -EINVAL, "unknown assign flags 0x%x", flags);
	dev->force = flags & VFIOD_ASSIGN_FORCE;
	if (!(flags & VFIOD_ASSIGN_GROUP))
		return assign_one(dev, driver, false, ret);

	/* The whole group: every member but bridges, each to its own best driver. */
	r = device_refresh(dev);
	if (r < 0)
		return r;
	if (dev->iommu_group < 0)
		return group_check(dev, true);
	r = group_members(dev, &members);
	if (r < 0)
		return vfiod_error(ctx, r, "IOMMU group %d: %s", dev->iommu_group, strerror(-r));
	r = group_inuse(dev, members);
	if (r < 0) {
		strv_free(members);
		return r;
	}
	all = json_array();
	for (char **m = members; *m; m++)
		total += !is_bridge(ctx, *m);
	vfiod_progress(ctx, OP_ASSIGN, NULL, 0, total);
	for (char **m = members; *m && all; m++) {
		struct vfiod_device *member = NULL;
		json_t *o = NULL;

		if (is_bridge(ctx, *m))
			continue;
		r = vfiod_device_new(ctx, *m, &member);
		if (r >= 0) {
			member->force = dev->force;
			r = assign_one(member, streq(*m, dev->name) ? driver : NULL, true,
				       ret ? &o : NULL);
		}
		if (r == 0)
			changed = 0;
		if (r >= 0 && o)
			json_array_append_new(all, o);
		vfiod_device_unref(member);
		if (r < 0)
			break; /* the members done stay assigned: each has its record */
		vfiod_progress(ctx, OP_ASSIGN, *m, ++finished, total);
	}
	strv_free(members);
	if (r < 0) {
		json_decref(all);
		return r;
	}
	if (ret)
		*ret = all;
	else
		json_decref(all);
	return changed;
}

_public_ int vfiod_device_assign(struct vfiod_device *dev, const char *driver, unsigned int flags,
				 char **ret)
{
	json_t *o = NULL;
	int r = pci_assign(dev, driver, flags, &o);

	if (r >= 0) {
		int q = json_dump_to(o, ret);

		if (q < 0)
			return q;
	}
	return r;
}

static int release_kernel(struct vfiod_device *dev, struct vfiod_kernel *k)
{
	struct vfiod_kernel_binding b;
	/*
	 * vfiod decides itself what it gives back (its record, the in-use
	 * checks), as the user-space path does: vfio_select's own record may be
	 * gone (the module was reloaded) or never made (a device bound by hand).
	 */
	int r = vfiod_kernel_unbind(k, dev->syspath, VFIO_SELECT_F_FORCE, &b);

	if (r < 0) {
		const char *msg = vfiod_kernel_errmsg(k);

		return vfiod_error(dev->ctx, r, "%s: %s", dev->syspath,
				   msg ? msg : strerror(-r));
	}
	return 0;
}

/*
 * After the release of a claimed device: vfio_select restores the override
 * it found (the claim's placeholder), which would keep the host driver off.
 */
static int release_claimed(struct vfiod_device *dev)
{
	int r = device_refresh(dev);

	if (r < 0 || !str_eq(dev->driver_override, CLAIM_OVERRIDE))
		return r;
	r = set_override(dev, NULL);
	if (r < 0)
		return vfiod_error(dev->ctx, r, "%s: cannot clear the claim's driver_override: %s",
				   dev->syspath, strerror(-r));
	return probe(dev);
}

static int release_user(struct vfiod_device *dev, const struct record *rec)
{
	struct vfiod_ctx *ctx = dev->ctx;
	int r;

	r = vfiod_step(ctx, OP_RELEASE, dev->name, "unbind");
	if (r < 0)
		return r;
	if (dev->driver) {
		r = unbind(dev);
		if (r < 0)
			return vfiod_error(ctx, r, "%s: cannot unbind %s: %s", dev->syspath,
					   dev->driver, strerror(-r));
	}
	r = vfiod_step(ctx, OP_RELEASE, dev->name, "restore-override");
	if (r >= 0)
		r = set_override(dev, rec ? rec->previous_override : NULL);
	if (r < 0) {
		(void)probe(dev);
		return vfiod_error(ctx, r, "%s: cannot clear driver_override: %s", dev->syspath,
				   strerror(-r));
	}
	r = vfiod_step(ctx, OP_RELEASE, dev->name, "probe");
	if (r < 0)
		return r;
	if (dev->held)
		(void)inuse_wait_released(ctx, dev->realpath, dev->iommu_group, HELD_RELEASE_MS);
	r = probe(dev);
	/*
	 * A holder that exits is gone from /proc before the kernel has run the
	 * last close of its group file: for that moment the group is still
	 * claimed, the host driver's DMA set-up is refused with EBUSY, and
	 * drivers_probe reports it as EINVAL.  Nothing signals the end of it.
	 */
	for (int waited = 0; r == -EINVAL && dev->held && waited < HELD_RELEASE_MS; waited += 20) {
		usleep(20 * 1000);
		r = probe(dev);
	}
	if (r < 0)
		return vfiod_error(ctx, r, "%s: released, but the probe failed: %s", dev->syspath,
				   strerror(-r));
	return 0;
}

int pci_release(struct vfiod_device *dev, unsigned int flags, json_t **ret)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct record rec = {};
	struct vfiod_kernel *k;
	bool have_rec;
	int r;

	ctx->error[0] = '\0';
	if (flags & ~VFIOD_RELEASE_FORCE)
		return vfiod_error(ctx, -EINVAL, "unknown release flags 0x%x", flags);
	r = device_refresh(dev);
	if (r < 0)
		return r;
	r = record_load(ctx, dev->name, &rec);
	if (r < 0 && r != -ENOENT)
		return r;
	have_rec = r >= 0;
	if (!driver_is_vfio(ctx, dev->driver)) {
		if (have_rec && !dev->driver && rec.previous_driver) {
			/* Half-released (an interrupted release): finish it. */
		} else if (have_rec) {
			/*
			 * On its host driver (or unbound, as it was) with our record: an
			 * assign stopped before unbind. Only the override may be left,
			 * and the next probe would hand the device to vfio: restore it.
			 */
			r = vfiod_step(ctx, OP_RELEASE, dev->name, "restore-override");
			if (r >= 0)
				r = set_override(dev, override_before(&rec));
			if (r >= 0)
				r = record_remove(ctx, dev->name);
			if (r >= 0)
				r = result_json(dev, "restored", true, &rec, ret);
			record_done(&rec);
			return r;
		} else {
			return vfiod_error(ctx, -ENOENT, "%s is not assigned to a vfio driver (%s)",
					   dev->syspath,
					   dev->driver ? dev->driver : "no driver is bound");
		}
	}
	/* Claimed before any host driver: the host's module is loaded first, then probed. */
	if (have_rec && rec.claimed)
		(void)module_load_host(dev);
	/* The host driver's module may have been unloaded meanwhile. */
	if (have_rec && rec.previous_driver) {
		_cleanup_free_ char *p = NULL;
		_cleanup_close_ int fd = -1;

		if (asprintf(&p, "%s/%s", SYSFS_PCI_DRIVERS, rec.previous_driver) >= 0)
			fd = root_open(ctx, p, O_RDONLY | O_DIRECTORY);
		if (fd == -ENOENT)
			(void)module_load(ctx, rec.previous_driver);
	}

	/* A VM holding it would keep the kernel's unbind waiting: say who, at once. */
	r = inuse_refuse(ctx, dev->realpath, dev->syspath, dev->iommu_group, INUSE_HOLDERS,
			 flags & VFIOD_RELEASE_FORCE);
	dev->held = r == 1;
	if (r >= 0)
		r = vfiod_ctx_kernel(ctx, &k);
	if (r >= 0)
		r = k ? release_kernel(dev, k) : release_user(dev, have_rec ? &rec : NULL);
	if (r < 0) {
		record_done(&rec);
		return r;
	}
	if (have_rec && rec.claimed)
		r = release_claimed(dev);
	if (r >= 0)
		r = vfiod_step(ctx, OP_RELEASE, dev->name, "verify");
	if (r >= 0 && have_rec && rec.claimed) {
		r = wait_driver(dev, NULL);
		if (r < 0)
			vfiod_log(ctx, LOG_NOTICE, "%s: claimed before any host driver, and no "
				  "host driver took it now either", dev->syspath);
		r = 0;
	} else if (r >= 0 && have_rec && rec.previous_driver) {
		r = wait_driver(dev, rec.previous_driver);
		if (r < 0)
			r = vfiod_error(ctx, -EIO, "%s: released, but %s did not bind again (now %s)",
					dev->syspath, rec.previous_driver,
					dev->driver ? dev->driver : "unbound");
	} else if (r >= 0) {
		/*
		 * It had no driver before: staying unbound is the right outcome,
		 * and the usual one (a VF whose PF probes no VFs is never probed),
		 * so nothing is waited for; what is bound now is reported.  A
		 * 100 ms wait here once was most of a VF's release.
		 */
		(void)device_refresh(dev);
	}
	if (r >= 0 && have_rec)
		(void)record_remove(ctx, dev->name);
	if (r >= 0) {
		vfiod_log(ctx, LOG_INFO, "%s: released to %s", dev->syspath,
			  dev->driver ? dev->driver : "no driver");
		r = result_json(dev, "restored", !have_rec || !rec.previous_driver ||
					       (dev->driver && streq(dev->driver, rec.previous_driver)),
				have_rec ? &rec : NULL, ret);
	}
	record_done(&rec);
	return r;
}

_public_ int vfiod_device_release(struct vfiod_device *dev, unsigned int flags, char **ret)
{
	json_t *o = NULL;
	int r = pci_release(dev, flags, &o);

	if (r >= 0) {
		int q = json_dump_to(o, ret);

		if (q < 0)
			return q;
	}
	return r;
}

static int pci_list(struct vfiod_ctx *ctx, json_t *a)
{
	char **names = NULL;
	int r;

	r = record_list(ctx, &names);
	if (r < 0)
		return vfiod_error(ctx, r, "cannot read %s: %s", ctx->runtime_dir, strerror(-r));
	for (char **n = names; *n; n++) {
		struct vfiod_device *dev = NULL;
		struct record rec;
		json_t *o;

		r = record_load(ctx, *n, &rec);
		if (r < 0) {
			if (r != -ENOENT)
				vfiod_log(ctx, LOG_WARNING, "ignoring it in the list: %s", ctx->error);
			continue;
		}
		if (vfiod_device_new(ctx, rec.syspath ? rec.syspath : *n, &dev) >= 0) {
			o = device_json(dev);
			json_object_set_new(o, "state",
					    json_string(dev->driver && rec.driver &&
								streq(dev->driver, rec.driver) ?
							"assigned" :
							"changed"));
		} else {
			o = json_object();
			json_object_set_new(o, "device", json_string(rec.syspath));
			json_object_set_new(o, "name", json_string(*n));
			json_object_set_new(o, "state", json_string("gone"));
		}
		json_object_set_new(o, "kind", json_string("pci"));
		json_object_set_new(o, "previous_driver", rec.previous_driver ?
					  json_string(rec.previous_driver) : json_null());
		if (rec.resolver)
			json_object_set_new(o, "resolver", json_string(rec.resolver));
		json_object_set_new(o, "claimed", json_boolean(rec.claimed));
		json_array_append_new(a, o);
		vfiod_device_unref(dev);
		record_done(&rec);
	}
	strv_free(names);
	return 0;
}

static int pci_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
		      struct target *t)
{
	(void)opts, (void)destroy;
	return target_of_pci(ctx, path, t);
}

int target_of_pci(struct vfiod_ctx *ctx, const char *path, struct target *t)
{
	struct vfiod_device *dev = NULL;
	int r;

	r = vfiod_device_new(ctx, path, &dev);
	if (r < 0)
		return r;
	t->device = strdup(dev->syspath);
	t->name = strdup(dev->name);
	t->iommu_group = dev->iommu_group;
	vfiod_device_unref(dev);
	if (!t->device || !t->name)
		return -ENOMEM;
	r = target_set_key(ctx, t, t->device);
	return r < 0 ? r : 1;
}

/* Assign or release the device at PATH, as OPTS say. */
static int pci_run(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool assign,
		   json_t **ret)
{
	struct vfiod_device *dev = NULL;
	bool force = opt_bool(opts, "force", false);
	int r;

	r = vfiod_device_new(ctx, path, &dev);
	if (r < 0)
		return r;
	if (assign)
		r = pci_assign(dev, opt_str(opts, "driver", NULL),
			       (opt_bool(opts, "group", false) ? VFIOD_ASSIGN_GROUP : 0) |
				       (force ? VFIOD_ASSIGN_FORCE : 0),
			       ret);
	else
		r = pci_release(dev, force ? VFIOD_RELEASE_FORCE : 0, ret);
	vfiod_device_unref(dev);
	return r;
}

static int pci_create(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	return pci_run(ctx, path, opts, true, ret);
}

static int pci_destroy(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	return pci_run(ctx, path, opts, false, ret);
}

const struct kind kind_pci = {
	.name = "pci",
	.target = pci_target,
	.create = pci_create,
	.destroy = pci_destroy,
	.list = pci_list,
	.forget = record_remove,
};
