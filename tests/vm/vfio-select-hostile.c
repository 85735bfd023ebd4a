/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfio-select-hostile: send vfio_select malformed, lying and racing
 * requests, and check that each is refused with the right errno and an
 * extended ack message.  Runs in the test VM as root, with the module
 * loaded and vfio-pci registered:
 *
 *   vfio-select-hostile --device 0000:00:04.0 [--iterations N] [--unprivileged]
 *   vfio-select-hostile --dump PCI_NAME...
 *
 * --unprivileged: the caller lacks CAP_SYS_ADMIN (setpriv, or a user):
 * BIND and UNBIND must give EPERM, MATCH and GET must work, the device
 * must not change; the racing part is skipped.
 *
 * --dump: BIND all but the last 16 of the devices (none of them on record
 * yet, each with a vfio driver to take it), then read a GET dump with a
 * small buffer, so that it takes several rounds, while records are dropped
 * and made between the rounds; every record there all along must be listed
 * exactly once.  UNBINDs every device it bound at the end.
 *
 * Prints "ok N - name" / "not ok N - name" and "P passed, F failed"; exits 1
 * if anything failed.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vfio_select.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#define BUF_SIZE 65536

struct conn {
	struct nl_sock *sk;
	int fd;
	int family;
	unsigned int seq;
	char *buf;
};

struct reply {
	int err;		/* 0 or a negative errno */
	char msg[256];		/* extack message, "" if none */
	int n_cand;		/* MATCH: candidates */
	char driver[64];	/* DRIVER of the (last) reply */
	char cand[2][64];	/* MATCH: the drivers of the first two candidates */
	int n_msgs;		/* replies before the ack / DONE */
};

static int passed, failed, n_test;
static bool verbose;

static void report(bool ok, const char *name, const struct reply *r)
{
	n_test++;
	if (ok)
		passed++;
	else
		failed++;
	printf("%sok %d - %s\n", ok ? "" : "not ", n_test, name);
	if (r && (!ok || verbose))
		printf("#   got %s (%d), message \"%s\"\n", r->err ? strerrorname_np(-r->err) : "0",
		       r->err, r->msg);
	fflush(stdout);
}

static int conn_open(struct conn *c)
{
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->sk = nl_socket_alloc();
	if (!c->sk || genl_connect(c->sk) < 0)
		return -1;
	c->family = genl_ctrl_resolve(c->sk, VFIO_SELECT_GENL_NAME);
	if (c->family < 0)
		return -1;
	c->fd = nl_socket_get_fd(c->sk);
	setsockopt(c->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(c->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	c->seq = 1000;
	c->buf = malloc(BUF_SIZE);
	return c->buf ? 0 : -1;
}

static void conn_close(struct conn *c)
{
	nl_socket_free(c->sk);
	free(c->buf);
}

static struct nl_msg *req(struct conn *c, uint8_t cmd, int flags)
{
	struct nl_msg *m = nlmsg_alloc_size(BUF_SIZE);

	if (!m || !genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, c->family, 0, flags, cmd,
			       VFIO_SELECT_GENL_VERSION)) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return m;
}

static void parse_extack(const struct nlmsghdr *h, struct reply *r)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	size_t off = sizeof(*e);
	const struct nlattr *a;
	int len, rem;

	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_ALIGN(off);
	len = (int)h->nlmsg_len - NLMSG_HDRLEN - (int)off;
	if (len <= 0)
		return;
	nla_for_each_attr(a, (struct nlattr *)((char *)e + off), len, rem) {
		if (nla_type(a) == NLMSGERR_ATTR_MSG && nla_len(a) > 0 &&
		    memchr(nla_data(a), '\0', nla_len(a)))
			snprintf(r->msg, sizeof(r->msg), "%s", (char *)nla_data(a));
	}
}

static void parse_reply(struct conn *c, struct nlmsghdr *h, struct reply *r)
{
	struct genlmsghdr *g = NLMSG_DATA(h);
	struct nlattr *a;
	int rem;

	r->n_msgs++;
	nla_for_each_attr(a, genlmsg_attrdata(g, 0), genlmsg_attrlen(g, 0), rem) {
		if (nla_type(a) == VFIO_SELECT_ATTR_CANDIDATE) {
			struct nlattr *d = nla_find(nla_data(a), nla_len(a), VFIO_SELECT_CAND_DRIVER);

			if (d && r->n_cand < 2)
				snprintf(r->cand[r->n_cand], sizeof(r->cand[0]), "%.*s", nla_len(d),
					 (char *)nla_data(d));
			r->n_cand++;
		}
		if (nla_type(a) == VFIO_SELECT_ATTR_DRIVER)
			snprintf(r->driver, sizeof(r->driver), "%.*s", nla_len(a),
				 (char *)nla_data(a));
	}
	(void)c;
}

/* Send m (freed) with NLM_F_ACK and read to its ack or NLMSG_DONE. */
static void xact(struct conn *c, struct nl_msg *m, struct reply *r)
{
	struct nlmsghdr *h = nlmsg_hdr(m);
	unsigned int seq = ++c->seq;

	memset(r, 0, sizeof(*r));
	h->nlmsg_seq = seq;
	h->nlmsg_pid = 0;
	h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (send(c->fd, h, h->nlmsg_len, 0) < 0) {
		r->err = -errno;
		snprintf(r->msg, sizeof(r->msg), "(send failed)");
		nlmsg_free(m);
		return;
	}
	nlmsg_free(m);
	for (;;) {
		ssize_t n = recv(c->fd, c->buf, BUF_SIZE, 0);
		struct nlmsghdr *p;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r->err = -errno;
			snprintf(r->msg, sizeof(r->msg), "(recv failed)");
			return;
		}
		len = (int)n;
		for (p = (struct nlmsghdr *)c->buf; NLMSG_OK(p, len); p = NLMSG_NEXT(p, len)) {
			if (p->nlmsg_seq != seq)
				continue;
			if (p->nlmsg_type == NLMSG_ERROR) {
				r->err = ((struct nlmsgerr *)NLMSG_DATA(p))->error;
				parse_extack(p, r);
				return;
			}
			if (p->nlmsg_type == NLMSG_DONE) {
				r->err = 0;
				return;
			}
			if (p->nlmsg_type == c->family)
				parse_reply(c, p, r);
		}
	}
}

/* A refusal: the errno, and a message (containing want_msg when given). */
static void expect_err(const char *name, const struct reply *r, int err, const char *want_msg)
{
	bool ok = r->err == -err && r->msg[0] && (!want_msg || strstr(r->msg, want_msg));

	report(ok, name, r);
}

static void expect_ok(const char *name, const struct reply *r)
{
	report(r->err == 0, name, r);
}

static void put_str(struct nl_msg *m, int type, const char *s)
{
	if (nla_put_string(m, type, s) < 0) {
		fprintf(stderr, "nla_put failed\n");
		exit(2);
	}
}

static void put_raw(struct nl_msg *m, int type, const void *data, int len)
{
	if (nla_put(m, type, len, data) < 0) {
		fprintf(stderr, "nla_put failed\n");
		exit(2);
	}
}

static void dev_req(struct conn *c, uint8_t cmd, int type, const char *s, struct reply *r)
{
	struct nl_msg *m = req(c, cmd, 0);

	put_str(m, type, s);
	xact(c, m, r);
}

static int sysfs_driver(const char *dev, char *buf, size_t size)
{
	char p[PATH_MAX], l[PATH_MAX];
	ssize_t n;

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver", dev);
	n = readlink(p, l, sizeof(l) - 1);
	if (n < 0) {
		snprintf(buf, size, "none");
		return -errno;
	}
	l[n] = '\0';
	snprintf(buf, size, "%s", strrchr(l, '/') + 1);
	return 0;
}

/* Another PCI function than dev, for the disagreeing-names case. */
static int other_device(const char *dev, char *buf, size_t size)
{
	char p[PATH_MAX];
	const char *cands[] = { "0000:00:00.0", "0000:00:1f.0", "0000:00:01.0", "0000:00:02.0",
				"0000:00:03.0", "0000:00:04.0" };

	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s", cands[i]);
		if (strcmp(cands[i], dev) && access(p, F_OK) == 0) {
			snprintf(buf, size, "%s", cands[i]);
			return 0;
		}
	}
	return -1;
}

/* ------------------------------------------------------------------ */

static void test_malformed(struct conn *c, const char *dev, const char *canon)
{
	char big[6000], other[64], path[PATH_MAX];
	struct nl_msg *m;
	struct reply r;
	uint32_t u;

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	xact(c, m, &r);
	expect_err("MATCH without DEV_PATH or DEV_NAME: EINVAL", &r, EINVAL, "DEV_PATH or DEV_NAME");

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	u = 0x41414141; /* "AAAA", no NUL */
	put_raw(m, VFIO_SELECT_ATTR_DEV_NAME, &u, sizeof(u));
	xact(c, m, &r);
	expect_err("DEV_NAME as a u32 without NUL: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	u = 0; /* reads as the empty string */
	put_raw(m, VFIO_SELECT_ATTR_DEV_NAME, &u, sizeof(u));
	xact(c, m, &r);
	expect_err("DEV_NAME as a u32 zero (empty string): EINVAL", &r, EINVAL, "DEV_NAME");

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	u = 1;
	put_raw(m, VFIO_SELECT_ATTR_DEV_PATH, &u, sizeof(u));
	xact(c, m, &r);
	expect_err("DEV_PATH as a u32 one: EINVAL", &r, EINVAL, NULL);

	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, big, &r);
	expect_err("DEV_PATH of 5999 bytes: EINVAL", &r, EINVAL, NULL);

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_NAME,
		"0000:00:00.0000000000000000000000000000000", &r);
	expect_err("DEV_NAME of 43 bytes: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	put_raw(m, VFIO_SELECT_ATTR_DEV_PATH, canon, (int)strlen(canon));
	xact(c, m, &r);
	expect_err("DEV_PATH without its NUL: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	put_raw(m, VFIO_SELECT_ATTR_DEV_NAME, dev, (int)strlen(dev));
	xact(c, m, &r);
	expect_err("DEV_NAME without its NUL: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	put_raw(m, VFIO_SELECT_ATTR_DEV_PATH, "", 0);
	xact(c, m, &r);
	expect_err("DEV_PATH of length 0: EINVAL", &r, EINVAL, NULL);

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/../../../devices/virtual/net/lo");
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH with ..: EINVAL", &r, EINVAL, "..");

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/../devices/%s", dev);
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH with .. that ends in a PCI name: EINVAL", &r, EINVAL, "..");

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/./%s", dev);
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH with .: EINVAL", &r, EINVAL, NULL);

	snprintf(path, sizeof(path), "/sys/bus/pci/devices//%s", dev);
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH with //: EINVAL", &r, EINVAL, "//");

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/", dev);
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH with a trailing /: EINVAL", &r, EINVAL, NULL);

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, canon + 1, &r);
	expect_err("DEV_PATH not absolute: EINVAL", &r, EINVAL, "absolute");

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s\n", dev);
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH with a newline: EINVAL", &r, EINVAL, NULL);

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, "/sys/class/net/lo", &r);
	expect_err("DEV_PATH under /sys/class: EINVAL", &r, EINVAL, NULL);

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH,
		"/sys/devices/virtual/net/lo", &r);
	expect_err("DEV_PATH of a non-PCI device (lo): ENODEV", &r, ENODEV, "not a PCI device");

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, "/sys/devices/system/cpu",
		&r);
	expect_err("DEV_PATH of a non-PCI folder: ENODEV", &r, ENODEV, NULL);

	snprintf(path, sizeof(path), "/sys/devices/virtual/net/%s", dev);
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH ending in a PCI name but not its path: ENODEV", &r, ENODEV,
		   "not the sysfs path");

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", dev);
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, path, &r);
	expect_err("DEV_PATH below a device link: ENODEV", &r, ENODEV, NULL);

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_NAME, "0000:fe:1f.7", &r);
	expect_err("DEV_NAME of no device: ENODEV", &r, ENODEV, "no PCI device");

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_NAME, "lo", &r);
	expect_err("DEV_NAME not a PCI name: EINVAL", &r, EINVAL, "DEV_NAME");

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH,
		"/sys/bus/pci/devices/0000:fe:1f.7", &r);
	expect_err("DEV_PATH of no device: ENODEV", &r, ENODEV, NULL);

	if (other_device(dev, other, sizeof(other)) == 0) {
		m = req(c, VFIO_SELECT_CMD_MATCH, 0);
		put_str(m, VFIO_SELECT_ATTR_DEV_PATH, canon);
		put_str(m, VFIO_SELECT_ATTR_DEV_NAME, other);
		xact(c, m, &r);
		expect_err("DEV_NAME and DEV_PATH disagreeing: EINVAL", &r, EINVAL,
			   "different devices");
	} else {
		report(false, "DEV_NAME and DEV_PATH disagreeing: no second PCI device", NULL);
	}

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_PATH, canon);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	xact(c, m, &r);
	expect_ok("DEV_NAME and DEV_PATH agreeing: MATCH works", &r);

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	put_str(m, VFIO_SELECT_ATTR_DRIVER, "vfio-pci");
	xact(c, m, &r);
	expect_err("MATCH with DRIVER (not one of its attributes): EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	put_str(m, VFIO_SELECT_ATTR_MAX + 1, "x");
	xact(c, m, &r);
	expect_err("unknown attribute type: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_MATCH, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(m)))->reserved = 1;
	xact(c, m, &r);
	expect_err("reserved byte of the genl header set: EINVAL", &r, EINVAL, NULL);

	m = req(c, 77, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	xact(c, m, &r);
	report(r.err == -EOPNOTSUPP, "unknown command: EOPNOTSUPP", &r);

	m = req(c, VFIO_SELECT_CMD_GET, NLM_F_DUMP);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	xact(c, m, &r);
	expect_err("GET dump with an attribute: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_MATCH, NLM_F_DUMP);
	xact(c, m, &r);
	report(r.err == -EOPNOTSUPP, "MATCH as a dump: EOPNOTSUPP", &r);
}

/* A request for dev with FLAGS (none when 0), more attributes to come. */
static struct nl_msg *flagged_req(struct conn *c, uint8_t cmd, const char *dev, uint32_t flags)
{
	struct nl_msg *m = req(c, cmd, 0);

	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	if (flags)
		put_raw(m, VFIO_SELECT_ATTR_FLAGS, &flags, sizeof(flags));
	return m;
}

/* Module names BIND must refuse: empty, blank, a path, a glob, an option, a newline, 56 bytes. */
static const char *const bad_modules[] = {
	"", "a b", "../vfio_pci", "vfio_pci:v*", "-", "x\n",
	"a_module_name_of_fifty_six_bytes_which_request_module_refuses",
};

static void test_bind_args(struct conn *c, const char *dev)
{
	struct nl_msg *m;
	struct reply r;
	uint32_t u;
	char before[64], after[64];

	sysfs_driver(dev, before, sizeof(before));

	m = req(c, VFIO_SELECT_CMD_BIND, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	u = 1u << 31;
	put_raw(m, VFIO_SELECT_ATTR_FLAGS, &u, sizeof(u));
	xact(c, m, &r);
	expect_err("BIND with an unknown FLAGS bit: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_BIND, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	put_str(m, VFIO_SELECT_ATTR_FLAGS, "load");
	xact(c, m, &r);
	expect_err("BIND with FLAGS as a string: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_BIND, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	put_str(m, VFIO_SELECT_ATTR_DRIVER, "nvme");
	xact(c, m, &r);
	expect_err("BIND to a driver that is no vfio candidate: EINVAL", &r, EINVAL,
		   "not a registered vfio driver");

	m = req(c, VFIO_SELECT_CMD_BIND, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	put_str(m, VFIO_SELECT_ATTR_DRIVER,
		"a-driver-name-that-is-much-longer-than-sixty-three-bytes-allowed-here");
	xact(c, m, &r);
	expect_err("BIND with an overlong DRIVER: EINVAL", &r, EINVAL, NULL);

	m = req(c, VFIO_SELECT_CMD_BIND, 0);
	xact(c, m, &r);
	expect_err("BIND without a device: EINVAL", &r, EINVAL, NULL);

	/* MODULE: checked before anything loads or the device is looked at */
	m = flagged_req(c, VFIO_SELECT_CMD_BIND, dev, VFIO_SELECT_F_LOAD_MODULES);
	xact(c, m, &r);
	expect_err("BIND with LOAD_MODULES and no MODULE: EINVAL", &r, EINVAL, "MODULE names");

	m = flagged_req(c, VFIO_SELECT_CMD_BIND, dev, 0);
	put_str(m, VFIO_SELECT_ATTR_MODULE, "vfio_pci");
	xact(c, m, &r);
	expect_err("BIND with MODULE and no LOAD_MODULES: EINVAL", &r, EINVAL, "LOAD_MODULES");

	for (size_t i = 0; i < sizeof(bad_modules) / sizeof(bad_modules[0]); i++) {
		char name[128];

		m = flagged_req(c, VFIO_SELECT_CMD_BIND, dev, VFIO_SELECT_F_LOAD_MODULES);
		put_str(m, VFIO_SELECT_ATTR_MODULE, bad_modules[i]);
		xact(c, m, &r);
		snprintf(name, sizeof(name), "BIND with MODULE \"%s\": EINVAL", bad_modules[i]);
		expect_err(name, &r, EINVAL, NULL);
	}

	m = flagged_req(c, VFIO_SELECT_CMD_BIND, dev, VFIO_SELECT_F_LOAD_MODULES);
	for (int i = 0; i <= VFIO_SELECT_MODULES_MAX; i++)
		put_str(m, VFIO_SELECT_ATTR_MODULE, "vfio_pci");
	xact(c, m, &r);
	expect_err("BIND with too many MODULEs: E2BIG", &r, E2BIG, NULL);

	m = flagged_req(c, VFIO_SELECT_CMD_UNBIND, dev, VFIO_SELECT_F_LOAD_MODULES);
	xact(c, m, &r);
	expect_err("UNBIND with a BIND flag: EINVAL", &r, EINVAL, NULL);

	sysfs_driver(dev, after, sizeof(after));
	report(!strcmp(before, after), "refused BINDs left the device alone", NULL);
}

static void test_unprivileged(struct conn *c, const char *dev, const char *canon)
{
	uint32_t flags = VFIO_SELECT_F_LOAD_MODULES;
	char before[64], after[64];
	struct nl_msg *m;
	struct reply r;

	sysfs_driver(dev, before, sizeof(before));

	dev_req(c, VFIO_SELECT_CMD_BIND, VFIO_SELECT_ATTR_DEV_PATH, canon, &r);
	expect_err("unprivileged BIND: EPERM", &r, EPERM, "CAP_SYS_ADMIN");

	m = req(c, VFIO_SELECT_CMD_BIND, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	put_str(m, VFIO_SELECT_ATTR_DRIVER, "vfio-pci");
	put_raw(m, VFIO_SELECT_ATTR_FLAGS, &flags, sizeof(flags));
	xact(c, m, &r);
	expect_err("unprivileged BIND with DRIVER and LOAD_MODULES: EPERM", &r, EPERM, NULL);

	m = req(c, VFIO_SELECT_CMD_BIND, 0);
	put_str(m, VFIO_SELECT_ATTR_DEV_NAME, dev);
	put_raw(m, VFIO_SELECT_ATTR_FLAGS, &flags, sizeof(flags));
	put_str(m, VFIO_SELECT_ATTR_MODULE, "vfio_pci");
	xact(c, m, &r);
	expect_err("unprivileged BIND with MODULE: EPERM", &r, EPERM, "CAP_SYS_");

	dev_req(c, VFIO_SELECT_CMD_UNBIND, VFIO_SELECT_ATTR_DEV_NAME, dev, &r);
	expect_err("unprivileged UNBIND: EPERM", &r, EPERM, "CAP_SYS_ADMIN");

	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_PATH, canon, &r);
	report(r.err == 0 && r.n_cand >= 1, "unprivileged MATCH works and lists candidates", &r);

	m = req(c, VFIO_SELECT_CMD_GET, NLM_F_DUMP);
	xact(c, m, &r);
	expect_ok("unprivileged GET dump works", &r);

	sysfs_driver(dev, after, sizeof(after));
	report(!strcmp(before, after), "unprivileged requests left the device alone", NULL);
}

/* ------------------------------------------------------------------ */
/* BIND racing UNBIND (and MATCH) on one device */

struct racer {
	const char *dev;
	uint8_t cmd;
	int iterations;		/* BIND: how many; the others: until BIND is done */
	const char *drivers[2];	/* BIND: alternate between these (NULL: the best) */
	int ok, expected_err, busy, bad;
	int bad_err;
	char bad_msg[256];
};

static int race_done; /* set once BIND is done; read with __atomic */

static void *race(void *arg)
{
	struct racer *x = arg;
	struct conn c;

	if (conn_open(&c) < 0) {
		x->bad = 1;
		return NULL;
	}
	for (int i = 0; x->cmd == VFIO_SELECT_CMD_BIND ? i < x->iterations
						      : !__atomic_load_n(&race_done, __ATOMIC_SEQ_CST);
	     i++) {
		const char *drv = x->drivers[i % 2];
		struct nl_msg *m = req(&c, x->cmd, 0);
		struct reply r;

		put_str(m, VFIO_SELECT_ATTR_DEV_NAME, x->dev);
		if (drv)
			put_str(m, VFIO_SELECT_ATTR_DRIVER, drv);
		xact(&c, m, &r);
		if (r.err == 0)
			x->ok++;
		else if (x->cmd == VFIO_SELECT_CMD_UNBIND && r.err == -ENOENT)
			x->expected_err++; /* not bound to vfio at that moment */
		else if (x->cmd != VFIO_SELECT_CMD_MATCH && r.err == -EBUSY)
			x->busy++; /* the other one works on the device */
		else if (!x->bad++) {
			x->bad_err = r.err;
			snprintf(x->bad_msg, sizeof(x->bad_msg), "%s", r.msg);
		}
	}
	if (x->cmd == VFIO_SELECT_CMD_BIND)
		__atomic_store_n(&race_done, 1, __ATOMIC_SEQ_CST);
	conn_close(&c);
	return NULL;
}

static void race_report(const char *what, const struct racer *x)
{
	char name[200];

	if (x->cmd == VFIO_SELECT_CMD_UNBIND)
		snprintf(name, sizeof(name),
			 "%s: %d ok, %d ENOENT (nothing to unbind), %d EBUSY, no other error", what,
			 x->ok, x->expected_err, x->busy);
	else if (x->cmd == VFIO_SELECT_CMD_BIND)
		snprintf(name, sizeof(name), "%s: %d ok, %d EBUSY, no other error", what, x->ok,
			 x->busy);
	else
		snprintf(name, sizeof(name), "%s: %d ok, no error", what, x->ok);
	report(x->bad == 0, name, NULL);
	if (x->bad)
		printf("#   %d failed, the first with %s: %s\n", x->bad,
		       strerrorname_np(-x->bad_err), x->bad_msg);
}

static void test_race(struct conn *c, const char *dev, int iterations)
{
	struct racer b = { .dev = dev, .cmd = VFIO_SELECT_CMD_BIND, .iterations = iterations };
	struct racer u = { .dev = dev, .cmd = VFIO_SELECT_CMD_UNBIND };
	struct racer m = { .dev = dev, .cmd = VFIO_SELECT_CMD_MATCH };
	char before[64], mid[64], after[64], name[200];
	pthread_t tb, tu, tm;
	struct reply r;
	bool is_ours;

	/* Alternate between the two best candidates: every BIND then really rebinds. */
	dev_req(c, VFIO_SELECT_CMD_MATCH, VFIO_SELECT_ATTR_DEV_NAME, dev, &r);
	if (r.err == 0 && r.n_cand >= 2) {
		b.drivers[0] = strdup(r.cand[0]);
		b.drivers[1] = strdup(r.cand[1]);
	}
	printf("# racing %d BINDs (%s / %s) against UNBINDs and MATCHes\n", iterations,
	       b.drivers[0] ? b.drivers[0] : "best", b.drivers[1] ? b.drivers[1] : "best");

	sysfs_driver(dev, before, sizeof(before));
	__atomic_store_n(&race_done, 0, __ATOMIC_SEQ_CST);
	pthread_create(&tu, NULL, race, &u);
	pthread_create(&tm, NULL, race, &m);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(tb, NULL);
	pthread_join(tu, NULL);
	pthread_join(tm, NULL);

	race_report("racing BINDs", &b);
	race_report("racing UNBINDs", &u);
	race_report("MATCHes during the race", &m);
	report(b.ok > 0 && u.ok > 0, "the race interleaved: some UNBINDs undid BINDs", NULL);

	/* The end state is one of the two, and GET agrees with it. */
	sysfs_driver(dev, mid, sizeof(mid));
	dev_req(c, VFIO_SELECT_CMD_GET, VFIO_SELECT_ATTR_DEV_NAME, dev, &r);
	is_ours = r.err == 0;
	snprintf(name, sizeof(name), "after the race the device is bound (%s) and GET agrees (%s)",
		 mid, is_ours ? "ours" : "not ours");
	report(strcmp(mid, "none") &&
		       (is_ours ? !strcmp(r.driver, mid) : (r.err == -ENOENT && !strcmp(mid, before))),
	       name, &r);

	if (is_ours) {
		dev_req(c, VFIO_SELECT_CMD_UNBIND, VFIO_SELECT_ATTR_DEV_NAME, dev, &r);
		expect_ok("UNBIND after the race", &r);
	}
	sysfs_driver(dev, after, sizeof(after));
	snprintf(name, sizeof(name), "the device is back on its driver (%s)", before);
	report(!strcmp(after, before), name, NULL);
	free((char *)b.drivers[0]);
	free((char *)b.drivers[1]);
}

/* ------------------------------------------------------------------ */
/* A GET dump of several rounds while records come and go between them */

/*
 * The dump's receive buffer: the kernel fills each round of a dump to the
 * larger of NLMSG_GOODSIZE (about 3.7 KB) and the largest buffer this socket
 * has read with (netlink_dump()), so at about 64 bytes a record, 4 KB
 * rounds hold some 60 records each.
 */
#define DUMP_BUF 4096
#define DUMP_EXTRA 16 /* devices kept back, to be bound while the dump runs */

struct dump_dev {
	const char *name;
	bool bound;	/* on record now */
	bool initial;	/* on record when the dump started */
	bool changed;	/* bound or unbound while it ran */
	int seen;	/* times the dump listed it */
};

static int dump_bind(struct conn *c, struct dump_dev *d, bool bind)
{
	struct reply r;

	dev_req(c, bind ? VFIO_SELECT_CMD_BIND : VFIO_SELECT_CMD_UNBIND, VFIO_SELECT_ATTR_DEV_NAME,
		d->name, &r);
	if (r.err) {
		printf("#   %s %s: %s, %s\n", bind ? "BIND" : "UNBIND", d->name,
		       strerrorname_np(-r.err), r.msg);
		return r.err;
	}
	d->bound = bind;
	return 0;
}

/*
 * Between two rounds: forget two records the dump has already sent and one
 * it has not reached yet, and make a new one.  A dump that resumed at the
 * index it stopped at would then start two records too late and never send
 * two records that existed all along; a dump that resumes after the last
 * record it sent (by the records' ids) sends each of those exactly once.
 */
static int dump_change(struct conn *c, struct dump_dev *d, int n, int *changes)
{
	int sent = 0, i;

	for (i = 0; i < n && sent < 2; i++)
		if (d[i].initial && d[i].bound && d[i].seen) {
			if (dump_bind(c, &d[i], false) < 0)
				return -1;
			d[i].changed = true;
			sent++;
			(*changes)++;
		}
	for (i = n - 1; i >= 0; i--)
		if (d[i].initial && d[i].bound && !d[i].seen) {
			if (dump_bind(c, &d[i], false) < 0)
				return -1;
			d[i].changed = true;
			(*changes)++;
			break;
		}
	for (i = 0; i < n; i++)
		if (!d[i].initial && !d[i].changed) {
			if (dump_bind(c, &d[i], true) < 0)
				return -1;
			d[i].changed = true;
			(*changes)++;
			break;
		}
	return 0;
}

/* One datagram of the dump: count what it lists; 1 at NLMSG_DONE, -1 on an error. */
static int dump_parse(struct conn *c, const char *buf, int len, unsigned int seq,
		      struct dump_dev *d, int n, int *records, int *strangers)
{
	const struct nlmsghdr *h;

	for (h = (const struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
		struct genlmsghdr *g = NLMSG_DATA(h);
		struct nlattr *a;
		int rem, i;

		if (h->nlmsg_seq != seq)
			continue;
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			printf("#   the dump failed: %s\n",
			       strerrorname_np(-((struct nlmsgerr *)NLMSG_DATA(h))->error));
			return -1;
		}
		if (h->nlmsg_type != c->family)
			continue;
		(*records)++;
		nla_for_each_attr(a, genlmsg_attrdata(g, 0), genlmsg_attrlen(g, 0), rem) {
			if (nla_type(a) != VFIO_SELECT_ATTR_DEV_NAME)
				continue;
			for (i = 0; i < n; i++)
				if (!strncmp(d[i].name, nla_data(a), nla_len(a)))
					break;
			if (i < n) {
				d[i].seen++;
			} else if (!(*strangers)++) {
				printf("#   the dump lists %.*s, not one of ours\n", nla_len(a),
				       (char *)nla_data(a));
			}
		}
	}
	return 0;
}

static void test_dump(struct conn *c, char **names, int n)
{
	struct {
		struct nlmsghdr h;
		struct genlmsghdr g;
	} rq = {
		.h = { .nlmsg_len = sizeof(rq), .nlmsg_type = c->family,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 4242 },
		.g = { .cmd = VFIO_SELECT_CMD_GET, .version = VFIO_SELECT_GENL_VERSION },
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int rounds = 0, changes = 0, changed_rounds = 0, records = 0, strangers = 0;
	int initial = n - DUMP_EXTRA, missing = 0, repeated = 0, unknown = 0, left = 0;
	struct dump_dev *d = calloc(n, sizeof(*d));
	char *buf = malloc(DUMP_BUF), name[200], sizes[512] = "";
	bool done = false, trunc = false;
	struct reply r;
	int fd, i;

	if (!d || !buf) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (i = 0; i < n; i++)
		d[i].name = names[i];
	for (i = 0; i < initial; i++) {
		if (dump_bind(c, &d[i], true) < 0)
			break;
		d[i].initial = true;
	}
	snprintf(name, sizeof(name), "dump: %d devices bound before the dump, %d kept back",
		 initial, DUMP_EXTRA);
	report(i == initial, name, NULL);
	if (i < initial)
		goto out;

	/* A socket of its own, read with a small buffer: the dump takes several rounds. */
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, &rq, sizeof(rq), 0) < 0) {
		report(false, "dump: request sent", NULL);
		goto out;
	}
	while (!done) {
		struct iovec iov = { .iov_base = buf, .iov_len = DUMP_BUF };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t got = recvmsg(fd, &mh, 0);
		int k;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || (mh.msg_flags & MSG_TRUNC)) {
			trunc = got >= 0;
			break;
		}
		rounds++;
		k = records;
		i = dump_parse(c, buf, (int)got, rq.h.nlmsg_seq, d, n, &records, &strangers);
		if (strlen(sizes) < sizeof(sizes) - 16)
			snprintf(sizes + strlen(sizes), sizeof(sizes) - strlen(sizes), " %d/%zd",
				 records - k, got);
		k = i;
		if (k < 0)
			break;
		done = k == 1;
		/*
		 * The next round is made inside the recvmsg() that emptied the queue:
		 * what changes now shows in the round after it.
		 */
		if (!done) {
			int before = changes;

			if (dump_change(c, d, n, &changes) < 0)
				break;
			if (changes > before)
				changed_rounds++;
		}
	}
	close(fd);
	printf("#   records/bytes of each round:%s\n", sizes);
	snprintf(name, sizeof(name),
		 "dump: %d records in %d rounds of at most %d bytes, %d changes made in %d gaps",
		 records, rounds, DUMP_BUF, changes, changed_rounds);
	/* What changed after the first recvmsg() shows from the third round on. */
	report(done && !trunc && rounds >= 3 && changed_rounds >= 1, name, NULL);

	for (i = 0; i < n; i++) {
		if (d[i].initial && !d[i].changed && d[i].seen != 1) {
			if (d[i].seen ? !repeated++ : !missing++)
				printf("#   %s, on record all along, listed %d times\n", d[i].name,
				       d[i].seen);
		} else if (d[i].seen > 1 && !repeated++) {
			printf("#   %s listed %d times\n", d[i].name, d[i].seen);
		} else if (d[i].seen && !d[i].initial && !d[i].changed && !unknown++) {
			printf("#   %s listed, never on record\n", d[i].name);
		}
	}
	snprintf(name, sizeof(name),
		 "dump: every record there all along listed exactly once (%d missing, %d repeated, %d never on record, %d not ours)",
		 missing, repeated, unknown, strangers);
	report(!missing && !repeated && !unknown && !strangers, name, NULL);

	/* A plain dump afterwards lists exactly what is on record now. */
	for (i = 0; i < n; i++)
		left += d[i].bound;
	{
		struct nl_msg *m = req(c, VFIO_SELECT_CMD_GET, NLM_F_DUMP);

		xact(c, m, &r);
	}
	snprintf(name, sizeof(name), "dump: a dump afterwards lists the %d on record now (%d)",
		 left, r.n_msgs);
	report(r.err == 0 && r.n_msgs == left, name, &r);
out:
	left = 0;
	for (i = 0; i < n; i++)
		if (d[i].bound && dump_bind(c, &d[i], false) < 0)
			left++;
	report(!left, "dump: every device unbound again", NULL);
	free(buf);
	free(d);
}

int main(int argc, char **argv)
{
	const char *dev = NULL;
	char canon[PATH_MAX], link[PATH_MAX];
	bool unprivileged = false;
	int iterations = 30;
	struct conn c;

	if (argc > 2 && !strcmp(argv[1], "--dump")) {
		if (argc - 2 <= DUMP_EXTRA) {
			fprintf(stderr, "vfio-select-hostile: --dump wants more than %d devices\n",
				DUMP_EXTRA);
			return 2;
		}
		if (conn_open(&c) < 0) {
			fprintf(stderr, "vfio-select-hostile: family %s not found (module loaded?)\n",
				VFIO_SELECT_GENL_NAME);
			return 2;
		}
		test_dump(&c, argv + 2, argc - 2);
		conn_close(&c);
		printf("%d passed, %d failed\n", passed, failed);
		return failed ? 1 : 0;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--device") && i + 1 < argc)
			dev = argv[++i];
		else if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
			iterations = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--unprivileged"))
			unprivileged = true;
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else {
			fprintf(stderr, "usage: vfio-select-hostile --device PCI_NAME "
					"[--iterations N] [--unprivileged] [-v] | --dump PCI_NAME...\n");
			return 2;
		}
	}
	if (!dev) {
		fprintf(stderr, "vfio-select-hostile: --device is required\n");
		return 2;
	}
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s", dev);
	if (!realpath(link, canon)) {
		fprintf(stderr, "vfio-select-hostile: no %s\n", link);
		return 2;
	}
	if (conn_open(&c) < 0) {
		fprintf(stderr, "vfio-select-hostile: family %s not found (module loaded?)\n",
			VFIO_SELECT_GENL_NAME);
		return 2;
	}
	printf("# device %s (%s), %s\n", dev, canon, unprivileged ? "unprivileged" : "privileged");

	test_malformed(&c, dev, canon);
	if (unprivileged) {
		test_unprivileged(&c, dev, canon);
	} else {
		test_bind_args(&c, dev);
		test_race(&c, dev, iterations);
	}
	conn_close(&c);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
