/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Generic netlink over libnl-3: one socket object for every family we use.
 * See netlink.h.  The extended ack message, which libnl 3.7 does not
 * expose, is parsed here from the TLVs after the nlmsgerr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "internal.h"
#include "netlink.h"

struct gnl {
	struct nl_sock *sk;
	char *family;
	int family_id;
	uint8_t version;
	char errmsg[512];
};

/* The families libvfiod talks to: their version, and what provides them when absent. */
static const struct {
	const char *name;
	uint8_t version;
	const char *provider;
} families[] = {
	{ GENL_VFIO_SELECT, 1, "load the module vfio_select (modprobe vfio_select)" },
	{ GENL_VDPA, 1, "load the module vdpa (modprobe vdpa)" },
	{ GENL_DEVLINK, 1, "devlink is built into the kernel (CONFIG_NET_DEVLINK); "
			   "this kernel was built without it" },
};

int gnl_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case 0:
		return 0;
	case NLE_INTR:
		return -EINTR;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_RANGE:
		return -ERANGE;
	case NLE_MSGSIZE:
	case NLE_MSG_TRUNC:
	case NLE_MSG_TOOSHORT:
		return -EMSGSIZE;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_NOATTR:
		return -ENODATA;
	case NLE_MISSING_ATTR:
		return -EBADMSG;
	case NLE_AF_MISMATCH:
		return -EAFNOSUPPORT;
	case NLE_SEQ_MISMATCH:
		return -EILSEQ;
	case NLE_MSG_OVERFLOW:
		return -EOVERFLOW;
	case NLE_DUMP_INTR:
		return -EINTR;
	case NLE_PERM:
		return -EPERM;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_PROTO_MISMATCH:
		return -EPROTONOSUPPORT;
	case NLE_IMMUTABLE:
		return -EROFS;
	default:
		return -EIO;
	}
}

int gnl_open(const char *family, struct gnl **ret)
{
	struct gnl *g;
	int one = 1, r;

	*ret = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->version = 1;
	for (size_t i = 0; i < ARRAY_SIZE(families); i++)
		if (streq(families[i].name, family))
			g->version = families[i].version;
	g->family = strdup(family);
	g->sk = nl_socket_alloc();
	if (!g->family || !g->sk) {
		gnl_close(g);
		return -ENOMEM;
	}
	r = genl_connect(g->sk);
	if (r < 0)
		goto fail;
	/* Extended acks; and no copy of our request in error replies. */
	(void)setsockopt(nl_socket_get_fd(g->sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(nl_socket_get_fd(g->sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	r = genl_ctrl_resolve(g->sk, family);
	if (r < 0)
		goto fail;
	g->family_id = r;
	*ret = g;
	return 0;
fail:
	gnl_close(g);
	return gnl_errno(r);
}

int gnl_open_ctx(struct vfiod_ctx *ctx, const char *family, struct gnl **ret)
{
	const char *provider = NULL;
	int r = gnl_open(family, ret);

	if (r >= 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(families); i++)
		if (streq(families[i].name, family))
			provider = families[i].provider;
	if (r == -ENOENT)
		return vfiod_error(ctx, r, "the generic netlink family \"%s\" is not registered%s%s",
				   family, provider ? ": " : "", provider ? provider : "");
	return vfiod_error(ctx, r, "generic netlink family \"%s\": %s", family, strerror(-r));
}

void gnl_close(struct gnl *g)
{
	if (!g)
		return;
	if (g->sk)
		nl_socket_free(g->sk);
	free(g->family);
	free(g);
}

int gnl_family_id(struct gnl *g)
{
	return g->family_id;
}

int gnl_fd(struct gnl *g)
{
	return nl_socket_get_fd(g->sk);
}

int gnl_join(struct gnl *g, const char *group)
{
	int grp = genl_ctrl_resolve_grp(g->sk, g->family, group);

	if (grp < 0)
		return gnl_errno(grp);
	return gnl_errno(nl_socket_add_membership(g->sk, grp));
}

const char *gnl_errmsg(struct gnl *g)
{
	return g && g->errmsg[0] ? g->errmsg : NULL;
}

int gnl_request(struct gnl *g, uint8_t cmd, int flags, struct nl_msg **ret)
{
	struct nl_msg *msg;

	*ret = NULL;
	g->errmsg[0] = '\0';
	msg = nlmsg_alloc();
	if (!msg)
		return -ENOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, g->family_id, 0, flags, cmd,
			 g->version)) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	*ret = msg;
	return 0;
}

int gnl_parse(struct gnl *g, struct nlmsghdr *nlh, int maxtype, struct nla_policy *policy,
	      struct nlattr **tb)
{
	if (nlh->nlmsg_type != g->family_id)
		return -EBADMSG;
	return gnl_errno(genlmsg_parse(nlh, 0, tb, maxtype, policy));
}

int gnl_parse_nested(struct nlattr *nest, int maxtype, struct nla_policy *policy,
		     struct nlattr **tb)
{
	return gnl_errno(nla_parse_nested(tb, maxtype, nest, policy));
}

/* One request in flight. */
struct request {
	struct gnl *g;
	gnl_reply_fn reply;
	void *data;
	int error;	  /* first local error while handling replies */
	int kernel_error; /* errno of the kernel's nlmsgerr */
	bool done;
};

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct request *req = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int r;

	if (req->error < 0 || nlh->nlmsg_type != req->g->family_id)
		return NL_SKIP;
	r = req->reply ? req->reply(nlh, req->data) : 0;
	if (r < 0)
		req->error = r;
	/* Keep reading until the ack, so that the socket stays in step. */
	return NL_SKIP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct request *req = arg;

	(void)msg;
	req->done = true;
	return NL_STOP;
}

/*
 * The extended ack: NLMSGERR_ATTR_* TLVs after the nlmsgerr and, unless the
 * ack was capped, after the payload of our request echoed in it.
 */
static void save_extack(struct gnl *g, const struct nlmsgerr *e)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
	size_t off = sizeof(*e);
	const struct nlattr *a;
	int len;

	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e) || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < NLMSG_HDRLEN)
			return;
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	}
	off = NLMSG_ALIGN(off);
	len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - (int)off;
	if (len <= 0)
		return;
	a = nla_find((const struct nlattr *)((const char *)e + off), len, NLMSGERR_ATTR_MSG);
	if (!a || nla_len(a) < 1 || !memchr(nla_data(a), '\0', nla_len(a)))
		return;
	snprintf(g->errmsg, sizeof(g->errmsg), "%s", (const char *)nla_data(a));
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct request *req = arg;

	(void)nla;
	req->kernel_error = e->error < 0 ? e->error : -EIO;
	save_extack(req->g, e);
	req->done = true;
	return NL_STOP;
}

int gnl_transact(struct gnl *g, struct nl_msg *msg, gnl_reply_fn reply, void *data)
{
	struct request req = { .g = g, .reply = reply, .data = data };
	struct nl_cb *cb;
	int r;

	g->errmsg[0] = '\0';
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &req);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &req);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_finish, &req);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, &req);

	r = nl_send_auto(g->sk, msg);
	nlmsg_free(msg);
	while (r >= 0 && !req.done)
		r = nl_recvmsgs(g->sk, cb);
	nl_cb_put(cb);

	if (req.kernel_error < 0)
		return req.kernel_error;
	if (r < 0)
		return gnl_errno(r);
	return req.error;
}

int gnl_error(struct vfiod_ctx *ctx, struct gnl *g, int r, const char *fmt, ...)
{
	const char *msg = gnl_errmsg(g);
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return vfiod_error(ctx, r, "%s: %s", what, msg ? msg : strerror(-r));
}
