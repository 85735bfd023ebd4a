/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The org.vfiod1.Device objects, /org/vfiod1/device/<encoded name>: one a
 * managed device, announced through the ObjectManager, every property
 * change signalled.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bus-names.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"

static bool strv_equal(char **a, char **b)
{
	for (; a && *a && b && *b; a++, b++)
		if (!streq(*a, *b))
			return false;
	return !(a && *a) && !(b && *b);
}

static bool str_equal(const char *a, const char *b)
{
	return a == b || (a && b && streq(a, b));
}

struct mdevice *mdevice_find(struct manager *m, const char *name_or_syspath)
{
	if (!name_or_syspath)
		return NULL;
	for (struct mdevice *d = m->devices; d; d = d->next)
		if (streq(d->name, name_or_syspath) ||
		    (d->syspath && streq(d->syspath, name_or_syspath)))
			return d;
	return NULL;
}

static void mdevice_free(struct mdevice *d)
{
	free(d->name);
	free(d->object_path);
	free(d->syspath);
	free(d->kind);
	free(d->driver);
	free(d->previous_driver);
	strv_free(d->vfio_nodes);
	json_decref(d->info);
	free(d);
}

void mdevice_free_all(struct manager *m)
{
	while (m->devices) {
		struct mdevice *d = m->devices;

		m->devices = d->next;
		mdevice_free(d);
	}
}

/* The changed properties of one update, signalled together. */
struct changes {
	const char *names[12];
	size_t n;
};

static void changed(struct changes *c, const char *prop)
{
	if (c->n < ARRAY_SIZE(c->names) - 1)
		c->names[c->n++] = prop;
}

static void set_str(struct changes *c, const char *prop, char **field, const char *value)
{
	char *v;

	if (str_equal(*field, value))
		return;
	v = value ? strdup(value) : NULL;
	if (value && !v)
		return;
	free(*field);
	*field = v;
	changed(c, prop);
}

static void emit(struct mdevice *d, struct changes *c)
{
	int r;

	if (c->n == 0 || !d->m->bus)
		return;
	c->names[c->n] = NULL;
	r = sd_bus_emit_properties_changed_strv(d->m->bus, d->object_path, VFIOD_DEVICE_IFACE,
						(char **)c->names);
	if (r < 0)
		log_warning_errno(r, "%s: cannot signal PropertiesChanged: %m", d->syspath);
}

void mdevice_set_state(struct mdevice *d, const char *state)
{
	struct changes c = {};

	if (d->state != state && !str_equal(d->state, state)) {
		d->state = state;
		changed(&c, "State");
		cdi_schedule(d->m);
	}
	emit(d, &c);
}

void mdevice_set_persistent(struct mdevice *d, bool persistent)
{
	struct changes c = {};

	if (d->persistent != persistent) {
		d->persistent = persistent;
		changed(&c, "Persistent");
	}
	emit(d, &c);
}

static char **vfio_nodes(json_t *o)
{
	json_t *a = json_object_get(o, "vfio"), *n;
	char **v = calloc(json_array_size(a) + 1, sizeof(*v));
	size_t i, k = 0;

	if (!v)
		return NULL;
	json_array_foreach(a, i, n)
	{
		if (json_is_string(n) && (v[k] = strdup(json_string_value(n))))
			k++;
	}
	return v;
}

static void kind_changed(struct mdevice *d);

struct mdevice *mdevice_update(struct manager *m, json_t *o, const char *state)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	struct mdevice *d;
	struct changes c = {};
	json_t *g, *prev;
	bool added = false;
	char **nodes;
	int r;

	if (!name)
		return NULL;
	d = mdevice_find(m, name);
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return NULL;
		d->m = m;
		d->iommu_group = -1;
		d->name = strdup(name);
		r = d->name ? sd_bus_path_encode(VFIOD_DEVICE_PREFIX, name, &d->object_path)
			    : -ENOMEM;
		if (r < 0) {
			mdevice_free(d);
			return NULL;
		}
		d->state = state;
		d->kind = strdup("pci");
		d->next = m->devices;
		m->devices = d;
		added = true;
	}

	if (json_is_string(json_object_get(o, "device")))
		set_str(&c, "SysfsPath", &d->syspath,
			json_string_value(json_object_get(o, "device")));
	if (json_is_string(json_object_get(o, "kind")))
		set_str(&c, "Kind", &d->kind, json_string_value(json_object_get(o, "kind")));
	if (json_object_get(o, "driver"))
		set_str(&c, "Driver", &d->driver, json_string_value(json_object_get(o, "driver")));
	prev = json_object_get(o, "previous_driver");
	if (prev)
		set_str(&c, "PreviousDriver", &d->previous_driver, json_string_value(prev));
	g = json_object_get(o, "iommu_group");
	if (g) {
		int group = json_is_integer(g) ? (int)json_integer_value(g) : -1;

		if (group != d->iommu_group) {
			d->iommu_group = group;
			changed(&c, "IommuGroup");
		}
	}
	if (json_object_get(o, "vfio")) {
		nodes = vfio_nodes(o);
		if (nodes && !strv_equal(nodes, d->vfio_nodes)) {
			strv_free(d->vfio_nodes);
			d->vfio_nodes = nodes;
			changed(&c, "VfioNodes");
		} else {
			strv_free(nodes);
		}
	}
	if (!str_equal(d->state, state)) {
		d->state = state;
		changed(&c, "State");
	}
	if (json_is_string(json_object_get(o, "kind")) &&
	    !streq(json_string_value(json_object_get(o, "kind")), "pci") && !json_equal(o, d->info)) {
		json_decref(d->info);
		d->info = json_deep_copy(o);
		kind_changed(d);
	}

	if (added) {
		d->persistent = store_exists(m, name);
		if (m->bus) {
			r = sd_bus_emit_object_added(m->bus, d->object_path);
			if (r < 0)
				log_warning_errno(r, "%s: cannot signal InterfacesAdded: %m",
						  d->syspath);
		}
	} else {
		emit(d, &c);
	}
	cdi_schedule(m);
	return d;
}

void mdevice_remove(struct mdevice *d)
{
	struct manager *m = d->m;
	int r;

	/* The object must still be found while the signal is built. */
	if (m->bus) {
		r = sd_bus_emit_object_removed(m->bus, d->object_path);
		if (r < 0)
			log_warning_errno(r, "%s: cannot signal InterfacesRemoved: %m", d->syspath);
	}
	for (struct mdevice **p = &m->devices; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	cdi_schedule(m);
	mdevice_free(d);
}

json_t *mdevice_json(struct mdevice *d)
{
	json_t *nodes = json_array();

	for (char **n = d->vfio_nodes; n && *n; n++)
		json_array_append_new(nodes, json_string(*n));
	return json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:o, s:o, s:s, s:b}", "object",
			 d->object_path, "device", d->syspath, "name", d->name, "kind", d->kind,
			 "driver", d->driver, "previous_driver", d->previous_driver, "iommu_group",
			 d->iommu_group >= 0 ? json_integer(d->iommu_group) : json_null(), "vfio",
			 nodes, "state", d->state, "persistent", d->persistent);
}

/* D-Bus side. */

static int get_string(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	char **s = userdata;

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return sd_bus_message_append(reply, "s", *s ? *s : "");
}

static int get_state(sd_bus *bus, const char *path, const char *iface, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct mdevice *d = userdata;

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return sd_bus_message_append(reply, "s", d->state);
}

static int get_group(sd_bus *bus, const char *path, const char *iface, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct mdevice *d = userdata;

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return sd_bus_message_append(reply, "i", (int32_t)d->iommu_group);
}

static int get_nodes(sd_bus *bus, const char *path, const char *iface, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct mdevice *d = userdata;
	char *empty[] = {NULL};

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return sd_bus_message_append_strv(reply, d->vfio_nodes ? d->vfio_nodes : empty);
}

static int get_persistent(sd_bus *bus, const char *path, const char *iface, const char *prop,
			  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct mdevice *d = userdata;

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return sd_bus_message_append(reply, "b", (int)d->persistent);
}

#define STR_PROP(name, field)                                                                      \
	SD_BUS_PROPERTY(name, "s", get_string, offsetof(struct mdevice, field),                    \
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static const sd_bus_vtable device_vtable[] = {
	SD_BUS_VTABLE_START(0),
	STR_PROP("SysfsPath", syspath),
	STR_PROP("Name", name),
	STR_PROP("Kind", kind),
	STR_PROP("Driver", driver),
	STR_PROP("PreviousDriver", previous_driver),
	SD_BUS_PROPERTY("IommuGroup", "i", get_group, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("VfioNodes", "as", get_nodes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("State", "s", get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Persistent", "b", get_persistent, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_VTABLE_END};

/*
 * The interfaces of the other kinds: their properties are members of the
 * kind's last result (libvfiod's JSON), by key.
 */
static json_t *info_get(struct mdevice *d, const char *key)
{
	return d->info ? json_object_get(d->info, key) : NULL;
}

static int info_str(sd_bus_message *reply, struct mdevice *d, const char *key)
{
	return sd_bus_message_append(reply, "s", json_string_value(info_get(d, key)) ?: "");
}

static int info_uint(sd_bus_message *reply, struct mdevice *d, const char *key)
{
	json_t *v = info_get(d, key);

	return sd_bus_message_append(reply, "u",
				     json_is_integer(v) ? (uint32_t)json_integer_value(v) : 0);
}

/* The "name" of each member of the array KEY. */
static int info_names(sd_bus_message *reply, struct mdevice *d, const char *key)
{
	json_t *e;
	size_t i;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "s");
	json_array_foreach(info_get(d, key), i, e)
	{
		if (r >= 0 && json_is_string(json_object_get(e, "name")))
			r = sd_bus_message_append(reply, "s",
						  json_string_value(json_object_get(e, "name")));
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

#define INFO_GETTER(fn, how, key)                                                                  \
	static int fn(sd_bus *bus, const char *path, const char *iface, const char *prop,          \
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)                  \
	{                                                                                          \
		(void)bus, (void)path, (void)iface, (void)prop, (void)error;                       \
		return how(reply, userdata, key);                                                  \
	}

INFO_GETTER(get_mdev_parent, info_str, "parent")
INFO_GETTER(get_mdev_type, info_str, "type")
INFO_GETTER(get_vfs_numvfs, info_uint, "numvfs")
INFO_GETTER(get_vfs_previous, info_uint, "previous_numvfs")
INFO_GETTER(get_vfs_vfs, info_names, "vfs")
INFO_GETTER(get_vdpa_mgmtdev, info_str, "mgmtdev")
INFO_GETTER(get_vdpa_node, info_str, "node")
INFO_GETTER(get_sf_pf, info_str, "pf")
INFO_GETTER(get_sf_sfnum, info_uint, "sfnum")
INFO_GETTER(get_sf_aux, info_str, "auxiliary")
INFO_GETTER(get_sf_hwaddr, info_str, "hw_addr")

#define INFO_PROP(name, sig, fn)                                                                   \
	SD_BUS_PROPERTY(name, sig, fn, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static const sd_bus_vtable mdev_vtable[] = {
	SD_BUS_VTABLE_START(0),
	INFO_PROP("Parent", "s", get_mdev_parent),
	INFO_PROP("Type", "s", get_mdev_type),
	SD_BUS_VTABLE_END};

static const sd_bus_vtable vfs_vtable[] = {
	SD_BUS_VTABLE_START(0),
	INFO_PROP("NumVfs", "u", get_vfs_numvfs),
	INFO_PROP("PreviousNumVfs", "u", get_vfs_previous),
	INFO_PROP("Vfs", "as", get_vfs_vfs),
	SD_BUS_VTABLE_END};

static const sd_bus_vtable vdpa_vtable[] = {
	SD_BUS_VTABLE_START(0),
	INFO_PROP("ManagementDevice", "s", get_vdpa_mgmtdev),
	INFO_PROP("Node", "s", get_vdpa_node),
	SD_BUS_VTABLE_END};

static const sd_bus_vtable sf_vtable[] = {
	SD_BUS_VTABLE_START(0),
	INFO_PROP("Pf", "s", get_sf_pf),
	INFO_PROP("SfNumber", "u", get_sf_sfnum),
	INFO_PROP("Auxiliary", "s", get_sf_aux),
	INFO_PROP("HwAddr", "s", get_sf_hwaddr),
	SD_BUS_VTABLE_END};

static const struct {
	const char *kind;
	const char *iface;
	const sd_bus_vtable *vtable;
} kind_ifaces[] = {
	{"mdev", VFIOD_MDEV_IFACE, mdev_vtable},
	{"vfs", VFIOD_VFS_IFACE, vfs_vtable},
	{"vdpa", VFIOD_VDPA_IFACE, vdpa_vtable},
	{"sf", VFIOD_SF_IFACE, sf_vtable},
};

/* Every property of the kind's interface changed with its result. */
static void kind_changed(struct mdevice *d)
{
	int r;

	if (!d->m->bus || !d->kind)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(kind_ifaces); i++)
		if (streq(d->kind, kind_ifaces[i].kind)) {
			r = sd_bus_emit_properties_changed_strv(d->m->bus, d->object_path,
								kind_ifaces[i].iface, NULL);
			if (r < 0)
				log_warning_errno(r, "%s: cannot signal PropertiesChanged: %m",
						d->name);
		}
}

static int device_find(sd_bus *bus, const char *path, const char *iface, void *userdata,
		       void **found, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_free_ char *name = NULL;
	struct mdevice *d;
	int r;

	(void)bus, (void)error;
	r = sd_bus_path_decode(path, VFIOD_DEVICE_PREFIX, &name);
	if (r <= 0)
		return r;
	d = mdevice_find(m, name);
	if (!d)
		return 0;
	/* A kind's own interface is there only on devices of that kind. */
	for (size_t i = 0; i < ARRAY_SIZE(kind_ifaces); i++)
		if (streq(iface, kind_ifaces[i].iface) &&
		    (!d->kind || !streq(d->kind, kind_ifaces[i].kind)))
			return 0;
	*found = d;
	return 1;
}

static int device_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes,
			    sd_bus_error *error)
{
	struct manager *m = userdata;
	size_t n = 0, i = 0;
	char **v;

	(void)bus, (void)path, (void)error;
	for (struct mdevice *d = m->devices; d; d = d->next)
		n++;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (struct mdevice *d = m->devices; d; d = d->next) {
		v[i] = strdup(d->object_path);
		if (!v[i]) {
			strv_free(v);
			return -ENOMEM;
		}
		i++;
	}
	*nodes = v;
	return 1;
}

int device_objects_register(struct manager *m)
{
	int r;

	r = sd_bus_add_fallback_vtable(m->bus, NULL, VFIOD_DEVICE_PREFIX, VFIOD_DEVICE_IFACE,
				       device_vtable, device_find, m);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(kind_ifaces); i++) {
		r = sd_bus_add_fallback_vtable(m->bus, NULL, VFIOD_DEVICE_PREFIX,
					       kind_ifaces[i].iface, kind_ifaces[i].vtable,
					       device_find, m);
		if (r < 0)
			return r;
	}
	return sd_bus_add_node_enumerator(m->bus, NULL, VFIOD_DEVICE_PREFIX, device_enumerate, m);
}
