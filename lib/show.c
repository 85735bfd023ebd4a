/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod_show(): one device in full, before anyone acts on it.  A PCI
 * function: what it is, what the host does with it, what vfiod holds of it
 * and since when, its IOMMU group, the vfio driver it would get, its VFs and
 * the mdev types it offers.  Anything else is asked of the kinds (their
 * `show`: an mdev, a vdpa device, a subfunction), each saying whether PATH
 * is one of its own.  Read only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "kinds.h"

json_t *held_json(struct vfiod_ctx *ctx, const char *name)
{
	struct record rec;
	long long since = 0;
	json_t *o;

	if (record_load(ctx, name, &rec) < 0) {
		ctx->error[0] = '\0';
		return json_null();
	}
	(void)record_since(ctx, name, &since);
	o = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:I}", "driver", rec.driver, "module",
		      rec.module, "previous_driver", rec.previous_driver, "previous_override",
		      rec.previous_override, "resolver", rec.resolver, "claimed", rec.claimed,
		      "since_usec", (json_int_t)since);
	record_done(&rec);
	return o ? o : json_null();
}

/* The mdev types DEV offers as a parent, or null when it is none. */
static json_t *mdev_types_json(struct vfiod_device *dev)
{
	_cleanup_free_ char *text = NULL;
	json_t *a;

	if (faccessat(dev->dirfd, "mdev_supported_types", F_OK, 0) < 0 ||
	    vfiod_mdev_types(dev->ctx, dev->syspath, &text) < 0) {
		dev->ctx->error[0] = '\0';
		return json_null();
	}
	a = json_loads(text, 0, NULL);
	return a ? a : json_null();
}

/* The PCI function DEV in full. */
static int pci_show(struct vfiod_device *dev, json_t **ret)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct vfiod_match *m = NULL;
	json_t *o;
	int r;

	o = device_json(dev);
	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "assigned", held_json(ctx, dev->name));
	if (dev->iommu_group >= 0) {
		char g[16];

		snprintf(g, sizeof(g), "%d", dev->iommu_group);
		json_object_set_new(o, "group", group_json(ctx, g) ?: json_null());
	} else {
		json_object_set_new(o, "group", json_null());
	}
	r = vfiod_device_match(dev, &m);
	if (r >= 0) {
		const struct candidate *c = m->selected;

		json_object_set_new(o, "would_get",
				    c ? json_pack("{s:s, s:s?, s:s?}", "module", c->module, "driver",
						  c->driver, "alias", c->alias)
				      : json_null());
		json_object_set(o, "in_use", m->in_use ?: json_null());
	}
	vfiod_match_unref(m);
	json_object_set_new(o, "mdev_types", mdev_types_json(dev));
	json_object_set_new(o, "host_modules", host_modules_json(dev));
	if (r < 0) {
		json_decref(o);
		return r;
	}
	*ret = o;
	return 0;
}

_public_ int vfiod_show(struct vfiod_ctx *ctx, const char *path, char **ret)
{
	char why[sizeof(ctx->error)];
	struct vfiod_device *dev = NULL;
	const struct kind *k;
	json_t *o = NULL;
	int r, pci;

	ctx->error[0] = '\0';
	r = pci = vfiod_device_new(ctx, path, &dev);
	if (r >= 0) {
		r = pci_show(dev, &o);
		vfiod_device_unref(dev);
	} else if (path && (pci == -ENODEV || pci == -ENOENT || pci == -ENOTDIR)) {
		/* Not a PCI function (or no such path): perhaps another kind's device. */
		snprintf(why, sizeof(why), "%s", ctx->error[0] ? ctx->error : strerror(-pci));
		r = 0;
		for (size_t i = 0; r == 0 && (k = kind_at(i)); i++) {
			if (!k->show)
				continue;
			ctx->error[0] = '\0';
			r = k->show(ctx, path, &o);
		}
		if (r == 0)
			return vfiod_error(ctx, pci == -ENOTDIR ? -ENODEV : pci,
					   "%s; nor is it an mdev (a UUID), a vdpa device "
					   "(its name) or a subfunction (PF-sfN)",
					   why);
	}
	if (r < 0)
		return r;
	ctx->error[0] = '\0';
	return json_dump_to(o, ret);
}
