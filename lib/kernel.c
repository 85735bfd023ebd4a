/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Client of the kernel module vfio_select over generic netlink, through
 * the one netlink layer of libvfiod (netlink.c): requests, acks, dumps,
 * extended ack messages and libnl's error codes are handled there.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <linux/vfio_select.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "internal.h"
#include "kernel.h"
#include "netlink.h"

#define MONITOR_BUF_SIZE 16384

struct vfiod_kernel {
	struct gnl *g;
	/* monitor: the datagram being handed out, one message per read */
	char *buf;
	int buf_len;
	int buf_off;
};

/* Reply attributes, checked by libnl as they are parsed. */
static struct nla_policy attr_policy[VFIO_SELECT_ATTR_MAX + 1] = {
	[VFIO_SELECT_ATTR_DEV_PATH] = { .type = NLA_STRING },
	[VFIO_SELECT_ATTR_DEV_NAME] = { .type = NLA_STRING },
	[VFIO_SELECT_ATTR_DRIVER] = { .type = NLA_STRING },
	[VFIO_SELECT_ATTR_PREV_DRIVER] = { .type = NLA_STRING },
	[VFIO_SELECT_ATTR_FLAGS] = { .type = NLA_U32 },
	[VFIO_SELECT_ATTR_IOMMU_GROUP] = { .type = NLA_U32 },
	[VFIO_SELECT_ATTR_MODALIAS] = { .type = NLA_STRING },
	[VFIO_SELECT_ATTR_CANDIDATE] = { .type = NLA_NESTED },
	[VFIO_SELECT_ATTR_GROUP_MEMBER] = { .type = NLA_NESTED },
};

static struct nla_policy cand_policy[VFIO_SELECT_CAND_MAX + 1] = {
	[VFIO_SELECT_CAND_DRIVER] = { .type = NLA_STRING },
	[VFIO_SELECT_CAND_MODULE] = { .type = NLA_STRING },
	[VFIO_SELECT_CAND_ALIAS] = { .type = NLA_STRING },
	[VFIO_SELECT_CAND_RANK] = { .type = NLA_U32 },
	[VFIO_SELECT_CAND_KEY] = { .type = NLA_U32 },
	[VFIO_SELECT_CAND_TIE] = { .type = NLA_FLAG },
};

/* Copy a NUL-terminated string attribute (checked by the policy) into dst. */
static int copy_str(char *dst, size_t size, const struct nlattr *a)
{
	if (!a) {
		dst[0] = '\0';
		return 0;
	}
	if ((size_t)nla_len(a) > size)
		return -ENAMETOOLONG;
	memcpy(dst, nla_data(a), nla_len(a));
	dst[size - 1] = '\0';
	return 0;
}

int vfiod_kernel_open(struct vfiod_kernel **out)
{
	struct vfiod_kernel *k;
	int r;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	r = gnl_open(GENL_VFIO_SELECT, &k->g);
	if (r < 0) {
		free(k);
		return r;
	}
	*out = k;
	return 0;
}

void vfiod_kernel_close(struct vfiod_kernel *k)
{
	if (!k)
		return;
	gnl_close(k->g);
	free(k->buf);
	free(k);
}

const char *vfiod_kernel_errmsg(struct vfiod_kernel *k)
{
	return k ? gnl_errmsg(k->g) : NULL;
}

/* One request in flight: how its answer is taken apart. */
typedef int (*parse_fn)(struct nlmsghdr *nlh, struct nlattr **tb, void *data);

struct request {
	struct vfiod_kernel *k;
	parse_fn parse;
	void *data;
};

static int parse_genl(struct vfiod_kernel *k, struct nlmsghdr *nlh, struct nlattr **tb)
{
	return gnl_parse(k->g, nlh, VFIO_SELECT_ATTR_MAX, attr_policy, tb);
}

static int on_reply(struct nlmsghdr *nlh, void *arg)
{
	struct request *req = arg;
	struct nlattr *tb[VFIO_SELECT_ATTR_MAX + 1];
	int r;

	r = parse_genl(req->k, nlh, tb);
	if (r >= 0 && req->parse)
		r = req->parse(nlh, tb, req->data);
	return r;
}

/* Send msg (consumed) and read every answer up to the ack or NLMSG_DONE. */
static int transact(struct vfiod_kernel *k, struct nl_msg *msg, parse_fn parse, void *data)
{
	struct request req = { .k = k, .parse = parse, .data = data };

	return gnl_transact(k->g, msg, on_reply, &req);
}

static int new_request(struct vfiod_kernel *k, uint8_t cmd, int flags, const char *syspath,
		       struct nl_msg **out)
{
	struct nl_msg *msg;
	int r;

	r = gnl_request(k->g, cmd, flags, &msg);
	if (r < 0)
		return r;
	if (syspath)
		r = nla_put_string(msg,
				   syspath[0] == '/' ? VFIO_SELECT_ATTR_DEV_PATH
						     : VFIO_SELECT_ATTR_DEV_NAME,
				   syspath);
	if (r < 0) {
		nlmsg_free(msg);
		return gnl_errno(r);
	}
	*out = msg;
	return 0;
}

static int parse_binding(struct nlattr **tb, struct vfiod_kernel_binding *b)
{
	int r;

	memset(b, 0, sizeof(*b));
	b->iommu_group = -1;
	if (!tb[VFIO_SELECT_ATTR_DEV_NAME])
		return -EBADMSG;
	r = copy_str(b->dev_name, sizeof(b->dev_name), tb[VFIO_SELECT_ATTR_DEV_NAME]);
	if (r >= 0)
		r = copy_str(b->driver, sizeof(b->driver), tb[VFIO_SELECT_ATTR_DRIVER]);
	if (r >= 0)
		r = copy_str(b->prev_driver, sizeof(b->prev_driver),
			     tb[VFIO_SELECT_ATTR_PREV_DRIVER]);
	if (r >= 0 && tb[VFIO_SELECT_ATTR_IOMMU_GROUP])
		b->iommu_group = (int)nla_get_u32(tb[VFIO_SELECT_ATTR_IOMMU_GROUP]);
	return r;
}

static int parse_candidate(struct nlattr *nest, struct vfiod_kernel_candidate *c)
{
	struct nlattr *tb[VFIO_SELECT_CAND_MAX + 1];
	int r;

	r = gnl_parse_nested(nest, VFIO_SELECT_CAND_MAX, cand_policy, tb);
	if (r < 0)
		return r;
	if (!tb[VFIO_SELECT_CAND_DRIVER] || !tb[VFIO_SELECT_CAND_RANK] ||
	    !tb[VFIO_SELECT_CAND_KEY])
		return -EBADMSG;
	memset(c, 0, sizeof(*c));
	r = copy_str(c->driver, sizeof(c->driver), tb[VFIO_SELECT_CAND_DRIVER]);
	if (r >= 0)
		r = copy_str(c->module, sizeof(c->module), tb[VFIO_SELECT_CAND_MODULE]);
	if (r >= 0)
		r = copy_str(c->alias, sizeof(c->alias), tb[VFIO_SELECT_CAND_ALIAS]);
	c->rank = nla_get_u32(tb[VFIO_SELECT_CAND_RANK]);
	c->key = nla_get_u32(tb[VFIO_SELECT_CAND_KEY]);
	c->tie = tb[VFIO_SELECT_CAND_TIE] != NULL;
	return r;
}

static int parse_match(struct nlmsghdr *nlh, struct nlattr **tb, void *data)
{
	struct vfiod_kernel_match *m = data;
	struct genlmsghdr *g = genlmsg_hdr(nlh);
	struct nlattr *a;
	int rem, r;

	memset(m, 0, sizeof(*m));
	if (!tb[VFIO_SELECT_ATTR_DEV_NAME] || !tb[VFIO_SELECT_ATTR_MODALIAS])
		return -EBADMSG;
	r = copy_str(m->dev_name, sizeof(m->dev_name), tb[VFIO_SELECT_ATTR_DEV_NAME]);
	if (r >= 0)
		r = copy_str(m->modalias, sizeof(m->modalias), tb[VFIO_SELECT_ATTR_MODALIAS]);
	if (r < 0)
		return r;

	/* Candidates are repeated attributes, best first: nla_parse keeps only one. */
	nla_for_each_attr(a, genlmsg_attrdata(g, 0), genlmsg_attrlen(g, 0), rem) {
		if (nla_type(a) != VFIO_SELECT_ATTR_CANDIDATE)
			continue;
		if (m->n == VFIOD_KERNEL_MAX_CANDIDATES)
			return -E2BIG;
		r = parse_candidate(a, &m->cand[m->n]);
		if (r < 0)
			return r;
		m->n++;
	}
	return 0;
}

int vfiod_kernel_match(struct vfiod_kernel *k, const char *syspath, struct vfiod_kernel_match *out)
{
	struct nl_msg *msg;
	int r;

	if (!k || !syspath || !out)
		return -EINVAL;
	r = new_request(k, VFIO_SELECT_CMD_MATCH, 0, syspath, &msg);
	if (r < 0)
		return r;
	out->n = 0;
	out->dev_name[0] = '\0';
	r = transact(k, msg, parse_match, out);
	if (r >= 0 && !out->dev_name[0])
		r = -EBADMSG; /* acked without a reply */
	return r;
}

static int parse_one_binding(struct nlmsghdr *nlh, struct nlattr **tb, void *data)
{
	(void)nlh;
	return parse_binding(tb, data);
}

int vfiod_kernel_bind(struct vfiod_kernel *k, const char *syspath, const char *driver,
		      const char *const *modules, uint32_t flags, struct vfiod_kernel_binding *out)
{
	struct nl_msg *msg;
	int r;

	if (!k || !syspath || !out)
		return -EINVAL;
	r = new_request(k, VFIO_SELECT_CMD_BIND, 0, syspath, &msg);
	if (r < 0)
		return r;
	if (driver)
		r = nla_put_string(msg, VFIO_SELECT_ATTR_DRIVER, driver);
	for (size_t i = 0; r >= 0 && modules && modules[i]; i++) {
		r = nla_put_string(msg, VFIO_SELECT_ATTR_MODULE, modules[i]);
		flags |= VFIO_SELECT_F_LOAD_MODULES;
	}
	if (r >= 0 && flags)
		r = nla_put_u32(msg, VFIO_SELECT_ATTR_FLAGS, flags);
	if (r < 0) {
		nlmsg_free(msg);
		return gnl_errno(r);
	}
	memset(out, 0, sizeof(*out));
	r = transact(k, msg, parse_one_binding, out);
	if (r >= 0 && !out->dev_name[0])
		r = -EBADMSG;
	return r;
}

int vfiod_kernel_unbind(struct vfiod_kernel *k, const char *syspath, uint32_t flags,
			struct vfiod_kernel_binding *out)
{
	struct nl_msg *msg;
	int r;

	if (!k || !syspath || !out)
		return -EINVAL;
	r = new_request(k, VFIO_SELECT_CMD_UNBIND, 0, syspath, &msg);
	if (r < 0)
		return r;
	if (flags) {
		r = nla_put_u32(msg, VFIO_SELECT_ATTR_FLAGS, flags);
		if (r < 0) {
			nlmsg_free(msg);
			return gnl_errno(r);
		}
	}
	memset(out, 0, sizeof(*out));
	r = transact(k, msg, parse_one_binding, out);
	if (r >= 0 && !out->dev_name[0])
		r = -EBADMSG;
	return r;
}

struct get_req {
	int (*cb)(const struct vfiod_kernel_binding *b, void *userdata);
	void *userdata;
	int n;
};

static int parse_get(struct nlmsghdr *nlh, struct nlattr **tb, void *data)
{
	struct get_req *g = data;
	struct vfiod_kernel_binding b;
	int r;

	(void)nlh;
	r = parse_binding(tb, &b);
	if (r < 0)
		return r;
	g->n++;
	if (g->cb) {
		r = g->cb(&b, g->userdata);
		if (r < 0)
			return r;
	}
	return 0;
}

int vfiod_kernel_get(struct vfiod_kernel *k, const char *syspath,
		     int (*cb)(const struct vfiod_kernel_binding *b, void *userdata),
		     void *userdata)
{
	struct get_req g = { .cb = cb, .userdata = userdata };
	struct nl_msg *msg;
	int r;

	if (!k)
		return -EINVAL;
	r = new_request(k, VFIO_SELECT_CMD_GET, syspath ? 0 : NLM_F_DUMP, syspath, &msg);
	if (r < 0)
		return r;
	r = transact(k, msg, parse_get, &g);
	return r < 0 ? r : g.n;
}

int vfiod_kernel_monitor_open(struct vfiod_kernel **out)
{
	struct vfiod_kernel *k;
	int r;

	r = vfiod_kernel_open(&k);
	if (r < 0)
		return r;
	r = gnl_join(k->g, VFIO_SELECT_MCGRP_EVENTS);
	if (r < 0) {
		vfiod_kernel_close(k);
		return r;
	}
	k->buf = malloc(MONITOR_BUF_SIZE);
	if (!k->buf) {
		vfiod_kernel_close(k);
		return -ENOMEM;
	}
	*out = k;
	return 0;
}

int vfiod_kernel_monitor_fd(struct vfiod_kernel *k)
{
	return k ? gnl_fd(k->g) : -EINVAL;
}

/* The next message of the current datagram, or NULL when it is used up. */
static struct nlmsghdr *next_buffered(struct vfiod_kernel *k)
{
	struct nlmsghdr *nlh;
	int rem = k->buf_len - k->buf_off;

	nlh = (struct nlmsghdr *)(k->buf + k->buf_off);
	if (!nlmsg_ok(nlh, rem)) {
		k->buf_len = k->buf_off = 0;
		return NULL;
	}
	k->buf_off += NLMSG_ALIGN(nlh->nlmsg_len);
	if (k->buf_off > k->buf_len)
		k->buf_off = k->buf_len;
	return nlh;
}

/*
 * Events are read with recvfrom() rather than libnl: to hand out exactly
 * one per call, to see ENOBUFS as such, and to take only what the kernel
 * sent (port 0) and never a message another process addressed to us.
 */
int vfiod_kernel_monitor_read(struct vfiod_kernel *k, int *cmd, struct vfiod_kernel_binding *out)
{
	int fd;

	if (!k || !k->buf || !cmd || !out)
		return -EINVAL;
	fd = gnl_fd(k->g);
	for (;;) {
		struct nlattr *tb[VFIO_SELECT_ATTR_MAX + 1];
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof(from);
		struct nlmsghdr *nlh;
		ssize_t n;
		uint8_t c;

		nlh = next_buffered(k);
		if (nlh) {
			if (parse_genl(k, nlh, tb) < 0)
				continue;
			c = genlmsg_hdr(nlh)->cmd;
			if (c != VFIO_SELECT_CMD_BIND && c != VFIO_SELECT_CMD_UNBIND)
				continue;
			if (parse_binding(tb, out) < 0)
				continue;
			*cmd = c;
			return 0;
		}

		n = recvfrom(fd, k->buf, MONITOR_BUF_SIZE, MSG_TRUNC, (struct sockaddr *)&from,
			     &fromlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n > MONITOR_BUF_SIZE || fromlen != sizeof(from) || from.nl_family != AF_NETLINK ||
		    from.nl_pid != 0)
			continue; /* truncated, or not from the kernel: not ours to trust */
		k->buf_len = (int)n;
		k->buf_off = 0;
	}
}
