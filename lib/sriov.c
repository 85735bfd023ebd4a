/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vfs kind: the VF count of an SR-IOV PF, and the new VFs handed to vfio.
 *
 * create PF vfs N [assign] [autoprobe]: record, autoprobe, numvfs-0, numvfs,
 * assign (each new VF through vfiod_device_assign()), autoprobe-after.  A
 * failure undoes what was done, in reverse.
 * destroy PF vfs [force]: release, autoprobe, numvfs-0, numvfs, forget: the
 * PF is back at the VF count and autoprobe it had before the first create.
 *
 * What a create changed is kept in <runtime dir>/vfs/<PF>.json (written
 * atomically, fileio.c): the previous count and autoprobe, and the VFs it
 * assigned.  A second create keeps the first one's "previous" values.
 *
 * A create never takes VFs away from vfio: changing the count of a PF any of
 * whose VFs is on a vfio driver is refused (destroy first).  A destroy does
 * not remove VFs in use, that is, on vfio without our record or held open
 * by a process, unless forced.
 *
 * Writes to sriov_numvfs can block for as long as a driver or a VF's user
 * takes: removing a VF a VM holds open waits for the VM to let go.  Each
 * write is made by a short-lived process of its own (forked twice, so that
 * nobody has to reap it), while the caller waits with a deadline
 * (VFIOD_SRIOV_TIMEOUT seconds, 60 by default).  On a timeout nothing is
 * undone: the write goes on in the kernel, the record notes it, and later
 * calls on the PF are refused until it has returned (reading the PF's
 * locked attributes meanwhile would block too).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fileio.h"
#include "internal.h"
#include "inuse.h"
#include "kinds.h"

#define OP_CREATE "vfs-create"
#define OP_DESTROY "vfs-destroy"
#define DEFAULT_TIMEOUT_MS 60000

/* A PF as this kind sees it. */
struct pf {
	struct vfiod_ctx *ctx;
	struct vfiod_device *dev;
	unsigned int total;  /* sriov_totalvfs */
	unsigned int numvfs; /* VFs present (virtfnN links) */
	bool autoprobe;	     /* sriov_drivers_autoprobe */
	bool force;	     /* take VFs the host uses */
};

/* A VF present now, and who holds it. */
struct vf {
	struct vfiod_device *dev;
	bool vfio;  /* bound to a vfio driver */
	bool ours;  /* in the record: assigned by a vfs create */
	pid_t user; /* a process holding one of its vfio nodes open; 0 when none seen */
};

static void pf_done(struct pf *pf)
{
	vfiod_device_unref(pf->dev);
	pf->dev = NULL;
}

static void vfs_free(struct vf *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vfiod_device_unref(v[i].dev);
	free(v);
}

/* Keep a message of the operation's own failure across an undo that calls the library. */
static void error_save(struct vfiod_ctx *ctx, char *buf, size_t size)
{
	snprintf(buf, size, "%s", ctx->error);
}

static void error_restore(struct vfiod_ctx *ctx, const char *buf)
{
	snprintf(ctx->error, sizeof(ctx->error), "%s", buf);
}

/* ---- the record ---- */

static int rec_dir(struct vfiod_ctx *ctx, char **ret)
{
	return asprintf(ret, "%s/%s", ctx->runtime_dir, RUNTIME_VFS_DIR) < 0 ? -ENOMEM : 0;
}

static int rec_save(struct vfiod_ctx *ctx, json_t *rec)
{
	_cleanup_free_ char *dir = NULL, *file = NULL;
	const char *name = json_string_value(json_object_get(rec, "name"));

	if (!name || !is_pci_name(name))
		return -EINVAL;
	if (rec_dir(ctx, &dir) < 0 || asprintf(&file, "%s.json", name) < 0)
		return -ENOMEM;
	return json_write_state(ctx, dir, file, rec);
}

static int rec_remove(struct vfiod_ctx *ctx, const char *name)
{
	_cleanup_free_ char *dir = NULL, *file = NULL;

	if (rec_dir(ctx, &dir) < 0 || asprintf(&file, "%s.json", name) < 0)
		return -ENOMEM;
	return remove_file_durable(dir, file);
}

/* The record of PF NAME; -ENOENT when there is none. */
static int rec_load(struct vfiod_ctx *ctx, const char *name, json_t **ret)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	json_error_t err;
	json_t *o, *a;

	*ret = NULL;
	if (!is_pci_name(name))
		return -EINVAL;
	if (rec_dir(ctx, &dir) < 0 || asprintf(&path, "%s/%s.json", dir, name) < 0)
		return -ENOMEM;
	o = json_load_file(path, 0, &err);
	if (!o) {
		if (access(path, F_OK) < 0)
			return -ENOENT;
		return vfiod_error(ctx, -EBADMSG, "%s: %s (line %d)", path, err.text, err.line);
	}
	a = json_object_get(o, "assigned");
	if (!json_is_object(o) ||
	    !json_is_string(json_object_get(o, "name")) ||
	    !streq(json_string_value(json_object_get(o, "name")), name) ||
	    !json_is_integer(json_object_get(o, "previous_numvfs")) ||
	    json_integer_value(json_object_get(o, "previous_numvfs")) < 0 ||
	    !json_is_boolean(json_object_get(o, "previous_autoprobe")) || !json_is_array(a)) {
		json_decref(o);
		return vfiod_error(ctx, -EBADMSG, "%s: not a valid vfiod record", path);
	}
	for (size_t i = 0; i < json_array_size(a); i++)
		if (!json_is_string(json_array_get(a, i)) ||
		    !is_pci_name(json_string_value(json_array_get(a, i)))) {
			json_decref(o);
			return vfiod_error(ctx, -EBADMSG, "%s: not a valid vfiod record", path);
		}
	*ret = o;
	return 0;
}

static unsigned int rec_previous(json_t *rec)
{
	return json_integer_value(json_object_get(rec, "previous_numvfs"));
}

static bool rec_has(json_t *rec, const char *vf)
{
	json_t *a = json_object_get(rec, "assigned"), *v;
	size_t i;

	json_array_foreach(a, i, v) {
		if (streq(json_string_value(v), vf))
			return true;
	}
	return false;
}

static void rec_drop(json_t *rec, const char *vf)
{
	json_t *a = json_object_get(rec, "assigned"), *v;
	size_t i;

	json_array_foreach(a, i, v) {
		if (streq(json_string_value(v), vf)) {
			json_array_remove(a, i);
			return;
		}
	}
}

/* ---- a write that may not return: the pending mark ---- */

/*
 * Field 22 of /proc/PID/stat, to tell a process from a later one of the same
 * pid; 0 when it is gone (or a zombie).
 */
static unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), PROC_DIR "/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* After "(comm)": state, then fields 4 to 21, then starttime.  A zombie is gone. */
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/*
 * A write to sriov_numvfs that timed out may still be blocked in the kernel,
 * holding the PF's device lock: every locked attribute of the PF (its
 * driver_override, sriov_numvfs) would block a reader.  Refuse at once
 * while the writer lives; forget the mark when it is gone.
 */
static int pending_check(struct vfiod_ctx *ctx, const char *name)
{
	json_t *rec = NULL, *p;
	unsigned long long start;
	pid_t pid;
	int r;

	r = rec_load(ctx, name, &rec);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	p = json_object_get(rec, "pending");
	if (!p) {
		json_decref(rec);
		return 0;
	}
	pid = json_integer_value(json_object_get(p, "pid"));
	start = json_integer_value(json_object_get(p, "starttime"));
	if (pid > 0 && start && proc_starttime(pid) == start) {
		r = vfiod_error(ctx, -EBUSY,
				"%s: the kernel has not yet returned from writing %lld to "
				"sriov_numvfs (started %lld s ago by process %d); the PF is locked "
				"until it does: a VF's user (a VM, say) may have to let go of it "
				"first, see dmesg",
				name, json_integer_value(json_object_get(p, "numvfs")),
				(long long)time(NULL) - json_integer_value(json_object_get(p, "since")),
				(int)pid);
	} else {
		json_object_del(rec, "pending");
		r = rec_save(ctx, rec);
	}
	json_decref(rec);
	return r;
}

/* ---- the PF and its VFs ---- */

static unsigned int count_vfs(struct pf *pf)
{
	unsigned int n = 0;

	/* The links, not sriov_numvfs: reading that takes the PF's device lock. */
	for (unsigned int i = 0; i < pf->total; i++) {
		char link[32];
		struct stat st;

		snprintf(link, sizeof(link), ATTR_VIRTFN_PREFIX "%u", i);
		if (fstatat(pf->dev->dirfd, link, &st, AT_SYMLINK_NOFOLLOW) == 0)
			n++;
	}
	return n;
}

static int pf_refresh(struct pf *pf)
{
	unsigned int ap;
	int r;

	r = device_refresh(pf->dev);
	if (r < 0)
		return vfiod_error(pf->ctx, r, "%s: %s", pf->dev->syspath, strerror(-r));
	r = read_attr_uint(pf->dev->dirfd, ATTR_SRIOV_DRIVERS_AUTOPROBE, &ap);
	if (r < 0)
		return vfiod_error(pf->ctx, r, "%s: cannot read %s: %s", pf->dev->syspath,
				   ATTR_SRIOV_DRIVERS_AUTOPROBE, strerror(-r));
	pf->autoprobe = ap != 0;
	pf->numvfs = count_vfs(pf);
	return 0;
}

/* PATH as a PF: canonical, no write of ours pending on it, SR-IOV capable. */
static int pf_open(struct vfiod_ctx *ctx, const char *path, struct pf *pf)
{
	_cleanup_free_ char *logical = NULL, *real = NULL;
	struct vfiod_device *dev;
	int r;

	*pf = (struct pf){ .ctx = ctx };
	r = sysfs_canonicalize(ctx, path, &logical, &real);
	if (r < 0)
		return r;
	r = pending_check(ctx, strrchr(logical, '/') + 1);
	if (r < 0)
		return r;
	r = vfiod_device_new(ctx, logical, &dev);
	if (r < 0)
		return r;
	pf->dev = dev;
	r = read_attr_uint(dev->dirfd, ATTR_SRIOV_TOTALVFS, &pf->total);
	if (r == -ENOENT || (r >= 0 && pf->total == 0)) {
		if (dev->physfn)
			r = vfiod_error(ctx, -EOPNOTSUPP,
					"%s is a VF (of the PF %s): `vfs` takes the PF", dev->syspath,
					dev->physfn);
		else
			r = vfiod_error(ctx, -EOPNOTSUPP,
					"%s is not an SR-IOV PF (it has no %s)", dev->syspath,
					ATTR_SRIOV_TOTALVFS);
	} else if (r < 0) {
		r = vfiod_error(ctx, r, "%s: cannot read %s: %s", dev->syspath,
				ATTR_SRIOV_TOTALVFS, strerror(-r));
	} else {
		r = pf_refresh(pf);
	}
	if (r < 0)
		pf_done(pf);
	return r;
}

/* Who holds each VF on vfio open (its group node or its vfio cdev), in one look. */
static int vfs_users(struct vfiod_ctx *ctx, struct vf *v, size_t n)
{
	_cleanup_free_ const char **paths = calloc(n + 1, sizeof(*paths));
	_cleanup_free_ int *groups = calloc(n + 1, sizeof(*groups));
	_cleanup_free_ pid_t *pids = calloc(n + 1, sizeof(*pids));
	_cleanup_free_ size_t *which = calloc(n + 1, sizeof(*which));
	size_t m = 0;
	int r;

	if (!paths || !groups || !pids || !which)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].vfio)
			continue;
		paths[m] = v[i].dev->realpath;
		groups[m] = v[i].dev->iommu_group;
		which[m++] = i;
	}
	r = inuse_holders(ctx, paths, groups, m, pids);
	for (size_t j = 0; r >= 0 && j < m; j++)
		v[which[j]].user = pids[j];
	return r;
}

/* The VFs present, in virtfn order, with their drivers and users. */
static int vfs_collect(struct pf *pf, json_t *rec, struct vf **ret, size_t *ret_n)
{
	struct vfiod_ctx *ctx = pf->ctx;
	struct vf *v;
	size_t n = 0;
	int r = 0;

	v = calloc(pf->total + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (unsigned int i = 0; r >= 0 && i < pf->total; i++) {
		_cleanup_free_ char *name = NULL;
		char link[32];

		snprintf(link, sizeof(link), ATTR_VIRTFN_PREFIX "%u", i);
		if (read_link_name(pf->dev->dirfd, link, &name) < 0)
			continue;
		r = vfiod_device_new(ctx, name, &v[n].dev);
		if (r < 0)
			break;
		v[n].vfio = v[n].dev->driver && driver_is_vfio(ctx, v[n].dev->driver);
		v[n].ours = rec && rec_has(rec, name);
		n++;
	}
	if (r >= 0)
		r = vfs_users(ctx, v, n);
	if (r < 0) {
		vfs_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* "0000:01:00.1 (vfio-pci, open by process 42), ..." of the VFs PICK selects. */
static void vfs_describe(const struct vf *v, size_t n, bool (*pick)(const struct vf *),
			 char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char why[64];

		if (!pick(&v[i]))
			continue;
		if (v[i].user)
			snprintf(why, sizeof(why), "open by process %d", (int)v[i].user);
		else
			snprintf(why, sizeof(why), "%s", v[i].ours ? "assigned by vfiod"
								   : "not assigned by vfiod");
		len += snprintf(buf + len, len < size ? size - len : 0, "%s%s (%s, %s)",
				len ? ", " : "", v[i].dev->name, v[i].dev->driver, why);
	}
}

static bool vf_on_vfio(const struct vf *v)
{
	return v->vfio;
}

static bool vf_in_use(const struct vf *v)
{
	return v->vfio && (!v->ours || v->user);
}

/* ---- the writes ---- */

static void close_all_but(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		close_range(3, lo - 1, 0);
	if (hi - 1 >= (lo + 1 > 3 ? lo + 1 : 3))
		close_range(lo + 1 > 3 ? lo + 1 : 3, hi - 1, 0);
	close_range(hi + 1 > 3 ? hi + 1 : 3, ~0U, 0);
}

/*
 * The writer: its pid, the one write, its result, all down the pipe.  It
 * keeps no other fd of the caller's (a socket, a lock, the pipe a shell
 * reads the caller's output from) while it may be blocked in the kernel.
 */
static _Noreturn void numvfs_writer(int fd, int pipe_w, const char *value)
{
	size_t len = strlen(value);
	pid_t me = getpid();
	ssize_t n;
	int r, null;

	null = open(DEV_NULL, O_RDWR | O_CLOEXEC);
	for (int i = 0; null >= 0 && fd > 2 && pipe_w > 2 && i <= 2; i++)
		(void)dup2(null, i);
	close_all_but(fd, pipe_w);
	if (write(pipe_w, &me, sizeof(me)) != sizeof(me))
		_exit(1);
	n = write(fd, value, len);
	r = n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
	(void)!write(pipe_w, &r, sizeof(r));
	_exit(0);
}

static int timeout_ms(void)
{
	const char *v = getenv(VFIOD_ENV_SRIOV_TIMEOUT);
	char *end;
	double s;

	if (!v || !*v)
		return DEFAULT_TIMEOUT_MS;
	s = strtod(v, &end);
	if (*end || !(s > 0) || s > 86400)
		return DEFAULT_TIMEOUT_MS;
	return (int)(s * 1000);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait up to MS for all of BUF from FD; -ETIMEDOUT, or -EPIPE when the writer went away. */
static int read_deadline(int fd, void *buf, size_t size, long long deadline)
{
	size_t got = 0;

	while (got < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return negative_errno();
		if (r == 0)
			continue;
		n = read(fd, (char *)buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			return -EPIPE;
		got += n;
	}
	return 0;
}

/*
 * Write N to the PF's sriov_numvfs, waiting at most the timeout: the
 * kernel's result (0 or a negative errno), or -ETIMEDOUT with a message and
 * REC saved with the pending mark.
 */
static int write_numvfs(struct pf *pf, unsigned int n, json_t *rec)
{
	struct vfiod_ctx *ctx = pf->ctx;
	_cleanup_close_ int fd = -1, rd = -1, wr = -1;
	int p[2], status, r, result = -EIO, ms = timeout_ms();
	pid_t pid, writer = 0;
	long long deadline;
	char value[16];

	snprintf(value, sizeof(value), "%u", n);
	fd = openat(pf->dev->dirfd, ATTR_SRIOV_NUMVFS, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (pipe2(p, O_CLOEXEC) < 0)
		return negative_errno();
	rd = p[0];
	wr = p[1];
	deadline = now_ms() + ms;
	pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0) {
		/* Orphan the writer at once: init reaps it whenever the kernel lets it go. */
		pid_t w = fork();

		if (w == 0)
			numvfs_writer(fd, wr, value);
		_exit(w < 0 ? 1 : 0);
	}
	closep(&wr);
	wr = -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r = read_deadline(rd, &writer, sizeof(writer), deadline);
	if (r >= 0)
		r = read_deadline(rd, &result, sizeof(result), deadline);
	if (r >= 0)
		return result;
	if (r == -EPIPE)
		return vfiod_error(ctx, -EIO, "%s: the process writing %s to %s ended without a "
				   "result", pf->dev->syspath, value, ATTR_SRIOV_NUMVFS);
	if (r != -ETIMEDOUT)
		return vfiod_error(ctx, r, "%s: %s", pf->dev->syspath, strerror(-r));

	json_object_set_new(rec, "pending",
			    json_pack("{s:i, s:I, s:I, s:I}", "numvfs", (int)n, "pid",
				      (json_int_t)writer, "starttime",
				      (json_int_t)(writer > 0 ? proc_starttime(writer) : 0), "since",
				      (json_int_t)time(NULL)));
	(void)rec_save(ctx, rec);
	return vfiod_error(ctx, -ETIMEDOUT,
			   "%s: the kernel has not returned from writing %u to %s after %.1f s: "
			   "the write goes on in the kernel (process %d), and the PF is locked "
			   "until it returns; a VF's user (a VM, say) may have to let go of it "
			   "first, see dmesg.  Nothing was undone: destroy restores the PF from "
			   "its record once the kernel is done",
			   pf->dev->syspath, n, ATTR_SRIOV_NUMVFS, ms / 1000.0, (int)writer);
}

/* The count written, with the kernel's refusals in words. */
static int set_numvfs(struct pf *pf, unsigned int n, json_t *rec)
{
	struct vfiod_ctx *ctx = pf->ctx;
	unsigned int before = pf->numvfs;
	int r = write_numvfs(pf, n, rec);

	if (r == -ETIMEDOUT)
		return r;
	if (r == -ENOENT && !pf->dev->driver)
		return vfiod_error(ctx, -ENXIO,
				   "%s: no driver is bound to the PF, and only its driver changes "
				   "the VF count: bind it first",
				   pf->dev->syspath);
	if (r == -ENOENT)
		return vfiod_error(ctx, -EOPNOTSUPP,
				   "%s: its driver %s does not support SR-IOV configuration through "
				   "%s%s",
				   pf->dev->syspath, pf->dev->driver ? pf->dev->driver : "(none)",
				   ATTR_SRIOV_NUMVFS,
				   pf->dev->driver && driver_is_vfio(ctx, pf->dev->driver)
					   ? " (vfio-pci does with its module option enable_sriov=1)"
					   : "");
	if (r == -EBUSY)
		return vfiod_error(ctx, r,
				   "%s: the kernel refused to change the VF count from %u to %u "
				   "(EBUSY): something else changed it meanwhile?",
				   pf->dev->syspath, before, n);
	if (r < 0)
		return vfiod_error(ctx, r, "%s: writing %u to %s failed: %s (see dmesg)",
				   pf->dev->syspath, n, ATTR_SRIOV_NUMVFS, strerror(-r));
	r = pf_refresh(pf);
	if (r < 0)
		return r;
	if (pf->numvfs != n)
		return vfiod_error(ctx, -EIO, "%s: %u written to %s, but the PF has %u VFs",
				   pf->dev->syspath, n, ATTR_SRIOV_NUMVFS, pf->numvfs);
	vfiod_log(ctx, LOG_INFO, "%s: %u VFs (were %u)", pf->dev->syspath, n, before);
	return 0;
}

static int set_autoprobe(struct pf *pf, bool on)
{
	int r = write_attr(pf->dev->dirfd, ATTR_SRIOV_DRIVERS_AUTOPROBE, on ? "1" : "0");

	if (r < 0)
		return vfiod_error(pf->ctx, r, "%s: cannot write %s: %s", pf->dev->syspath,
				   ATTR_SRIOV_DRIVERS_AUTOPROBE, strerror(-r));
	pf->autoprobe = on;
	return 0;
}

/* The count to N from what it is, through 0 as the kernel requires between two non-zero counts. */
static int step_count(struct pf *pf, const char *op, unsigned int n, json_t *rec)
{
	int r;

	if (pf->numvfs == n)
		return 0;
	if (pf->numvfs > 0 && n > 0) {
		r = vfiod_step(pf->ctx, op, pf->dev->name, "numvfs-0");
		if (r >= 0)
			r = set_numvfs(pf, 0, rec);
		if (r < 0)
			return r;
	}
	r = vfiod_step(pf->ctx, op, pf->dev->name, "numvfs");
	return r < 0 ? r : set_numvfs(pf, n, rec);
}

/* ---- results ---- */

static json_t *vf_json(struct vfiod_device *vf)
{
	static const char *const keys[] = { "name", "device", "driver", "iommu_group", "vfio" };
	json_t *full, *o = json_object();

	if (!o || device_refresh(vf) < 0 || !(full = device_json(vf)))
		return o;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		json_object_set(o, keys[i], json_object_get(full, keys[i]));
	json_decref(full);
	return o;
}

/* {"kind", "name", "device", "numvfs", "previous_numvfs", "autoprobe", ..., "vfs"}. */
static json_t *pf_json(struct pf *pf, json_t *rec)
{
	json_t *o, *a = json_array();

	for (unsigned int i = 0; a && i < pf->total; i++) {
		_cleanup_free_ char *name = NULL;
		struct vfiod_device *vf = NULL;
		char link[32];

		snprintf(link, sizeof(link), ATTR_VIRTFN_PREFIX "%u", i);
		if (read_link_name(pf->dev->dirfd, link, &name) < 0 ||
		    vfiod_device_new(pf->ctx, name, &vf) < 0)
			continue;
		json_array_append_new(a, vf_json(vf));
		vfiod_device_unref(vf);
	}
	o = json_pack("{s:s, s:s, s:s, s:s?, s:i, s:i, s:b}", "kind", "vfs", "name",
		      pf->dev->name, "device", pf->dev->syspath, "driver", pf->dev->driver,
		      "sriov_totalvfs", (int)pf->total, "numvfs", (int)pf->numvfs, "autoprobe",
		      pf->autoprobe);
	if (!o) {
		json_decref(a);
		return NULL;
	}
	if (rec) {
		json_object_set(o, "previous_numvfs", json_object_get(rec, "previous_numvfs"));
		json_object_set(o, "previous_autoprobe",
				json_object_get(rec, "previous_autoprobe"));
		json_object_set(o, "assigned", json_object_get(rec, "assigned"));
	}
	json_object_set_new(o, "vfs", a ? a : json_array());
	return o;
}

/* ---- create ---- */

static json_t *rec_new(struct pf *pf)
{
	return json_pack("{s:s, s:s, s:i, s:b, s:i, s:[]}", "device", pf->dev->syspath, "name",
			 pf->dev->name, "previous_numvfs", (int)pf->numvfs, "previous_autoprobe",
			 pf->autoprobe, "numvfs", (int)pf->numvfs, "assigned");
}

/* Hand each VF not on vfio yet to its best vfio driver (the PCI kind's rule). */
static int step_assign(struct pf *pf, json_t *rec, json_t *done)
{
	struct vfiod_ctx *ctx = pf->ctx;
	struct vf *v = NULL;
	size_t n = 0;
	unsigned int total = 0, finished = 0;
	int r;

	r = vfiod_step(ctx, OP_CREATE, pf->dev->name, "assign");
	if (r < 0)
		return r;
	r = vfs_collect(pf, rec, &v, &n);
	for (size_t i = 0; r >= 0 && i < n; i++)
		total += !v[i].vfio;
	if (r >= 0 && total > 0)
		vfiod_progress(ctx, OP_CREATE, NULL, 0, total);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (v[i].vfio)
			continue;
		r = pci_assign(v[i].dev, NULL, pf->force ? VFIOD_ASSIGN_FORCE : 0, NULL);
		if (r < 0) {
			char msg[sizeof(ctx->error)];

			error_save(ctx, msg, sizeof(msg));
			vfiod_error(ctx, r, "%s: assigning its VF %s failed: %s", pf->dev->syspath,
				    v[i].dev->name, msg);
			break;
		}
		json_array_append_new(done, json_string(v[i].dev->name));
		if (!rec_has(rec, v[i].dev->name))
			json_array_append_new(json_object_get(rec, "assigned"),
					      json_string(v[i].dev->name));
		r = rec_save(ctx, rec);
		vfiod_progress(ctx, OP_CREATE, v[i].dev->name, ++finished, total);
	}
	vfs_free(v, n);
	return r;
}

/* Release the VFs named in A (reverse order); false when one could not be. */
static bool release_vfs(struct vfiod_ctx *ctx, json_t *a, json_t *rec)
{
	bool ok = true;

	for (size_t i = json_array_size(a); i-- > 0;) {
		const char *name = json_string_value(json_array_get(a, i));
		struct vfiod_device *vf = NULL;
		int r;

		r = vfiod_device_new(ctx, name, &vf);
		/* Undoing our own assign: a holder since then is waited for. */
		if (r >= 0)
			r = pci_release(vf, VFIOD_RELEASE_FORCE, NULL);
		vfiod_device_unref(vf);
		if (r < 0 && r != -ENOENT) {
			vfiod_log(ctx, LOG_WARNING, "VF %s: cannot release it: %s", name,
				  vfiod_ctx_get_error(ctx) ? vfiod_ctx_get_error(ctx) : strerror(-r));
			ok = false;
			continue;
		}
		if (rec)
			rec_drop(rec, name);
	}
	return ok;
}

/*
 * Undo a failed create, in reverse: the VFs it assigned, then autoprobe (so
 * that VFs made again are probed as they were), then the count.  The record
 * goes back to what it was only when all of it worked; else it stays, for
 * destroy to finish.
 */
static void create_undo(struct pf *pf, bool before_ap, unsigned int before_n, json_t *old,
			json_t *rec, json_t *done)
{
	struct vfiod_ctx *ctx = pf->ctx;
	char msg[sizeof(ctx->error)];
	bool ok;
	int r = 0;

	error_save(ctx, msg, sizeof(msg));
	ok = release_vfs(ctx, done, rec);
	if (pf_refresh(pf) < 0)
		ok = false;
	if (ok && pf->autoprobe != before_ap && set_autoprobe(pf, before_ap) < 0)
		ok = false;
	if (ok && pf->numvfs != before_n) {
		if (pf->numvfs > 0 && before_n > 0)
			r = set_numvfs(pf, 0, rec);
		if (r >= 0)
			r = set_numvfs(pf, before_n, rec);
		ok = r >= 0;
	}
	if (ok && old)
		ok = rec_save(ctx, old) >= 0;
	else if (ok)
		ok = rec_remove(ctx, pf->dev->name) >= 0;
	else
		(void)rec_save(ctx, rec);
	vfiod_log(ctx, LOG_WARNING, "%s: %s: %u VFs, autoprobe %s", pf->dev->syspath,
		  ok ? "rolled back" : "rollback incomplete, the record is kept", pf->numvfs,
		  pf->autoprobe ? "on" : "off");
	error_restore(ctx, msg);
}

static int create_check(struct pf *pf, long long want, json_t *rec)
{
	struct vfiod_ctx *ctx = pf->ctx;
	struct vf *v = NULL;
	char msg[768];
	size_t n = 0;
	int r;

	if (want < 0)
		return vfiod_error(ctx, -EINVAL, "%s: `vfs` needs a number of VFs",
				   pf->dev->syspath);
	if (want > pf->total)
		return vfiod_error(ctx, -EINVAL,
				   "%s: %lld VFs asked, but this PF supports at most %u (%s)",
				   pf->dev->syspath, want, pf->total, ATTR_SRIOV_TOTALVFS);
	if (!pf->dev->driver)
		return vfiod_error(ctx, -ENXIO,
				   "%s: no driver is bound to the PF; its VFs are made by its "
				   "driver: bind it first",
				   pf->dev->syspath);
	if (want == pf->numvfs || pf->numvfs == 0)
		return 0;
	/* The VFs there now would go away. */
	r = vfs_collect(pf, rec, &v, &n);
	if (r < 0)
		return r;
	vfs_describe(v, n, vf_on_vfio, msg, sizeof(msg));
	vfs_free(v, n);
	if (msg[0])
		return vfiod_error(ctx, -EBUSY,
				   "%s: changing the VF count from %u to %lld would remove VFs on "
				   "vfio: %s; destroy them first (`vfioctl destroy %s vfs`)",
				   pf->dev->syspath, pf->numvfs, want, msg, pf->dev->name);
	return 0;
}

/* Nothing to do: the count, autoprobe and (with assign) every VF on vfio are as asked. */
static bool create_done_already(struct pf *pf, unsigned int want, bool ap, bool assign,
				json_t *rec)
{
	struct vf *v = NULL;
	size_t n = 0;
	bool all = true;

	if (pf->numvfs != want || pf->autoprobe != ap)
		return false;
	if (!assign)
		return true;
	if (vfs_collect(pf, rec, &v, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		all = all && v[i].vfio;
	vfs_free(v, n);
	return all;
}

/* The VFs present that assign would take, looked at before any step. */
static int vfs_inuse(struct pf *pf)
{
	struct inuse u = {};
	int r = 0;

	for (unsigned int i = 0; r >= 0 && i < pf->total; i++) {
		_cleanup_free_ char *name = NULL;
		struct vfiod_device *vf = NULL;
		char link[32];

		snprintf(link, sizeof(link), ATTR_VIRTFN_PREFIX "%u", i);
		if (read_link_name(pf->dev->dirfd, link, &name) < 0)
			continue;
		r = vfiod_device_new(pf->ctx, name, &vf);
		if (r >= 0 && !driver_is_vfio(pf->ctx, vf->driver))
			r = inuse_scan(pf->ctx, vf->realpath, vf->name, -1, INUSE_HOST, &u);
		vfiod_device_unref(vf);
	}
	if (r >= 0)
		r = inuse_check(pf->ctx, pf->dev->syspath, false, &u, pf->force);
	inuse_done(&u);
	return r;
}

static int vfs_create(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	long long want = opt_uint(opts, "vfs");
	bool assign = opt_bool(opts, "assign", false);
	json_t *old = NULL, *rec = NULL, *done = NULL;
	bool ap_during, ap_after, before_ap;
	unsigned int before_n;
	struct pf pf;
	int r;

	r = pf_open(ctx, path, &pf);
	if (r < 0)
		return r;
	r = rec_load(ctx, pf.dev->name, &old);
	if (r < 0 && r != -ENOENT)
		goto out;
	r = create_check(&pf, want, old);
	if (r < 0)
		goto out;
	pf.force = opt_bool(opts, "force", false);
	if (assign) {
		r = vfs_inuse(&pf);
		if (r < 0)
			goto out;
	}
	/* With assign, no host driver may take the new VFs before vfio does. */
	ap_after = opt_bool(opts, "autoprobe", assign ? false : pf.autoprobe);
	ap_during = assign ? false : ap_after;
	before_ap = pf.autoprobe;
	before_n = pf.numvfs;

	if (create_done_already(&pf, want, ap_after, assign, old)) {
		*ret = pf_json(&pf, old);
		r = *ret ? 1 : -ENOMEM;
		if (*ret && !old)
			json_object_set_new(*ret, "previous_numvfs", json_integer(pf.numvfs));
		/* As a PCI assign says it: asked again, nothing was done. */
		if (*ret)
			json_object_set_new(*ret, "changed", json_false());
		goto out;
	}

	rec = old ? json_deep_copy(old) : rec_new(&pf);
	done = json_array();
	if (!rec || !done) {
		r = -ENOMEM;
		goto out;
	}
	json_object_set_new(rec, "numvfs", json_integer(want));
	r = vfiod_step(ctx, OP_CREATE, pf.dev->name, "record");
	if (r >= 0)
		r = rec_save(ctx, rec);
	if (r < 0)
		goto out;

	if (pf.autoprobe != ap_during) {
		r = vfiod_step(ctx, OP_CREATE, pf.dev->name, "autoprobe");
		if (r >= 0)
			r = set_autoprobe(&pf, ap_during);
	}
	if (r >= 0)
		r = step_count(&pf, OP_CREATE, want, rec);
	if (r >= 0 && assign)
		r = step_assign(&pf, rec, done);
	if (r >= 0 && pf.autoprobe != ap_after) {
		r = vfiod_step(ctx, OP_CREATE, pf.dev->name, "autoprobe-after");
		if (r >= 0)
			r = set_autoprobe(&pf, ap_after);
	}
	if (r == -ETIMEDOUT)
		goto out; /* the write goes on in the kernel: nothing to undo yet */
	if (r < 0) {
		create_undo(&pf, before_ap, before_n, old, rec, done);
		goto out;
	}
	(void)pf_refresh(&pf);
	*ret = pf_json(&pf, rec);
	r = *ret ? 0 : -ENOMEM;
out:
	json_decref(done);
	json_decref(rec);
	json_decref(old);
	pf_done(&pf);
	return r;
}

/* ---- destroy ---- */

/* Ours (or, with force, on vfio) and held by no process. */
static bool releasable(const struct vf *v, bool force)
{
	return !v->user && (v->ours || (force && v->vfio));
}

/*
 * The VFs vfiod assigned (and, with force, every other VF on vfio) back
 * from vfio, but not those a process holds open: unbinding one of those
 * blocks until it lets go, and removing the VF (the count write, which has
 * a deadline) asks its user to let go the same way.
 */
static int step_release(struct pf *pf, json_t *rec, bool force, json_t *released)
{
	struct vfiod_ctx *ctx = pf->ctx;
	struct vf *v = NULL;
	size_t n = 0;
	unsigned int total = 0, finished = 0;
	int r;

	r = vfiod_step(ctx, OP_DESTROY, pf->dev->name, "release");
	if (r < 0)
		return r;
	r = vfs_collect(pf, rec, &v, &n);
	for (size_t i = 0; r >= 0 && i < n; i++)
		total += releasable(&v[i], force);
	if (r >= 0 && total > 0)
		vfiod_progress(ctx, OP_DESTROY, NULL, 0, total);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (!releasable(&v[i], force))
			continue;
		r = pci_release(v[i].dev, force ? VFIOD_RELEASE_FORCE : 0, NULL);
		if (r == -ENOENT)
			r = 0; /* ours once, but no longer on vfio: nothing to give back */
		if (r < 0)
			break;
		if (v[i].vfio)
			json_array_append_new(released, json_string(v[i].dev->name));
		rec_drop(rec, v[i].dev->name);
		vfiod_progress(ctx, OP_DESTROY, v[i].dev->name, ++finished, total);
	}
	vfs_free(v, n);
	return r;
}

static int destroy_check(struct pf *pf, json_t *rec, bool force)
{
	struct vf *v = NULL;
	char msg[768];
	size_t n = 0;
	int r;

	r = vfs_collect(pf, rec, &v, &n);
	if (r < 0)
		return r;
	vfs_describe(v, n, vf_in_use, msg, sizeof(msg));
	vfs_free(v, n);
	if (msg[0] && !force)
		return vfiod_error(pf->ctx, -EBUSY,
				   "%s: VFs in use by vfio: %s; add `force` to release and remove "
				   "them anyway",
				   pf->dev->syspath, msg);
	if (msg[0])
		vfiod_log(pf->ctx, LOG_WARNING, "%s: forced: removing VFs in use by vfio: %s",
			  pf->dev->syspath, msg);
	return 0;
}

static int vfs_destroy(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	bool force = opt_bool(opts, "force", false), have_rec;
	json_t *rec = NULL, *released = json_array(), *a, *v;
	unsigned int target;
	struct pf pf;
	size_t i;
	int r;

	if (!released)
		return -ENOMEM;
	r = pf_open(ctx, path, &pf);
	if (r < 0) {
		json_decref(released);
		return r;
	}
	r = rec_load(ctx, pf.dev->name, &rec);
	if (r < 0 && r != -ENOENT)
		goto out;
	have_rec = r >= 0;
	if (!have_rec && pf.numvfs == 0) {
		r = vfiod_error(ctx, -ENOENT, "%s has no VFs, and vfiod has no record of changing "
				"its VF count: nothing to give back", pf.dev->syspath);
		goto out;
	}
	if (!have_rec) {
		vfiod_log(ctx, LOG_NOTICE, "%s: no record of a vfs create: setting the VF count "
			  "to 0", pf.dev->syspath);
		rec = rec_new(&pf);
		if (!rec) {
			r = -ENOMEM;
			goto out;
		}
		json_object_set_new(rec, "previous_numvfs", json_integer(0));
	}
	target = rec_previous(rec);
	r = destroy_check(&pf, rec, force);
	if (r < 0)
		goto out;

	r = step_release(&pf, rec, force, released);
	if (r >= 0 && have_rec)
		r = rec_save(ctx, rec);
	if (r >= 0 && pf.autoprobe != json_is_true(json_object_get(rec, "previous_autoprobe"))) {
		r = vfiod_step(ctx, OP_DESTROY, pf.dev->name, "autoprobe");
		if (r >= 0)
			r = set_autoprobe(&pf, !pf.autoprobe);
	}
	if (r >= 0)
		r = step_count(&pf, OP_DESTROY, target, rec);
	if (r >= 0)
		r = vfiod_step(ctx, OP_DESTROY, pf.dev->name, "forget");
	if (r < 0)
		goto out; /* stopped there: the record (if any) still says how to go on */

	/* VFs removed while held open, or no longer there: their PCI records go too. */
	a = json_object_get(rec, "assigned");
	json_array_foreach(a, i, v)
		(void)record_remove(ctx, json_string_value(v));
	r = have_rec ? rec_remove(ctx, pf.dev->name) : 0;
	if (r < 0) {
		r = vfiod_error(ctx, r, "%s: cannot remove its record: %s", pf.dev->syspath,
				strerror(-r));
		goto out;
	}
	(void)pf_refresh(&pf);
	*ret = pf_json(&pf, NULL);
	if (!*ret) {
		r = -ENOMEM;
		goto out;
	}
	json_object_set(*ret, "released", released);
	json_object_set_new(*ret, "restored", json_boolean(have_rec));
	if (!have_rec)
		json_object_set_new(*ret, "note", json_string("no record of a vfs create: the VF "
							      "count was set to 0"));
	r = 0;
out:
	json_decref(released);
	json_decref(rec);
	pf_done(&pf);
	return r;
}

/* ---- target, list ---- */

static int vfs_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
		      struct target *t)
{
	_cleanup_free_ char *logical = NULL, *real = NULL;
	int r;

	if (!json_object_get(opts, "vfs"))
		return 0; /* a destroy without "vfs" is never ours */
	if (destroy && !opt_bool(opts, "vfs", false))
		return vfiod_error(ctx, -EINVAL, "%s: \"vfs\": false asks for nothing", path);
	r = sysfs_canonicalize(ctx, path, &logical, &real);
	if (r < 0)
		return r;
	r = pending_check(ctx, strrchr(logical, '/') + 1);
	if (r < 0)
		return r;
	return target_of_pci(ctx, logical, t);
}

/* The PFs with a record, each with its VFs now. */
static int vfs_list(struct vfiod_ctx *ctx, json_t *a)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	if (rec_dir(ctx, &dir) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : vfiod_error(ctx, negative_errno(), "cannot read %s: %m",
							 dir);
	while ((de = readdir(d))) {
		char name[32];
		size_t l = strlen(de->d_name);
		json_t *rec = NULL, *o = NULL;
		struct pf pf;

		if (l < 6 || l - 5 >= sizeof(name) || !streq(de->d_name + l - 5, ".json"))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(l - 5), de->d_name);
		if (!is_pci_name(name) || rec_load(ctx, name, &rec) < 0)
			continue;
		if (json_object_get(rec, "pending") || pf_open(ctx, name, &pf) < 0) {
			o = json_pack("{s:s, s:s, s:O?, s:O, s:O, s:O, s:s}", "kind", "vfs", "name",
				      name, "device", json_object_get(rec, "device"),
				      "previous_numvfs", json_object_get(rec, "previous_numvfs"),
				      "previous_autoprobe",
				      json_object_get(rec, "previous_autoprobe"), "assigned",
				      json_object_get(rec, "assigned"), "state",
				      json_object_get(rec, "pending") ? "pending" : "gone");
		} else {
			o = pf_json(&pf, rec);
			if (o)
				json_object_set_new(o, "state", json_string("active"));
			pf_done(&pf);
		}
		json_decref(rec);
		if (o)
			json_array_append_new(a, o);
	}
	ctx->error[0] = '\0';
	return 0;
}

const struct kind kind_vfs = {
	.name = "vfs",
	.selector = "vfs",
	.target = vfs_target,
	.create = vfs_create,
	.destroy = vfs_destroy,
	.list = vfs_list,
	.forget = rec_remove,
};
