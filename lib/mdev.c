/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mediated devices: make one on a parent's type, give it back, list them,
 * and read mdevctl's persistent definitions.
 *
 * create: load-modules, create (write the UUID to the type's "create"),
 * attrs (vendor attributes, in order), verify.  A failure after create
 * removes the mdev again ("remove"), so nothing is left half-made.
 * destroy: remove.
 *
 * A parent is any device with "mdev_supported_types" (a PCI function, a
 * class device, a channel subsystem, ...); it is named by a sysfs path, a
 * PCI address or its name under /sys/class/mdev_bus.  Every write goes
 * through an opened directory fd of the parent, its type or the mdev.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "internal.h"
#include "inuse.h"
#include "kinds.h"

#define OP_CREATE "mdev-create"
#define OP_DESTROY "mdev-destroy"
#define UUID_LEN 36

/* A parent, opened: its device directory and its mdev_supported_types. */
struct parent {
	char *syspath; /* "/sys/devices/..." */
	char *name;    /* last component, as mdevctl names parents */
	int dirfd;
	int typesfd;
};

/* An existing mdev. */
struct mdev {
	char uuid[UUID_LEN + 1];
	char *syspath;
	char *parent; /* syspath of the parent */
	char *type;   /* type directory name, NULL when unknown */
	char *driver;
	int iommu_group;
	int dirfd;
};

static void parent_done(struct parent *p)
{
	free(p->syspath);
	free(p->name);
	closep(&p->dirfd);
	closep(&p->typesfd);
	*p = (struct parent){ .dirfd = -1, .typesfd = -1 };
}

static void mdev_done(struct mdev *m)
{
	free(m->syspath);
	free(m->parent);
	free(m->type);
	free(m->driver);
	closep(&m->dirfd);
	*m = (struct mdev){ .dirfd = -1, .iommu_group = -1 };
}

static int strv_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* UUIDs */

/* 8-4-4-4-12 hex digits, either case. */
static bool uuid_valid(const char *s)
{
	if (strlen(s) != UUID_LEN)
		return false;
	for (size_t i = 0; i < UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static void uuid_lower(const char *s, char out[UUID_LEN + 1])
{
	for (size_t i = 0; i < UUID_LEN; i++)
		out[i] = tolower((unsigned char)s[i]);
	out[UUID_LEN] = '\0';
}

/* A random (version 4) UUID. */
static int uuid_generate(char out[UUID_LEN + 1])
{
	unsigned char b[16];
	size_t n = 0;

	while (n < sizeof(b)) {
		ssize_t k = getrandom(b + n, sizeof(b) - n, 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		n += k;
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
	return 0;
}

/* Small sysfs helpers */

static int open_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? negative_errno() : fd;
}

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool is_dir_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

/* The entries of directory DIRFD (not consumed) that are directories, sorted. */
static int list_dirs(int dirfd, char ***ret)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	int r;

	r = dir_from_fd(open_dir_at(dirfd, "."), &d);
	if (r < 0)
		return r;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	while ((de = readdir(d))) {
		char **nv;

		if (de->d_name[0] == '.' || !is_dir_at(dirfd, de->d_name))
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv)
			goto oom;
		v = nv;
		v[n] = strdup(de->d_name);
		if (!v[n])
			goto oom;
		v[++n] = NULL;
	}
	qsort(v, n, sizeof(*v), strv_cmp);
	*ret = v;
	return 0;
oom:
	strv_free(v);
	return -ENOMEM;
}

/* A whole attribute, lines joined with ", " (a type's description may have several). */
static int read_attr_lines(int dirfd, const char *attr, char **ret)
{
	_cleanup_close_ int fd = openat(dirfd, attr, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char buf[4097], *out, *o;
	ssize_t n;

	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return negative_errno();
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	out = o = malloc(2 * n + 1);
	if (!out)
		return -ENOMEM;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			*o++ = ',';
			*o++ = ' ';
		} else {
			*o++ = buf[i];
		}
	}
	*o = '\0';
	*ret = out;
	return 0;
}

/* "a, b, c" of V, for messages. */
static void strv_join(char **v, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (char **p = v; p && *p; p++)
		len += snprintf(buf + len, len < size ? size - len : 0, "%s%s", p == v ? "" : ", ",
				*p);
	if (!buf[0])
		snprintf(buf, size, "none");
}

/* Parents */

/*
 * Resolve INPUT to a parent and open it.  A bare name that is not a PCI
 * address is looked up in /sys/class/mdev_bus, as mdevctl names parents.
 */
static int parent_open(struct vfiod_ctx *ctx, const char *input, struct parent *p)
{
	_cleanup_free_ char *real = NULL, *classpath = NULL;
	const char *path = input;
	const char *base;
	int r;

	*p = (struct parent){ .dirfd = -1, .typesfd = -1 };
	if (input && *input && input[0] != '/' && !strchr(input, '/') && !is_pci_name(input)) {
		if (asprintf(&classpath, "%s/%s/%s", VFIOD_DEFAULT_SYSFS_ROOT, SYSFS_MDEV_BUS_CLASS,
			     input) < 0)
			return -ENOMEM;
		path = classpath;
	}
	r = sysfs_canonicalize(ctx, path, &p->syspath, &real);
	if (r < 0) {
		if (r == -ENOENT && classpath)
			return vfiod_error(ctx, r, "%s: no such mdev parent (not in /sys/%s)", input,
					   SYSFS_MDEV_BUS_CLASS);
		return r;
	}
	base = strrchr(p->syspath, '/');
	p->name = strdup(base ? base + 1 : p->syspath);
	if (!p->name)
		return -ENOMEM;
	p->dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		r = negative_errno();
		return vfiod_error(ctx, r == -ENOTDIR ? -ENOENT : r, "%s: %s", p->syspath,
				   r == -ENOENT ? "the device went away" : strerror(-r));
	}
	p->typesfd = open_dir_at(p->dirfd, ATTR_MDEV_SUPPORTED_TYPES);
	if (p->typesfd == -ENOENT || p->typesfd == -ENOTDIR)
		return vfiod_error(ctx, -ENODEV,
				   "%s is not an mdev parent: it has no %s (its driver does not "
				   "offer mediated devices, or is not loaded)",
				   p->syspath, ATTR_MDEV_SUPPORTED_TYPES);
	if (p->typesfd < 0)
		return vfiod_error(ctx, p->typesfd, "%s/%s: %s", p->syspath,
				   ATTR_MDEV_SUPPORTED_TYPES, strerror(-p->typesfd));
	return 0;
}

/*
 * The prefix the kernel puts before a type's own name: the parent's driver,
 * else its bus or class ("i915" of "i915-GVTg_V5_4").
 */
static char *parent_prefix(const struct parent *p)
{
	char *s = NULL;

	if (read_link_name(p->dirfd, ATTR_DRIVER, &s) >= 0)
		return s;
	if (read_link_name(p->dirfd, ATTR_SUBSYSTEM, &s) >= 0)
		return s;
	return NULL;
}

/*
 * The type directory GIVEN names: its full name, or the part after
 * "<driver>-" when only one type of the parent ends so.  *SHORT_FORM tells
 * which.
 */
static int type_resolve(struct vfiod_ctx *ctx, const struct parent *p, const char *given,
			char **ret, bool *short_form)
{
	_cleanup_free_ char *prefix = NULL;
	char **types = NULL, *match = NULL, list[1024], tried[512];
	size_t glen = strlen(given), n_match = 0, tlen = 0;
	int r;

	*short_form = false;
	if (!*given || strchr(given, '/') || streq(given, ".") || streq(given, ".."))
		return vfiod_error(ctx, -EINVAL, "\"%s\" is not an mdev type name", given);
	if (is_dir_at(p->typesfd, given)) {
		*ret = strdup(given);
		return *ret ? 0 : -ENOMEM;
	}
	r = list_dirs(p->typesfd, &types);
	if (r < 0)
		return vfiod_error(ctx, r, "%s/%s: cannot list the types: %s", p->syspath,
				   ATTR_MDEV_SUPPORTED_TYPES, strerror(-r));
	prefix = parent_prefix(p);
	tried[0] = '\0';
	for (char **t = types; *t; t++) {
		size_t l = strlen(*t);

		if (l <= glen + 1 || (*t)[l - glen - 1] != '-' || !streq(*t + l - glen, given))
			continue;
		/* The kernel's own prefix settles a tie ("a-b" and "b" both end in "-b"). */
		if (prefix && strlen(prefix) == l - glen - 1 && !strncmp(*t, prefix, l - glen - 1)) {
			match = *t;
			n_match = 1;
			break;
		}
		tlen += snprintf(tried + tlen, tlen < sizeof(tried) ? sizeof(tried) - tlen : 0,
				 "%s%s", n_match ? ", " : "", *t);
		match = *t;
		n_match++;
	}
	if (n_match == 1) {
		*ret = strdup(match);
		*short_form = true;
		strv_free(types);
		return *ret ? 0 : -ENOMEM;
	}
	strv_join(types, list, sizeof(list));
	strv_free(types);
	if (n_match > 1)
		return vfiod_error(ctx, -EINVAL, "%s: mdev type \"%s\" is ambiguous: %s", p->syspath,
				   given, tried);
	return vfiod_error(ctx, -EINVAL, "%s has no mdev type \"%s\"; its types: %s", p->syspath,
			   given, list);
}

/*
 * The type NAME, whose directory is DIR below DIRFD (its name below the
 * parent's mdev_supported_types, or an mdev's mdev_type link), as
 * vfiod_mdev_types() shows it.
 */
static json_t *type_json(int dirfd, const char *dir, const char *name)
{
	_cleanup_free_ char *api = NULL, *pretty = NULL, *desc = NULL;
	_cleanup_close_ int fd = open_dir_at(dirfd, dir);
	_cleanup_closedir_ DIR *d = NULL;
	unsigned int avail = 0;
	json_t *o, *devices;
	struct dirent *de;

	if (fd < 0)
		return NULL;
	o = json_object();
	devices = json_array();
	if (!o || !devices) {
		json_decref(o);
		json_decref(devices);
		return NULL;
	}
	json_object_set_new(o, "name", json_string(name));
	if (read_attr(fd, ATTR_MDEV_NAME, &pretty) >= 0)
		json_object_set_new(o, "pretty_name", json_string(pretty));
	if (read_attr(fd, ATTR_MDEV_DEVICE_API, &api) >= 0)
		json_object_set_new(o, "device_api", json_string(api));
	json_object_set_new(o, "available_instances",
			    read_attr_uint(fd, ATTR_MDEV_AVAILABLE, &avail) >= 0 ? json_integer(avail)
									   : json_null());
	if (read_attr_lines(fd, ATTR_MDEV_DESCRIPTION, &desc) >= 0)
		json_object_set_new(o, "description", json_string(desc));
	if (dir_from_fd(open_dir_at(fd, ATTR_MDEV_TYPE_DEVICES), &d) >= 0)
		while ((de = readdir(d)))
			if (uuid_valid(de->d_name))
				json_array_append_new(devices, json_string(de->d_name));
	json_object_set_new(o, "devices", devices);
	return o;
}

static int parent_types_json(struct vfiod_ctx *ctx, const struct parent *p, json_t **ret)
{
	char **types = NULL;
	json_t *a;
	int r;

	r = list_dirs(p->typesfd, &types);
	if (r < 0)
		return vfiod_error(ctx, r, "%s/%s: cannot list the types: %s", p->syspath,
				   ATTR_MDEV_SUPPORTED_TYPES, strerror(-r));
	a = json_array();
	for (char **t = types; a && *t; t++) {
		json_t *o = type_json(p->typesfd, *t, *t);

		if (o) /* a type that vanished meanwhile is left out */
			json_array_append_new(a, o);
	}
	strv_free(types);
	*ret = a;
	return a ? 0 : -ENOMEM;
}

_public_ int vfiod_mdev_types(struct vfiod_ctx *ctx, const char *path, char **ret)
{
	struct parent p;
	json_t *a = NULL;
	int r;

	ctx->error[0] = '\0';
	r = parent_open(ctx, path, &p);
	if (r >= 0)
		r = parent_types_json(ctx, &p, &a);
	parent_done(&p);
	return r < 0 ? r : json_dump_to(a, ret);
}

/* Existing mdevs */

/*
 * Fill M from the mdev directory REAL (on disk) / LOGICAL ("/sys/...").
 * -ENODEV when it is not an mdev.
 */
static int mdev_fill(const char *uuid, const char *logical, const char *real, struct mdev *m)
{
	_cleanup_free_ char *subsystem = NULL, *type = NULL;
	const char *slash;
	int r;

	*m = (struct mdev){ .dirfd = -1, .iommu_group = -1 };
	uuid_lower(uuid, m->uuid);
	m->dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dirfd < 0)
		return negative_errno();
	r = read_link_name(m->dirfd, ATTR_SUBSYSTEM, &subsystem);
	if (r < 0 || !streq(subsystem, SUBSYSTEM_MDEV))
		return -ENODEV;
	m->syspath = strdup(logical);
	slash = strrchr(logical, '/');
	m->parent = slash ? strndup(logical, slash - logical) : NULL;
	if (!m->syspath || !m->parent)
		return -ENOMEM;
	if (read_link_name(m->dirfd, ATTR_MDEV_TYPE, &type) >= 0)
		m->type = TAKE_PTR(type);
	(void)read_link_name(m->dirfd, ATTR_DRIVER, &m->driver);
	m->iommu_group = read_iommu_group(m->dirfd);
	return 0;
}

/* The mdev UUID, from <root>/bus/mdev/devices; -ENOENT when there is none. */
static int mdev_by_uuid(struct vfiod_ctx *ctx, const char *uuid, struct mdev *m)
{
	_cleanup_free_ char *in = NULL, *logical = NULL, *real = NULL;
	char lower[UUID_LEN + 1];
	int r;

	*m = (struct mdev){ .dirfd = -1, .iommu_group = -1 };
	uuid_lower(uuid, lower);
	if (asprintf(&in, "%s/%s/%s", ctx->sysfs_real, SYSFS_MDEV_DEVICES, lower) < 0)
		return -ENOMEM;
	if (!exists_at(AT_FDCWD, in))
		return -ENOENT;
	free(in);
	in = NULL;
	if (asprintf(&in, "%s/%s/%s", VFIOD_DEFAULT_SYSFS_ROOT, SYSFS_MDEV_DEVICES, lower) < 0)
		return -ENOMEM;
	r = sysfs_canonicalize(ctx, in, &logical, &real);
	if (r < 0)
		return -ENOENT; /* went away meanwhile */
	return mdev_fill(lower, logical, real, m);
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *mdev_json(const struct mdev *m)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "kind", json_string("mdev"));
	json_object_set_new(o, "name", json_string(m->uuid));
	json_object_set_new(o, "device", json_string(m->syspath));
	json_object_set_new(o, "parent", string_or_null(m->parent));
	json_object_set_new(o, "type", string_or_null(m->type));
	json_object_set_new(o, "iommu_group",
			    m->iommu_group >= 0 ? json_integer(m->iommu_group) : json_null());
	json_object_set_new(o, "vfio",
			    vfio_nodes_json(m->dirfd, m->iommu_group, m->driver != NULL));
	json_object_set_new(o, "driver", string_or_null(m->driver));
	return o;
}

/* The UUID PATH names, if any: a UUID, or a path whose last component is one. */
static bool path_uuid(const char *path, char out[UUID_LEN + 1])
{
	size_t len = strlen(path);
	const char *base;

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len < UUID_LEN)
		return false;
	base = path + len - UUID_LEN;
	if (base != path && base[-1] != '/')
		return false;
	if (base == path && len != UUID_LEN)
		return false;
	memcpy(out, base, UUID_LEN);
	out[UUID_LEN] = '\0';
	if (!uuid_valid(out))
		return false;
	uuid_lower(out, out);
	return true;
}

/*
 * The mdev PATH names: 1 and M filled, 0 when PATH is not an mdev's, or a
 * negative errno (-ENOENT when it names an mdev that does not exist).
 */
static int mdev_lookup(struct vfiod_ctx *ctx, const char *path, struct mdev *m)
{
	_cleanup_free_ char *logical = NULL, *real = NULL;
	char uuid[UUID_LEN + 1], busdir[64];
	int r;

	*m = (struct mdev){ .dirfd = -1, .iommu_group = -1 };
	if (!path || !path_uuid(path, uuid))
		return 0;
	snprintf(busdir, sizeof(busdir), "%s/%s/", VFIOD_DEFAULT_SYSFS_ROOT, SYSFS_MDEV_DEVICES);
	if (path[0] != '/' || !strncmp(path, busdir, strlen(busdir))) {
		r = mdev_by_uuid(ctx, uuid, m);
		if (r < 0)
			mdev_done(m);
		if (r == -ENOENT)
			return vfiod_error(ctx, r, "%s: no such mdev (%s has no %s)", path,
					   "/sys/" SYSFS_MDEV_DEVICES, uuid);
		if (r < 0)
			return vfiod_error(ctx, r, "%s: %s", path, strerror(-r));
		return 1;
	}
	/* A path under /sys/devices: an mdev only if its subsystem says so. */
	r = sysfs_canonicalize(ctx, path, &logical, &real);
	if (r < 0)
		return r == -ENOENT ? vfiod_error(ctx, r, "%s: no such mdev", path) : r;
	r = mdev_fill(uuid, logical, real, m);
	if (r < 0)
		mdev_done(m);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return vfiod_error(ctx, r, "%s: %s", path, strerror(-r));
	return 1;
}

/* Write "1" to the mdev's "remove", then see it gone. */
static int mdev_remove(const struct mdev *m, int parentfd)
{
	const struct timespec tick = { 0, 5 * 1000 * 1000 };
	int r = write_attr(m->dirfd, ATTR_MDEV_REMOVE, "1");

	if (r < 0)
		return r;
	/* The kernel removes it in the write; a moment's grace for slow removals. */
	for (int i = 0; i < 200; i++) {
		if (parentfd < 0 || !exists_at(parentfd, m->uuid))
			return 0;
		nanosleep(&tick, NULL);
	}
	return -EBUSY;
}

/* Vendor attributes */

/*
 * Names no component of an attribute may have: files that act when written
 * (remove the device, announce it again, change its power state, bind or
 * unbind a driver, reset it, rescan a bus, set a VF count, take it online)
 * and the links of a device directory.  Every device and class device below
 * an mdev (vfio-dev/vfio0, say) has its own uevent and power/, so a name is
 * refused wherever it appears, not only at the top.  man vfioctl(8) lists
 * them with the reason for each.
 */
static const char *const attr_banned[] = {
	ATTR_MDEV_REMOVE,     ATTR_UEVENT,	    ATTR_POWER_DIR,
	ATTR_BIND,	      ATTR_UNBIND,	    ATTR_DRIVER_OVERRIDE,
	ATTR_NEW_ID,	      ATTR_REMOVE_ID,	    ATTR_RESET,
	ATTR_RESET_METHOD,    ATTR_RESCAN,	    ATTR_ONLINE,
	ATTR_MDEV_CREATE,     ATTR_SRIOV_NUMVFS,    ATTR_SRIOV_DRIVERS_AUTOPROBE,
	ATTR_DRIVERS_PROBE,   ATTR_DRIVERS_AUTOPROBE, ATTR_DRIVER,
	ATTR_SUBSYSTEM,	      ATTR_IOMMU_GROUP,	    ATTR_MDEV_TYPE,
};

/*
 * An attribute name relative to the mdev: one or more components, none
 * empty, "." or "..", and none of attr_banned.
 */
bool mdev_attr_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (!len || len >= PATH_MAX || name[0] == '/' || name[len - 1] == '/')
		return false;
	for (const char *c = name; *c;) {
		size_t l = strcspn(c, "/");

		if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		for (size_t i = 0; i < ARRAY_SIZE(attr_banned); i++)
			if (strlen(attr_banned[i]) == l && !strncmp(c, attr_banned[i], l))
				return false;
		c += l;
		if (*c)
			c++;
	}
	return true;
}

/*
 * Each NAME (K) and VALUE (V) of the attrs list A, in order: [{"name":
 * "value"}, ...], a name as often as given (options_check() made it so).
 */
#define attrs_foreach(a, i, e, k, v)                                                               \
	json_array_foreach(a, i, e)                                                                \
		json_object_foreach(e, k, v)

static int check_attrs(struct vfiod_ctx *ctx, const char *where, json_t *attrs)
{
	const char *k;
	json_t *e, *v;
	size_t i;

	attrs_foreach(attrs, i, e, k, v) {
		if (!mdev_attr_name_valid(k))
			return vfiod_error(ctx, -EINVAL,
					   "%s: \"%s\" is not an mdev attribute name (a path below "
					   "the mdev without \"..\", no part of it a file that acts "
					   "when written or a link: remove, uevent, power, bind, "
					   "driver_override, reset, ...; see vfioctl(8))",
					   where, k);
		if (!json_is_string(v))
			return vfiod_error(ctx, -EINVAL, "%s: attribute %s needs a string value",
					   where, k);
	}
	return 0;
}

/*
 * NAME below DIRFD, never through a link (driver/, subsystem/, a definition
 * pointing at /etc/shadow), never outside DIRFD.  Without openat2 (before
 * Linux 5.6, or a seccomp filter that refuses it) only a single component
 * is opened, with O_NOFOLLOW: that cannot leave DIRFD either.
 */
static int open_beneath(int dirfd, const char *name, int flags)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	int err = errno;

	if (fd >= 0)
		return fd;
	if (err != ENOSYS && err != EPERM)
		return -err;
	if (strchr(name, '/') || streq(name, "..") || streq(name, "."))
		return err == EPERM ? -EPERM : -EOPNOTSUPP;
	fd = openat(dirfd, name, how.flags);
	return fd < 0 ? negative_errno() : fd;
}

static int attr_write(int dirfd, const char *name, const char *value)
{
	_cleanup_close_ int fd = open_beneath(dirfd, name, O_WRONLY);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = write(fd, value, len);
	if (n < 0)
		return negative_errno();
	return (size_t)n == len ? 0 : -EIO;
}

/* Options and target */

/* The UUID of OPTS, checked and lower-cased into OUT; generated when absent. */
static int opts_uuid(struct vfiod_ctx *ctx, json_t *opts, bool generate, char out[UUID_LEN + 1])
{
	const char *u = opt_str(opts, "uuid", NULL);
	int r;

	if (u) {
		if (!uuid_valid(u))
			return vfiod_error(ctx, -EINVAL,
					   "uuid \"%s\" is not a UUID (8-4-4-4-12 hex digits, e.g. "
					   "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003)",
					   u);
		uuid_lower(u, out);
		return 0;
	}
	if (!generate)
		return vfiod_error(ctx, -EINVAL, "no uuid given");
	r = uuid_generate(out);
	return r < 0 ? vfiod_error(ctx, r, "cannot generate a UUID: %s", strerror(-r)) : 0;
}

/*
 * The parent's hardware; a parent that is no PCI function (a sample driver's)
 * by its path.  Shared: the kernel makes and removes one parent's mdevs side
 * by side (mdev_device_create() holds the mdev list lock only to check the
 * UUID and count the instance, and the parent's unregistration lock for
 * reading), so only what changes the parent itself needs the key alone.
 */
static int set_key(struct vfiod_ctx *ctx, struct target *t, const char *parent)
{
	_cleanup_free_ char *fallback = NULL;
	int r;

	t->key_shared = true;
	if (asprintf(&fallback, "mdev:%s", parent) < 0)
		return -ENOMEM;
	r = hardware_key(ctx, parent, &t->key);
	if (r >= 0 && !t->key)
		t->key = TAKE_PTR(fallback);
	return r < 0 ? r : 0;
}

static int mdev_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
		       struct target *t)
{
	char uuid[UUID_LEN + 1], *full = NULL;
	struct parent p;
	struct mdev m;
	bool short_form;
	int r;

	if (destroy) {
		r = mdev_lookup(ctx, path, &m);
		if (r <= 0)
			return r;
		t->device = strdup(m.syspath);
		t->name = strdup(m.uuid);
		t->iommu_group = m.iommu_group;
		r = t->device && t->name ? set_key(ctx, t, m.parent) : -ENOMEM;
		mdev_done(&m);
		return r < 0 ? r : 1;
	}

	r = opts_uuid(ctx, opts, true, uuid);
	if (r < 0)
		return r;
	r = parent_open(ctx, path, &p);
	if (r >= 0)
		r = type_resolve(ctx, &p, opt_str(opts, "type", ""), &full, &short_form);
	if (r >= 0)
		r = check_attrs(ctx, p.syspath, json_object_get(opts, "attrs"));
	if (r >= 0) {
		/* Named before it starts: the caller can journal the UUID. */
		json_object_set_new(opts, "uuid", json_string(uuid));
		t->device = strdup(p.syspath);
		t->name = strdup(uuid);
		r = t->device && t->name ? set_key(ctx, t, p.syspath) : -ENOMEM;
	}
	free(full);
	parent_done(&p);
	return r < 0 ? r : 1;
}

/* Create */

/* vfio and its type1 IOMMU, so that /dev/vfio/N opens; on the real /sys only. */
static void load_modules(struct vfiod_ctx *ctx)
{
	static const char *const modules[] = { MODULE_VFIO, MODULE_VFIO_IOMMU_TYPE1 };

	if (!streq(ctx->sysfs_real, VFIOD_DEFAULT_SYSFS_ROOT))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(modules); i++)
		if (module_load(ctx, modules[i]) < 0)
			vfiod_log(ctx, LOG_WARNING, "%s, ignoring",
				  ctx->error[0] ? ctx->error : modules[i]);
	ctx->error[0] = '\0';
}

/* "in use by a, b" of a type, for messages. */
static void type_users(int typefd, char *buf, size_t size)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	size_t len = 0;

	buf[0] = '\0';
	if (dir_from_fd(open_dir_at(typefd, ATTR_MDEV_TYPE_DEVICES), &d) < 0)
		return;
	while ((de = readdir(d)))
		if (uuid_valid(de->d_name))
			len += snprintf(buf + len, len < size ? size - len : 0, "%s%s",
					len ? ", " : "; in use by ", de->d_name);
}

static int err_no_instance(struct vfiod_ctx *ctx, const struct parent *p, int typefd,
			   const char *type, const char *why)
{
	char users[512];

	type_users(typefd, users, sizeof(users));
	return vfiod_error(ctx, -ENOSPC, "%s: no instance of mdev type %s is available (%s%s)",
			   p->syspath, type, why, users);
}

static int err_exists(struct vfiod_ctx *ctx, const char *uuid, const struct mdev *m)
{
	return vfiod_error(ctx, -EEXIST, "mdev %s exists already: %s, of type %s on %s", uuid,
			   m->syspath, m->type ? m->type : "unknown", m->parent);
}

/* Undo a create: remove the mdev.  Best effort; says so when it fails. */
static void undo_create(struct vfiod_ctx *ctx, const struct mdev *m, int parentfd)
{
	char saved[sizeof(ctx->error)];
	int r;

	memcpy(saved, ctx->error, sizeof(saved));
	r = mdev_remove(m, parentfd);
	if (r < 0 && r != -ENOENT && r != -ENODEV) {
		vfiod_log(ctx, LOG_ERR, "%s: cannot remove it again: %s", m->syspath, strerror(-r));
		snprintf(ctx->error + strlen(ctx->error), sizeof(ctx->error) - strlen(ctx->error),
			 "; and removing %s again failed: %s", m->uuid, strerror(-r));
	} else {
		memcpy(ctx->error, saved, sizeof(saved));
		vfiod_log(ctx, LOG_WARNING, "%s: removed again", m->syspath);
	}
}

static int write_attrs(struct vfiod_ctx *ctx, const struct mdev *m, json_t *attrs)
{
	const char *k;
	json_t *e, *v;
	size_t i;

	attrs_foreach(attrs, i, e, k, v) {
		int r = attr_write(m->dirfd, k, json_string_value(v));

		if (r == -ENOENT || r == -ENOTDIR)
			return vfiod_error(ctx, -EINVAL, "%s: mdev %s has no attribute %s", m->parent,
					   m->uuid, k);
		if (r == -ELOOP || r == -EXDEV)
			return vfiod_error(ctx, -EINVAL,
					   "%s: attribute %s of mdev %s is behind a link; not written",
					   m->parent, k, m->uuid);
		if (r < 0)
			return vfiod_error(ctx, r, "%s: mdev %s refused %s=\"%s\": %s", m->parent,
					   m->uuid, k, json_string_value(v), strerror(-r));
	}
	return 0;
}

/* The mdev just made under P, opened. */
static int mdev_opened(struct vfiod_ctx *ctx, const struct parent *p, const char *uuid,
		       struct mdev *m)
{
	_cleanup_free_ char *logical = NULL, *real = NULL;
	int r;

	if (asprintf(&logical, "%s/%s", p->syspath, uuid) < 0 ||
	    asprintf(&real, "%s%s", ctx->sysfs_real,
		     logical + strlen(VFIOD_DEFAULT_SYSFS_ROOT)) < 0)
		return -ENOMEM;
	r = mdev_fill(uuid, logical, real, m);
	if (r == -ENOENT)
		return vfiod_error(ctx, -ENODEV, "%s: mdev %s is gone right after its create "
				   "(the parent went away?)", p->syspath, uuid);
	if (r < 0)
		return vfiod_error(ctx, r, "%s: cannot open the new mdev %s: %s", p->syspath, uuid,
				   strerror(-r));
	return 0;
}

static int create_verify(struct vfiod_ctx *ctx, struct mdev *m)
{
	/* The mdev core binds the parent's vfio driver in the create; see it did. */
	free(m->driver);
	m->driver = NULL;
	if (read_link_name(m->dirfd, ATTR_DRIVER, &m->driver) < 0)
		return vfiod_error(ctx, -EIO, "%s: no driver bound to the new mdev; see dmesg",
				   m->syspath);
	return 0;
}

static int mdev_create(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	_cleanup_free_ char *type = NULL;
	_cleanup_close_ int typefd = -1;
	char uuid[UUID_LEN + 1];
	json_t *attrs = json_object_get(opts, "attrs");
	struct parent p;
	struct mdev m = { .dirfd = -1 }, old;
	unsigned int avail;
	bool short_form;
	int r;

	r = opts_uuid(ctx, opts, true, uuid);
	if (r < 0)
		return r;
	r = parent_open(ctx, path, &p);
	if (r >= 0)
		r = type_resolve(ctx, &p, opt_str(opts, "type", ""), &type, &short_form);
	if (r >= 0)
		r = check_attrs(ctx, p.syspath, attrs);
	if (r < 0)
		goto out;

	/* Already there: as asked is no change, anything else a conflict. */
	r = mdev_by_uuid(ctx, uuid, &old);
	if (r >= 0) {
		if (streq(old.parent, p.syspath) && old.type && streq(old.type, type) &&
		    json_array_size(attrs) == 0) {
			*ret = mdev_json(&old);
			json_object_set_new(*ret, "changed", json_false());
			r = *ret ? 1 : -ENOMEM;
		} else {
			r = err_exists(ctx, uuid, &old);
		}
		mdev_done(&old);
		goto out;
	}
	mdev_done(&old);

	typefd = open_dir_at(p.typesfd, type);
	if (typefd < 0) {
		r = vfiod_error(ctx, typefd == -ENOENT ? -ENODEV : typefd,
				"%s: mdev type %s went away: %s", p.syspath, type, strerror(-typefd));
		goto out;
	}
	r = read_attr_uint(typefd, ATTR_MDEV_AVAILABLE, &avail);
	if (r < 0) {
		r = vfiod_error(ctx, r == -ENOENT ? -ENODEV : r, "%s: cannot read %s of type %s: %s",
				p.syspath, ATTR_MDEV_AVAILABLE, type, strerror(-r));
		goto out;
	}
	if (avail == 0) {
		r = err_no_instance(ctx, &p, typefd, type, "available_instances is 0");
		goto out;
	}

	load_modules(ctx);

	r = vfiod_step(ctx, OP_CREATE, uuid, "create");
	if (r < 0)
		goto out;
	r = write_attr(typefd, ATTR_MDEV_CREATE, uuid);
	if (r < 0) {
		/* The kernel undoes a failed create itself: nothing is left to remove. */
		switch (r) {
		case -EEXIST:
			if (mdev_by_uuid(ctx, uuid, &old) >= 0)
				r = err_exists(ctx, uuid, &old);
			else
				r = vfiod_error(ctx, r, "mdev %s exists already", uuid);
			mdev_done(&old);
			break;
		case -EUSERS:
		case -ENOSPC:
			r = err_no_instance(ctx, &p, typefd, type, "the kernel refused one more");
			break;
		case -ENOENT:
		case -ENODEV:
			r = vfiod_error(ctx, -ENODEV, "%s: the parent went away while creating mdev "
					"%s", p.syspath, uuid);
			break;
		default:
			r = vfiod_error(ctx, r, "%s: cannot create mdev %s of type %s: %s",
					p.syspath, uuid, type, strerror(-r));
		}
		goto out;
	}
	r = mdev_opened(ctx, &p, uuid, &m);
	if (r < 0)
		goto out;

	r = vfiod_step(ctx, OP_CREATE, uuid, "attrs");
	if (r >= 0)
		r = write_attrs(ctx, &m, attrs);
	if (r >= 0)
		r = vfiod_step(ctx, OP_CREATE, uuid, "verify");
	if (r >= 0)
		r = create_verify(ctx, &m);
	if (r < 0) {
		/* Gone under us (its parent unregistered, say): nothing is left to undo. */
		if (!exists_at(p.dirfd, uuid))
			r = vfiod_error(ctx, -ENODEV, "%s: mdev %s went away while being set up "
					"(the parent went away?)", p.syspath, uuid);
		else
			undo_create(ctx, &m, p.dirfd);
		goto out;
	}

	vfiod_log(ctx, LOG_INFO, "%s: mdev %s of type %s created", p.syspath, uuid, type);
	*ret = mdev_json(&m);
	if (!*ret) {
		r = -ENOMEM;
		goto out;
	}
	json_object_set_new(*ret, "changed", json_true());
	if (json_array_size(attrs))
		json_object_set(*ret, "attrs", attrs);
	if (short_form) {
		char note[512];

		snprintf(note, sizeof(note), "type \"%s\" taken as %s",
			 opt_str(opts, "type", ""), type);
		json_object_set_new(*ret, "note", json_string(note));
	}
	r = 0;
out:
	mdev_done(&m);
	parent_done(&p);
	return r;
}

/* Destroy */

static int mdev_destroy(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	_cleanup_close_ int parentfd = -1;
	_cleanup_free_ char *real = NULL, *waited = NULL;
	struct mdev m;
	int r;

	r = mdev_lookup(ctx, path, &m);
	if (r == 0)
		return vfiod_error(ctx, -ENOENT, "%s: not an mdev", path);
	if (r < 0)
		return r;
	/*
	 * A VM with the mdev's group open keeps remove waiting: say who, at
	 * once; forced, wait for it to let go first, with an end to the wait.
	 */
	r = inuse_destroy_wait_syspath(ctx, m.syspath, m.syspath, opt_bool(opts, "force", false),
				       INUSE_DESTROY_WAIT_MS, &waited);
	if (r < 0) {
		mdev_done(&m);
		return r;
	}
	if (asprintf(&real, "%s%s", ctx->sysfs_real,
		     m.parent + strlen(VFIOD_DEFAULT_SYSFS_ROOT)) >= 0)
		parentfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	r = vfiod_step(ctx, OP_DESTROY, m.uuid, "remove");
	if (r >= 0) {
		r = mdev_remove(&m, parentfd);
		if (r == -ENOENT || r == -ENODEV)
			r = vfiod_error(ctx, -ENOENT, "%s: mdev %s went away before its remove",
					m.parent, m.uuid);
		else if (r == -EBUSY)
			r = vfiod_error(ctx, r, "%s: still there after remove", m.syspath);
		else if (r < 0)
			r = vfiod_error(ctx, r, "%s: cannot remove: %s", m.syspath, strerror(-r));
	}
	if (r >= 0) {
		vfiod_log(ctx, LOG_INFO, "%s: removed", m.syspath);
		*ret = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:b}", "kind", "mdev", "name", m.uuid,
				 "device", m.syspath, "parent", m.parent, "type", m.type,
				 "changed", 1);
		if (!*ret)
			r = -ENOMEM;
		else if (waited)
			json_object_set_new(*ret, "note", json_string(waited));
	}
	mdev_done(&m);
	return r;
}

/* List */

static int mdev_list(struct vfiod_ctx *ctx, json_t *a)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int r;

	r = dir_from_fd(root_open(ctx, SYSFS_MDEV_DEVICES, O_RDONLY | O_DIRECTORY), &d);
	if (r == -ENOENT)
		return 0; /* no mdev core loaded: no mdevs */
	if (r < 0)
		return vfiod_error(ctx, r, "/sys/%s: %s", SYSFS_MDEV_DEVICES, strerror(-r));
	while ((de = readdir(d))) {
		char **nv;

		if (!uuid_valid(de->d_name))
			continue;
		nv = realloc(names, (n + 2) * sizeof(*names));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			free(nv ? nv : names);
			return -ENOMEM;
		}
		names = nv;
		names[++n] = NULL;
	}
	if (names)
		qsort(names, n, sizeof(*names), strv_cmp);
	for (size_t i = 0; i < n; i++) {
		struct mdev m;
		json_t *o;

		if (mdev_by_uuid(ctx, names[i], &m) >= 0 && (o = mdev_json(&m))) {
			json_object_set_new(o, "state", json_string("active"));
			json_array_append_new(a, o);
		}
		mdev_done(&m);
	}
	strv_free(names);
	return 0;
}

/* Show: the mdev with its parent and its type as sysfs has them, and vfiod's record. */
static int mdev_show(struct vfiod_ctx *ctx, const char *path, json_t **ret)
{
	const char *pname;
	struct mdev m;
	json_t *o;
	int r;

	r = mdev_lookup(ctx, path, &m);
	if (r <= 0)
		return r;
	o = mdev_json(&m);
	if (!o) {
		mdev_done(&m);
		return -ENOMEM;
	}
	pname = strrchr(m.parent, '/');
	json_object_set_new(o, "uuid", json_string(m.uuid));
	json_object_set_new(o, "parent",
			    json_pack("{s:s, s:s}", "name", pname ? pname + 1 : m.parent, "device",
				      m.parent));
	json_object_set_new(o, "type",
			    m.type ? type_json(m.dirfd, ATTR_MDEV_TYPE, m.type) ?: json_null()
				   : json_null());
	json_object_set_new(o, "assigned", held_json(ctx, m.uuid));
	mdev_done(&m);
	*ret = o;
	return 1;
}

const struct kind kind_mdev = {
	.name = "mdev",
	.selector = "type",
	.target = mdev_target,
	.create = mdev_create,
	.destroy = mdev_destroy,
	.list = mdev_list,
	.show = mdev_show,
};

/* mdevctl's persistent definitions: DIR/<parent>/<uuid>, JSON. */

#define MDEVCTL_MAX_FILE (64 * 1024)

/*
 * mdevctl's "attrs": [{"name": "value"}, ...], in the order they are written,
 * a name as often as the vendor wants it (vfio_ap's assign_adapter); absent
 * or null: none.  Kept as it is; *WHY says what is wrong, never quoting the
 * file (it may be anything).
 */
static json_t *mdevctl_attrs(json_t *v, char *why, size_t size)
{
	json_t *attrs = json_array(), *e;
	size_t i;

	if (!attrs || !v || json_is_null(v))
		return attrs;
	if (!json_is_array(v)) {
		snprintf(why, size, "\"attrs\" is not an array");
		goto fail;
	}
	json_array_foreach(v, i, e) {
		const char *k;
		json_t *val;

		if (!json_is_object(e) || json_object_size(e) != 1) {
			snprintf(why, size, "attrs[%zu] is not an object of one {\"name\": \"value\"}",
				 i);
			goto fail;
		}
		json_object_foreach(e, k, val) {
			if (!json_is_string(val)) {
				snprintf(why, size, "attrs[%zu]: the value is not a string", i);
				goto fail;
			}
			if (!mdev_attr_name_valid(k)) {
				snprintf(why, size, "attrs[%zu]: the name is not one vfiod writes (a "
					 "path below the mdev, no file that acts when written; see "
					 "vfioctl(8))", i);
				goto fail;
			}
		}
		json_array_append(attrs, e);
	}
	return attrs;
fail:
	json_decref(attrs);
	return NULL;
}

/* FILE's definition, opened in PDIRFD (never through a link) and parsed; *WHY when not. */
static json_t *mdevctl_load(int pdirfd, const char *file, int64_t *mtime_ns, char *why,
			    size_t size)
{
	_cleanup_close_ int fd = open_beneath(pdirfd, file, O_RDONLY | O_NONBLOCK);
	json_error_t jerr;
	struct stat st;
	json_t *def;

	if (fd == -ELOOP) {
		snprintf(why, size, "a symbolic link; not followed");
		return NULL;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, size, "cannot read it: %s", strerror(fd < 0 ? -fd : errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, size, "not a regular file");
		return NULL;
	}
	if (st.st_size > MDEVCTL_MAX_FILE) {
		snprintf(why, size, "larger than %d bytes", MDEVCTL_MAX_FILE);
		return NULL;
	}
	*mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	def = json_loadfd(fd, 0, &jerr);
	if (!def) {
		/* jansson's text quotes the file ("near 'root'"): give the place only. */
		snprintf(why, size, "not JSON (line %d, column %d)", jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(def)) {
		snprintf(why, size, "not a JSON object");
		json_decref(def);
		return NULL;
	}
	return def;
}

/* One definition file, or an entry with "error" naming what is wrong with it. */
static json_t *mdevctl_entry(int pdirfd, const char *dir, const char *parent, const char *file)
{
	_cleanup_free_ char *source = NULL, *parent_path = NULL;
	char uuid[UUID_LEN + 1], why[512] = "";
	json_t *o, *def = NULL, *attrs = NULL;
	const char *type = NULL, *start = NULL;
	int64_t mtime_ns = 0;

	o = json_object();
	if (!o || asprintf(&source, "%s/%s/%s", dir, parent, file) < 0 ||
	    asprintf(&parent_path, "%s/%s/%s", VFIOD_DEFAULT_SYSFS_ROOT, SYSFS_MDEV_BUS_CLASS,
		     parent) < 0) {
		json_decref(o);
		return NULL;
	}
	if (uuid_valid(file)) {
		uuid_lower(file, uuid);
		json_object_set_new(o, "uuid", json_string(uuid));
	}
	json_object_set_new(o, "parent", json_string(parent));
	json_object_set_new(o, "parent_path", json_string(parent_path));
	json_object_set_new(o, "source", json_string(source));

	if (!uuid_valid(file)) {
		snprintf(why, sizeof(why), "file name \"%s\" is not a UUID", file);
		goto fail;
	}
	def = mdevctl_load(pdirfd, file, &mtime_ns, why, sizeof(why));
	if (!def)
		goto fail;
	type = json_string_value(json_object_get(def, "mdev_type"));
	if (!type || !*type) {
		snprintf(why, sizeof(why), "no \"mdev_type\" string");
		goto fail;
	}
	start = json_string_value(json_object_get(def, "start"));
	if (!start || (!streq(start, "auto") && !streq(start, "manual"))) {
		snprintf(why, sizeof(why), "\"start\" must be \"auto\" or \"manual\"");
		goto fail;
	}
	attrs = mdevctl_attrs(json_object_get(def, "attrs"), why, sizeof(why));
	if (!attrs)
		goto fail;
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "start", json_string(start));
	json_object_set_new(o, "attrs", attrs);
	json_object_set_new(o, "mtime_ns", json_integer(mtime_ns));
	json_decref(def);
	return o;
fail:
	json_decref(def);
	json_object_set_new(o, "error", json_string(why[0] ? why : "out of memory"));
	return o;
}

/*
 * The entries of DIRFD (not consumed): directories (WANT_DIR) or regular
 * files, and symbolic links either way (refused by their reader), sorted.
 */
static int list_entries(int dirfd, bool want_dir, char ***ret)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	char **v;
	size_t n = 0;
	int r;

	r = dir_from_fd(open_dir_at(dirfd, "."), &d);
	if (r < 0)
		return r;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	while ((de = readdir(d))) {
		struct stat st;
		char **nv;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISLNK(st.st_mode) && (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)))
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			if (nv)
				v = nv;
			strv_free(v);
			return -ENOMEM;
		}
		v = nv;
		v[++n] = NULL;
	}
	qsort(v, n, sizeof(*v), strv_cmp);
	*ret = v;
	return 0;
}

/* The entries of the parent folder PARENT of DIR (opened as TOPFD) onto A. */
static int mdevctl_parent(int topfd, const char *dir, const char *parent, json_t *a)
{
	_cleanup_close_ int pdirfd = open_beneath(topfd, parent, O_RDONLY | O_DIRECTORY);
	_cleanup_free_ char *pdir = NULL;
	char **files = NULL;
	int r = pdirfd;

	if (asprintf(&pdir, "%s/%s", dir, parent) < 0)
		return -ENOMEM;
	if (r >= 0)
		r = list_entries(pdirfd, false, &files);
	if (r < 0) {
		json_t *e = json_pack("{s:s, s:s, s:s}", "parent", parent, "source", pdir, "error",
				      /* O_DIRECTORY | O_NOFOLLOW on a link: ENOTDIR */
				      r == -ELOOP || r == -ENOTDIR ? "a symbolic link; not followed"
								   : strerror(-r));

		return e && json_array_append_new(a, e) == 0 ? 0 : -ENOMEM;
	}
	for (char **f = files; *f && r >= 0; f++) {
		json_t *e = mdevctl_entry(pdirfd, dir, parent, *f);

		r = e && json_array_append_new(a, e) == 0 ? 0 : -ENOMEM;
	}
	strv_free(files);
	return r;
}

/*
 * vfiod names a definition by its UUID, and one UUID is one mdev in sysfs:
 * of two files with the same UUID (under two parents, as mdevctl allows, or
 * in upper and lower case), the first read is taken and the other refused,
 * saying which it lost to.
 */
static void mark_duplicates(json_t *a)
{
	json_t *e, *f;
	size_t i, k;

	json_array_foreach(a, i, e) {
		const char *u = json_string_value(json_object_get(e, "uuid"));

		if (!u || json_object_get(e, "error"))
			continue;
		for (k = 0; k < i; k++) {
			char why[PATH_MAX + 200];
			const char *fp, *ep;

			f = json_array_get(a, k);
			if (json_object_get(f, "error") ||
			    !streq(json_string_value(json_object_get(f, "uuid")) ?: "", u))
				continue;
			fp = json_string_value(json_object_get(f, "parent"));
			ep = json_string_value(json_object_get(e, "parent"));
			if (!streq(fp, ep))
				snprintf(why, sizeof(why), "UUID %s is defined under parent %s too "
					 "(%s), read first; vfiod keeps one definition a UUID", u,
					 fp, json_string_value(json_object_get(f, "source")));
			else
				snprintf(why, sizeof(why), "the same UUID as %s, in another case "
					 "(UUIDs are compared without case), read first",
					 json_string_value(json_object_get(f, "source")));
			json_object_set_new(e, "error", json_string(why));
			break;
		}
	}
}

_public_ int vfiod_mdevctl_read(struct vfiod_ctx *ctx, const char *dir, char **ret)
{
	_cleanup_free_ char *d = NULL;
	_cleanup_close_ int topfd = -1;
	char **parents = NULL;
	json_t *a;
	int r;

	ctx->error[0] = '\0';
	d = dir ? strdup(dir) : dir_from_env(VFIOD_ENV_MDEVCTL_DIR, VFIOD_DEFAULT_MDEVCTL_DIR);
	if (!d)
		return -ENOMEM;
	a = json_array();
	if (!a)
		return -ENOMEM;
	/* The directory itself is the administrator's to choose, a link or not. */
	topfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = topfd < 0 ? negative_errno() : list_entries(topfd, true, &parents);
	if (r == -ENOENT) {
		/* No mdevctl here: no definitions. */
		return json_dump_to(a, ret);
	}
	if (r < 0) {
		json_decref(a);
		return vfiod_error(ctx, r, "%s: %s", d, strerror(-r));
	}
	for (char **p = parents; *p && r >= 0; p++)
		/* mdevctl keeps its callout scripts there, not definitions. */
		if (!streq(*p, MDEVCTL_SCRIPTS_DIR))
			r = mdevctl_parent(topfd, d, *p, a);
	strv_free(parents);
	if (r < 0) {
		json_decref(a);
		return r;
	}
	mark_duplicates(a);
	return json_dump_to(a, ret);
}
