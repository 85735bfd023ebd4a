/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A PCI function: identity, ids, driver, IOMMU group, SR-IOV relation. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <pci/pci.h>

#include "internal.h"

static int device_identify(struct vfiod_device *dev, const char *input)
{
	struct vfiod_ctx *ctx = dev->ctx;
	_cleanup_free_ char *subsystem = NULL;
	struct stat st;
	int r;

	if (fstatat(dev->dirfd, ATTR_UEVENT, &st, 0) < 0 || !S_ISREG(st.st_mode))
		return vfiod_error(ctx, -ENODEV, "%s: %s is a directory but not a device", input,
				   dev->syspath);
	r = read_link_name(dev->dirfd, ATTR_SUBSYSTEM, &subsystem);
	if (r < 0)
		return vfiod_error(ctx, -ENODEV, "%s: %s is not a device (it has no subsystem)",
				   input, dev->syspath);
	if (!streq(subsystem, "pci")) {
		char buf[PATH_MAX];
		ssize_t n = readlinkat(dev->dirfd, ATTR_DEVICE, buf, sizeof(buf) - 1);

		/* A class device (a netdev, a block device) of a PCI function: name the function. */
		if (n > 0) {
			buf[n] = '\0';
			const char *b = strrchr(buf, '/');

			if (b && is_pci_name(b + 1))
				return vfiod_error(ctx, -ENODEV,
						   "%s: is a %s device, not a PCI function; "
						   "its PCI function is %s",
						   input, subsystem, b + 1);
		}
		return vfiod_error(ctx, -ENODEV, "%s: is a %s device, not a PCI function", input,
				   subsystem);
	}
	if (!is_pci_name(dev->name) || strlen(dev->name) != 12)
		return vfiod_error(ctx, -ENODEV, "%s: PCI device %s has no PCI address as its name",
				   input, dev->name);
	return 0;
}

int device_refresh(struct vfiod_device *dev)
{
	int r;

	free(dev->driver);
	dev->driver = NULL;
	r = read_link_name(dev->dirfd, ATTR_DRIVER, &dev->driver);
	if (r < 0 && r != -ENOENT)
		return r;

	free(dev->driver_override);
	dev->driver_override = NULL;
	r = read_attr(dev->dirfd, ATTR_DRIVER_OVERRIDE, &dev->driver_override);
	if (r < 0 && r != -ENOENT)
		return r;
	if (dev->driver_override && (!*dev->driver_override ||
				     streq(dev->driver_override, "(null)"))) {
		free(dev->driver_override);
		dev->driver_override = NULL;
	}

	dev->iommu_group = read_iommu_group(dev->dirfd);
	return 0;
}

static int device_read_ids(struct vfiod_device *dev)
{
	struct {
		const char *attr;
		unsigned int *val;
	} ids[] = {
		{ ATTR_VENDOR, &dev->vendor },
		{ ATTR_DEVICE, &dev->device },
		{ ATTR_SUBSYSTEM_VENDOR, &dev->subvendor },
		{ ATTR_SUBSYSTEM_DEVICE, &dev->subdevice },
		{ ATTR_CLASS, &dev->class },
	};
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		r = read_attr_hex(dev->dirfd, ids[i].attr, ids[i].val);
		if (r < 0)
			return vfiod_error(dev->ctx, r, "%s: cannot read %s: %s", dev->syspath,
					   ids[i].attr, strerror(-r));
	}
	r = read_attr(dev->dirfd, ATTR_MODALIAS, &dev->modalias);
	if (r < 0)
		return vfiod_error(dev->ctx, r, "%s: cannot read modalias: %s", dev->syspath,
				   strerror(-r));
	if (strncmp(dev->modalias, PCI_MODALIAS_PREFIX, strlen(PCI_MODALIAS_PREFIX)) != 0)
		return vfiod_error(dev->ctx, -ENODEV, "%s: modalias \"%s\" is not a PCI modalias",
				   dev->syspath, dev->modalias);
	r = read_link_name(dev->dirfd, ATTR_PHYSFN, &dev->physfn);
	if (r < 0 && r != -ENOENT)
		return r;
	return 0;
}

_public_ int vfiod_device_new(struct vfiod_ctx *ctx, const char *path, struct vfiod_device **ret)
{
	struct vfiod_device *dev;
	const char *base;
	int r;

	ctx->error[0] = '\0';
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->n_ref = 1;
	dev->dirfd = -1;
	dev->iommu_group = -1;
	dev->ctx = vfiod_ctx_ref(ctx);

	r = sysfs_canonicalize(ctx, path, &dev->syspath, &dev->realpath);
	if (r < 0)
		goto fail;
	base = strrchr(dev->syspath, '/');
	dev->name = strdup(base + 1);
	if (!dev->name) {
		r = -ENOMEM;
		goto fail;
	}
	dev->dirfd = open(dev->realpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dev->dirfd < 0) {
		r = vfiod_error(ctx, negative_errno(), "%s: cannot open %s: %m", path,
				dev->syspath);
		goto fail;
	}
	r = device_identify(dev, path);
	if (r < 0)
		goto fail;
	r = device_read_ids(dev);
	if (r < 0)
		goto fail;
	r = device_refresh(dev);
	if (r < 0) {
		vfiod_error(ctx, r, "%s: cannot read its driver: %s", dev->syspath, strerror(-r));
		goto fail;
	}
	*ret = dev;
	return 0;
fail:
	vfiod_device_unref(dev);
	return r;
}

_public_ struct vfiod_device *vfiod_device_ref(struct vfiod_device *dev)
{
	if (dev)
		dev->n_ref++;
	return dev;
}

_public_ struct vfiod_device *vfiod_device_unref(struct vfiod_device *dev)
{
	if (!dev || --dev->n_ref > 0)
		return NULL;
	closep(&dev->dirfd);
	free(dev->syspath);
	free(dev->realpath);
	free(dev->name);
	free(dev->modalias);
	free(dev->driver);
	free(dev->driver_override);
	free(dev->physfn);
	vfiod_ctx_unref(dev->ctx);
	free(dev);
	return NULL;
}

_public_ const char *vfiod_device_get_syspath(struct vfiod_device *dev)
{
	return dev->syspath;
}

_public_ const char *vfiod_device_get_name(struct vfiod_device *dev)
{
	return dev->name;
}

_public_ const char *vfiod_device_get_driver(struct vfiod_device *dev)
{
	return dev->driver;
}

_public_ int vfiod_device_get_iommu_group(struct vfiod_device *dev)
{
	return dev->iommu_group;
}

/* "Red Hat, Inc. QEMU NVM Express Controller", from pci.ids. */
static const char *device_description(struct vfiod_device *dev, char *buf, size_t size)
{
	return vfiod_ctx_pci_name(dev->ctx, buf, size, dev->vendor, dev->device);
}

static json_t *json_string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/*
 * The vfio cdev nodes of the device whose sysfs directory is DEVFD, appended
 * to A, and /dev/iommu after them when there is one: a cdev is opened only
 * together with an iommufd.  vfio-dev/vfioN exists with the group API too;
 * it has a "dev" only with the vfio cdev (CONFIG_VFIO_DEVICE_CDEV).
 */
static void vfio_cdev_nodes(int devfd, json_t *a)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	bool any = false;
	int fd;

	fd = openat(devfd, ATTR_VFIO_DEV, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_from_fd(fd < 0 ? negative_errno() : fd, &d) < 0)
		return;
	while ((de = readdir(d))) {
		char dev_attr[300], node[64];

		snprintf(dev_attr, sizeof(dev_attr), "%.255s/dev", de->d_name);
		if (strncmp(de->d_name, "vfio", 4) == 0 &&
		    faccessat(dirfd(d), dev_attr, F_OK, 0) == 0) {
			snprintf(node, sizeof(node), DEV_VFIO_DEVICES "/%.32s", de->d_name);
			json_array_append_new(a, json_string(node));
			any = true;
		}
	}
	if (any)
		json_array_append_new(a, json_string(DEV_IOMMU));
}

json_t *vfio_nodes_json(int devfd, int iommu_group, bool bound)
{
	json_t *a = json_array();
	char node[64];

	if (!a || iommu_group < 0 || !bound)
		return a;
	snprintf(node, sizeof(node), DEV_VFIO "/%d", iommu_group);
	json_array_append_new(a, json_string(node));
	vfio_cdev_nodes(devfd, a);
	return a;
}

/* A PF's VFs: "virtfnN" links, in N order, and the counts. */
static void device_sriov_json(struct vfiod_device *dev, json_t *o)
{
	unsigned int total = 0, num = 0;
	json_t *vfs;

	if (read_attr_uint(dev->dirfd, ATTR_SRIOV_TOTALVFS, &total) < 0 || total == 0)
		return;
	(void)read_attr_uint(dev->dirfd, ATTR_SRIOV_NUMVFS, &num);
	json_object_set_new(o, "sriov_totalvfs", json_integer(total));
	json_object_set_new(o, "sriov_numvfs", json_integer(num));
	vfs = json_array();
	for (unsigned int i = 0; vfs && i < total; i++) {
		_cleanup_free_ char *vf = NULL;
		char link[32];

		snprintf(link, sizeof(link), ATTR_VIRTFN_PREFIX "%u", i);
		if (read_link_name(dev->dirfd, link, &vf) >= 0)
			json_array_append_new(vfs, json_string(vf));
	}
	json_object_set_new(o, "virtfns", vfs);
}

json_t *device_json(struct vfiod_device *dev)
{
	char ids[16], desc[256];
	const char *d = device_description(dev, desc, sizeof(desc));
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "device", json_string(dev->syspath));
	json_object_set_new(o, "name", json_string(dev->name));
	json_object_set_new(o, "kind", json_string("pci"));
	snprintf(ids, sizeof(ids), "%04x:%04x", dev->vendor, dev->device);
	json_object_set_new(o, "id", json_string(ids));
	if (d)
		json_object_set_new(o, "description", json_string(d));
	json_object_set_new(o, "driver", json_string_or_null(dev->driver));
	if (dev->driver_override)
		json_object_set_new(o, "driver_override", json_string(dev->driver_override));
	json_object_set_new(o, "iommu_group",
			    dev->iommu_group >= 0 ? json_integer(dev->iommu_group) : json_null());
	if (dev->physfn)
		json_object_set_new(o, "physfn", json_string(dev->physfn));
	device_sriov_json(dev, o);
	json_object_set_new(o, "vfio",
			    vfio_nodes_json(dev->dirfd, dev->iommu_group,
					    driver_is_vfio(dev->ctx, dev->driver)));
	return o;
}

int json_dump_to(json_t *o, char **ret)
{
	if (!o)
		return -ENOMEM;
	*ret = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return *ret ? 0 : -ENOMEM;
}

_public_ int vfiod_device_to_json(struct vfiod_device *dev, char **ret)
{
	int r = device_refresh(dev);

	if (r < 0)
		return r;
	return json_dump_to(device_json(dev), ret);
}
