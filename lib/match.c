/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Driver choice in user space.
 *
 * The device's "vfio_pci:" string is its modalias with the prefix swapped.
 * libkmod says which modules claim it, exactly as modprobe would (modprobe.d
 * aliases first, then modules.alias with glob matching, then built-ins), and
 * which of them are blacklisted.  To explain and rank each candidate we also
 * keep the vfio_pci: patterns themselves (read once per context from
 * modules.alias, modules.builtin.modinfo and the modprobe.d aliases) and
 * rank with the rule of <vfio_select/rank.h>, the one the kernel uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libkmod.h>
#include <vfio_select/rank.h>

#include "inuse.h"
#include "internal.h"
#include "kernel.h"
#include "kmod-dl.h"

const char *alias_source_name(enum alias_source s)
{
	switch (s) {
	case ALIAS_SOURCE_BUILTIN:
		return "modules.builtin.modinfo";
	case ALIAS_SOURCE_CONFIG:
		return "modprobe.d";
	default:
		return MODULES_ALIAS;
	}
}

static int glob_matches(const char *pattern, const char *string)
{
	return fnmatch(pattern, string, 0) == 0;
}

/*
 * Which of the seven fields of the device's own string DEVICE the pattern
 * pins exactly or partly: the rule of <vfio_select/rank.h>, with the glob
 * matching of fnmatch(3) that libkmod uses.  -EINVAL when the pattern does
 * not match DEVICE (it then names nothing of it).
 */
int alias_fields(const char *pattern, const char *device, uint32_t *exact, uint32_t *partial)
{
	return vfio_select_pattern_fields(pattern, device, glob_matches, exact, partial);
}

/* The specificity key of a pattern for DEVICE: 0 (as the catch-all) when it names nothing of it. */
uint32_t alias_key(const char *pattern, const char *device)
{
	uint32_t exact, partial;

	return alias_fields(pattern, device, &exact, &partial) < 0 ?
		       0 : vfio_select_rank_key(exact, partial);
}

int vfio_alias_from_modalias(const char *modalias, char **ret)
{
	if (strncmp(modalias, PCI_MODALIAS_PREFIX, strlen(PCI_MODALIAS_PREFIX)) != 0)
		return -EINVAL;
	return asprintf(ret, "%s%s", VFIO_PCI_ALIAS_PREFIX,
			modalias + strlen(PCI_MODALIAS_PREFIX)) < 0 ? -ENOMEM : 0;
}

struct alias_list {
	struct alias *v;
	size_t n;
};

static int alias_add(struct alias_list *l, const char *pattern, size_t plen, const char *module,
		     size_t mlen, enum alias_source source)
{
	struct alias *a;

	if (l->n % 16 == 0) {
		a = realloc(l->v, (l->n + 16) * sizeof(*a));
		if (!a)
			return -ENOMEM;
		l->v = a;
	}
	a = &l->v[l->n];
	a->pattern = strndup(pattern, plen);
	a->module = strndup(module, mlen);
	a->source = source;
	if (!a->pattern || !a->module) {
		free(a->pattern);
		free(a->module);
		return -ENOMEM;
	}
	/* Module names compare with '-' and '_' alike; kmod uses '_'. */
	for (char *p = a->module; *p; p++)
		if (*p == '-')
			*p = '_';
	l->n++;
	return 0;
}

static void alias_list_done(struct alias_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].pattern);
		free(l->v[i].module);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int read_file(int dirfd, const char *name, char **ret, size_t *size)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t done = 0;

	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	buf = malloc(st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, st.st_size - done);

		if (n < 0)
			return negative_errno();
		if (n == 0)
			break;
		done += n;
	}
	buf[done] = '\0';
	*size = done;
	*ret = TAKE_PTR(buf);
	return 0;
}

/*
 * "alias vfio_pci:v... module" lines of modules.alias.  A distribution's file
 * has tens of thousands of lines and a handful of vfio_pci: ones: look for
 * the line start with one strstr() pass rather than line by line.
 */
static int aliases_load_modules_alias(struct alias_list *l, int dirfd)
{
	_cleanup_free_ char *buf = NULL;
	const char *prefix = "alias " VFIO_PCI_ALIAS_PREFIX;
	const char *needle = "\nalias " VFIO_PCI_ALIAS_PREFIX;
	size_t size;
	char *line;
	int r;

	r = read_file(dirfd, MODULES_ALIAS, &buf, &size);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	line = strncmp(buf, prefix, strlen(prefix)) == 0 ? buf : strstr(buf, needle);
	for (; line; line = strstr(line, needle)) {
		if (*line == '\n')
			line++;
		char *end = line + strcspn(line, "\n");
		char *pat = line + strlen("alias ");
		size_t plen = strcspn(pat, " \t\n");
		char *mod = pat + plen + strspn(pat + plen, " \t");
		size_t mlen = strcspn(mod, " \t\n");

		line = end;
		if (plen == 0 || mlen == 0)
			continue;
		r = alias_add(l, pat, plen, mod, mlen, ALIAS_SOURCE_MODULES_ALIAS);
		if (r < 0)
			return r;
	}
	return 0;
}

/* "module.alias=vfio_pci:..." records, NUL-separated, of built-in modules. */
static int aliases_load_builtin(struct alias_list *l, int dirfd)
{
	_cleanup_free_ char *buf = NULL;
	const char *key = ".alias=" VFIO_PCI_ALIAS_PREFIX;
	size_t size;
	int r;

	r = read_file(dirfd, MODULES_BUILTIN_MODINFO, &buf, &size);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (size_t off = 0; off < size; off += strlen(buf + off) + 1) {
		const char *rec = buf + off, *k = strstr(rec, key);

		if (!k || memchr(rec, '=', k - rec))
			continue;
		r = alias_add(l, k + strlen(".alias="), strlen(k + strlen(".alias=")), rec, k - rec,
			      ALIAS_SOURCE_BUILTIN);
		if (r < 0)
			return r;
	}
	return 0;
}

static int aliases_load_config(struct alias_list *l, struct kmod_ctx *kmod)
{
	struct kmod_config_iter *it = sym_kmod_config_get_aliases(kmod);
	int r = 0;

	if (!it)
		return 0;
	while (sym_kmod_config_iter_next(it)) {
		const char *pat = sym_kmod_config_iter_get_key(it);
		const char *mod = sym_kmod_config_iter_get_value(it);

		if (!pat || !mod ||
		    strncmp(pat, VFIO_PCI_ALIAS_PREFIX, strlen(VFIO_PCI_ALIAS_PREFIX)) != 0)
			continue;
		r = alias_add(l, pat, strlen(pat), mod, strlen(mod), ALIAS_SOURCE_CONFIG);
		if (r < 0)
			break;
	}
	sym_kmod_config_iter_free_iter(it);
	return r;
}

/*
 * What modules.alias and modules.builtin.modinfo say, kept for the process:
 * vfiod makes a context for every operation, and reading a distribution's
 * modules.alias (over a megabyte) each time cost more than the rest of the
 * choice.  The copy is used while both files are the very same (device,
 * inode, size, modification time: depmod replaces them by rename), and
 * contexts may be made in several threads at once.
 */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool exists;
};

static struct {
	pthread_mutex_t lock;
	char *dir;
	struct file_id alias, builtin;
	struct alias_list list;
	unsigned long gen; /* bumped at each reload */
} alias_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int file_id_get(int dirfd, const char *name, struct file_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (fstatat(dirfd, name, &st, 0) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	*id = (struct file_id){ .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
				.mtime = st.st_mtim, .exists = true };
	return 0;
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static int alias_list_copy(struct alias_list *to, const struct alias_list *from)
{
	for (size_t i = 0; i < from->n; i++) {
		const struct alias *a = &from->v[i];
		int r = alias_add(to, a->pattern, strlen(a->pattern), a->module, strlen(a->module),
				  a->source);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Append the aliases of the module directory DIR (open as DIRFD) to L. */
static int aliases_load_files(struct alias_list *l, const char *dir, int dirfd,
			      unsigned long *gen)
{
	struct alias_list fresh = { 0 };
	struct file_id alias, builtin;
	int r;

	r = file_id_get(dirfd, MODULES_ALIAS, &alias);
	if (r >= 0)
		r = file_id_get(dirfd, MODULES_BUILTIN_MODINFO, &builtin);
	if (r < 0)
		return r;
	pthread_mutex_lock(&alias_cache.lock);
	if (!alias_cache.dir || !streq(alias_cache.dir, dir) ||
	    !file_id_eq(&alias_cache.alias, &alias) || !file_id_eq(&alias_cache.builtin, &builtin)) {
		char *d = strdup(dir);

		r = d ? aliases_load_modules_alias(&fresh, dirfd) : -ENOMEM;
		if (r >= 0)
			r = aliases_load_builtin(&fresh, dirfd);
		if (r < 0) {
			free(d);
			alias_list_done(&fresh);
			pthread_mutex_unlock(&alias_cache.lock);
			return r;
		}
		free(alias_cache.dir);
		alias_list_done(&alias_cache.list);
		alias_cache.dir = d;
		alias_cache.alias = alias;
		alias_cache.builtin = builtin;
		alias_cache.list = fresh;
		alias_cache.gen++;
	}
	r = alias_list_copy(l, &alias_cache.list);
	if (gen)
		*gen = alias_cache.gen;
	pthread_mutex_unlock(&alias_cache.lock);
	return r;
}

__attribute__((destructor)) static void alias_cache_free(void)
{
	free(alias_cache.dir);
	alias_cache.dir = NULL;
	alias_list_done(&alias_cache.list);
}

int aliases_load(struct vfiod_ctx *ctx)
{
	_cleanup_close_ int dirfd = -1;
	struct alias_list l = { 0 };
	struct kmod_ctx *kmod;
	const char *dir;
	int r;

	if (ctx->aliases_loaded)
		return 0;
	r = vfiod_ctx_kmod(ctx, &kmod);
	if (r < 0)
		return r;
	dir = sym_kmod_get_dirname(kmod);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return vfiod_error(ctx, negative_errno(), "module directory %s: %m", dir);
	/* In this order: modprobe.d, modules.alias, modules.builtin.modinfo. */
	r = aliases_load_config(&l, kmod);
	if (r >= 0)
		r = aliases_load_files(&l, dir, dirfd, &ctx->aliases_gen);
	if (r < 0) {
		alias_list_done(&l);
		return vfiod_error(ctx, r, "cannot read the module aliases in %s: %s", dir,
				   strerror(-r));
	}
	ctx->aliases = l.v;
	ctx->n_aliases = l.n;
	ctx->aliases_loaded = true;
	return 0;
}

void aliases_drop(struct vfiod_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_aliases; i++) {
		free(ctx->aliases[i].pattern);
		free(ctx->aliases[i].module);
	}
	free(ctx->aliases);
	ctx->aliases = NULL;
	ctx->n_aliases = 0;
	ctx->aliases_loaded = false;
}

/* Drop CTX's aliases when the files they came from changed since (or another copy is newer). */
int aliases_revalidate(struct vfiod_ctx *ctx)
{
	_cleanup_close_ int dirfd = -1;
	struct file_id alias, builtin;
	bool fresh;
	int r;

	if (!ctx->aliases_loaded || !ctx->kmod)
		return 0;
	dirfd = open(sym_kmod_get_dirname(ctx->kmod), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		aliases_drop(ctx);
		return 0;
	}
	r = file_id_get(dirfd, MODULES_ALIAS, &alias);
	if (r >= 0)
		r = file_id_get(dirfd, MODULES_BUILTIN_MODINFO, &builtin);
	if (r < 0) {
		aliases_drop(ctx);
		return 0;
	}
	pthread_mutex_lock(&alias_cache.lock);
	fresh = alias_cache.gen == ctx->aliases_gen && file_id_eq(&alias_cache.alias, &alias) &&
		file_id_eq(&alias_cache.builtin, &builtin);
	pthread_mutex_unlock(&alias_cache.lock);
	if (!fresh)
		aliases_drop(ctx);
	return 0;
}

static void normalize_module(char *m)
{
	for (; *m; m++)
		if (*m == '-')
			*m = '_';
}

bool module_is_vfio(struct vfiod_ctx *ctx, const char *module)
{
	char m[256];

	if (!module || aliases_load(ctx) < 0)
		return false;
	snprintf(m, sizeof(m), "%s", module);
	normalize_module(m);
	for (size_t i = 0; i < ctx->n_aliases; i++)
		if (streq(ctx->aliases[i].module, m))
			return true;
	return false;
}

/* The module that registers a PCI driver, from sysfs. */
int driver_module(struct vfiod_ctx *ctx, const char *driver, char **ret)
{
	return root_read_link(ctx, SYSFS_PCI_DRIVERS, driver, ATTR_MODULE, ret);
}

/* The PCI driver a loaded (or built-in) module registers, from sysfs. */
int module_driver(struct vfiod_ctx *ctx, const char *module, char **ret)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	if (asprintf(&p, "%s/%s/%s", SYSFS_MODULE, module, ATTR_MODULE_DRIVERS) < 0)
		return -ENOMEM;
	r = dir_from_fd(root_open(ctx, p, O_RDONLY | O_DIRECTORY), &d);
	if (r < 0)
		return r;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "pci:", 4) == 0) {
			*ret = strdup(de->d_name + 4);
			return *ret ? 0 : -ENOMEM;
		}
	return -ENOENT;
}

bool driver_is_vfio(struct vfiod_ctx *ctx, const char *driver)
{
	_cleanup_free_ char *module = NULL;

	if (!driver)
		return false;
	if (streq(driver, DRIVER_VFIO_PCI))
		return true;
	return driver_module(ctx, driver, &module) >= 0 && module_is_vfio(ctx, module);
}

/*
 * What libkmod's initstate says, read below our sysfs root so that fixture
 * trees answer too: a module directory with "initstate" is loaded, one
 * without it is built in (the kernel makes those for built-in drivers).
 */
static int module_state(struct vfiod_ctx *ctx, const char *module)
{
	_cleanup_free_ char *p = NULL, *state = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&p, "%s/%s", SYSFS_MODULE, module) < 0)
		return -ENOMEM;
	fd = root_open(ctx, p, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd == -ENOENT ? KMOD_MODULE_GOING + 1 : fd;
	if (read_attr(fd, "initstate", &state) < 0)
		return KMOD_MODULE_BUILTIN;
	if (streq(state, "live"))
		return KMOD_MODULE_LIVE;
	return streq(state, "coming") ? KMOD_MODULE_COMING : KMOD_MODULE_GOING;
}

int module_load(struct vfiod_ctx *ctx, const char *module)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *kmod;
	int r;

	r = vfiod_ctx_kmod(ctx, &kmod);
	if (r < 0)
		return r;
	r = sym_kmod_module_new_from_name(kmod, module, &mod);
	if (r < 0)
		return vfiod_error(ctx, r, "module %s: %s", module, strerror(-r));
	switch (module_state(ctx, sym_kmod_module_get_name(mod))) {
	case KMOD_MODULE_BUILTIN:
	case KMOD_MODULE_LIVE:
		r = 0;
		break;
	default:
		r = sym_kmod_module_probe_insert_module(mod, 0, NULL, NULL, NULL, NULL);
		if (r < 0)
			vfiod_error(ctx, r, "cannot load module %s: %s", module,
				    r == -ENOENT ? "it is not installed" : strerror(-r));
		else
			vfiod_log(ctx, LOG_INFO, "loaded module %s", module);
	}
	sym_kmod_module_unref(mod);
	return r;
}

/*
 * FN for each host driver module DEV's modalias names (its "pci:" aliases;
 * vfio drivers match by "vfio_pci:" ones), with whether this kernel has it
 * built in.  Returns how many there were.
 */
static int host_modules(struct vfiod_device *dev,
			void (*fn)(struct vfiod_device *dev, const char *name, bool builtin,
				   void *userdata),
			void *userdata)
{
	struct kmod_list *list = NULL, *l;
	struct kmod_ctx *kmod;
	int r, n = 0;

	if (!dev->modalias)
		return 0;
	r = vfiod_ctx_kmod(dev->ctx, &kmod);
	if (r < 0)
		return r;
	r = sym_kmod_module_new_from_lookup(kmod, dev->modalias, &list);
	if (r < 0)
		return vfiod_error(dev->ctx, r, "%s: cannot look up its modalias: %s",
				   dev->syspath, strerror(-r));
	sym_kmod_list_foreach(l, list)
	{
		struct kmod_module *mod = sym_kmod_module_get_module(l);
		const char *name = sym_kmod_module_get_name(mod);

		if (!driver_is_vfio(dev->ctx, name)) {
			/*
			 * Built in: found by modules.builtin's aliases, with no file of its
			 * own, or said so below our sysfs root (module_state()).
			 */
			fn(dev, name,
			   !sym_kmod_module_get_path(mod) ||
				   module_state(dev->ctx, name) == KMOD_MODULE_BUILTIN,
			   userdata);
			n++;
		}
		sym_kmod_module_unref(mod);
	}
	sym_kmod_module_unref_list(list);
	return n;
}

static void load_one(struct vfiod_device *dev, const char *name, bool builtin, void *userdata)
{
	(void)userdata;
	if (!builtin)
		(void)module_load(dev->ctx, name);
}

int module_load_host(struct vfiod_device *dev)
{
	int r = host_modules(dev, load_one, NULL);

	dev->ctx->error[0] = '\0';
	return r;
}

static void describe_one(struct vfiod_device *dev, const char *name, bool builtin,
			 void *userdata)
{
	int state = builtin ? KMOD_MODULE_BUILTIN : module_state(dev->ctx, name);

	json_array_append_new(userdata,
			      json_pack("{s:s, s:s}", "module", name, "state",
					state == KMOD_MODULE_BUILTIN ? "built in"
					: state == KMOD_MODULE_LIVE  ? "loaded"
								     : "not loaded"));
}

json_t *host_modules_json(struct vfiod_device *dev)
{
	json_t *a = json_array();

	if (a && host_modules(dev, describe_one, a) < 0) {
		dev->ctx->error[0] = '\0';
		json_decref(a);
		return json_null();
	}
	return a ? a : json_null();
}

static int candidate_cmp(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	return vfio_select_rank_cmp(x->key, x->module, y->key, y->module);
}

/* Sort, number, flag ties, and select the best candidate not skipped. */
void match_sort(struct vfiod_match *m)
{
	if (m->n_cand > 1)
		qsort(m->cand, m->n_cand, sizeof(*m->cand), candidate_cmp);
	m->selected = NULL;
	for (size_t i = 0; i < m->n_cand; i++) {
		struct candidate *c = &m->cand[i];

		c->rank = i + 1;
		c->tie = (i > 0 && c[-1].key == c->key) || (i + 1 < m->n_cand && c[1].key == c->key);
		if (!m->selected && !c->skipped)
			m->selected = c;
	}
}

/* The most specific pattern of MODULE that matches the device. */
static const struct alias *best_alias(struct vfiod_ctx *ctx, const char *module,
				      const char *vfio_alias, uint32_t *key)
{
	const struct alias *best = NULL;
	uint32_t best_key = 0;

	for (size_t i = 0; i < ctx->n_aliases; i++) {
		const struct alias *a = &ctx->aliases[i];
		uint32_t k;

		if (!streq(a->module, module) || fnmatch(a->pattern, vfio_alias, 0) != 0)
			continue;
		k = alias_key(a->pattern, vfio_alias);
		/* Equal keys: an admin's modprobe.d alias is the one modprobe obeyed. */
		if (!best || k > best_key ||
		    (k == best_key && a->source == ALIAS_SOURCE_CONFIG))
			best = a, best_key = k;
	}
	*key = best_key;
	return best;
}

static void candidate_done(struct candidate *c)
{
	free(c->module);
	free(c->driver);
	free(c->alias);
	free(c->skipped);
}

static int match_new(struct vfiod_device *dev, struct vfiod_match **ret)
{
	struct vfiod_match *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->n_ref = 1;
	m->syspath = strdup(dev->syspath);
	m->name = strdup(dev->name);
	r = vfio_alias_from_modalias(dev->modalias, &m->vfio_alias);
	if (!m->syspath || !m->name || r < 0) {
		vfiod_match_unref(m);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = m;
	return 0;
}

static struct candidate *match_add(struct vfiod_match *m)
{
	struct candidate *c = realloc(m->cand, (m->n_cand + 1) * sizeof(*c));

	if (!c)
		return NULL;
	m->cand = c;
	c = &m->cand[m->n_cand++];
	memset(c, 0, sizeof(*c));
	return c;
}

static bool in_list(struct kmod_list *list, struct kmod_module *mod)
{
	struct kmod_list *l;

	sym_kmod_list_foreach(l, list)
	{
		struct kmod_module *x = sym_kmod_module_get_module(l);
		bool same = streq(sym_kmod_module_get_name(x), sym_kmod_module_get_name(mod));

		sym_kmod_module_unref(x);
		if (same)
			return true;
	}
	return false;
}

static int match_user(struct vfiod_device *dev, struct vfiod_match *m)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct kmod_list *list = NULL, *allowed = NULL, *l;
	struct kmod_ctx *kmod;
	int r;

	m->resolver = "user space";
	r = aliases_load(ctx);
	if (r < 0)
		return r;
	r = vfiod_ctx_kmod(ctx, &kmod);
	if (r < 0)
		return r;
	r = sym_kmod_module_new_from_lookup(kmod, m->vfio_alias, &list);
	if (r < 0)
		return vfiod_error(ctx, r, "module lookup of %s failed: %s", m->vfio_alias,
				   strerror(-r));
	r = sym_kmod_module_apply_filter(kmod, KMOD_FILTER_BLACKLIST, list, &allowed);
	if (r < 0) {
		sym_kmod_module_unref_list(list);
		return vfiod_error(ctx, r, "blacklist filter failed: %s", strerror(-r));
	}

	sym_kmod_list_foreach(l, list)
	{
		struct kmod_module *mod = sym_kmod_module_get_module(l);
		struct candidate *c = match_add(m);
		const struct alias *a;
		int state;

		if (!c) {
			sym_kmod_module_unref(mod);
			r = -ENOMEM;
			break;
		}
		c->module = strdup(sym_kmod_module_get_name(mod));
		if (!c->module) {
			sym_kmod_module_unref(mod);
			r = -ENOMEM;
			break;
		}
		a = best_alias(ctx, c->module, m->vfio_alias, &c->key);
		if (a) {
			c->alias = strdup(a->pattern);
			c->source = a->source;
		}
		state = module_state(ctx, c->module);
		c->builtin = state == KMOD_MODULE_BUILTIN;
		c->loaded = c->builtin || state == KMOD_MODULE_LIVE;
		if (c->loaded)
			(void)module_driver(ctx, c->module, &c->driver);
		if (!in_list(allowed, mod))
			c->skipped = strdup("blacklisted in modprobe.d");
		sym_kmod_module_unref(mod);
	}
	sym_kmod_module_unref_list(allowed);
	sym_kmod_module_unref_list(list);
	return r;
}

static int match_kernel(struct vfiod_device *dev, struct vfiod_kernel *k, struct vfiod_match *m)
{
	struct vfiod_kernel_match km;
	int r;

	m->resolver = "kernel";
	r = vfiod_kernel_match(k, dev->syspath, &km);
	if (r < 0) {
		const char *msg = vfiod_kernel_errmsg(k);

		return vfiod_error(dev->ctx, r, "%s: vfio_select MATCH failed: %s", dev->syspath,
				   msg ? msg : strerror(-r));
	}
	for (unsigned int i = 0; i < km.n; i++) {
		struct candidate *c = match_add(m);

		if (!c)
			return -ENOMEM;
		c->module = strdup(km.cand[i].module);
		c->driver = strdup(km.cand[i].driver);
		c->alias = strdup(km.cand[i].alias);
		c->key = km.cand[i].key;
		c->loaded = true;
		if (!c->module || !c->driver || !c->alias)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The modules vfio_select's BIND should load for dev: its candidates that
 * are neither loaded (nor built in) nor blacklisted, best first, at most
 * VFIO_SELECT_MODULES_MAX.  *ret is NULL-terminated (free each, then it);
 * returns how many.  None loaded means no modprobe at all.
 */
int match_unloaded_modules(struct vfiod_device *dev, char ***ret)
{
	struct vfiod_match *m = NULL;
	char **v;
	size_t n = 0;
	int r;

	*ret = NULL;
	r = match_new(dev, &m);
	if (r >= 0)
		r = match_user(dev, m);
	if (r < 0) {
		vfiod_match_unref(m);
		return r;
	}
	match_sort(m);
	v = calloc(VFIO_SELECT_MODULES_MAX + 1, sizeof(*v));
	for (size_t i = 0; v && i < m->n_cand && n < VFIO_SELECT_MODULES_MAX; i++) {
		const struct candidate *c = &m->cand[i];

		if (c->loaded || c->skipped || strlen(c->module) > VFIO_SELECT_MODULE_NAME_MAX)
			continue;
		v[n] = strdup(c->module);
		if (!v[n++])
			r = -ENOMEM;
	}
	vfiod_match_unref(m);
	if (!v || r < 0) {
		for (size_t i = 0; v && i < n; i++)
			free(v[i]);
		free(v);
		return -ENOMEM;
	}
	*ret = v;
	return (int)n;
}

static bool all_loaded(const struct vfiod_match *m)
{
	for (size_t i = 0; i < m->n_cand; i++)
		if (!m->cand[i].skipped && !m->cand[i].loaded)
			return false;
	return true;
}

/*
 * Which path answers: the user-space resolver sees every installed module;
 * vfio_select sees the drivers registered now.  With the kernel layer
 * present, it answers when it can see every candidate (or when asked to
 * decide alone); otherwise user space answers, and says why.
 */
/* What assign would find in use, so that match shows it before anyone acts. */
static int match_inuse(struct vfiod_device *dev, struct vfiod_match *m)
{
	struct inuse u = {};
	int r;

	r = inuse_scan(dev->ctx, dev->realpath, NULL, -1, INUSE_HOST, &u);
	if (r >= 0) {
		m->in_use = inuse_json(&u);
		if (!m->in_use)
			r = -ENOMEM;
	}
	inuse_done(&u);
	return r;
}

_public_ int vfiod_device_match(struct vfiod_device *dev, struct vfiod_match **ret)
{
	struct vfiod_ctx *ctx = dev->ctx;
	struct vfiod_match *m = NULL;
	struct vfiod_kernel *k;
	int r;

	ctx->error[0] = '\0';
	r = vfiod_ctx_kernel(ctx, &k);
	if (r < 0)
		return r;
	r = match_new(dev, &m);
	if (r < 0)
		return r;
	if (!k || ctx->resolver != VFIOD_RESOLVER_KERNEL)
		r = match_user(dev, m);
	if (r >= 0 && k && (ctx->resolver == VFIOD_RESOLVER_KERNEL || all_loaded(m))) {
		struct vfiod_match *km = NULL;

		r = match_new(dev, &km);
		if (r >= 0)
			r = match_kernel(dev, k, km);
		if (r >= 0) {
			vfiod_match_unref(m);
			m = km;
		} else {
			vfiod_match_unref(km);
		}
	} else if (r >= 0 && k) {
		m->note = strdup("some candidate modules are not loaded; vfio_select ranks "
				 "registered drivers only, so user space answered");
	}
	if (r < 0) {
		vfiod_match_unref(m);
		return r;
	}
	match_sort(m);
	r = match_inuse(dev, m);
	if (r < 0) {
		vfiod_match_unref(m);
		return r;
	}
	*ret = m;
	return 0;
}

_public_ struct vfiod_match *vfiod_match_ref(struct vfiod_match *m)
{
	if (m)
		m->n_ref++;
	return m;
}

_public_ struct vfiod_match *vfiod_match_unref(struct vfiod_match *m)
{
	if (!m || --m->n_ref > 0)
		return NULL;
	for (size_t i = 0; i < m->n_cand; i++)
		candidate_done(&m->cand[i]);
	free(m->cand);
	free(m->syspath);
	free(m->name);
	free(m->vfio_alias);
	free(m->note);
	json_decref(m->in_use);
	free(m);
	return NULL;
}

_public_ const char *vfiod_match_get_module(struct vfiod_match *m)
{
	return m->selected ? m->selected->module : NULL;
}

_public_ const char *vfiod_match_get_driver(struct vfiod_match *m)
{
	return m->selected ? m->selected->driver : NULL;
}

_public_ const char *vfiod_match_get_resolver(struct vfiod_match *m)
{
	return m->resolver;
}

_public_ int vfiod_match_to_json(struct vfiod_match *m, char **ret)
{
	json_t *o = json_object(), *a = json_array(), *sel;

	if (!o || !a) {
		json_decref(o);
		json_decref(a);
		return -ENOMEM;
	}
	json_object_set_new(o, "device", json_string(m->syspath));
	json_object_set_new(o, "name", json_string(m->name));
	json_object_set_new(o, "modalias", json_string(m->vfio_alias));
	json_object_set_new(o, "resolver", json_string(m->resolver));
	if (m->note)
		json_object_set_new(o, "note", json_string(m->note));
	for (size_t i = 0; i < m->n_cand; i++) {
		const struct candidate *c = &m->cand[i];
		json_t *j = json_object();

		json_object_set_new(j, "rank", json_integer(c->rank));
		json_object_set_new(j, "module", json_string(c->module));
		json_object_set_new(j, "driver", c->driver ? json_string(c->driver) : json_null());
		json_object_set_new(j, "alias", c->alias ? json_string(c->alias) : json_null());
		json_object_set_new(j, "exact_fields",
				    json_integer(vfio_select_rank_exact_fields(c->key)));
		json_object_set_new(j, "key", json_integer(c->key));
		if (strcmp(m->resolver, "kernel") != 0)
			json_object_set_new(j, "source", json_string(alias_source_name(c->source)));
		json_object_set_new(j, "loaded", json_boolean(c->loaded));
		if (c->builtin)
			json_object_set_new(j, "builtin", json_true());
		if (c->tie)
			json_object_set_new(j, "tie", json_true());
		if (c->skipped)
			json_object_set_new(j, "skipped", json_string(c->skipped));
		json_array_append_new(a, j);
	}
	json_object_set_new(o, "candidates", a);
	if (m->selected) {
		sel = json_object();
		json_object_set_new(sel, "module", json_string(m->selected->module));
		if (m->selected->driver)
			json_object_set_new(sel, "driver", json_string(m->selected->driver));
		json_object_set_new(sel, "rank", json_integer(m->selected->rank));
		json_object_set_new(sel, "reason",
				    json_string(m->selected->tie ?
							"tie on specificity, broken by module name" :
						m->selected->rank == 1 ?
							"most specific alias" :
							"most specific alias not skipped"));
	} else {
		sel = json_null();
	}
	json_object_set_new(o, "selected", sel);
	if (m->in_use)
		json_object_set(o, "in_use", m->in_use);
	return json_dump_to(o, ret);
}
