/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod --apply-claims: early in boot (vfiod-claims.service, before udev's
 * coldplug loads any module), what Claim= names is held from host drivers.
 *
 *  - vfio_select's options go to <modprobe.d>/vfiod.conf, so that the
 *    module starts with the table whenever it is loaded: next, by this
 *    program, or later by anyone; with no claims the file goes.  With them
 *    go a softdep per host driver module of the claimed devices present,
 *    so that whoever loads that driver loads vfio_select first;
 *  - each claimed PCI function present with no driver and no override
 *    gets the placeholder now, with vfio_select or without it;
 *  - vfio_select is loaded (if installed), which holds the ones added
 *    later, a PF's VFs among them.
 *
 * vfiod proper then assigns what is held (udev.c), as it starts.
 *
 * vfiod --claims-modprobe-conf prints that same file, changing nothing: the
 * initramfs hooks (udev-rules/initramfs-tools, udev-rules/dracut) put it in
 * the image, where udev's coldplug loads host drivers before any script of
 * ours could run, so that the softdep alone puts vfio_select first there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "claim.h"
#include "config.h"
#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

#define MODPROBE_FILE "vfiod.conf"

extern char **environ;

/* ATTR of the device directory DIRFD, stripped; NULL when it cannot be read. */
static char *attr(int dirfd, const char *name)
{
	char buf[256];
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return strdup(buf);
}

static unsigned int hex_attr(int dirfd, const char *name)
{
	_cleanup_free_ char *s = attr(dirfd, name);

	return s ? (unsigned int)strtoul(s, NULL, 16) : 0;
}

/* The Claim= entry the PCI function NAME (the directory DIRFD) matches, or NULL. */
static const struct claim *claim_of_dir(const struct claim *v, size_t n, int dirfd,
					const char *name)
{
	struct claim_device d = {
		.vendor = hex_attr(dirfd, "vendor"),
		.device = hex_attr(dirfd, "device"),
		.subvendor = hex_attr(dirfd, "subsystem_vendor"),
		.subdevice = hex_attr(dirfd, "subsystem_device"),
		.class = hex_attr(dirfd, "class"),
		.address = name,
	};

	return claims_match(v, n, &d);
}

/*
 * FN for each PCI function below ROOT that a claim names, with its
 * directory; stops at FN's first negative return.  How many there were.
 */
static int for_each_claimed(const struct claim *v, size_t n_claims, const char *root,
			    int (*fn)(int dirfd, const char *name, const struct claim *c,
				      void *userdata),
			    void *userdata)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int n = 0, r = 0;

	if (!n_claims)
		return 0;
	if (asprintf(&path, "%s/bus/pci/devices", root) < 0)
		return -ENOMEM;
	dir = opendir(path);
	if (!dir)
		return log_error_errno(negative_errno(), "cannot read %s: %m", path);
	while (r >= 0 && (de = readdir(dir))) {
		const struct claim *c;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		c = claim_of_dir(v, n_claims, fd, de->d_name);
		if (c) {
			r = fn(fd, de->d_name, c, userdata);
			n++;
		}
		close(fd);
	}
	return r < 0 ? r : n;
}

/* Hold NAME (the directory DIRFD), claimed, when nothing has it yet; HELD counts them. */
static int hold_one(int dirfd, const char *name, const struct claim *c, void *held)
{
	_cleanup_free_ char *override = attr(dirfd, "driver_override");
	char text[32];
	int fd;

	claim_format(c, text, sizeof(text));
	if (faccessat(dirfd, "driver", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		log_info("%s: claimed by %s, but a driver has it already; vfiod takes it from "
			 "there",
			 name, text);
		return 0;
	}
	if (override && *override && !streq(override, "(null)")) {
		log_info("%s: claimed by %s, left alone: its driver_override is %s", name, text,
			 override);
		return 0;
	}
	fd = openat(dirfd, "driver_override", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, CLAIM_OVERRIDE, strlen(CLAIM_OVERRIDE)) < 0) {
		int r = negative_errno();

		if (fd >= 0)
			close(fd);
		log_warning_errno(r, "%s: claimed by %s, cannot hold it: %m", name, text);
		return 0;
	}
	close(fd);
	log_info("%s: claimed by %s, held from host drivers", name, text);
	(*(int *)held)++;
	return 0;
}

/* modprobe -q vfio_select, when it is not loaded; a missing module is no error. */
static void load_vfio_select(const char *root)
{
	char *argv[] = {(char *)"modprobe", (char *)"-q", (char *)"vfio_select", NULL};
	_cleanup_free_ char *p = NULL;
	pid_t pid;
	int status;

	if (!streq(root, "/sys") || access("/sys/module/vfio_select", F_OK) == 0)
		return;
	if (posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ) != 0) {
		log_warning("cannot run modprobe for vfio_select, ignoring");
		return;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_notice("vfio_select is not installed (or did not load): a claimed device "
			   "added while its host driver is loaded is bound to it first");
	else
		log_info("vfio_select loaded: it holds claimed devices as they are added");
}

/* What claims_modprobe_conf() gathers, a claimed function present at a time. */
struct modprobe_conf {
	struct vfiod_ctx *ctx;
	FILE *f;
	char **softdeps; /* the host modules given a softdep so far */
	size_t n_softdeps;
};

static bool softdep_has(const struct modprobe_conf *mc, const char *module)
{
	for (size_t i = 0; i < mc->n_softdeps; i++)
		if (streq(mc->softdeps[i], module))
			return true;
	return false;
}

/* A module name, nothing that is modprobe or shell syntax. */
static bool module_name_ok(const char *s)
{
	return s && *s &&
	       s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")] ==
		       '\0';
}

/*
 * NAME's lines: a comment naming it, its host driver modules and the vfio
 * module it would get (the initramfs hooks read the last), and a softdep
 * for each host module that is a module and has none yet.  The modules are
 * libvfiod's own answers (vfiod_show(): "host_modules", "would_get"), as
 * vfioctl show prints them.
 */
static int conf_one(int dirfd, const char *name, const struct claim *c, void *userdata)
{
	struct modprobe_conf *mc = userdata;
	_cleanup_(json_decrefp) json_t *o = NULL;
	_cleanup_free_ char *json = NULL;
	json_t *hosts, *e;
	const char *vfio;
	char text[32];
	size_t i;
	int r;

	(void)dirfd;
	claim_format(c, text, sizeof(text));
	r = vfiod_show(mc->ctx, name, &json);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || !(o = json_loads(json, 0, NULL))) {
		log_warning("%s: claimed by %s, but its driver modules cannot be read: %s", name,
			    text, r < 0 ? vfiod_ctx_get_error(mc->ctx) ?: strerror(-r) : "no JSON");
		fprintf(mc->f, "# %s claimed by %s: its modules cannot be read\n", name, text);
		return 0;
	}
	hosts = json_object_get(o, "host_modules");
	vfio = json_string_value(json_object_get(json_object_get(o, "would_get"), "module"));
	fprintf(mc->f, "# %s claimed by %s: host modules:", name, text);
	json_array_foreach(hosts, i, e)
	{
		const char *m = json_string_value(json_object_get(e, "module"));
		const char *state = json_string_value(json_object_get(e, "state"));
		bool seen = false;

		/* A module whose aliases match twice (by IDs and by class) is listed twice. */
		for (size_t j = 0; j < i && !seen; j++)
			seen = str_eq(m, json_string_value(json_object_get(json_array_get(hosts, j),
									   "module")));
		if (module_name_ok(m) && !seen)
			fprintf(mc->f, " %s%s", m, str_eq(state, "built in") ? " (built in)" : "");
	}
	fprintf(mc->f, "%s; vfio module: %s\n", json_array_size(hosts) ? "" : " none",
		module_name_ok(vfio) ? vfio : "none");
	json_array_foreach(hosts, i, e)
	{
		const char *m = json_string_value(json_object_get(e, "module"));
		char **v;

		/* A built-in driver binds before any module loads: no softdep helps. */
		if (!module_name_ok(m) ||
		    str_eq(json_string_value(json_object_get(e, "state")), "built in") ||
		    softdep_has(mc, m))
			continue;
		v = reallocarray(mc->softdeps, mc->n_softdeps + 1, sizeof(char *));
		if (!v)
			return -ENOMEM;
		mc->softdeps = v;
		if (!(v[mc->n_softdeps] = strdup(m)))
			return -ENOMEM;
		mc->n_softdeps++;
		fprintf(mc->f, "softdep %s pre: vfio_select\n", m);
	}
	return 0;
}

/* conf_one() for each claimed function present, into F; what fails is logged. */
static int claimed_lines(const struct config *cfg, struct vfiod_ctx *ctx, FILE *f)
{
	struct modprobe_conf mc = {.ctx = ctx, .f = f};
	int r;

	/* No PCI functions to read (logged): vfio_select's options still hold later ones. */
	r = for_each_claimed(cfg->claims, cfg->n_claims, vfiod_ctx_get_sysfs_root(ctx), conf_one,
			     &mc);
	for (size_t i = 0; i < mc.n_softdeps; i++)
		free(mc.softdeps[i]);
	free(mc.softdeps);
	return r == -ENOMEM ? r : 0;
}

/*
 * claimed_lines() in a child process, its text appended to F.  It reads
 * each claimed device in full through libvfiod; should that die (libpci has
 * been seen to, on an ID pci.ids lacks), the boot's claims must not die with
 * it: the options are kept, without the softdeps.
 */
static int claimed_lines_apart(const struct config *cfg, struct vfiod_ctx *ctx, FILE *f)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_fclose_ FILE *in = NULL;
	size_t size = 0, n;
	char buf[4096];
	FILE *out;
	int p[2], status;
	pid_t pid;

	fflush(NULL);
	if (pipe2(p, O_CLOEXEC) < 0)
		return negative_errno();
	pid = fork();
	if (pid < 0) {
		int r = negative_errno();

		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		close(p[0]);
		out = fdopen(p[1], "w");
		_exit(!out || claimed_lines(cfg, ctx, out) < 0 || fclose(out) != 0);
	}
	close(p[1]);
	in = fdopen(p[0], "r");
	out = open_memstream(&text, &size);
	if (!in || !out) {
		if (!in)
			close(p[0]);
		if (out)
			fclose(out);
		(void)waitpid(pid, NULL, 0);
		return -ENOMEM;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	if (fclose(out) != 0)
		return -ENOMEM;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_warning("claims: the look at the claimed devices' driver modules failed (%s "
			    "%d): no softdep for them, vfio_select's options only",
			    WIFSIGNALED(status) ? "signal" : "status",
			    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		return 0;
	}
	fputs(text, f);
	return 0;
}

/*
 * The modprobe configuration of CFG's claims, as --apply-claims writes it
 * and --claims-modprobe-conf prints it: vfio_select's options, then each
 * claimed PCI function present (conf_one()).  "" with no claims.
 */
static int claims_modprobe_conf(const struct config *cfg, struct vfiod_ctx *ctx, char **ret)
{
	_cleanup_free_ char *table = NULL, *text = NULL;
	size_t size = 0;
	FILE *f;
	int r;

	if (!cfg->n_claims) {
		*ret = strdup("");
		return *ret ? 0 : -ENOMEM;
	}
	table = claims_format(cfg->claims, cfg->n_claims);
	f = open_memstream(&text, &size);
	if (!table || !f) {
		if (f)
			fclose(f);
		return -ENOMEM;
	}
	fprintf(f,
		"# Made by vfiod from Claim= in vfiod.conf (vfiod --apply-claims at boot,\n"
		"# vfiod --claims-modprobe-conf for the initramfs); see vfiod.conf(5) and\n"
		"# vfio_select(4).  Each claimed PCI function present: its host driver\n"
		"# modules, each loading vfio_select first, and the vfio module it would get.\n"
		"options vfio_select claim=%s\n",
		table);
	r = claimed_lines_apart(cfg, ctx, f);
	if (fclose(f) != 0)
		r = -ENOMEM;
	if (r < 0)
		return r;
	*ret = TAKE_PTR(text);
	return 0;
}

/* The claims' configuration, the context to read devices with; logged. */
static int claims_load(struct config *cfg, struct vfiod_ctx **ctx)
{
	int r = config_load(cfg);

	if (r >= 0)
		r = vfiod_ctx_new(ctx);
	if (r < 0) {
		config_done(cfg);
		return log_error_errno(r, "cannot start: %m");
	}
	return 0;
}

int claims_print_modprobe_conf(void)
{
	_cleanup_free_ char *text = NULL;
	struct vfiod_ctx *ctx = NULL;
	struct config cfg = {};
	int r;

	r = claims_load(&cfg, &ctx);
	if (r < 0)
		return r;
	r = claims_modprobe_conf(&cfg, ctx, &text);
	if (r < 0)
		log_error_errno(r, "cannot make the claims' modprobe configuration: %m");
	else if (fputs(text, stdout) == EOF || fflush(stdout) != 0)
		r = log_error_errno(negative_errno(), "cannot write to standard output: %m");
	vfiod_ctx_unref(ctx);
	config_done(&cfg);
	return r;
}

int claims_apply_early(void)
{
	_cleanup_free_ char *dir = dir_from_env(VFIOD_ENV_MODPROBE_DIR, VFIOD_DEFAULT_MODPROBE_DIR);
	_cleanup_free_ char *table = NULL, *text = NULL;
	struct vfiod_ctx *ctx = NULL;
	struct config cfg = {};
	int r, n;

	if (!dir)
		return log_error_errno(-ENOMEM, "cannot start: %m");
	r = claims_load(&cfg, &ctx);
	if (r < 0)
		return r;
	if (!cfg.n_claims) {
		r = remove_file_durable(dir, MODPROBE_FILE);
		goto out;
	}
	table = claims_format(cfg.claims, cfg.n_claims);
	r = table ? claims_modprobe_conf(&cfg, ctx, &text) : -ENOMEM;
	if (r < 0) {
		log_error_errno(r, "cannot make the claims' modprobe configuration: %m");
		goto out;
	}
	r = write_file_atomic(dir, MODPROBE_FILE, text);
	if (r < 0) {
		log_error_errno(r, "cannot write %s/%s: %m", dir, MODPROBE_FILE);
		goto out;
	}
	n = 0;
	r = for_each_claimed(cfg.claims, cfg.n_claims, vfiod_ctx_get_sysfs_root(ctx), hold_one, &n);
	load_vfio_select(vfiod_ctx_get_sysfs_root(ctx));
	log_info("claims: %s; %d present held from host drivers", table, n);
	r = r < 0 ? r : 0;
out:
	vfiod_ctx_unref(ctx);
	config_done(&cfg);
	return r;
}

/* What the start-up task of the claims reads, in its thread, for the event loop. */
struct claims_scan {
	struct claim *v; /* a copy: a thread that timed out may outlive the manager */
	size_t n_claims;
	char *root;
	const char *trigger;
	bool push;
	char *table;
	int push_r;	       /* the parameter's write: 0, -ENOENT (absent), or why not */
	bool module_present;   /* /sys/module/vfio_select exists */
	char **paths, **names, **claims; /* the claimed PCI functions present */
	size_t n;
};

static void claims_scan_free(struct claims_scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->paths[i]);
		free(s->names[i]);
		free(s->claims[i]);
	}
	free(s->paths);
	free(s->names);
	free(s->claims);
	free(s->table);
	free(s->root);
	free(s->v);
	free(s);
}

static int collect_one(int dirfd, const char *name, const struct claim *c, void *userdata)
{
	struct claims_scan *s = userdata;
	_cleanup_free_ char *real = NULL;
	char text[32], *rel;
	size_t n = s->n + 1;

	(void)dirfd;
	if (asprintf(&rel, "%s/bus/pci/devices/%s", s->root, name) < 0)
		return -ENOMEM;
	real = realpath(rel, NULL);
	free(rel);
	if (!real)
		return 0; /* gone meanwhile */
	if (!(s->paths = reallocarray(s->paths, n, sizeof(char *))) ||
	    !(s->names = reallocarray(s->names, n, sizeof(char *))) ||
	    !(s->claims = reallocarray(s->claims, n, sizeof(char *))))
		return -ENOMEM;
	claim_format(c, text, sizeof(text));
	s->paths[s->n] = real;
	s->names[s->n] = strdup(name);
	s->claims[s->n] = strdup(text);
	real = NULL;
	s->n = n;
	return s->names[n - 1] && s->claims[n - 1] ? 0 : -ENOMEM;
}

/*
 * In the task's thread: vfio_select gets the table (vfiod owns it: without
 * Claim= it is emptied), and the claimed functions present are found.  A
 * module parameter's store takes no device lock; the attribute reads may
 * meet one held, which is why this is not on the event loop.
 */
static void claims_scan_work(struct task *t)
{
	struct claims_scan *s = t->userdata;
	_cleanup_free_ char *param = NULL, *module = NULL;

	if (s->push && asprintf(&param, "%s/%s", s->root, VFIOD_CLAIM_PARAMETER) >= 0 &&
	    asprintf(&module, "%s/module/vfio_select", s->root) >= 0) {
		int fd = open(param, O_WRONLY | O_CLOEXEC | O_NOCTTY);

		s->module_present = access(module, F_OK) == 0;
		if (fd < 0 || write(fd, s->table[0] ? s->table : "\n",
				    s->table[0] ? strlen(s->table) : 1) < 0)
			s->push_r = negative_errno();
		if (fd >= 0)
			close(fd);
	}
	(void)for_each_claimed(s->v, s->n_claims, s->root, collect_one, s);
}

static void claims_scan_end(struct task *t, enum task_end how)
{
	struct claims_scan *s = t->userdata;
	struct manager *m = t->m;

	if (how == TASK_TIMED_OUT) {
		log_warning("claims: the look at the devices Claim= names has not returned (a "
			    "device's lock is held?); they are assigned when udev next reports "
			    "them");
		return; /* the thread still has S */
	}
	if (how == TASK_DONE && s->push && m->cfg.n_claims) {
		if (s->push_r == -ENOENT)
			log_notice("claims: %s; vfio_select is %s, so a claimed device that "
				   "appears while its host driver is loaded is bound to it first, "
				   "and vfiod takes it from there",
				   s->table,
				   s->module_present ? "loaded but has no claim table (an older "
						       "version)"
						     : "not loaded");
		else if (s->push_r < 0)
			log_warning_errno(s->push_r, "claims: cannot give %s to vfio_select: %m",
					  s->table);
		else
			log_info("claims: %s, held by vfio_select from host drivers as they "
				 "appear",
				 s->table);
	}
	for (size_t i = 0; how == TASK_DONE && i < s->n; i++)
		udev_claimed_present(m, s->paths[i], s->names[i], s->claims[i], s->trigger);
	claims_scan_free(s);
}

int claims_scan(struct manager *m, const char *trigger, bool push)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct claims_scan *s;
	int r;

	if (!m->cfg.n_claims && !push)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct claims_scan){.n_claims = m->cfg.n_claims, .trigger = trigger, .push = push};
	s->v = calloc(s->n_claims + 1, sizeof(*s->v));
	if (s->v && s->n_claims)
		memcpy(s->v, m->cfg.claims, s->n_claims * sizeof(*s->v));
	s->root = strdup(m->sysfs_root);
	s->table = claims_format(m->cfg.claims, m->cfg.n_claims);
	if (!s->v || !s->root || !s->table) {
		claims_scan_free(s);
		return -ENOMEM;
	}
	r = task_start(m, "the devices Claim= names", claims_scan_work, claims_scan_end, s,
		       &error);
	if (r < 0) {
		log_warning("claims: cannot look at the devices Claim= names: %s",
			    error.message ?: strerror(-r));
		claims_scan_free(s);
	}
	return r;
}
