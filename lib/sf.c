/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * devlink subfunctions (SFs) of a PCI PF, through the kernel's "devlink"
 * generic netlink family (<linux/devlink.h>; iproute2's `devlink port add
 * ... flavour pcisf` and `devlink port function set`).
 *
 * create: port-new (flavour pcisf, pfnum, sfnum[, controller]), hw-addr
 * (when a mac is given), activate, wait-auxiliary: the function's auxiliary
 * device (e.g. mlx5_core.sf.4) appears below the PF with the attribute
 * "sfnum".  A failure undoes the steps done, in reverse.
 * destroy: deactivate, port-del.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/devlink.h>

#include "internal.h"
#include "inuse.h"
#include "kinds.h"
#include "netlink.h"

#define OP_CREATE "sf-create"
#define OP_DESTROY "sf-destroy"

/* How long the auxiliary device of an activated function may take to appear. */
#define AUX_WAIT_MS 5000

static struct nla_policy port_policy[DEVLINK_ATTR_MAX + 1] = {
	[DEVLINK_ATTR_BUS_NAME] = { .type = NLA_NUL_STRING },
	[DEVLINK_ATTR_DEV_NAME] = { .type = NLA_NUL_STRING },
	[DEVLINK_ATTR_PORT_INDEX] = { .type = NLA_U32 },
	[DEVLINK_ATTR_PORT_FLAVOUR] = { .type = NLA_U16 },
	[DEVLINK_ATTR_PORT_PCI_PF_NUMBER] = { .type = NLA_U16 },
	[DEVLINK_ATTR_PORT_PCI_SF_NUMBER] = { .type = NLA_U32 },
	[DEVLINK_ATTR_PORT_CONTROLLER_NUMBER] = { .type = NLA_U32 },
	[DEVLINK_ATTR_PORT_FUNCTION] = { .type = NLA_NESTED },
	[DEVLINK_ATTR_ESWITCH_MODE] = { .type = NLA_U16 },
};

static struct nla_policy fn_policy[DEVLINK_PORT_FUNCTION_ATTR_MAX + 1] = {
	[DEVLINK_PORT_FN_ATTR_STATE] = { .type = NLA_U8 },
	[DEVLINK_PORT_FN_ATTR_OPSTATE] = { .type = NLA_U8 },
};

/* One devlink port of flavour pcisf, as PORT_GET describes it. */
struct sf_port {
	char bus[32];
	char dev[64];
	uint32_t index;
	uint16_t pfnum;
	uint32_t sfnum;
	uint32_t controller;
	bool active;
	int opstate; /* DEVLINK_PORT_FN_OPSTATE_*, -1 when not reported */
	bool have_hw_addr;
	uint8_t hw_addr[32];
	int hw_addr_len;
};

static int parse_port(struct gnl *g, struct nlmsghdr *nlh, struct sf_port *p, bool *is_sf)
{
	struct nlattr *tb[DEVLINK_ATTR_MAX + 1];
	int r;

	*p = (struct sf_port){ .opstate = -1 };
	*is_sf = false;
	r = gnl_parse(g, nlh, DEVLINK_ATTR_MAX, port_policy, tb);
	if (r < 0)
		return r;
	if (!tb[DEVLINK_ATTR_BUS_NAME] || !tb[DEVLINK_ATTR_DEV_NAME] ||
	    !tb[DEVLINK_ATTR_PORT_INDEX])
		return -EBADMSG;
	snprintf(p->bus, sizeof(p->bus), "%s", nla_get_string(tb[DEVLINK_ATTR_BUS_NAME]));
	snprintf(p->dev, sizeof(p->dev), "%s", nla_get_string(tb[DEVLINK_ATTR_DEV_NAME]));
	p->index = nla_get_u32(tb[DEVLINK_ATTR_PORT_INDEX]);
	if (!tb[DEVLINK_ATTR_PORT_FLAVOUR] ||
	    nla_get_u16(tb[DEVLINK_ATTR_PORT_FLAVOUR]) != DEVLINK_PORT_FLAVOUR_PCI_SF ||
	    !tb[DEVLINK_ATTR_PORT_PCI_SF_NUMBER])
		return 0;
	*is_sf = true;
	p->sfnum = nla_get_u32(tb[DEVLINK_ATTR_PORT_PCI_SF_NUMBER]);
	if (tb[DEVLINK_ATTR_PORT_PCI_PF_NUMBER])
		p->pfnum = nla_get_u16(tb[DEVLINK_ATTR_PORT_PCI_PF_NUMBER]);
	if (tb[DEVLINK_ATTR_PORT_CONTROLLER_NUMBER])
		p->controller = nla_get_u32(tb[DEVLINK_ATTR_PORT_CONTROLLER_NUMBER]);
	if (tb[DEVLINK_ATTR_PORT_FUNCTION]) {
		struct nlattr *fn[DEVLINK_PORT_FUNCTION_ATTR_MAX + 1];
		struct nlattr *a;

		r = gnl_parse_nested(tb[DEVLINK_ATTR_PORT_FUNCTION], DEVLINK_PORT_FUNCTION_ATTR_MAX,
				     fn_policy, fn);
		if (r < 0)
			return r;
		a = fn[DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR];
		if (a && nla_len(a) > 0 && nla_len(a) <= (int)sizeof(p->hw_addr)) {
			p->have_hw_addr = true;
			p->hw_addr_len = nla_len(a);
			memcpy(p->hw_addr, nla_data(a), nla_len(a));
		}
		if (fn[DEVLINK_PORT_FN_ATTR_STATE])
			p->active = nla_get_u8(fn[DEVLINK_PORT_FN_ATTR_STATE]) ==
				    DEVLINK_PORT_FN_STATE_ACTIVE;
		if (fn[DEVLINK_PORT_FN_ATTR_OPSTATE])
			p->opstate = nla_get_u8(fn[DEVLINK_PORT_FN_ATTR_OPSTATE]);
	}
	return 0;
}

/* A request about the devlink instance pci/PF. */
static int dl_request(struct gnl *g, uint8_t cmd, int flags, const char *pf, struct nl_msg **ret)
{
	int r = gnl_request(g, cmd, flags, ret);

	if (r < 0)
		return r;
	if (pf) {
		r = nla_put_string(*ret, DEVLINK_ATTR_BUS_NAME, DEVLINK_BUS_PCI);
		if (r >= 0)
			r = nla_put_string(*ret, DEVLINK_ATTR_DEV_NAME, pf);
	}
	if (r < 0) {
		nlmsg_free(*ret);
		*ret = NULL;
	}
	return gnl_errno(r);
}

struct port_walk {
	struct gnl *g;
	struct sf_port *ports;
	size_t n;
};

static int on_port(struct nlmsghdr *nlh, void *data)
{
	struct port_walk *w = data;
	struct sf_port p, *np;
	bool is_sf;
	int r = parse_port(w->g, nlh, &p, &is_sf);

	if (r < 0 || !is_sf)
		return r;
	np = realloc(w->ports, (w->n + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	w->ports = np;
	w->ports[w->n++] = p;
	return 0;
}

/* Every pcisf port the kernel has (*ret freed by the caller). */
static int sf_ports(struct gnl *g, struct sf_port **ret, size_t *n)
{
	struct port_walk w = { .g = g };
	struct nl_msg *msg;
	int r;

	r = dl_request(g, DEVLINK_CMD_PORT_GET, NLM_F_DUMP, NULL, &msg);
	if (r >= 0)
		r = gnl_transact(g, msg, on_port, &w);
	if (r < 0) {
		free(w.ports);
		return r;
	}
	*ret = w.ports;
	*n = w.n;
	return 0;
}

static int find_port(struct gnl *g, const char *pf, uint32_t sfnum, struct sf_port *ret)
{
	struct sf_port *ports = NULL;
	size_t n = 0;
	int r = sf_ports(g, &ports, &n);

	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n && r < 0; i++)
		if (streq(ports[i].bus, DEVLINK_BUS_PCI) && streq(ports[i].dev, pf) &&
		    ports[i].sfnum == sfnum) {
			*ret = ports[i];
			r = 0;
		}
	free(ports);
	return r;
}

/* PORT_SET of the port function: a hardware address (mac) or a state. */
static int port_fn_set(struct gnl *g, const char *pf, uint32_t index, const uint8_t *mac,
		       int state)
{
	struct nl_msg *msg;
	struct nlattr *nest;
	int r;

	r = dl_request(g, DEVLINK_CMD_PORT_SET, 0, pf, &msg);
	if (r < 0)
		return r;
	r = nla_put_u32(msg, DEVLINK_ATTR_PORT_INDEX, index);
	nest = r >= 0 ? nla_nest_start(msg, DEVLINK_ATTR_PORT_FUNCTION | NLA_F_NESTED) : NULL;
	if (!nest)
		r = -NLE_NOMEM;
	if (r >= 0 && mac)
		r = nla_put(msg, DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR, 6, mac);
	if (r >= 0 && state >= 0)
		r = nla_put_u8(msg, DEVLINK_PORT_FN_ATTR_STATE, (uint8_t)state);
	if (r >= 0)
		r = nla_nest_end(msg, nest);
	if (r < 0) {
		nlmsg_free(msg);
		return gnl_errno(r);
	}
	return gnl_transact(g, msg, NULL, NULL);
}

static int port_del(struct gnl *g, const char *pf, uint32_t index)
{
	struct nl_msg *msg;
	int r;

	r = dl_request(g, DEVLINK_CMD_PORT_DEL, 0, pf, &msg);
	if (r < 0)
		return r;
	r = gnl_errno(nla_put_u32(msg, DEVLINK_ATTR_PORT_INDEX, index));
	if (r < 0) {
		nlmsg_free(msg);
		return r;
	}
	return gnl_transact(g, msg, NULL, NULL);
}

struct new_port {
	struct gnl *g;
	struct sf_port port;
	bool have;
};

static int on_new_port(struct nlmsghdr *nlh, void *data)
{
	struct new_port *np = data;
	bool is_sf;
	int r = parse_port(np->g, nlh, &np->port, &is_sf);

	np->have = r >= 0;
	return r;
}

static int on_eswitch(struct nlmsghdr *nlh, void *data)
{
	struct nlattr *tb[DEVLINK_ATTR_MAX + 1];
	struct gnl *g = ((void **)data)[0];
	int *mode = ((void **)data)[1];
	int r = gnl_parse(g, nlh, DEVLINK_ATTR_MAX, port_policy, tb);

	if (r >= 0 && tb[DEVLINK_ATTR_ESWITCH_MODE])
		*mode = nla_get_u16(tb[DEVLINK_ATTR_ESWITCH_MODE]);
	return r;
}

/* The eswitch mode of pci/PF, or a negative errno (-EOPNOTSUPP: it has none). */
static int eswitch_mode(struct gnl *g, const char *pf)
{
	struct nl_msg *msg;
	int mode = -ENODATA, r;
	void *data[2] = { g, &mode };

	r = dl_request(g, DEVLINK_CMD_ESWITCH_GET, 0, pf, &msg);
	if (r >= 0)
		r = gnl_transact(g, msg, on_eswitch, data);
	return r < 0 ? r : mode;
}

/* The auxiliary device below the PF (real path PF_REAL) whose sfnum is SFNUM, or NULL. */
static char *aux_find(struct vfiod_ctx *ctx, const char *pf_real, uint32_t sfnum)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	size_t l = strlen(pf_real);

	if (dir_from_fd(root_open(ctx, SYSFS_AUXILIARY_DEVICES, O_RDONLY | O_DIRECTORY), &d) < 0)
		return NULL;
	while ((de = readdir(d))) {
		_cleanup_free_ char *real = NULL, *v = NULL, *p = NULL;
		_cleanup_close_ int fd = -1;
		const char *slash;

		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&p, "%s/%s/%s", ctx->sysfs_real, SYSFS_AUXILIARY_DEVICES,
			     de->d_name) < 0)
			return NULL;
		real = realpath(p, NULL);
		slash = real ? strrchr(real, '/') : NULL;
		if (!slash || (size_t)(slash - real) != l || strncmp(real, pf_real, l) != 0)
			continue;
		fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || read_attr(fd, ATTR_SFNUM, &v) < 0)
			continue;
		if (strtoul(v, NULL, 10) == sfnum && strspn(v, "0123456789") == strlen(v))
			return strdup(de->d_name);
	}
	return NULL;
}

/* Bounded wait for AUX to appear (or, with GONE, to go). */
static char *aux_wait(struct vfiod_ctx *ctx, const char *pf_real, uint32_t sfnum, bool gone,
		      int ms)
{
	const struct timespec tick = { 0, 20 * 1000 * 1000 };

	for (int t = 0;; t += 20) {
		char *aux = aux_find(ctx, pf_real, sfnum);

		if (!!aux != gone || t >= ms)
			return aux;
		free(aux);
		nanosleep(&tick, NULL);
	}
}

static char *aux_syspath(struct vfiod_ctx *ctx, const char *aux)
{
	_cleanup_free_ char *rel = NULL;
	char *ret = NULL;

	if (aux && asprintf(&rel, "%s/%s", SYSFS_AUXILIARY_DEVICES, aux) >= 0)
		(void)root_syspath(ctx, rel, &ret);
	return ret;
}

static int sf_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
		     struct target *t)
{
	long long sfnum = opt_uint(opts, "sf");
	struct vfiod_device *dev = NULL;
	int r;

	if (sfnum < 0) /* a destroy without "sf": not ours */
		return destroy ? 0 : vfiod_error(ctx, -EINVAL, "%s: option sf is missing", path);
	r = vfiod_device_new(ctx, path, &dev);
	if (r < 0)
		return r;
	t->device = strdup(dev->syspath);
	t->iommu_group = dev->iommu_group;
	/* A journal file name: no '/'. */
	r = asprintf(&t->name, "%s-sf%lld", dev->name, sfnum);
	vfiod_device_unref(dev);
	if (r < 0 || !t->device)
		return -ENOMEM;
	r = target_set_key(ctx, t, t->device);
	return r < 0 ? r : 1;
}

static json_t *sf_json(const char *name, const char *pf_syspath, const char *aux_path,
		       const char *aux, const struct sf_port *p)
{
	char mac[3 * 32];
	json_t *o;

	o = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:o, s:i, s:i, s:i, s:s}", "kind", "sf", "name",
		      name, "device", aux_path, "auxiliary", aux, "pf", pf_syspath, "devlink_port",
		      json_sprintf("%s/%s/%u", p->bus, p->dev, p->index), "sfnum",
		      (json_int_t)p->sfnum, "pfnum", (json_int_t)p->pfnum, "controller",
		      (json_int_t)p->controller, "state", p->active ? "active" : "inactive");
	if (o && p->opstate >= 0)
		json_object_set_new(o, "opstate",
				    json_string(p->opstate == DEVLINK_PORT_FN_OPSTATE_ATTACHED
							? "attached"
							: "detached"));
	if (o && p->have_hw_addr) {
		mac_str(p->hw_addr, p->hw_addr_len, mac, sizeof(mac));
		json_object_set_new(o, "hw_addr", json_string(mac));
	}
	if (o)
		json_object_set_new(o, "port_index", json_integer(p->index));
	return o;
}

/* Why PORT_NEW was refused, in words, with what to do when the eswitch is the cause. */
static int port_new_error(struct vfiod_ctx *ctx, struct gnl *g, int r, const char *pf,
			  const char *syspath, const char *name)
{
	char kmsg[512];
	int mode;

	if (r == -ENODEV && !gnl_errmsg(g))
		return vfiod_error(ctx, r, "%s: PF %s has no devlink instance (is its driver "
				   "bound, and does it make subfunctions?)", name, syspath);
	if (r != -EOPNOTSUPP)
		return gnl_error(ctx, g, r, "%s: the kernel refused the new port", name);
	snprintf(kmsg, sizeof(kmsg), "%s", gnl_errmsg(g) ? gnl_errmsg(g) : strerror(-r));
	mode = eswitch_mode(g, pf);
	if (mode == -EOPNOTSUPP)
		return vfiod_error(ctx, r, "%s: the kernel refused the new port: %s; pci/%s has no "
				   "eswitch: its driver does not make subfunctions", name, kmsg, pf);
	if (mode >= 0 && mode != DEVLINK_ESWITCH_MODE_SWITCHDEV)
		return vfiod_error(ctx, r, "%s: the kernel refused the new port: %s; the eswitch "
				   "of pci/%s is in %s mode, not switchdev: change it with "
				   "`devlink dev eswitch set pci/%s mode switchdev`", name, kmsg, pf,
				   mode == DEVLINK_ESWITCH_MODE_LEGACY ? "legacy" : "another", pf);
	return vfiod_error(ctx, r, "%s: the kernel refused the new port: %s", name, kmsg);
}

static int sf_create(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	long long sfnum = opt_uint(opts, "sf"), pfnum = opt_uint(opts, "pfnum");
	long long controller = opt_uint(opts, "controller");
	const char *mac = opt_str(opts, "mac", NULL);
	_cleanup_free_ char *name = NULL, *aux = NULL, *aux_path = NULL;
	struct vfiod_device *dev = NULL;
	struct new_port np = {};
	struct gnl *g = NULL;
	struct nl_msg *msg;
	bool activated = false;
	uint8_t hw[6];
	int r, q;

	r = vfiod_device_new(ctx, path, &dev);
	if (r < 0)
		return r;
	if (asprintf(&name, "%s-sf%lld", dev->name, sfnum) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (sfnum < 0) {
		r = vfiod_error(ctx, -EINVAL, "%s: option sf is missing", path);
		goto out;
	}
	/* As mlx5 numbers them: the PF's own PCI function number. */
	if (pfnum < 0)
		pfnum = dev->name[strlen(dev->name) - 1] - '0';
	if (pfnum > UINT16_MAX) {
		r = vfiod_error(ctx, -EINVAL, "%s: pfnum %lld is out of range (at most %u)", name,
				pfnum, UINT16_MAX);
		goto out;
	}
	if (mac && (r = mac_parse_for(ctx, name, mac, hw)) < 0)
		goto out;
	r = gnl_open_ctx(ctx, GENL_DEVLINK, &g);
	if (r < 0)
		goto out;
	np.g = g;

	r = vfiod_step(ctx, OP_CREATE, name, "port-new");
	if (r >= 0)
		r = dl_request(g, DEVLINK_CMD_PORT_NEW, 0, dev->name, &msg);
	if (r < 0)
		goto out;
	r = nla_put_u16(msg, DEVLINK_ATTR_PORT_FLAVOUR, DEVLINK_PORT_FLAVOUR_PCI_SF);
	if (r >= 0)
		r = nla_put_u16(msg, DEVLINK_ATTR_PORT_PCI_PF_NUMBER, (uint16_t)pfnum);
	if (r >= 0)
		r = nla_put_u32(msg, DEVLINK_ATTR_PORT_PCI_SF_NUMBER, (uint32_t)sfnum);
	if (r >= 0 && controller >= 0)
		r = nla_put_u32(msg, DEVLINK_ATTR_PORT_CONTROLLER_NUMBER, (uint32_t)controller);
	if (r < 0) {
		nlmsg_free(msg);
		r = gnl_errno(r);
		goto out;
	}
	r = gnl_transact(g, msg, on_new_port, &np);
	if (r < 0) {
		r = port_new_error(ctx, g, r, dev->name, dev->syspath, name);
		goto out;
	}
	if (!np.have) {
		/* Kernels that do not answer with the port: look it up. */
		r = find_port(g, dev->name, (uint32_t)sfnum, &np.port);
		if (r < 0) {
			r = vfiod_error(ctx, r, "%s: the port was made but is not found", name);
			goto out;
		}
	}

	if (mac) {
		r = vfiod_step(ctx, OP_CREATE, name, "hw-addr");
		if (r >= 0) {
			r = port_fn_set(g, dev->name, np.port.index, hw, -1);
			if (r < 0)
				r = gnl_error(ctx, g, r, "%s: cannot set the function's hw_addr %s",
					      name, mac);
		}
		if (r < 0)
			goto undo;
	}
	r = vfiod_step(ctx, OP_CREATE, name, "activate");
	if (r >= 0) {
		r = port_fn_set(g, dev->name, np.port.index, NULL, DEVLINK_PORT_FN_STATE_ACTIVE);
		if (r < 0)
			r = gnl_error(ctx, g, r, "%s: cannot activate the function", name);
	}
	if (r < 0)
		goto undo;
	activated = true;
	r = vfiod_step(ctx, OP_CREATE, name, "wait-auxiliary");
	if (r < 0)
		goto undo;
	aux = aux_wait(ctx, dev->realpath, (uint32_t)sfnum, false, AUX_WAIT_MS);
	if (!aux) {
		r = vfiod_error(ctx, -ETIMEDOUT, "%s: the function is active but no auxiliary "
				"device with sfnum %lld appeared below %s within %d ms", name,
				sfnum, dev->syspath, AUX_WAIT_MS);
		goto undo;
	}
	aux_path = aux_syspath(ctx, aux);
	/* What the kernel says now: hw_addr and state as the driver keeps them. */
	(void)find_port(g, dev->name, (uint32_t)sfnum, &np.port);
	*ret = sf_json(name, dev->syspath, aux_path, aux, &np.port);
	r = *ret ? 0 : -ENOMEM;
	if (r >= 0) {
		vfiod_log(ctx, LOG_INFO, "%s: subfunction %lld made: %s", dev->syspath, sfnum, aux);
		goto out;
	}
undo:
	if (activated) {
		q = port_fn_set(g, dev->name, np.port.index, NULL, DEVLINK_PORT_FN_STATE_INACTIVE);
		if (q < 0)
			vfiod_log(ctx, LOG_WARNING, "%s: cannot deactivate the function again: %s",
				  name, gnl_errmsg(g) ? gnl_errmsg(g) : strerror(-q));
	}
	q = port_del(g, dev->name, np.port.index);
	if (q < 0)
		vfiod_log(ctx, LOG_WARNING, "%s: cannot delete the port again: %s", name,
			  gnl_errmsg(g) ? gnl_errmsg(g) : strerror(-q));
out:
	gnl_close(g);
	vfiod_device_unref(dev);
	return r;
}

static int sf_destroy(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	long long sfnum = opt_uint(opts, "sf");
	_cleanup_free_ char *name = NULL, *aux = NULL, *aux_path = NULL, *left = NULL;
	struct vfiod_device *dev = NULL;
	struct gnl *g = NULL;
	struct sf_port p;
	int r;

	r = vfiod_device_new(ctx, path, &dev);
	if (r < 0)
		return r;
	if (sfnum < 0 || asprintf(&name, "%s-sf%lld", dev->name, sfnum) < 0) {
		r = sfnum < 0 ? vfiod_error(ctx, -EINVAL, "%s: option sf is missing", path)
			      : -ENOMEM;
		goto out;
	}
	r = gnl_open_ctx(ctx, GENL_DEVLINK, &g);
	if (r < 0)
		goto out;
	r = find_port(g, dev->name, (uint32_t)sfnum, &p);
	if (r == -ENOENT) {
		r = vfiod_error(ctx, r, "%s: PF %s has no subfunction with sfnum %lld", name,
				dev->syspath, sfnum);
		goto out;
	}
	if (r < 0) {
		r = gnl_error(ctx, g, r, "%s: cannot list the devlink ports", name);
		goto out;
	}
	aux = aux_find(ctx, dev->realpath, (uint32_t)sfnum);
	aux_path = aux_syspath(ctx, aux);
	/* The SF's own device: its interfaces up, its nodes open (a VM on its vdpa). */
	r = inuse_refuse_syspath(ctx, aux_path, name, INUSE_HOST | INUSE_HOLDERS,
				 opt_bool(opts, "force", false));
	if (r < 0)
		goto out;

	r = vfiod_step(ctx, OP_DESTROY, name, "deactivate");
	if (r < 0)
		goto out;
	if (p.active) {
		r = port_fn_set(g, dev->name, p.index, NULL, DEVLINK_PORT_FN_STATE_INACTIVE);
		if (r < 0) {
			r = gnl_error(ctx, g, r, "%s: cannot deactivate the function", name);
			goto out;
		}
	}
	r = vfiod_step(ctx, OP_DESTROY, name, "port-del");
	if (r < 0)
		goto out;
	r = port_del(g, dev->name, p.index);
	if (r < 0) {
		r = gnl_error(ctx, g, r, "%s: the kernel refused to delete the port", name);
		goto out;
	}
	left = aux_wait(ctx, dev->realpath, (uint32_t)sfnum, true, AUX_WAIT_MS);
	if (left)
		vfiod_log(ctx, LOG_WARNING, "%s: port deleted, but %s is still there", name, left);
	p.active = false;
	*ret = sf_json(name, dev->syspath, aux_path, aux, &p);
	if (*ret)
		json_object_set_new(*ret, "destroyed", json_true());
	r = *ret ? 0 : -ENOMEM;
	vfiod_log(ctx, LOG_INFO, "%s: subfunction %lld deleted", dev->syspath, sfnum);
out:
	gnl_close(g);
	vfiod_device_unref(dev);
	return r;
}

/* Every PCI subfunction the kernel has, with its auxiliary device. */
static int sf_list(struct vfiod_ctx *ctx, json_t *a)
{
	struct sf_port *ports = NULL;
	struct gnl *g = NULL;
	size_t n = 0;
	int r;

	/* The kernel knows only the real /sys: a fixture tree has none of its devices. */
	if (!streq(ctx->sysfs_real, VFIOD_DEFAULT_SYSFS_ROOT))
		return 0;
	r = gnl_open(GENL_DEVLINK, &g);
	if (r == -ENOENT)
		return 0;
	if (r >= 0)
		r = sf_ports(g, &ports, &n);
	if (r < 0) {
		r = g ? gnl_error(ctx, g, r, "devlink ports") :
			vfiod_error(ctx, r, "devlink: %s", strerror(-r));
		gnl_close(g);
		return r;
	}
	gnl_close(g);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *rel = NULL, *pf = NULL, *pf_real = NULL, *name = NULL;
		_cleanup_free_ char *aux = NULL, *aux_path = NULL;
		json_t *o;

		if (!streq(ports[i].bus, DEVLINK_BUS_PCI) || strchr(ports[i].dev, '/'))
			continue;
		if (asprintf(&rel, "%s/%s", SYSFS_PCI_DEVICES, ports[i].dev) < 0 ||
		    asprintf(&name, "%s-sf%u", ports[i].dev, ports[i].sfnum) < 0)
			break;
		if (root_syspath(ctx, rel, &pf) >= 0 &&
		    asprintf(&pf_real, "%s%s", ctx->sysfs_real,
			     pf + strlen(VFIOD_DEFAULT_SYSFS_ROOT)) >= 0)
			aux = aux_find(ctx, pf_real, ports[i].sfnum);
		aux_path = aux_syspath(ctx, aux);
		o = sf_json(name, pf ? pf : "", aux_path, aux, &ports[i]);
		if (o)
			json_array_append_new(a, o);
	}
	free(ports);
	return 0;
}

/* SFNUM from the digits S, all of them; -EINVAL when S is not one. */
static int parse_sfnum(const char *s, uint32_t *ret)
{
	unsigned long n;
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || n > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)n;
	return 0;
}

/*
 * The subfunction PATH names: vfiod's name for it, "PF-sfN", or the sysfs
 * path of its auxiliary device (an auxiliary device with an "sfnum", below
 * its PF).  1 with *PF (the PF's address or path) and *SFNUM, 0 when PATH
 * names none.
 */
static int sf_named(struct vfiod_ctx *ctx, const char *path, char **pf, uint32_t *sfnum)
{
	_cleanup_free_ char *logical = NULL, *real = NULL, *subsys = NULL, *v = NULL;
	_cleanup_close_ int fd = -1;
	const char *cut;

	*pf = NULL;
	if (path[0] != '/') {
		cut = strrchr(path, '-');
		if (!cut || strncmp(cut, "-sf", 3) != 0 || parse_sfnum(cut + 3, sfnum) < 0)
			return 0;
		*pf = strndup(path, cut - path);
		return *pf ? 1 : -ENOMEM;
	}
	if (sysfs_canonicalize(ctx, path, &logical, &real) < 0) {
		ctx->error[0] = '\0';
		return 0;
	}
	fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || read_link_name(fd, ATTR_SUBSYSTEM, &subsys) < 0 ||
	    !streq(subsys, SUBSYSTEM_AUXILIARY) || read_attr(fd, ATTR_SFNUM, &v) < 0 ||
	    parse_sfnum(v, sfnum) < 0)
		return 0;
	cut = strrchr(logical, '/');
	*pf = strndup(logical, cut - logical);
	return *pf ? 1 : -ENOMEM;
}

/* The auxiliary device AUX's driver, IOMMU group and vfio nodes into O. */
static void aux_json(struct vfiod_ctx *ctx, const char *aux, json_t *o)
{
	_cleanup_free_ char *rel = NULL, *driver = NULL;
	_cleanup_close_ int fd = -1;
	int group = -1;

	if (aux && asprintf(&rel, "%s/%s", SYSFS_AUXILIARY_DEVICES, aux) >= 0)
		fd = root_open(ctx, rel, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		(void)read_link_name(fd, ATTR_DRIVER, &driver);
		group = read_iommu_group(fd);
	}
	json_object_set_new(o, "driver", driver ? json_string(driver) : json_null());
	json_object_set_new(o, "iommu_group", group >= 0 ? json_integer(group) : json_null());
	json_object_set_new(o, "vfio", vfio_nodes_json(fd, group, driver_is_vfio(ctx, driver)));
}

/* Show: the SF's devlink port as the kernel has it, its auxiliary device, vfiod's record. */
static int sf_show(struct vfiod_ctx *ctx, const char *path, json_t **ret)
{
	_cleanup_free_ char *pf = NULL, *name = NULL, *aux = NULL, *aux_path = NULL;
	struct vfiod_device *dev = NULL;
	struct gnl *g = NULL;
	struct sf_port p;
	uint32_t sfnum;
	int r;

	r = sf_named(ctx, path, &pf, &sfnum);
	if (r <= 0)
		return r;
	r = vfiod_device_new(ctx, pf, &dev);
	if (r < 0)
		return r;
	if (asprintf(&name, "%s-sf%u", dev->name, sfnum) < 0) {
		r = -ENOMEM;
		goto out;
	}
	/* The kernel knows only the real /sys: a fixture tree has none of its ports. */
	if (!streq(ctx->sysfs_real, VFIOD_DEFAULT_SYSFS_ROOT)) {
		r = vfiod_error(ctx, -EOPNOTSUPP, "%s: only the kernel's devlink knows "
				"subfunctions, and it knows nothing of the sysfs tree %s",
				name, ctx->sysfs_root);
		goto out;
	}
	r = gnl_open_ctx(ctx, GENL_DEVLINK, &g);
	if (r < 0) {
		char why[sizeof(ctx->error)];

		snprintf(why, sizeof(why), "%s", ctx->error);
		r = vfiod_error(ctx, r, "%s: %s", name, why);
		goto out;
	}
	r = find_port(g, dev->name, sfnum, &p);
	if (r == -ENOENT)
		r = vfiod_error(ctx, r, "%s: PF %s has no subfunction with sfnum %u", name,
				dev->syspath, sfnum);
	else if (r < 0)
		r = gnl_error(ctx, g, r, "%s: cannot list the devlink ports", name);
	if (r < 0)
		goto out;
	aux = aux_find(ctx, dev->realpath, sfnum);
	aux_path = aux_syspath(ctx, aux);
	*ret = sf_json(name, dev->syspath, aux_path, aux, &p);
	if (!*ret) {
		r = -ENOMEM;
		goto out;
	}
	aux_json(ctx, aux, *ret);
	json_object_set_new(*ret, "assigned", held_json(ctx, name));
	r = 1;
out:
	gnl_close(g);
	vfiod_device_unref(dev);
	return r;
}

const struct kind kind_sf = {
	.name = "sf",
	.selector = "sf",
	.target = sf_target,
	.create = sf_create,
	.destroy = sf_destroy,
	.list = sf_list,
	.show = sf_show,
};
