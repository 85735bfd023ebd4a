/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A Container Device Interface spec of the devices vfiod holds, for container
 * runtimes (podman, containerd, CRI-O) and Kubernetes DRA drivers: one CDI
 * device per vfiod device, named by its vfiod name, of kind vfiod.org/device,
 * in CDISpecDirectory/vfiod.json (default /run/cdi, the runtimes' dynamic
 * directory).  The spec is written again, whole and atomically, after every
 * change to the set of devices, at most once per turn of the event loop, and
 * removed when vfiod holds nothing a container could open.
 *
 * Its nodes are what a user of the device opens: the group node with
 * /dev/vfio/vfio (the group API), the vfio cdev with /dev/iommu where the
 * kernel has them (iommufd), or a vhost-vdpa node.  Both vfio layouts are
 * listed, as the DRA drivers emit them: which one a program opens is its own
 * choice, and the kernel lets only one of them have the device at a time.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-names.h"
#include "daemon.h"
#include "macro.h"

#define DEV_VFIO_GROUP_PREFIX "/dev/vfio/"
#define DEV_VFIO_CDEV_PREFIX "/dev/vfio/devices/"
#define DEV_VFIO_CONTAINER "/dev/vfio/vfio"

/*
 * 0.5.0: the oldest version whose device names may begin with a digit (PCI
 * names do), and which podman 4.3 (Debian 12) reads; every newer runtime reads
 * older versions.
 */
#define CDI_VERSION "0.5.0"

/* The CDI rule for a device name: alphanumeric at both ends, "_-.:" between. */
static bool cdi_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_-.:", s[i]))
			return false;
	return true;
}

static void add_node(json_t *nodes, const char *path)
{
	size_t i;
	json_t *n;

	json_array_foreach(nodes, i, n)
	{
		if (str_eq(json_string_value(json_object_get(n, "path")), path))
			return;
	}
	json_array_append_new(nodes, json_pack("{ss}", "path", path));
}

/* The nodes of D a container needs, or NULL when it has none. */
static json_t *device_nodes(struct mdevice *d)
{
	json_t *nodes = json_array();
	const char *vhost;

	if (!nodes)
		return NULL;
	for (char **n = d->vfio_nodes; n && *n; n++) {
		add_node(nodes, *n);
		/* A group node is used through the container node. */
		if (!strncmp(*n, DEV_VFIO_GROUP_PREFIX, strlen(DEV_VFIO_GROUP_PREFIX)) &&
		    strncmp(*n, DEV_VFIO_CDEV_PREFIX, strlen(DEV_VFIO_CDEV_PREFIX)))
			add_node(nodes, DEV_VFIO_CONTAINER);
	}
	vhost = json_string_value(json_object_get(d->info, "node"));
	if (vhost)
		add_node(nodes, vhost);
	if (!json_array_size(nodes)) {
		json_decref(nodes);
		return NULL;
	}
	return nodes;
}

/* The spec of what M holds now, or NULL when nothing could be opened. */
json_t *cdi_spec(struct manager *m)
{
	json_t *devices = json_array(), *spec;

	if (!devices)
		return NULL;
	for (struct mdevice *d = m->devices; d; d = d->next) {
		json_t *nodes;

		if (!str_eq(d->state, VFIOD_STATE_ASSIGNED))
			continue;
		if (!cdi_name_valid(d->name)) {
			log_debug("%s: not a CDI device name, left out of the CDI spec", d->name);
			continue;
		}
		nodes = device_nodes(d);
		if (nodes)
			json_array_append_new(devices,
					      json_pack("{sss{so}}", "name", d->name,
							"containerEdits", "deviceNodes", nodes));
	}
	if (!json_array_size(devices)) {
		json_decref(devices);
		return NULL;
	}
	spec = json_pack("{ssssso}", "cdiVersion", CDI_VERSION, "kind", VFIOD_CDI_KIND, "devices",
			 devices);
	return spec;
}

/* Replace DIR/vfiod.json with SPEC, or remove it when SPEC is NULL. */
static int cdi_write(const char *dir, json_t *spec)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (asprintf(&path, "%s/" VFIOD_CDI_SPEC_FILE, dir) < 0 ||
	    asprintf(&tmp, "%s/." VFIOD_CDI_SPEC_FILE ".XXXXXX", dir) < 0)
		return -ENOMEM;
	if (!spec)
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The runtimes read it as whoever runs them; it names nodes, nothing secret. */
	r = fchmod(fd, 0644) < 0 ? -errno : 0;
	if (r >= 0 && json_dumpfd(spec, fd, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
		r = -EIO;
	if (r >= 0 && write(fd, "\n", 1) != 1)
		r = -EIO;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

static int cdi_on_defer(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;
	json_t *spec;
	int r;

	(void)s;
	m->cdi_source = sd_event_source_disable_unref(m->cdi_source);
	spec = cdi_spec(m);
	r = cdi_write(m->cfg.cdi_dir, spec);
	json_decref(spec);
	if (r < 0 && !m->cdi_failed)
		log_warning_errno(r, "cannot write the CDI spec in %s: %m; containers cannot "
				     "name vfiod's devices until it can",
				  m->cfg.cdi_dir);
	else if (r >= 0 && m->cdi_failed)
		log_info("CDI spec in %s written again", m->cfg.cdi_dir);
	m->cdi_failed = r < 0;
	return 0;
}

void cdi_flush(struct manager *m)
{
	if (m->cdi_source)
		(void)cdi_on_defer(m->cdi_source, m);
}

void cdi_schedule(struct manager *m)
{
	int r;

	/* Before the records are known, a spec would leave out what vfiod already holds. */
	if (!m->cfg.cdi_dir || !m->records_loaded || m->cdi_source)
		return;
	r = sd_event_add_defer(m->event, &m->cdi_source, cdi_on_defer, m);
	if (r < 0)
		log_warning_errno(r, "cannot schedule writing the CDI spec: %m");
	else
		(void)sd_event_source_set_description(m->cdi_source, "cdi");
}
