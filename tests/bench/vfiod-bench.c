/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Figures, not a test: driver resolution and the user-space cost of match
 * and list, on a fixture sysfs tree (VFIOD_SYSFS_ROOT, see mkfixture.py).
 *
 *   vfiod-bench resolve [--rounds N] [--cold N] [--vfioctl PATH] MODULES_DIR...
 *       For each module directory (one holding modules.alias): our resolver
 *       warm (one context, vfiod_device_new + vfiod_device_match per call,
 *       as vfiod runs it), cold (one `vfioctl --direct match` process per
 *       call) and libvirt's rule (libvirt-rule.h), interleaved, on every
 *       function of the tree; medians per resolution and the ratios; then
 *       the answer of each for each device kind, and whether they agree.
 *
 *   vfiod-bench records
 *       Leave the tree as a successful assign of every function would: the
 *       function on vfio-pci, vfiod's record written by libvfiod's own
 *       record_save() under $RUNTIME_DIRECTORY.
 *
 *   vfiod-bench bulk [--rounds N] [--vfioctl PATH]
 *       Per function, the cost of match (warm, all functions through one
 *       context) and of list (vfiod_list in-process on a fresh context, and
 *       `vfioctl --direct -j list` as a process), medians of N rounds.
 *
 *   vfiod-bench inuse [-r ROUNDS] DEVICE
 *       On the real /sys: an assign's second look at the host's uses of
 *       DEVICE (a PCI address), walking the device again (inuse_refuse())
 *       against reusing the first look's nodes (inuse_refuse_again()),
 *       interleaved; medians in µs and the ratio.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "inuse.h"
#include "libvirt-rule.h"

static const char *vfioctl_path;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "vfiod-bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
	exit(1);
}

/* The PCI functions of the tree, sorted. */
static char **list_devices(const char *root, size_t *n)
{
	char path[4096];
	struct dirent **ents;
	char **names;
	int k;

	snprintf(path, sizeof(path), "%s/bus/pci/devices", root);
	k = scandir(path, &ents, NULL, alphasort);
	if (k < 0)
		die(path, -errno);
	names = calloc(k + 1, sizeof(*names));
	*n = 0;
	for (int i = 0; i < k; i++) {
		if (ents[i]->d_name[0] != '.')
			names[(*n)++] = strdup(ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	return names;
}

static char *ours(struct vfiod_ctx *ctx, const char *name, double *us);

/* The same with a context of its own, made and freed inside the timing. */
static char *ours_fresh(const char *name, double *us)
{
	struct vfiod_ctx *ctx = NULL;
	double t0 = now_us(), inner;
	char *mod;
	int r = vfiod_ctx_new(&ctx);

	if (r < 0)
		die("vfiod_ctx_new", r);
	mod = ours(ctx, name, &inner);
	vfiod_ctx_unref(ctx);
	*us = now_us() - t0;
	return mod;
}

/* Our answer: the selected module (NULL for none); the time in *US. */
static char *ours(struct vfiod_ctx *ctx, const char *name, double *us)
{
	struct vfiod_device *dev = NULL;
	struct vfiod_match *m = NULL;
	char *mod = NULL;
	double t0 = now_us();
	int r;

	r = vfiod_device_new(ctx, name, &dev);
	if (r >= 0)
		r = vfiod_device_match(dev, &m);
	if (r < 0) {
		fprintf(stderr, "vfiod-bench: match %s: %s\n", name,
			vfiod_ctx_get_error(ctx) ?: strerror(-r));
		exit(1);
	}
	if (vfiod_match_get_module(m))
		mod = strdup(vfiod_match_get_module(m));
	vfiod_match_unref(m);
	vfiod_device_unref(dev);
	*us = now_us() - t0;
	return mod;
}

static char *libvirt(const char *root, const char *alias_file, const char *name, double *us)
{
	char dir[4096], *mod;
	double t0 = now_us();
	int r;

	snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", root, name);
	r = libvirt_best_variant(dir, alias_file, &mod);
	if (r < 0)
		die(dir, r);
	*us = now_us() - t0;
	return mod;
}

/* Run ARGV with stdout to /dev/null; the wall time in *US. */
static void spawn(char *const argv[], double *us)
{
	double t0 = now_us();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	*us = now_us() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "vfiod-bench: %s %s failed (status %d)\n", argv[0], argv[1], status);
		exit(1);
	}
}

static int cmd_resolve(int argc, char **argv)
{
	const char *root = getenv(VFIOD_ENV_SYSFS_ROOT);
	int rounds = 20, cold = 10, c;
	bool only_warm = false, only_job = false;
	size_t n;
	char **names;

	while ((c = getopt(argc, argv, "r:c:x:wj")) != -1)
		switch (c) {
		case 'r': rounds = atoi(optarg); break;
		case 'c': cold = atoi(optarg); break;
		case 'x': vfioctl_path = optarg; break;
		case 'w': only_warm = true; break; /* for a profiler: our warm path alone */
		case 'j': only_job = true; break;  /* for a profiler: the per-job path alone */
		default: return 2;
		}
	if (!root || optind >= argc) {
		fprintf(stderr, "usage: VFIOD_SYSFS_ROOT=DIR vfiod-bench resolve [-r ROUNDS] "
				"[-c COLD_ROUNDS] [-x VFIOCTL] [-w] [LABEL=]MODULES_DIR...\n");
		return 2;
	}
	names = list_devices(root, &n);
	for (int d = optind; d < argc; d++) {
		const char *eq = strchr(argv[d], '='), *dir = eq ? eq + 1 : argv[d];
		int label_len = eq ? (int)(eq - argv[d]) : (int)strlen("modules.alias");
		size_t size = rounds * n + 1, nw = 0, nj = 0, nl = 0, nc = 0, n_alias = 0;
		double *tw = calloc(size, sizeof(double)), *tj = calloc(size, sizeof(double));
		double *tl = calloc(size, sizeof(double)), *tc = calloc(cold * n + 1, sizeof(double));
		struct vfiod_ctx *ctx = NULL;
		char alias_file[4096], line[512];
		FILE *f;
		int r;

		snprintf(alias_file, sizeof(alias_file), "%s/modules.alias", dir);
		f = fopen(alias_file, "re");
		if (!f)
			die(alias_file, -errno);
		while (fgets(line, sizeof(line), f))
			n_alias += strncmp(line, "alias ", 6) == 0;
		fclose(f);
		setenv(VFIOD_ENV_MODULES_DIR, dir, 1);
		r = vfiod_ctx_new(&ctx);
		if (r < 0)
			die("vfiod_ctx_new", r);

		/* The answers, once per device kind (this also warms the context up). */
		printf("# %s (%zu aliases)\n", dir, n_alias);
		for (size_t i = 0; i < n && i < 6; i++) {
			char devdir[4096], *modalias = NULL;
			double us;
			char *a = ours(ctx, names[i], &us), *b = libvirt(root, alias_file, names[i], &us);
			bool same = (a && b && streq(a, b)) || (!a && !b);
			int fd;

			snprintf(devdir, sizeof(devdir), "%s/bus/pci/devices/%s", root, names[i]);
			fd = open(devdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0) {
				(void)read_attr(fd, "modalias", &modalias);
				close(fd);
			}
			printf("#   %s %s: vfiod %s, libvirt's rule %s: %s\n", names[i],
			       modalias ? modalias : "?", a ?: "(none)", b ?: "(none)",
			       same ? "same" : "DIFFERENT");
			free(a);
			free(b);
			free(modalias);
		}
		/* Interleaved, device by device: warm, per job, libvirt; then the processes. */
		for (int k = 0; k < rounds; k++)
			for (size_t i = 0; i < n; i++) {
				if (!only_job)
					free(ours(ctx, names[i], &tw[nw++]));
				if (only_warm)
					continue;
				free(ours_fresh(names[i], &tj[nj++]));
				if (only_job)
					continue;
				free(libvirt(root, alias_file, names[i], &tl[nl++]));
			}
		if (vfioctl_path)
			for (int k = 0; k < cold; k++)
				for (size_t i = 0; i < n && i < 6; i++) {
					char *args[] = { (char *)vfioctl_path, "--direct", "match",
							 names[i], NULL };
					double us;

					spawn(args, &tc[nc++]);
					free(libvirt(root, alias_file, names[i], &us));
				}
		double w = median(tw, nw), j = median(tj, nj), l = median(tl, nl),
		       cm = median(tc, nc);

		if (d == optind)
			printf("%-18s %10s %10s %10s %10s %9s %9s %9s\n", "modules", "warm_us",
			       "per_job_us", "cold_us", "libvirt_us", "lv/warm", "lv/job", "lv/cold");
		printf("%-18.*s %10.1f %10.1f %10.0f %10.1f %8.1fx %8.2fx %8.3fx\n", label_len,
		       eq ? argv[d] : "modules.alias", w, j, cm, l, w ? l / w : 0,
		       j ? l / j : 0, cm ? l / cm : 0);
		vfiod_ctx_unref(ctx);
		free(tw);
		free(tj);
		free(tl);
		free(tc);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

static int cmd_records(void)
{
	const char *root = getenv(VFIOD_ENV_SYSFS_ROOT);
	struct vfiod_ctx *ctx = NULL;
	char **names;
	size_t n;
	int r;

	if (!root)
		die("VFIOD_SYSFS_ROOT is not set", EINVAL);
	r = vfiod_ctx_new(&ctx);
	if (r < 0)
		die("vfiod_ctx_new", r);
	names = list_devices(root, &n);
	for (size_t i = 0; i < n; i++) {
		struct vfiod_device *dev = NULL;
		struct record rec = { 0 };
		char link[4096];

		r = vfiod_device_new(ctx, names[i], &dev);
		if (r < 0)
			die(names[i], r);
		rec.syspath = dev->syspath;
		rec.name = dev->name;
		rec.driver = "vfio-pci";
		rec.module = "vfio_pci";
		rec.previous_driver = dev->driver;
		rec.resolver = "user space";
		/* What the driver core does on probe, in the fixture tree. */
		(void)unlinkat(dev->dirfd, "driver", 0);
		snprintf(link, sizeof(link), "%s/bus/pci/drivers/vfio-pci", ctx->sysfs_real);
		if (symlinkat(link, dev->dirfd, "driver") < 0)
			die("symlink", -errno);
		r = record_save(ctx, &rec);
		if (r < 0)
			die(vfiod_ctx_get_error(ctx), r);
		vfiod_device_unref(dev);
		free(names[i]);
	}
	free(names);
	vfiod_ctx_unref(ctx);
	return 0;
}

static int cmd_bulk(int argc, char **argv)
{
	const char *root = getenv(VFIOD_ENV_SYSFS_ROOT);
	int rounds = 5, c;
	size_t n;
	char **names;
	double *tm, *tl, *tp;
	struct vfiod_ctx *ctx = NULL;
	int r;

	while ((c = getopt(argc, argv, "r:x:")) != -1)
		switch (c) {
		case 'r': rounds = atoi(optarg); break;
		case 'x': vfioctl_path = optarg; break;
		default: return 2;
		}
	if (!root)
		die("VFIOD_SYSFS_ROOT is not set", EINVAL);
	names = list_devices(root, &n);
	tm = calloc(rounds, sizeof(double));
	tl = calloc(rounds, sizeof(double));
	tp = calloc(rounds, sizeof(double));
	r = vfiod_ctx_new(&ctx);
	if (r < 0)
		die("vfiod_ctx_new", r);
	free(ours(ctx, names[0], &tm[0])); /* load the aliases once, as vfiod would */
	for (int k = 0; k < rounds; k++) {
		struct vfiod_ctx *lctx = NULL;
		char *json = NULL;
		double t0 = now_us(), us;
		size_t items = 0;

		for (size_t i = 0; i < n; i++)
			free(ours(ctx, names[i], &us));
		tm[k] = (now_us() - t0) / n;

		t0 = now_us();
		r = vfiod_ctx_new(&lctx);
		if (r >= 0)
			r = vfiod_list(lctx, &json);
		if (r < 0)
			die("vfiod_list", r);
		tl[k] = (now_us() - t0) / n;
		for (const char *p = json; (p = strstr(p, "\"kind\"")); p++)
			items++;
		if (items != n) {
			fprintf(stderr, "vfiod-bench: list has %zu entries, the tree %zu functions "
					"(run vfiod-bench records first)\n", items, n);
			exit(1);
		}
		free(json);
		vfiod_ctx_unref(lctx);
		if (vfioctl_path) {
			char *args[] = { (char *)vfioctl_path, "--direct", "-j", "list", NULL };

			spawn(args, &tp[k]);
			tp[k] /= n;
		}
	}
	printf("%6zu %12.1f %12.1f %14.1f\n", n, median(tm, rounds), median(tl, rounds),
	       vfioctl_path ? median(tp, rounds) : 0.0);
	vfiod_ctx_unref(ctx);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(tm);
	free(tl);
	free(tp);
	return 0;
}

static int cmd_inuse(int argc, char **argv)
{
	struct inuse_nodes *keep = NULL;
	struct vfiod_device *dev = NULL;
	struct vfiod_ctx *ctx = NULL;
	int rounds = 50, c, r;
	double *tw, *tr;

	while ((c = getopt(argc, argv, "r:")) != -1)
		switch (c) {
		case 'r': rounds = atoi(optarg); break;
		default: return 2;
		}
	if (optind >= argc || rounds < 1) {
		fprintf(stderr, "usage: vfiod-bench inuse [-r ROUNDS] DEVICE\n");
		return 2;
	}
	r = vfiod_ctx_new(&ctx);
	if (r >= 0)
		r = vfiod_device_new(ctx, argv[optind], &dev);
	if (r >= 0)
		r = inuse_refuse_first(ctx, dev->realpath, dev->syspath, true, &keep);
	if (r < 0)
		die("first look", r);
	if (!keep)
		die("first look kept nothing (no uevent socket?)", EINVAL);
	tw = calloc(rounds, sizeof(double));
	tr = calloc(rounds, sizeof(double));
	for (int k = 0; k < rounds; k++) {
		double t0 = now_us();

		if (inuse_refuse(ctx, dev->realpath, dev->syspath, -1, INUSE_HOST, true) < 0)
			die("walk again", -EIO);
		tw[k] = now_us() - t0;
		t0 = now_us();
		if (inuse_refuse_again(ctx, keep, dev->realpath, dev->syspath, true) < 0)
			die("reuse", -EIO);
		tr[k] = now_us() - t0;
	}
	printf("second look at %s, median of %d: walk again %.1f us, reuse the first look's "
	       "nodes %.1f us, %.2fx\n",
	       dev->name, rounds, median(tw, rounds), median(tr, rounds),
	       median(tw, rounds) / median(tr, rounds));
	inuse_nodes_free(keep);
	vfiod_device_unref(dev);
	vfiod_ctx_unref(ctx);
	free(tw);
	free(tr);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: vfiod-bench resolve|records|bulk|inuse ...\n");
		return 2;
	}
	setenv(VFIOD_ENV_NO_KERNEL, "1", 1);
	if (streq(argv[1], "resolve"))
		return cmd_resolve(argc - 1, argv + 1);
	if (streq(argv[1], "records"))
		return cmd_records();
	if (streq(argv[1], "bulk"))
		return cmd_bulk(argc - 1, argv + 1);
	if (streq(argv[1], "inuse"))
		return cmd_inuse(argc - 1, argv + 1);
	fprintf(stderr, "vfiod-bench: unknown command '%s'\n", argv[1]);
	return 2;
}
