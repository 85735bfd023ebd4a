/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one generic netlink layer of libvfiod (libnl-3), for every family it
 * talks to: vfio_select (kernel.c), vdpa (vdpa.c) and devlink (sf.c).
 *
 * A `struct gnl` is one genl socket bound to one family.  Requests are sent
 * with NLM_F_ACK and read up to the ack (or NLMSG_DONE of a dump), so the
 * socket never holds a stale answer.  Kernel errors come back as the errno
 * of the nlmsgerr; the extended ack message (NLMSGERR_ATTR_MSG) is kept
 * verbatim, gnl_errmsg(), until the next request.  libnl's NLE_* codes
 * become errno values in gnl_errno() only.  Nothing here prints.
 */
#pragma once

#include <stdint.h>

#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

struct vfiod_ctx;
struct gnl;

/* -ENOENT when FAMILY is not registered. */
int gnl_open(const char *family, struct gnl **ret);
/*
 * The same, for libvfiod's kinds: on failure the context's error names the
 * family and, when it is absent, what provides it.
 */
int gnl_open_ctx(struct vfiod_ctx *ctx, const char *family, struct gnl **ret);
void gnl_close(struct gnl *g);

int gnl_family_id(struct gnl *g);
int gnl_fd(struct gnl *g);
/* Join the multicast group GROUP of the family. */
int gnl_join(struct gnl *g, const char *group);

/* The extended ack text of the last failed request, or NULL. */
const char *gnl_errmsg(struct gnl *g);

/* libnl's NLE_* (negative or not) as a negative errno: the one place. */
int gnl_errno(int nle);

/* A request of command CMD (FLAGS: 0 or NLM_F_DUMP), to be filled with nla_put_*(). */
int gnl_request(struct gnl *g, uint8_t cmd, int flags, struct nl_msg **ret);

/* Called for each message of the answer; a negative return is kept and returned. */
typedef int (*gnl_reply_fn)(struct nlmsghdr *nlh, void *data);

/*
 * Send MSG (consumed) and read every answer up to the ack or NLMSG_DONE,
 * handing each message of our family to REPLY.  Returns the kernel's
 * negative errno, or REPLY's first error, or 0.
 */
int gnl_transact(struct gnl *g, struct nl_msg *msg, gnl_reply_fn reply, void *data);

/* genlmsg_parse() / nla_parse_nested() with errno results. */
int gnl_parse(struct gnl *g, struct nlmsghdr *nlh, int maxtype, struct nla_policy *policy,
	      struct nlattr **tb);
int gnl_parse_nested(struct nlattr *nest, int maxtype, struct nla_policy *policy,
		     struct nlattr **tb);

/*
 * Set the context's error for a failed request R: "<what>: <the kernel's
 * message>" when there is one, else "<what>: <strerror>".  Returns R.
 */
int gnl_error(struct vfiod_ctx *ctx, struct gnl *g, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
