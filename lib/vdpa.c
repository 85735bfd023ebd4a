/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vdpa devices, made on a management device through the kernel's "vdpa"
 * generic netlink family (<linux/vdpa.h>; iproute2's `vdpa dev add`) and
 * bound to vhost_vdpa (the default: /dev/vhost-vdpa-N for a VMM) or to
 * virtio_vdpa (a virtio device for the host itself) through the vdpa bus's
 * driver_override.
 *
 * create: load-module (vdpa), dev-new, set-override, load-module (the
 * driver), unbind (whatever took the device first), probe, verify.  A
 * failure after dev-new deletes the device again.  destroy: dev-del.
 *
 * A management device is named as `vdpa mgmtdev show` does ("vduse",
 * "pci/0000:08:00.0", "auxiliary/mlx5_core.sf.2") or by its sysfs path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/vdpa.h>
#include <linux/virtio_ids.h>

#include "internal.h"
#include "inuse.h"
#include "kinds.h"
#include "netlink.h"

#define OP_CREATE "vdpa-create"
#define OP_DESTROY "vdpa-destroy"

/*
 * Provisioned virtio features: VDPA_ATTR_DEV_FEATURES since Linux 6.0,
 * VDPA_ATTR_VDPA_DEV_SUPPORTED_FEATURES in older headers; the number is
 * the same.
 */
#define ATTR_DEV_FEATURES (VDPA_ATTR_DEV_VENDOR_ATTR_VALUE + 1)
#define ATTR_MAX ATTR_DEV_FEATURES

/*
 * A block device's config in VDPA_CMD_DEV_CONFIG_GET, as Linux 6.3 numbered
 * it after VDPA_ATTR_DEV_FEATURES; older headers (Debian 12's) lack them.
 * With headers that have them, the numbers are checked against theirs.
 */
enum {
	ATTR_BLK_CFG_CAPACITY = ATTR_DEV_FEATURES + 1, /* u64 */
	ATTR_BLK_CFG_SIZE_MAX,			       /* u32 */
	ATTR_BLK_CFG_BLK_SIZE,			       /* u32 */
	ATTR_BLK_CFG_SEG_MAX,			       /* u32 */
	ATTR_BLK_CFG_NUM_QUEUES,		       /* u16 */
	ATTR_BLK_CFG_PHY_BLK_EXP,		       /* u8 */
	ATTR_BLK_CFG_ALIGN_OFFSET,		       /* u8 */
	ATTR_BLK_CFG_MIN_IO_SIZE,		       /* u16 */
	ATTR_BLK_CFG_OPT_IO_SIZE,		       /* u32 */
	ATTR_BLK_CFG_MAX_DISCARD_SEC,		       /* u32 */
	ATTR_BLK_CFG_MAX_DISCARD_SEG,		       /* u32 */
	ATTR_BLK_CFG_DISCARD_SEC_ALIGN,		       /* u32 */
	ATTR_BLK_CFG_MAX_WRITE_ZEROES_SEC,	       /* u32 */
	ATTR_BLK_CFG_MAX_WRITE_ZEROES_SEG,	       /* u32 */
	ATTR_BLK_READ_ONLY,			       /* u8 */
	ATTR_BLK_FLUSH,				       /* u8 */
	ATTR_CONFIG_MAX = ATTR_BLK_FLUSH,
};

#ifdef HAVE_VDPA_ATTR_DEV_BLK_FLUSH
_Static_assert(ATTR_BLK_CFG_CAPACITY == VDPA_ATTR_DEV_BLK_CFG_CAPACITY &&
		       ATTR_BLK_FLUSH == VDPA_ATTR_DEV_BLK_FLUSH,
	       "the vdpa block config attributes are numbered as <linux/vdpa.h> has them");
#endif

static struct nla_policy vdpa_policy[ATTR_MAX + 1] = {
	[VDPA_ATTR_MGMTDEV_BUS_NAME] = { .type = NLA_NUL_STRING },
	[VDPA_ATTR_MGMTDEV_DEV_NAME] = { .type = NLA_NUL_STRING },
	[VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES] = { .type = NLA_U64 },
	[VDPA_ATTR_DEV_NAME] = { .type = NLA_NUL_STRING },
	[VDPA_ATTR_DEV_ID] = { .type = NLA_U32 },
	[VDPA_ATTR_DEV_VENDOR_ID] = { .type = NLA_U32 },
	[VDPA_ATTR_DEV_MAX_VQS] = { .type = NLA_U32 },
	[VDPA_ATTR_DEV_MAX_VQ_SIZE] = { .type = NLA_U16 },
	[VDPA_ATTR_DEV_MIN_VQ_SIZE] = { .type = NLA_U16 },
	[VDPA_ATTR_DEV_MGMTDEV_MAX_VQS] = { .type = NLA_U32 },
	[VDPA_ATTR_DEV_SUPPORTED_FEATURES] = { .type = NLA_U64 },
};

/* What a management device name or path stands for. */
struct mgmtdev {
	char bus[64]; /* "" when the device is on no bus (vduse) */
	char dev[256];
};

static const char *mgmtdev_str(const struct mgmtdev *m, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", m->bus, m->bus[0] ? "/" : "", m->dev);
	return buf;
}

/* <root>/RELPATH as a logical "/sys/devices/..." path. */
int root_syspath(struct vfiod_ctx *ctx, const char *relpath, char **ret)
{
	_cleanup_free_ char *p = NULL, *real = NULL;
	size_t l = strlen(ctx->sysfs_real);

	if (asprintf(&p, "%s/%s", ctx->sysfs_real, relpath) < 0)
		return -ENOMEM;
	real = realpath(p, NULL);
	if (!real)
		return negative_errno();
	if (strncmp(real, ctx->sysfs_real, l) != 0 || real[l] != '/')
		return -EINVAL;
	return asprintf(ret, "%s%s", VFIOD_DEFAULT_SYSFS_ROOT, real + l) < 0 ? -ENOMEM : 0;
}

/* A device or driver name: one path component. */
static bool valid_name(const char *s)
{
	return s && *s && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..") &&
	       strlen(s) < NAME_MAX;
}

/* "bus/dev", "dev" or a sysfs path (its bus from the subsystem link). */
static int mgmtdev_parse(struct vfiod_ctx *ctx, const char *s, struct mgmtdev *m, char **syspath)
{
	const char *slash;

	*m = (struct mgmtdev){};
	*syspath = NULL;
	if (s[0] == '/') {
		_cleanup_free_ char *logical = NULL, *real = NULL;
		_cleanup_close_ int fd = -1;
		char link[PATH_MAX];
		const char *base, *sub;
		ssize_t n;
		int r;

		r = sysfs_canonicalize(ctx, s, &logical, &real);
		if (r < 0)
			return r;
		fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return vfiod_error(ctx, negative_errno(), "%s: %m", s);
		n = readlinkat(fd, ATTR_SUBSYSTEM, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		/* ".../bus/pci": a bus device; ".../class/vduse" or none: no bus. */
		sub = strrchr(link, '/');
		if (sub && sub - link >= 4 && strncmp(sub - 4, "/bus", 4) == 0)
			snprintf(m->bus, sizeof(m->bus), "%s", sub + 1);
		base = strrchr(logical, '/');
		snprintf(m->dev, sizeof(m->dev), "%s", base + 1);
		*syspath = TAKE_PTR(logical);
		return 0;
	}
	slash = strchr(s, '/');
	if (slash) {
		if ((size_t)(slash - s) >= sizeof(m->bus) || slash == s || !valid_name(slash + 1))
			return vfiod_error(ctx, -EINVAL,
					   "%s: not a vdpa management device (BUS/NAME, NAME "
					   "or a sysfs path)", s);
		snprintf(m->bus, sizeof(m->bus), "%.*s", (int)(slash - s), s);
		snprintf(m->dev, sizeof(m->dev), "%s", slash + 1);
	} else {
		if (!valid_name(s))
			return vfiod_error(ctx, -EINVAL, "\"%s\": not a vdpa management device", s);
		snprintf(m->dev, sizeof(m->dev), "%s", s);
	}
	if (m->bus[0]) {
		_cleanup_free_ char *rel = NULL;

		if (asprintf(&rel, "%s/%s/devices/%s", SYSFS_BUS, m->bus, m->dev) < 0)
			return -ENOMEM;
		(void)root_syspath(ctx, rel, syspath); /* NULL: the kernel will say */
	}
	return 0;
}

static int put_mgmtdev(struct nl_msg *msg, const struct mgmtdev *m)
{
	int r = 0;

	if (m->bus[0])
		r = nla_put_string(msg, VDPA_ATTR_MGMTDEV_BUS_NAME, m->bus);
	if (r >= 0)
		r = nla_put_string(msg, VDPA_ATTR_MGMTDEV_DEV_NAME, m->dev);
	return gnl_errno(r);
}

static int vdpa_open(struct vfiod_ctx *ctx, struct gnl **ret)
{
	int r = gnl_open(GENL_VDPA, ret);

	if (r == -ENOENT) {
		r = module_load(ctx, MODULE_VDPA);
		if (r < 0)
			return r;
	}
	return r < 0 ? gnl_open_ctx(ctx, GENL_VDPA, ret) : 0;
}

/* The vdpa device's directory, or a negative errno (-ENOENT: there is none). */
static int vdpa_dev_open(struct vfiod_ctx *ctx, const char *name)
{
	_cleanup_free_ char *rel = NULL;

	if (!valid_name(name))
		return -ENOENT;
	if (asprintf(&rel, "%s/%s", SYSFS_VDPA_DEVICES, name) < 0)
		return -ENOMEM;
	return root_open(ctx, rel, O_RDONLY | O_DIRECTORY);
}

/* The child "PREFIX*" of the directory DIRFD (vhost-vdpa-0, virtio1), or NULL. */
static char *child_named(int dirfd, const char *prefix)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	if (dir_from_fd(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), &d) < 0)
		return NULL;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			return strdup(de->d_name);
	return NULL;
}

/*
 * The vdpa device PATH names: its name, or a path whose last component is
 * one and that is that device's own, not a namesake elsewhere.  1 with
 * *NAME (pointing into PATH) and *SYSPATH, 0 when PATH names none.
 */
static int vdpa_named(struct vfiod_ctx *ctx, const char *path, const char **name, char **syspath)
{
	_cleanup_free_ char *rel = NULL, *logical = NULL, *real = NULL;
	_cleanup_close_ int fd = -1;
	const char *base = strrchr(path, '/');
	int r;

	*syspath = NULL;
	*name = base ? base + 1 : path;
	fd = vdpa_dev_open(ctx, *name);
	if (fd < 0)
		return fd == -ENOENT || fd == -ENOTDIR ? 0 : fd;
	if (asprintf(&rel, "%s/%s", SYSFS_VDPA_DEVICES, *name) < 0)
		return -ENOMEM;
	r = root_syspath(ctx, rel, syspath);
	if (r < 0)
		return base ? 0 : r;
	if (base) {
		r = sysfs_canonicalize(ctx, path, &logical, &real);
		if (r < 0)
			ctx->error[0] = '\0';
		if (r < 0 || !streq(*syspath, logical)) {
			free(*syspath);
			*syspath = NULL;
			return 0;
		}
	}
	return 1;
}

static const char *class_name(unsigned int id)
{
	switch (id) {
	case VIRTIO_ID_NET:
		return "net";
	case VIRTIO_ID_BLOCK:
		return "block";
	case VIRTIO_ID_CONSOLE:
		return "console";
	case VIRTIO_ID_CRYPTO:
		return "crypto";
	default:
		return NULL;
	}
}

static json_t *class_json(unsigned int id)
{
	const char *n = class_name(id);
	char buf[32];

	if (n)
		return json_string(n);
	snprintf(buf, sizeof(buf), "virtio-%u", id);
	return json_string(buf);
}

/* What a vdpa device is now: its driver and the node or virtio device it gave. */
static json_t *dev_json(struct vfiod_ctx *ctx, const char *name)
{
	_cleanup_free_ char *rel = NULL, *syspath = NULL, *driver = NULL, *child = NULL;
	_cleanup_close_ int fd = vdpa_dev_open(ctx, name);
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "kind", json_string("vdpa"));
	json_object_set_new(o, "name", json_string(name));
	if (asprintf(&rel, "%s/%s", SYSFS_VDPA_DEVICES, name) >= 0)
		(void)root_syspath(ctx, rel, &syspath);
	json_object_set_new(o, "device", syspath ? json_string(syspath) : json_null());
	if (fd < 0) {
		json_object_set_new(o, "state", json_string("gone"));
		return o;
	}
	(void)read_link_name(fd, ATTR_DRIVER, &driver);
	json_object_set_new(o, "driver", driver ? json_string(driver) : json_null());
	if (driver && streq(driver, DRIVER_VHOST_VDPA)) {
		child = child_named(fd, ATTR_VHOST_VDPA_PREFIX);
		if (child) {
			char node[NAME_MAX + 8];

			snprintf(node, sizeof(node), "%s%s", DEV_PREFIX, child);
			json_object_set_new(o, "node", json_string(node));
		}
	} else if (driver && streq(driver, DRIVER_VIRTIO_VDPA)) {
		child = child_named(fd, ATTR_VIRTIO_PREFIX);
		if (child)
			json_object_set_new(o, "virtio", json_string(child));
	}
	return o;
}

struct dev_info {
	json_t *a;		/* the dump: every device */
	char mgmtdev[320];	/* a GET: its management device */
	unsigned int id;	/* and its virtio id */
	struct gnl *g;
};

static int on_dev(struct nlmsghdr *nlh, void *data)
{
	struct dev_info *di = data;
	struct nlattr *tb[ATTR_MAX + 1];
	struct mgmtdev m = {};
	int r;

	r = gnl_parse(di->g, nlh, ATTR_MAX, vdpa_policy, tb);
	if (r < 0)
		return r;
	if (!tb[VDPA_ATTR_DEV_NAME] || !tb[VDPA_ATTR_MGMTDEV_DEV_NAME])
		return -EBADMSG;
	if (tb[VDPA_ATTR_MGMTDEV_BUS_NAME])
		snprintf(m.bus, sizeof(m.bus), "%s", nla_get_string(tb[VDPA_ATTR_MGMTDEV_BUS_NAME]));
	snprintf(m.dev, sizeof(m.dev), "%s", nla_get_string(tb[VDPA_ATTR_MGMTDEV_DEV_NAME]));
	mgmtdev_str(&m, di->mgmtdev, sizeof(di->mgmtdev));
	di->id = tb[VDPA_ATTR_DEV_ID] ? nla_get_u32(tb[VDPA_ATTR_DEV_ID]) : 0;
	if (di->a) {
		/* The list carries no context: names come from the kernel, not from us. */
		json_t *o = json_object();

		if (!o)
			return -ENOMEM;
		json_object_set_new(o, "name", json_string(nla_get_string(tb[VDPA_ATTR_DEV_NAME])));
		json_object_set_new(o, "mgmtdev", json_string(di->mgmtdev));
		json_object_set_new(o, "class", class_json(di->id));
		if (tb[VDPA_ATTR_DEV_MAX_VQS])
			json_object_set_new(o, "max_vqs",
					    json_integer(nla_get_u32(tb[VDPA_ATTR_DEV_MAX_VQS])));
		json_array_append_new(di->a, o);
	}
	return 0;
}

/* "00:11:22:33:44:55": exactly six bytes in hex. */
static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Exactly six octets of two hex digits each, ':'-separated: no sign, no
 * "0x", no short octet (sscanf's %2hhx took "-1" and "0x").  A unicast
 * address only: a device's own address cannot be multicast or all zeros.
 */
int mac_parse(const char *s, uint8_t mac[6], const char **why)
{
	const char *form = "not six two-digit hex octets like 00:11:22:33:44:55";

	if (strlen(s) != 17) {
		*why = form;
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':')) {
			*why = form;
			return -EINVAL;
		}
		mac[i] = hi << 4 | lo;
	}
	if (mac[0] & 1) {
		*why = "a multicast address (the low bit of the first octet is set); a device "
		       "needs a unicast one";
		return -EINVAL;
	}
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
		*why = "all zeros, which is no address";
		return -EINVAL;
	}
	return 0;
}

int mac_parse_for(struct vfiod_ctx *ctx, const char *name, const char *s, uint8_t mac[6])
{
	const char *why = NULL;

	if (mac_parse(s, mac, &why) < 0)
		return vfiod_error(ctx, -EINVAL, "%s: mac \"%s\" is %s", name, s, why);
	return 0;
}

void mac_str(const uint8_t *a, int len, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < len && off < size; i++)
		off += snprintf(buf + off, size - off, "%s%02x", i ? ":" : "", a[i]);
}

/* vhost_vdpa unless OPTS say virtio_vdpa; NULL for anything else. */
static const char *driver_choice(json_t *opts)
{
	const char *d = opt_str(opts, "driver", DRIVER_VHOST_VDPA);

	if (streq(d, DRIVER_VHOST_VDPA) || streq(d, "vhost-vdpa"))
		return DRIVER_VHOST_VDPA;
	if (streq(d, DRIVER_VIRTIO_VDPA) || streq(d, "virtio-vdpa"))
		return DRIVER_VIRTIO_VDPA;
	return NULL;
}

static int vdpa_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
		       struct target *t)
{
	_cleanup_free_ char *fallback = NULL;
	const char *name, *mac;
	struct mgmtdev m;
	uint8_t hw[6];
	int r;

	if (destroy) {
		r = vdpa_named(ctx, path, &name, &t->device);
		if (r <= 0)
			return r;
	} else {
		name = opt_str(opts, "vdpa", NULL);
		if (!valid_name(name))
			return vfiod_error(ctx, -EINVAL, "\"%s\" is not a valid vdpa device name",
					   name ? name : "");
		mac = opt_str(opts, "mac", NULL);
		if (mac && (r = mac_parse_for(ctx, name, mac, hw)) < 0)
			return r;
		r = mgmtdev_parse(ctx, path, &m, &t->device);
		if (r < 0)
			return r;
	}
	t->name = strdup(name);
	if (!t->name || asprintf(&fallback, "vdpa:%s", name) < 0)
		return -ENOMEM;
	/* A vdpa device of a PCI function (a VF, a subfunction's PF) waits for its other work. */
	r = target_set_key(ctx, t, fallback);
	return r < 0 ? r : 1;
}

/* The attributes of DEV_NEW from OPTS, checked for what we can tell ourselves. */
static int put_config(struct vfiod_ctx *ctx, struct nl_msg *msg, const char *name, json_t *opts)
{
	const char *mac = opt_str(opts, "mac", NULL);
	long long mtu = opt_uint(opts, "mtu"), vqp = opt_uint(opts, "max_vqp");
	json_t *features = json_object_get(opts, "features");
	int r = 0;

	if (mac) {
		uint8_t a[6];

		r = mac_parse_for(ctx, name, mac, a);
		if (r < 0)
			return r;
		r = nla_put(msg, VDPA_ATTR_DEV_NET_CFG_MACADDR, sizeof(a), a);
	}
	if (r >= 0 && mtu >= 0) {
		if (mtu > UINT16_MAX)
			return vfiod_error(ctx, -EINVAL, "%s: mtu %lld is out of range (at most %u)",
					   name, mtu, UINT16_MAX);
		r = nla_put_u16(msg, VDPA_ATTR_DEV_NET_CFG_MTU, (uint16_t)mtu);
	}
	if (r >= 0 && vqp >= 0) {
		if (vqp > UINT16_MAX)
			return vfiod_error(ctx, -EINVAL,
					   "%s: max_vqp %lld is out of range (at most %u)", name, vqp,
					   UINT16_MAX);
		r = nla_put_u16(msg, VDPA_ATTR_DEV_NET_CFG_MAX_VQP, (uint16_t)vqp);
	}
	if (r >= 0 && json_is_integer(features))
		r = nla_put_u64(msg, ATTR_DEV_FEATURES, (uint64_t)json_integer_value(features));
	return gnl_errno(r);
}

/* Request CMD about the device NAME, its answers to REPLY. */
static int dev_request(struct gnl *g, uint8_t cmd, const char *name, gnl_reply_fn reply,
		       void *data)
{
	struct nl_msg *msg;
	int r;

	r = gnl_request(g, cmd, 0, &msg);
	if (r < 0)
		return r;
	r = gnl_errno(nla_put_string(msg, VDPA_ATTR_DEV_NAME, name));
	if (r < 0) {
		nlmsg_free(msg);
		return r;
	}
	return gnl_transact(g, msg, reply, data);
}

static int dev_del(struct gnl *g, const char *name)
{
	return dev_request(g, VDPA_CMD_DEV_DEL, name, NULL, NULL);
}

/* Wait, bounded, for DRIVER to be bound to the device at FD (drivers may defer a probe). */
static int wait_driver(int fd, const char *driver)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (int i = 0; i < 200; i++) {
		_cleanup_free_ char *now = NULL;

		if (read_link_name(fd, ATTR_DRIVER, &now) >= 0 && streq(now, driver))
			return 0;
		nanosleep(&tick, NULL);
	}
	return -ETIMEDOUT;
}

/* Bind the new device NAME (directory FD) to DRIVER, and nothing else. */
static int bind_driver(struct vfiod_ctx *ctx, int fd, const char *name, const char *driver)
{
	_cleanup_free_ char *now = NULL;
	_cleanup_close_ int probe = -1;
	int r;

	r = vfiod_step(ctx, OP_CREATE, name, "set-override");
	if (r < 0)
		return r;
	r = write_attr(fd, ATTR_DRIVER_OVERRIDE, driver);
	if (r < 0)
		return vfiod_error(ctx, r, "vdpa device %s: cannot set driver_override: %s", name,
				   strerror(-r));
	r = vfiod_step(ctx, OP_CREATE, name, "load-module");
	if (r >= 0)
		r = module_load(ctx, streq(driver, DRIVER_VHOST_VDPA) ? MODULE_VHOST_VDPA
								  : MODULE_VIRTIO_VDPA);
	if (r < 0)
		return r;
	r = vfiod_step(ctx, OP_CREATE, name, "unbind");
	if (r < 0)
		return r;
	/* Another vdpa driver may have taken the device the moment it appeared. */
	if (read_link_name(fd, ATTR_DRIVER, &now) >= 0 && !streq(now, driver)) {
		r = write_attr(fd, ATTR_DRIVER_UNBIND, name);
		if (r < 0)
			return vfiod_error(ctx, r, "vdpa device %s: cannot unbind %s: %s", name, now,
					   strerror(-r));
	}
	r = vfiod_step(ctx, OP_CREATE, name, "probe");
	if (r < 0)
		return r;
	if (!now || !streq(now, driver)) {
		probe = root_open(ctx, SYSFS_VDPA_DRIVERS_PROBE, O_WRONLY | O_TRUNC);
		if (probe < 0 || write(probe, name, strlen(name)) < 0) {
			r = probe < 0 ? probe : negative_errno();
			/* ENODEV: no driver took it; verify says which. */
			if (r != -ENODEV)
				return vfiod_error(ctx, r, "vdpa device %s: probe failed: %s", name,
						   strerror(-r));
		}
	}
	r = vfiod_step(ctx, OP_CREATE, name, "verify");
	if (r < 0)
		return r;
	if (wait_driver(fd, driver) < 0) {
		free(now);
		now = NULL;
		(void)read_link_name(fd, ATTR_DRIVER, &now);
		return vfiod_error(ctx, -EIO, "vdpa device %s: %s did not bind (now %s); see dmesg",
				   name, driver, now ? now : "unbound");
	}
	return 0;
}

static int vdpa_create(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	const char *name = opt_str(opts, "vdpa", NULL), *driver = driver_choice(opts);
	_cleanup_free_ char *syspath = NULL;
	_cleanup_close_ int fd = -1;
	struct gnl *g = NULL;
	struct nl_msg *msg;
	struct mgmtdev m;
	char mstr[320];
	json_t *o;
	int r;

	if (!valid_name(name))
		return vfiod_error(ctx, -EINVAL, "\"%s\" is not a valid vdpa device name",
				   name ? name : "");
	if (!driver)
		return vfiod_error(ctx, -EINVAL,
				   "vdpa device %s: driver \"%s\" is not a vdpa bus driver (%s or %s)",
				   name, opt_str(opts, "driver", ""), DRIVER_VHOST_VDPA,
				   DRIVER_VIRTIO_VDPA);
	r = mgmtdev_parse(ctx, path, &m, &syspath);
	if (r < 0)
		return r;
	mgmtdev_str(&m, mstr, sizeof(mstr));

	r = vfiod_step(ctx, OP_CREATE, name, "load-module");
	if (r >= 0)
		r = vdpa_open(ctx, &g);
	if (r < 0)
		return r;
	r = gnl_request(g, VDPA_CMD_DEV_NEW, 0, &msg);
	if (r < 0)
		goto out;
	r = put_mgmtdev(msg, &m);
	if (r >= 0)
		r = gnl_errno(nla_put_string(msg, VDPA_ATTR_DEV_NAME, name));
	if (r >= 0)
		r = put_config(ctx, msg, name, opts);
	if (r >= 0)
		r = vfiod_step(ctx, OP_CREATE, name, "dev-new");
	if (r < 0) {
		nlmsg_free(msg);
		goto out;
	}
	r = gnl_transact(g, msg, NULL, NULL);
	if (r == -EEXIST && !gnl_errmsg(g)) {
		r = vfiod_error(ctx, r, "vdpa device %s on %s: the kernel refused: %s (a vdpa "
				"device of that name exists already)", name, mstr, strerror(-r));
		goto out;
	}
	if (r < 0) {
		r = gnl_error(ctx, g, r, "vdpa device %s on %s: the kernel refused", name, mstr);
		goto out;
	}

	fd = vdpa_dev_open(ctx, name);
	if (fd < 0) {
		r = vfiod_error(ctx, fd, "vdpa device %s: made, but not on the vdpa bus: %s", name,
				strerror(-fd));
		goto undo;
	}
	r = bind_driver(ctx, fd, name, driver);
	if (r < 0)
		goto undo;

	o = dev_json(ctx, name);
	if (!o) {
		r = -ENOMEM;
		goto undo;
	}
	json_object_set_new(o, "mgmtdev", json_string(mstr));
	json_object_set_new(o, "mgmtdev_device", syspath ? json_string(syspath) : json_null());
	*ret = o;
	vfiod_log(ctx, LOG_INFO, "vdpa device %s made on %s, bound to %s", name, mstr, driver);
	gnl_close(g);
	return 0;
undo:
	{
		/* The message of the failure stays; the undo is best effort. */
		int q = dev_del(g, name);

		if (q < 0)
			vfiod_log(ctx, LOG_WARNING, "vdpa device %s: cannot delete it again: %s",
				  name, gnl_errmsg(g) ? gnl_errmsg(g) : strerror(-q));
	}
out:
	gnl_close(g);
	return r;
}

static int vdpa_destroy(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	const char *base = strrchr(path, '/');
	const char *name = base ? base + 1 : path;
	_cleanup_free_ char *waited = NULL;
	struct gnl *g = NULL;
	json_t *o;
	int r;

	if (!valid_name(name))
		return vfiod_error(ctx, -EINVAL, "%s: not a vdpa device", path);
	o = dev_json(ctx, name);
	if (!o)
		return -ENOMEM;
	/*
	 * A VM with /dev/vhost-vdpa-N open keeps DEV_DEL waiting, unkillably and
	 * with vdpa's lock held: say who, at once; forced, wait for it to let go
	 * first, with an end to the wait.
	 */
	r = inuse_destroy_wait_syspath(ctx, json_string_value(json_object_get(o, "device")), name,
				       opt_bool(opts, "force", false), INUSE_DESTROY_WAIT_MS,
				       &waited);
	if (r < 0) {
		json_decref(o);
		return r;
	}
	r = vfiod_step(ctx, OP_DESTROY, name, "dev-del");
	if (r >= 0)
		r = gnl_open_ctx(ctx, GENL_VDPA, &g);
	if (r >= 0) {
		r = dev_del(g, name);
		if (r == -ENODEV)
			r = vfiod_error(ctx, -ENOENT, "%s: there is no vdpa device %s", path, name);
		else if (r < 0)
			r = gnl_error(ctx, g, r, "vdpa device %s: the kernel refused to delete it",
				      name);
	}
	gnl_close(g);
	if (r < 0) {
		json_decref(o);
		return r;
	}
	json_object_set_new(o, "destroyed", json_true());
	if (waited)
		json_object_set_new(o, "note", json_string(waited));
	*ret = o;
	vfiod_log(ctx, LOG_INFO, "vdpa device %s deleted", name);
	return 0;
}

/* Every vdpa device the kernel has (nothing when vdpa is not loaded). */
static int vdpa_list(struct vfiod_ctx *ctx, json_t *a)
{
	struct dev_info di = { .a = json_array() };
	struct nl_msg *msg;
	size_t i;
	json_t *e;
	int r;

	if (!di.a)
		return -ENOMEM;
	/* The kernel knows only the real /sys: a fixture tree has none of its devices. */
	if (!streq(ctx->sysfs_real, VFIOD_DEFAULT_SYSFS_ROOT)) {
		json_decref(di.a);
		return 0;
	}
	r = gnl_open(GENL_VDPA, &di.g);
	if (r == -ENOENT) {
		json_decref(di.a);
		return 0;
	}
	if (r >= 0)
		r = gnl_request(di.g, VDPA_CMD_DEV_GET, NLM_F_DUMP, &msg);
	if (r >= 0)
		r = gnl_transact(di.g, msg, on_dev, &di);
	if (r < 0) {
		r = di.g ? gnl_error(ctx, di.g, r, "vdpa devices") :
			   vfiod_error(ctx, r, "vdpa devices: %s", strerror(-r));
		gnl_close(di.g);
		json_decref(di.a);
		return r;
	}
	gnl_close(di.g);
	json_array_foreach(di.a, i, e) {
		json_t *o = dev_json(ctx, json_string_value(json_object_get(e, "name")));

		if (!o)
			continue;
		json_object_set(o, "mgmtdev", json_object_get(e, "mgmtdev"));
		json_object_set(o, "class", json_object_get(e, "class"));
		json_array_append_new(a, o);
	}
	json_decref(di.a);
	return 0;
}

/* What CONFIG_GET may send, by the names show gives them; the kernel sends what applies. */
static const struct {
	int attr;
	const char *key;
	enum { CFG_UINT, CFG_HEX, CFG_BOOL, CFG_MAC } as;
} config_attrs[] = {
	{ ATTR_DEV_FEATURES, "features", CFG_HEX },
	{ VDPA_ATTR_DEV_NEGOTIATED_FEATURES, "negotiated_features", CFG_HEX },
	{ VDPA_ATTR_DEV_NET_CFG_MACADDR, "mac", CFG_MAC },
	{ VDPA_ATTR_DEV_NET_STATUS, "status", CFG_UINT },
	{ VDPA_ATTR_DEV_NET_CFG_MAX_VQP, "max_vqp", CFG_UINT },
	{ VDPA_ATTR_DEV_NET_CFG_MTU, "mtu", CFG_UINT },
	{ ATTR_BLK_CFG_CAPACITY, "capacity", CFG_UINT },
	{ ATTR_BLK_CFG_SIZE_MAX, "size_max", CFG_UINT },
	{ ATTR_BLK_CFG_BLK_SIZE, "blk_size", CFG_UINT },
	{ ATTR_BLK_CFG_SEG_MAX, "seg_max", CFG_UINT },
	{ ATTR_BLK_CFG_NUM_QUEUES, "num_queues", CFG_UINT },
	{ ATTR_BLK_CFG_PHY_BLK_EXP, "physical_block_exp", CFG_UINT },
	{ ATTR_BLK_CFG_ALIGN_OFFSET, "alignment_offset", CFG_UINT },
	{ ATTR_BLK_CFG_MIN_IO_SIZE, "min_io_size", CFG_UINT },
	{ ATTR_BLK_CFG_OPT_IO_SIZE, "opt_io_size", CFG_UINT },
	{ ATTR_BLK_CFG_MAX_DISCARD_SEC, "max_discard_sectors", CFG_UINT },
	{ ATTR_BLK_CFG_MAX_DISCARD_SEG, "max_discard_seg", CFG_UINT },
	{ ATTR_BLK_CFG_DISCARD_SEC_ALIGN, "discard_sector_alignment", CFG_UINT },
	{ ATTR_BLK_CFG_MAX_WRITE_ZEROES_SEC, "max_write_zeroes_sectors", CFG_UINT },
	{ ATTR_BLK_CFG_MAX_WRITE_ZEROES_SEG, "max_write_zeroes_seg", CFG_UINT },
	{ ATTR_BLK_READ_ONLY, "read_only", CFG_BOOL },
	{ ATTR_BLK_FLUSH, "flush", CFG_BOOL },
};

/* An unsigned attribute of whatever width the kernel sent (NET_STATUS comes as a u16). */
static int nla_uint(struct nlattr *a, uint64_t *ret)
{
	switch (nla_len(a)) {
	case 1:
		*ret = nla_get_u8(a);
		return 0;
	case 2:
		*ret = nla_get_u16(a);
		return 0;
	case 4:
		*ret = nla_get_u32(a);
		return 0;
	case 8:
		*ret = nla_get_u64(a);
		return 0;
	default:
		return -EBADMSG;
	}
}

struct config_info {
	struct gnl *g;
	json_t *o;
};

static int on_config(struct nlmsghdr *nlh, void *data)
{
	struct config_info *ci = data;
	struct nlattr *tb[ATTR_CONFIG_MAX + 1];
	int r;

	r = gnl_parse(ci->g, nlh, ATTR_CONFIG_MAX, NULL, tb);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(config_attrs); i++) {
		struct nlattr *a = tb[config_attrs[i].attr];
		char buf[24];
		uint64_t v;
		json_t *j;

		if (!a)
			continue;
		if (config_attrs[i].as == CFG_MAC) {
			if (nla_len(a) != 6)
				return -EBADMSG;
			mac_str(nla_data(a), 6, buf, sizeof(buf));
			j = json_string(buf);
		} else {
			if (nla_uint(a, &v) < 0)
				return -EBADMSG;
			snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
			j = config_attrs[i].as == CFG_HEX    ? json_string(buf)
			    : config_attrs[i].as == CFG_BOOL ? json_boolean(v)
							     : json_integer((json_int_t)v);
		}
		json_object_set_new(ci->o, config_attrs[i].key, j);
	}
	return 0;
}

/*
 * What the kernel says of NAME: its management device and class (DEV_GET)
 * into DI, its config (CONFIG_GET) into *CONFIG, null for a class whose
 * config the kernel does not report.
 */
static int dev_kernel_facts(struct vfiod_ctx *ctx, const char *name, struct dev_info *di,
			    json_t **config)
{
	struct config_info ci = { .o = json_object() };
	int r;

	*config = NULL;
	if (!ci.o)
		return -ENOMEM;
	/* A vdpa device exists: the family is there; show loads no module. */
	r = gnl_open_ctx(ctx, GENL_VDPA, &di->g);
	if (r < 0) {
		json_decref(ci.o);
		return r;
	}
	ci.g = di->g;
	r = dev_request(di->g, VDPA_CMD_DEV_GET, name, on_dev, di);
	if (r >= 0) {
		r = dev_request(di->g, VDPA_CMD_DEV_CONFIG_GET, name, on_config, &ci);
		if (r == -EOPNOTSUPP) {
			json_decref(ci.o);
			ci.o = json_null();
			r = 0;
		}
	}
	if (r < 0) {
		r = gnl_error(ctx, di->g, r, "vdpa device %s", name);
		json_decref(ci.o);
	} else {
		*config = ci.o;
	}
	gnl_close(di->g);
	di->g = NULL;
	return r;
}

/* Show: the device, its management device and class, and its config as the kernel says. */
static int vdpa_show(struct vfiod_ctx *ctx, const char *path, json_t **ret)
{
	_cleanup_free_ char *syspath = NULL, *mgmt_path = NULL;
	struct dev_info di = {};
	json_t *o, *config = NULL;
	const char *name;
	struct mgmtdev m;
	int r;

	r = vdpa_named(ctx, path, &name, &syspath);
	if (r <= 0)
		return r;
	/* The kernel knows only the real /sys: a fixture tree has none of its devices. */
	if (streq(ctx->sysfs_real, VFIOD_DEFAULT_SYSFS_ROOT)) {
		r = dev_kernel_facts(ctx, name, &di, &config);
		if (r < 0)
			return r;
		if (mgmtdev_parse(ctx, di.mgmtdev, &m, &mgmt_path) < 0)
			ctx->error[0] = '\0';
	}
	o = dev_json(ctx, name);
	if (!o) {
		json_decref(config);
		return -ENOMEM;
	}
	json_object_set_new(o, "mgmtdev", di.mgmtdev[0] ? json_string(di.mgmtdev) : json_null());
	json_object_set_new(o, "mgmtdev_device", mgmt_path ? json_string(mgmt_path) : json_null());
	json_object_set_new(o, "class", di.mgmtdev[0] ? class_json(di.id) : json_null());
	json_object_set_new(o, "config", config ?: json_null());
	*ret = o;
	return 1;
}

const struct kind kind_vdpa = {
	.name = "vdpa",
	.selector = "vdpa",
	.target = vdpa_target,
	.create = vdpa_create,
	.destroy = vdpa_destroy,
	.list = vdpa_list,
	.show = vdpa_show,
};

struct mgmt_info {
	struct vfiod_ctx *ctx;
	struct gnl *g;
	json_t *a;
};

static int on_mgmtdev(struct nlmsghdr *nlh, void *data)
{
	struct mgmt_info *mi = data;
	struct nlattr *tb[ATTR_MAX + 1];
	_cleanup_free_ char *syspath = NULL;
	struct mgmtdev m = {};
	char mstr[320];
	json_t *o, *classes;
	int r;

	r = gnl_parse(mi->g, nlh, ATTR_MAX, vdpa_policy, tb);
	if (r < 0)
		return r;
	if (!tb[VDPA_ATTR_MGMTDEV_DEV_NAME])
		return -EBADMSG;
	if (tb[VDPA_ATTR_MGMTDEV_BUS_NAME])
		snprintf(m.bus, sizeof(m.bus), "%s", nla_get_string(tb[VDPA_ATTR_MGMTDEV_BUS_NAME]));
	snprintf(m.dev, sizeof(m.dev), "%s", nla_get_string(tb[VDPA_ATTR_MGMTDEV_DEV_NAME]));
	if (m.bus[0] && valid_name(m.bus) && valid_name(m.dev)) {
		_cleanup_free_ char *rel = NULL;

		if (asprintf(&rel, "%s/%s/devices/%s", SYSFS_BUS, m.bus, m.dev) >= 0)
			(void)root_syspath(mi->ctx, rel, &syspath);
	}
	o = json_object();
	classes = json_array();
	if (!o || !classes) {
		json_decref(o);
		json_decref(classes);
		return -ENOMEM;
	}
	json_object_set_new(o, "name", json_string(mgmtdev_str(&m, mstr, sizeof(mstr))));
	json_object_set_new(o, "bus", m.bus[0] ? json_string(m.bus) : json_null());
	json_object_set_new(o, "dev", json_string(m.dev));
	json_object_set_new(o, "device", syspath ? json_string(syspath) : json_null());
	if (tb[VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES]) {
		uint64_t c = nla_get_u64(tb[VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES]);

		for (unsigned int id = 0; id < 64; id++)
			if (c & (1ULL << id))
				json_array_append_new(classes, class_json(id));
	}
	json_object_set_new(o, "classes", classes);
	if (tb[VDPA_ATTR_DEV_MGMTDEV_MAX_VQS])
		json_object_set_new(o, "max_vqs",
				    json_integer(nla_get_u32(tb[VDPA_ATTR_DEV_MGMTDEV_MAX_VQS])));
	if (tb[VDPA_ATTR_DEV_SUPPORTED_FEATURES]) {
		char hex[24];

		snprintf(hex, sizeof(hex), "0x%llx",
			 (unsigned long long)nla_get_u64(tb[VDPA_ATTR_DEV_SUPPORTED_FEATURES]));
		json_object_set_new(o, "supported_features", json_string(hex));
	}
	json_array_append_new(mi->a, o);
	return 0;
}

_public_ int vfiod_vdpa_mgmtdevs(struct vfiod_ctx *ctx, char **ret)
{
	struct mgmt_info mi = { .ctx = ctx, .a = json_array() };
	struct nl_msg *msg;
	int r;

	ctx->error[0] = '\0';
	if (!mi.a)
		return -ENOMEM;
	r = vdpa_open(ctx, &mi.g);
	if (r >= 0)
		r = gnl_request(mi.g, VDPA_CMD_MGMTDEV_GET, NLM_F_DUMP, &msg);
	if (r >= 0) {
		r = gnl_transact(mi.g, msg, on_mgmtdev, &mi);
		if (r < 0)
			r = gnl_error(ctx, mi.g, r, "vdpa management devices");
	}
	gnl_close(mi.g);
	if (r < 0) {
		json_decref(mi.a);
		return r;
	}
	return json_dump_to(mi.a, ret);
}
