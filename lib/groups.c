/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod_groups(): the machine's IOMMU groups as a person looking for what
 * can be handed to a VM wants them: each group's devices with their names
 * and drivers, whether the group can be opened by vfio as it stands (and
 * what is in the way), and which vfio driver each device would get.  Read
 * only: nothing is written, no module loaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of <root>/RELPATH but dot files, sorted; NULL-terminated. */
static int dir_names(struct vfiod_ctx *ctx, const char *relpath, char ***ret)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	int r;

	r = dir_from_fd(root_open(ctx, relpath, O_RDONLY | O_DIRECTORY), &d);
	if (r < 0)
		return r;
	while ((de = readdir(d))) {
		char **nv;

		if (de->d_name[0] == '.')
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			v = nv ? nv : v;
			v[n] = NULL;
			strv_free(v);
			return -ENOMEM;
		}
		v = nv;
		v[++n] = NULL;
	}
	if (!v && !(v = calloc(1, sizeof(*v))))
		return -ENOMEM;
	qsort(v, n, sizeof(*v), name_cmp);
	*ret = v;
	return 0;
}

/* What match would choose for the PCI function NAME: {module, driver} or null. */
static json_t *would_get(struct vfiod_ctx *ctx, const char *name)
{
	struct vfiod_device *dev = NULL;
	struct vfiod_match *m = NULL;
	json_t *o = json_null();

	if (vfiod_device_new(ctx, name, &dev) >= 0 && vfiod_device_match(dev, &m) >= 0 &&
	    vfiod_match_get_module(m))
		o = json_pack("{s:s, s:s?}", "module", vfiod_match_get_module(m), "driver",
			      vfiod_match_get_driver(m));
	vfiod_match_unref(m);
	vfiod_device_unref(dev);
	ctx->error[0] = '\0';
	return o ? o : json_null();
}

/* One member of a group, and whether it lets vfio open the group as it stands. */
static json_t *member_json(struct vfiod_ctx *ctx, const char *group, const char *name,
			   bool *in_the_way)
{
	_cleanup_free_ char *rel = NULL, *driver = NULL, *subsys = NULL, *syspath = NULL;
	_cleanup_close_ int fd = -1;
	unsigned int vendor = 0, device = 0, class = 0;
	bool pci;
	char buf[256];
	json_t *o;

	if (asprintf(&rel, "%s/%s/devices/%s", SYSFS_IOMMU_GROUPS, group, name) < 0)
		return NULL;
	fd = root_open(ctx, rel, O_RDONLY | O_DIRECTORY);
	(void)root_syspath(ctx, rel, &syspath);
	if (fd >= 0) {
		(void)read_link_name(fd, ATTR_DRIVER, &driver);
		(void)read_link_name(fd, "subsystem", &subsys);
	}
	pci = subsys && streq(subsys, "pci");
	o = json_pack("{s:s, s:s?, s:s?, s:s?}", "name", name, "device", syspath, "subsystem",
		      subsys, "driver", driver);
	if (!o)
		return NULL;
	if (pci && read_attr_hex(fd, ATTR_VENDOR, &vendor) >= 0 &&
	    read_attr_hex(fd, ATTR_DEVICE, &device) >= 0) {
		char ids[16];

		snprintf(ids, sizeof(ids), "%04x:%04x", vendor, device);
		json_object_set_new(o, "ids", json_string(ids));
		if (vfiod_ctx_pci_name(ctx, buf, sizeof(buf), vendor, device))
			json_object_set_new(o, "description", json_string(buf));
	}
	if (pci && read_attr_hex(fd, ATTR_CLASS, &class) >= 0) {
		snprintf(buf, sizeof(buf), "0x%06x", class);
		json_object_set_new(o, "class", json_string(buf));
	}
	/* A bridge stays with the host: a group assign skips it, vfio accepts it. */
	if (driver && streq(driver, DRIVER_PCIEPORT))
		json_object_set_new(o, "bridge", json_true());
	else if (pci)
		json_object_set_new(o, "vfio_driver", would_get(ctx, name));
	*in_the_way = !driver_shares_group(ctx, driver);
	return o;
}

json_t *group_json(struct vfiod_ctx *ctx, const char *group)
{
	_cleanup_free_ char *rel = NULL;
	json_t *o, *members, *way;
	char **names = NULL;
	int r;

	if (asprintf(&rel, "%s/%s/devices", SYSFS_IOMMU_GROUPS, group) < 0)
		return NULL;
	r = dir_names(ctx, rel, &names);
	if (r < 0)
		return NULL;
	members = json_array();
	way = json_array();
	for (char **n = names; members && way && *n; n++) {
		bool in_the_way = false;
		json_t *m = member_json(ctx, group, *n, &in_the_way);

		if (in_the_way && m)
			json_array_append_new(way, json_pack("{s:s, s:O}", "name", *n, "driver",
							      json_object_get(m, "driver")));
		json_array_append_new(members, m);
	}
	strv_free(names);
	o = json_pack("{s:i, s:b, s:o, s:o}", "group", atoi(group), "viable",
		      json_array_size(way) == 0, "in_the_way", way, "devices", members);
	return o;
}

/* WHICH as a group number: "7" or "group 7"; -1 when it is not one. */
static int group_number(const char *which)
{
	char *end;
	long g;

	if (strncmp(which, "group", 5) == 0)
		which += 5 + strspn(which + 5, " :");
	if (!*which || *which < '0' || *which > '9')
		return -1;
	g = strtol(which, &end, 10);
	return *end || g < 0 || g > 1000000 ? -1 : (int)g;
}

_public_ int vfiod_groups(struct vfiod_ctx *ctx, const char *which, char **ret)
{
	char **groups = NULL, one[16];
	json_t *a;
	int r;

	ctx->error[0] = '\0';
	if (which && *which) {
		struct vfiod_device *dev = NULL;
		int g = group_number(which);

		if (g < 0) {
			r = vfiod_device_new(ctx, which, &dev);
			if (r < 0)
				return r;
			g = vfiod_device_get_iommu_group(dev);
			vfiod_device_unref(dev);
			if (g < 0)
				return vfiod_error(ctx, -EOPNOTSUPP, "%s has no IOMMU group: enable "
						   "the IOMMU (intel_iommu=on or amd_iommu=on) to "
						   "use vfio", which);
		}
		snprintf(one, sizeof(one), "%d", g);
		groups = calloc(2, sizeof(*groups));
		if (!groups || !(groups[0] = strdup(one))) {
			strv_free(groups);
			return -ENOMEM;
		}
	} else {
		r = dir_names(ctx, SYSFS_IOMMU_GROUPS, &groups);
		if (r == -ENOENT)
			return vfiod_error(ctx, -EOPNOTSUPP, "this machine has no IOMMU groups: "
					   "enable the IOMMU (intel_iommu=on or amd_iommu=on) to "
					   "use vfio");
		if (r < 0)
			return vfiod_error(ctx, r, "cannot list the IOMMU groups: %s",
					   strerror(-r));
	}
	/* In number order, as a person counts them. */
	for (size_t i = 0; groups[i]; i++)
		for (size_t k = i + 1; groups[k]; k++)
			if (atoi(groups[k]) < atoi(groups[i])) {
				char *t = groups[i];

				groups[i] = groups[k];
				groups[k] = t;
			}
	a = json_array();
	for (char **g = groups; a && *g; g++) {
		json_t *o = group_json(ctx, *g);

		if (!o) {
			r = vfiod_error(ctx, -ENOENT, "IOMMU group %s: no such group", *g);
			strv_free(groups);
			json_decref(a);
			return r;
		}
		json_array_append_new(a, o);
	}
	strv_free(groups);
	return json_dump_to(a, ret);
}
