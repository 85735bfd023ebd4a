/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <libkmod.h>
#include <pci/pci.h>

#include "fileio.h"
#include "internal.h"
#include "kernel.h"
#include "kmod-dl.h"

/* Split a colon-separated list; NULL for an unset or empty variable. */
static int strv_split_env(const char *name, char ***ret)
{
	const char *v = getenv(name);
	char **list = NULL;
	size_t n = 0;

	*ret = NULL;
	if (!v || !*v)
		return 0;
	for (const char *p = v; p;) {
		const char *e = strchr(p, ':');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char **nl;

		if (len > 0) {
			nl = realloc(list, (n + 2) * sizeof(*list));
			if (!nl)
				goto oom;
			list = nl;
			list[n] = strndup(p, len);
			if (!list[n])
				goto oom;
			list[++n] = NULL;
		}
		p = e ? e + 1 : NULL;
	}
	*ret = list;
	return 0;
oom:
	strv_free(list);
	return -ENOMEM;
}

_public_ int vfiod_ctx_new(struct vfiod_ctx **ret)
{
	struct vfiod_ctx *ctx;
	const char *v;
	int r;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->n_ref = 1;
	ctx->log_priority = LOG_ERR;
	ctx->kmod_watch = -1;

	v = getenv(VFIOD_ENV_SYSFS_ROOT);
	ctx->sysfs_root = strdup(v && *v ? v : VFIOD_DEFAULT_SYSFS_ROOT);
	if (!ctx->sysfs_root)
		goto oom;
	/* "/sys/" and "/sys" are the same root. */
	for (size_t l = strlen(ctx->sysfs_root); l > 1 && ctx->sysfs_root[l - 1] == '/'; l--)
		ctx->sysfs_root[l - 1] = '\0';
	ctx->sysfs_real = realpath(ctx->sysfs_root, NULL);
	if (!ctx->sysfs_real) {
		r = negative_errno();
		vfiod_error(ctx, r, "sysfs root %s: %s", ctx->sysfs_root, strerror(-r));
		goto fail;
	}

	v = getenv(VFIOD_ENV_MODULES_DIR);
	if (v && *v && !(ctx->modules_dir = strdup(v)))
		goto oom;
	r = strv_split_env(VFIOD_ENV_MODPROBE_CONFIG, &ctx->modprobe_config);
	if (r < 0)
		goto fail;

	ctx->runtime_dir = dir_from_env(VFIOD_ENV_RUNTIME_DIRECTORY, VFIOD_DEFAULT_RUNTIME_DIR);
	if (!ctx->runtime_dir)
		goto oom;

	v = getenv(VFIOD_ENV_NO_KERNEL);
	if (v && streq(v, "1"))
		ctx->resolver = VFIOD_RESOLVER_USER;

	*ret = ctx;
	return 0;
oom:
	r = -ENOMEM;
fail:
	vfiod_ctx_unref(ctx);
	return r;
}

_public_ struct vfiod_ctx *vfiod_ctx_ref(struct vfiod_ctx *ctx)
{
	if (ctx)
		ctx->n_ref++;
	return ctx;
}

static void kmod_watch_stop(struct vfiod_ctx *ctx);

_public_ struct vfiod_ctx *vfiod_ctx_unref(struct vfiod_ctx *ctx)
{
	if (!ctx || --ctx->n_ref > 0)
		return NULL;
	aliases_drop(ctx);
	if (ctx->kmod)
		sym_kmod_unref(ctx->kmod);
	kmod_watch_stop(ctx);
	if (ctx->kernel)
		vfiod_kernel_close(ctx->kernel);
	free(ctx->sysfs_root);
	free(ctx->sysfs_real);
	free(ctx->modules_dir);
	strv_free(ctx->modprobe_config);
	free(ctx->runtime_dir);
	free(ctx);
	return NULL;
}

_public_ void vfiod_ctx_set_log_fn(struct vfiod_ctx *ctx, vfiod_log_fn fn, void *userdata)
{
	ctx->log_fn = fn;
	ctx->log_data = userdata;
}

_public_ void vfiod_ctx_set_log_priority(struct vfiod_ctx *ctx, int priority)
{
	ctx->log_priority = priority;
}

_public_ void vfiod_ctx_set_step_fn(struct vfiod_ctx *ctx, vfiod_step_fn fn, void *userdata)
{
	ctx->step_fn = fn;
	ctx->step_data = userdata;
}

_public_ void vfiod_ctx_set_progress_fn(struct vfiod_ctx *ctx, vfiod_progress_fn fn,
				       void *userdata)
{
	ctx->progress_fn = fn;
	ctx->progress_data = userdata;
}

_public_ const char *vfiod_ctx_get_error(struct vfiod_ctx *ctx)
{
	return ctx->error[0] ? ctx->error : NULL;
}

_public_ const char *vfiod_ctx_get_sysfs_root(struct vfiod_ctx *ctx)
{
	return ctx->sysfs_root;
}

_public_ int vfiod_ctx_set_resolver(struct vfiod_ctx *ctx, enum vfiod_resolver resolver)
{
	if (resolver > VFIOD_RESOLVER_KERNEL)
		return -EINVAL;
	ctx->resolver = resolver;
	return 0;
}

void vfiod_log(struct vfiod_ctx *ctx, int priority, const char *fmt, ...)
{
	va_list ap;

	if (!ctx->log_fn || priority > ctx->log_priority)
		return;
	va_start(ap, fmt);
	ctx->log_fn(ctx->log_data, priority, fmt, ap);
	va_end(ap);
}

int vfiod_error(struct vfiod_ctx *ctx, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
	va_end(ap);
	vfiod_log(ctx, LOG_DEBUG, "%s", ctx->error);
	return r;
}

int vfiod_step(struct vfiod_ctx *ctx, const char *operation, const char *device, const char *step)
{
	int r;

	vfiod_log(ctx, LOG_DEBUG, "%s %s: %s", operation, device, step);
	if (!ctx->step_fn)
		return 0;
	r = ctx->step_fn(ctx->step_data, operation, device, step);
	if (r < 0)
		return vfiod_error(ctx, r, "%s %s stopped before step %s", operation, device,
				   step);
	return 0;
}

void vfiod_progress(struct vfiod_ctx *ctx, const char *operation, const char *device,
		    unsigned int done, unsigned int total)
{
	if (device)
		vfiod_log(ctx, LOG_DEBUG, "%s: %s done, %u of %u", operation, device, done, total);
	if (ctx->progress_fn)
		ctx->progress_fn(ctx->progress_data, operation, device, done, total);
}

/*
 * What libkmod reads, watched: its module directory (depmod renames fresh
 * indexes and modules.alias into it) and the modprobe.d directories (its
 * defaults, or VFIOD_MODPROBE_CONFIG's paths).  inotify queues an event as
 * part of the change itself, before depmod or the package manager returns,
 * so a call made after the change finds it queued; while nothing is, a
 * revalidation need not stat every index again.  A path that does not
 * exist is watched through its parent, for its creation.  Anything that
 * cannot be watched (no inotify left) means: validate every time.
 */
static const char *const kmod_default_config[] = {
	"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
	"/lib/modprobe.d", "/usr/lib/modprobe.d", NULL,
};

#define KMOD_WATCH_MASK                                                                         \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB |       \
	 IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF)

static void kmod_watch_stop(struct vfiod_ctx *ctx)
{
	closep(&ctx->kmod_watch);
	for (size_t i = 0; i < ctx->n_kmod_watches; i++)
		free(ctx->kmod_watches[i].child);
	ctx->n_kmod_watches = 0;
}

/*
 * PATH, or its parent while PATH does not exist.  A parent such as /run
 * sees every file made or changed beside the missing /run/modprobe.d:
 * only events naming that child count (kmod_watch_event()).  More paths
 * than there are slots: no watch, and every revalidation looks in full.
 */
static int kmod_watch_add(struct vfiod_ctx *ctx, int fd, const char *path)
{
	_cleanup_free_ char *parent = NULL;
	char *slash, *child = NULL;
	int wd;

	if (ctx->n_kmod_watches >= ARRAY_SIZE(ctx->kmod_watches))
		return -1;
	wd = inotify_add_watch(fd, path, KMOD_WATCH_MASK);
	if (wd < 0) {
		if (errno != ENOENT || !(parent = strdup(path)) || !(slash = strrchr(parent, '/')))
			return -1;
		*slash = '\0';
		wd = inotify_add_watch(fd, *parent ? parent : "/", KMOD_WATCH_MASK);
		if (wd < 0 || !(child = strdup(slash + 1)))
			return -1;
	}
	ctx->kmod_watches[ctx->n_kmod_watches].wd = wd;
	ctx->kmod_watches[ctx->n_kmod_watches++].child = child;
	return 0;
}

static void kmod_watch_start(struct vfiod_ctx *ctx, const char *modules_dir)
{
	const char *const *config = ctx->modprobe_config ? (const char *const *)ctx->modprobe_config
							 : kmod_default_config;
	int fd;

	kmod_watch_stop(ctx);
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return;
	ctx->kmod_watch = fd;
	if (kmod_watch_add(ctx, fd, modules_dir) < 0) {
		kmod_watch_stop(ctx);
		return;
	}
	for (size_t i = 0; config[i]; i++)
		if (kmod_watch_add(ctx, fd, config[i]) < 0) {
			kmod_watch_stop(ctx);
			return;
		}
}

enum kmod_watch_seen {
	KMOD_WATCH_QUIET,
	KMOD_WATCH_CHANGED,  /* something libkmod read may have changed: validate */
	KMOD_WATCH_APPEARED, /* a path missing at kmod_new(): libkmod never looked at it */
};

static enum kmod_watch_seen seen_max(enum kmod_watch_seen a, enum kmod_watch_seen b)
{
	return a > b ? a : b;
}

/*
 * What EV means for libkmod's files: anything in a watched path counts; in
 * a parent, only what names the missing child; a lost event or watch does.
 * inotify gives one watch to a path added twice, so a watch may serve
 * several paths.
 */
static enum kmod_watch_seen kmod_watch_event(const struct vfiod_ctx *ctx,
					     const struct inotify_event *ev)
{
	enum kmod_watch_seen seen = KMOD_WATCH_QUIET;

	if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
		return KMOD_WATCH_CHANGED;
	for (size_t i = 0; i < ctx->n_kmod_watches; i++) {
		const char *child = ctx->kmod_watches[i].child;

		if (ctx->kmod_watches[i].wd != ev->wd)
			continue;
		if (!child)
			seen = seen_max(seen, KMOD_WATCH_CHANGED);
		else if (ev->len && streq(ev->name, child))
			return KMOD_WATCH_APPEARED;
	}
	return seen;
}

/* What changed since the watch began; the events are drained. */
static enum kmod_watch_seen kmod_watch_read(struct vfiod_ctx *ctx)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	enum kmod_watch_seen seen = KMOD_WATCH_QUIET;
	ssize_t n;

	if (ctx->kmod_watch < 0)
		return KMOD_WATCH_CHANGED;
	while ((n = read(ctx->kmod_watch, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			seen = seen_max(seen, kmod_watch_event(ctx, ev));
			p += sizeof(*ev) + ev->len;
		}
	return n < 0 && errno == EAGAIN ? seen : seen_max(seen, KMOD_WATCH_CHANGED);
}

static const char *kmod_modules_dir(struct vfiod_ctx *ctx, char *buf, size_t size)
{
	struct utsname u;

	if (ctx->modules_dir)
		return ctx->modules_dir;
	if (uname(&u) < 0)
		return NULL;
	snprintf(buf, size, "/lib/modules/%s", u.release);
	return buf;
}

/*
 * The watch begins at the context's first revalidation, which validates in
 * full (nothing is watched yet), not here: a context used once and freed (a
 * vfioctl --direct, a job's) would pay for nothing but inotify's teardown,
 * which waits for an SRCU grace period (90 us of a 210 us lookup).
 */
int vfiod_ctx_kmod(struct vfiod_ctx *ctx, struct kmod_ctx **ret)
{
	int r;

	if (!ctx->kmod) {
		r = kmod_dl_open();
		if (r < 0)
			return vfiod_error(ctx, r, "cannot load libkmod.so.2, which choosing "
					   "and loading modules needs (install libkmod2)");
		ctx->kmod = sym_kmod_new(ctx->modules_dir, (const char *const *)ctx->modprobe_config);
		if (!ctx->kmod)
			return vfiod_error(ctx, -ENOMEM, "cannot initialise libkmod");
		r = sym_kmod_load_resources(ctx->kmod);
		if (r < 0)
			vfiod_log(ctx, LOG_DEBUG, "libkmod indexes not loaded, using text files: %s",
				  strerror(-r));
	}
	*ret = ctx->kmod;
	return 0;
}

/* What tells a loaded vfio_select from another one, or from none: its sysfs inode. */
static unsigned long long kernel_stamp(void)
{
	struct stat st;

	return stat("/sys/module/" GENL_VFIO_SELECT, &st) == 0 ? (unsigned long long)st.st_ino
								   : 0;
}

_public_ int vfiod_ctx_revalidate(struct vfiod_ctx *ctx)
{
	enum kmod_watch_seen seen;

	ctx->error[0] = '\0';
	if (ctx->kmod && (seen = kmod_watch_read(ctx)) != KMOD_WATCH_QUIET) {
		char buf[PATH_MAX];
		const char *dir = kmod_modules_dir(ctx, buf, sizeof(buf));

		vfiod_log(ctx, LOG_DEBUG, "validating libkmod's files (%s)",
			  ctx->kmod_watch < 0 ? "not watched" : "a change was seen");
		/*
		 * Watched anew (the first time: at all) before the look, so that a
		 * change during it is seen next time.
		 */
		if (dir)
			kmod_watch_start(ctx, dir);
		if (seen == KMOD_WATCH_APPEARED ||
		    sym_kmod_validate_resources(ctx->kmod) != KMOD_RESOURCES_OK) {
			/* modprobe.d or the indexes changed: a new libkmod context, new aliases. */
			aliases_drop(ctx);
			sym_kmod_unref(ctx->kmod);
			ctx->kmod = NULL;
		}
		(void)aliases_revalidate(ctx);
	}
	if (ctx->kernel_probed && kernel_stamp() != ctx->kernel_stamp) {
		if (ctx->kernel)
			vfiod_kernel_close(ctx->kernel);
		ctx->kernel = NULL;
		ctx->kernel_probed = false;
	}
	return 0;
}

int vfiod_ctx_kernel(struct vfiod_ctx *ctx, struct vfiod_kernel **ret)
{
	int r;

	*ret = NULL;
	/* The kernel knows only the real /sys; fixture trees use the user-space path. */
	if (ctx->resolver == VFIOD_RESOLVER_USER || !streq(ctx->sysfs_real, "/sys"))
		return 0;
	if (!ctx->kernel_probed) {
		ctx->kernel_probed = true;
		ctx->kernel_stamp = kernel_stamp();
		/*
		 * Not loaded: no family to look up.  Looking one up that is not
		 * registered makes the kernel try to load it, a modprobe run of
		 * 80 ms in the VM, at the first call after every unload.
		 */
		r = ctx->kernel_stamp ? vfiod_kernel_open(&ctx->kernel) : -ENOENT;
		if (r < 0 && r != -ENOENT)
			vfiod_log(ctx, LOG_DEBUG, "vfio_select not usable: %s", strerror(-r));
	}
	if (!ctx->kernel && ctx->resolver == VFIOD_RESOLVER_KERNEL)
		return vfiod_error(ctx, -ENOENT,
				   "the kernel module vfio_select is not loaded (modprobe vfio_select)");
	*ret = ctx->kernel;
	return 0;
}

/*
 * Names from pci.ids.  libpci reads and hashes the whole file (over a
 * megabyte) on a pci_access's first lookup; vfiod makes a context for every
 * operation, so one pci_access serves the process, loaded once, and lookups
 * take turns (libpci's hash and its hwdb handle are not thread-safe).
 * libpci itself (and the libudev it links) is loaded then too, not at every
 * exec of a program that never asks for a name (as libkmod, kmod-dl.h);
 * without it devices have no description.
 */
static struct {
	pthread_mutex_t lock;
	bool loaded;
	struct pci_access *pacc;
	__typeof__(pci_alloc) *alloc;
	__typeof__(pci_lookup_name) *lookup_name;
	__typeof__(pci_cleanup) *cleanup;
} pci_names = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* libpci's complaints (a pci.ids line it cannot parse, no hwdb): a name is missing, no more. */
static void pci_names_quiet(char *msg, ...)
{
	(void)msg;
}

/* Its one fatal error is running out of memory, where its own handler exits. */
_Noreturn static void pci_names_fatal(char *msg, ...)
{
	(void)msg;
	abort();
}

static void pci_names_load(void)
{
	void *h;

	pci_names.loaded = true;
	h = dlopen("libpci.so.3", RTLD_NOW | RTLD_NODELETE);
	if (!h)
		return;
	pci_names.alloc = (__typeof__(pci_alloc) *)dlsym(h, "pci_alloc");
	pci_names.lookup_name = (__typeof__(pci_lookup_name) *)dlsym(h, "pci_lookup_name");
	pci_names.cleanup = (__typeof__(pci_cleanup) *)dlsym(h, "pci_cleanup");
	if (pci_names.alloc && pci_names.lookup_name && pci_names.cleanup)
		pci_names.pacc = pci_names.alloc();
	if (pci_names.pacc) {
		/* pci_init() would set these; it also scans the bus, which names do not need. */
		pci_names.pacc->warning = pci_names_quiet;
		pci_names.pacc->debug = pci_names_quiet;
		pci_names.pacc->error = pci_names_fatal;
	}
}

const char *vfiod_ctx_pci_name(struct vfiod_ctx *ctx, char *buf, size_t size, unsigned int vendor,
			       unsigned int device)
{
	const char *name = NULL;

	(void)ctx;
	pthread_mutex_lock(&pci_names.lock);
	if (!pci_names.loaded) {
		pci_names_load();
		if (pci_names.pacc)
			pci_names.pacc->numeric_ids = 0;
	}
	if (pci_names.pacc) {
		name = pci_names.lookup_name(pci_names.pacc, buf, size,
				       PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
				       vendor, device);
		/* A name in libpci's own table: copy it while the table is ours. */
		if (name && name != buf) {
			snprintf(buf, size, "%s", name);
			name = buf;
		}
	}
	pthread_mutex_unlock(&pci_names.lock);
	return name;
}

__attribute__((destructor)) static void pci_names_free(void)
{
	if (pci_names.pacc)
		pci_names.cleanup(pci_names.pacc);
	pci_names.pacc = NULL;
}

_public_ const char *vfiod_version(void)
{
	return VFIOD_VERSION;
}
