/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfioctl: hand devices to VFIO and back.
 *
 *   vfioctl [OPTIONS] VERB [ARGS]
 *
 * Exit status: 0 success, 1 the operation failed, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "bus.h"
#include "definitions.h"
#include "macro.h"
#include "monitor.h"
#include "options.h"
#include "print.h"
#include "progress.h"
#include "vfiod.h"

#define EXIT_USAGE 2

enum color_when {
	COLOR_AUTO, /* on a terminal, unless NO_COLOR says otherwise */
	COLOR_ALWAYS,
	COLOR_NEVER,
};

struct opts {
	enum print_mode mode;
	bool verbose;
	bool direct;
	enum vfiod_resolver resolver;
	enum color_when color;
};

struct verb {
	const char *name;
	const char *usage;
	const char *method;    /* org.vfiod1.Manager's */
	const char *arg;       /* "PATH" or "NAME"; NULL: the verb takes none */
	unsigned int options;  /* OPT_* words after the argument; 0: none */
	bool change;	       /* waits behind other work and for the kernel */
	int (*direct)(struct vfiod_ctx *ctx, const char *arg, json_t *opts, char **json,
		      struct defs_error *e);
	bool arg_optional; /* ARG may be left out */
	bool many;	   /* takes several ARGs, each done as if alone */
};

static int usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);
static int usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vfioctl: %s%s", verb ? verb : "", verb ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vfioctl help'.\n");
	return EXIT_USAGE;
}

/* VALUE's index in NAMES (ending with NULL), or -1. */
static int choice(const char *const *names, const char *value)
{
	for (int i = 0; names[i]; i++)
		if (streq(names[i], value))
			return i;
	return -1;
}

static int emit(const struct opts *o, const char *verb, const char *json)
{
	if (print_result(stdout, o->mode, verb, json) < 0) {
		fprintf(stderr, "vfioctl: %s: unexpected reply: %s\n", verb, json);
		return EXIT_FAILURE;
	}
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static char *options_text(json_t *opts)
{
	return opts ? json_dumps(opts, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

static int direct_match(struct vfiod_ctx *ctx, const char *path, json_t *opts, char **json,
			_unused_ struct defs_error *e)
{
	struct vfiod_device *dev = NULL;
	struct vfiod_match *m = NULL;
	int r;

	(void)opts;
	r = vfiod_device_new(ctx, path, &dev);
	if (r >= 0)
		r = vfiod_device_match(dev, &m);
	if (r >= 0)
		r = vfiod_match_to_json(m, json);
	vfiod_match_unref(m);
	vfiod_device_unref(dev);
	return r;
}

static int direct_create(struct vfiod_ctx *ctx, const char *path, json_t *opts, char **json,
			_unused_ struct defs_error *e)
{
	_cleanup_free_ char *text = options_text(opts);

	return vfiod_create(ctx, path, text, json);
}

static int direct_destroy(struct vfiod_ctx *ctx, const char *path, json_t *opts, char **json,
			_unused_ struct defs_error *e)
{
	_cleanup_free_ char *text = options_text(opts);

	return vfiod_destroy(ctx, path, text, json);
}

static void warn_definition(const char *file, const char *why)
{
	fprintf(stderr, "vfioctl: %s: not a definition (%s), ignoring it\n", file, why);
}

static int direct_list(struct vfiod_ctx *ctx, const char *arg, json_t *opts, char **json,
			_unused_ struct defs_error *e)
{
	_cleanup_free_ char *dir = definitions_dir(), *active = NULL;
	json_t *a, *defs;
	int r;

	(void)arg, (void)opts;
	r = vfiod_list(ctx, &active);
	if (r < 0)
		return r;
	a = json_loads(active, 0, NULL);
	defs = dir ? definitions_list(dir, warn_definition) : NULL;
	if (!a || !defs) {
		json_decref(a);
		json_decref(defs);
		return -ENOMEM;
	}
	definitions_merge(a, defs);
	json_decref(defs);
	*json = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(a);
	return *json ? 0 : -ENOMEM;
}

static int direct_show(struct vfiod_ctx *ctx, const char *path, json_t *opts, char **json,
		       _unused_ struct defs_error *e)
{
	(void)opts;
	return vfiod_show(ctx, path, json);
}

static int direct_groups(struct vfiod_ctx *ctx, const char *which, json_t *opts, char **json,
			 _unused_ struct defs_error *e)
{
	(void)opts;
	return vfiod_groups(ctx, which, json);
}

static int direct_types(struct vfiod_ctx *ctx, const char *path, json_t *opts, char **json,
			_unused_ struct defs_error *e)
{
	(void)opts;
	return vfiod_mdev_types(ctx, path, json);
}

static int direct_mgmtdev(struct vfiod_ctx *ctx, const char *arg, json_t *opts, char **json,
			_unused_ struct defs_error *e)
{
	(void)arg, (void)opts;
	return vfiod_vdpa_mgmtdevs(ctx, json);
}

/*
 * Definitions with --direct: vfioctl reads and writes vfiod's directory
 * itself, through the same service (definitions.h) as vfiod.
 */
static int def_dir(char **dir)
{
	*dir = definitions_dir();
	return *dir ? 0 : -ENOMEM;
}

static int def_reply(json_t *def, int r, char **json)
{
	if (r >= 0) {
		*json = json_dumps(def, JSON_COMPACT | JSON_PRESERVE_ORDER);
		r = *json ? 0 : -ENOMEM;
	}
	json_decref(def);
	return r;
}

static int direct_define(struct vfiod_ctx *ctx, const char *path, json_t *opts, char **json,
			 struct defs_error *e)
{
	_cleanup_free_ char *dir = NULL;
	json_t *def = NULL;
	int r;

	r = def_dir(&dir);
	if (r >= 0)
		r = definitions_make(ctx, path, opts, &def, e);
	if (r >= 0)
		r = definitions_put(dir, def, false, e);
	return def_reply(def, r, json);
}

static int direct_undefine(struct vfiod_ctx *ctx, const char *name, json_t *opts, char **json,
			   struct defs_error *e)
{
	_cleanup_free_ char *dir = NULL;
	json_t *def = NULL;
	int r;

	(void)ctx, (void)opts;
	r = def_dir(&dir);
	if (r >= 0)
		r = definitions_undefine(dir, name, &def, e);
	return def_reply(def, r, json);
}

static int direct_modify(struct vfiod_ctx *ctx, const char *name, json_t *opts, char **json,
			 struct defs_error *e)
{
	_cleanup_free_ char *dir = NULL;
	json_t *def = NULL, *changed = NULL;
	int r;

	r = def_dir(&dir);
	if (r >= 0)
		r = definitions_get(dir, name, &def, e);
	if (r >= 0)
		r = definitions_modify(ctx, def, opts, &changed, e);
	if (r >= 0)
		r = definitions_put(dir, changed, true, e);
	json_decref(def);
	return def_reply(changed, r, json);
}

static int start_stop(struct vfiod_ctx *ctx, const char *name, bool start, char **json,
		      struct defs_error *e)
{
	_cleanup_free_ char *dir = NULL, *text = NULL;
	json_t *def = NULL;
	const char *path;
	int r;

	r = def_dir(&dir);
	if (r >= 0)
		r = definitions_get(dir, name, &def, e);
	if (r >= 0)
		r = definitions_call(def, start, &path, &text);
	if (r >= 0)
		r = start ? vfiod_create(ctx, path, text, json) : vfiod_destroy(ctx, path, text, json);
	json_decref(def);
	return r;
}

static int direct_start(struct vfiod_ctx *ctx, const char *name, json_t *opts, char **json,
			struct defs_error *e)
{
	(void)opts;
	return start_stop(ctx, name, true, json, e);
}

static int direct_stop(struct vfiod_ctx *ctx, const char *name, json_t *opts, char **json,
		       struct defs_error *e)
{
	(void)opts;
	return start_stop(ctx, name, false, json, e);
}

static const struct verb verbs[] = {
	{ "match", "match PATH", "Match", "PATH", 0, false, direct_match, false, false },
	{ "create", "create PATH [OPTION...]", "Create", "PATH", OPT_CREATE, true, direct_create,
	  false, false },
	{ "destroy", "destroy PATH|NAME [force] [vfs|sf N]", "Destroy", "PATH", OPT_DESTROY, true,
	  direct_destroy, false, false },
	{ "list", "list", "List", NULL, 0, false, direct_list, false, false },
	{ "show", "show PATH|NAME", "Show", "PATH", 0, false, direct_show, false, false },
	{ "groups", "groups [GROUP|PATH]", "Groups", "PATH", 0, false, direct_groups,
	  .arg_optional = true },
	{ "types", "types PATH", "MdevTypes", "PATH", 0, false, direct_types, false, false },
	{ "mgmtdev", "mgmtdev", "VdpaManagementDevices", NULL, 0, false, direct_mgmtdev, false, false },
	{ "define", "define PATH [OPTION...]", "Define", "PATH", OPT_DEFINE, false, direct_define,
	  false, false },
	{ "undefine", "undefine NAME", "Undefine", "NAME", 0, false, direct_undefine, false, false },
	{ "modify", "modify NAME [OPTION...]", "Modify", "NAME", OPT_DEFINE, false, direct_modify,
	  false, false },
	{ "start", "start NAME...", "Start", "NAME", 0, true, direct_start, false, .many = true },
	{ "stop", "stop NAME...", "Stop", "NAME", 0, true, direct_stop, false, .many = true },
	/* vfiod's Event signal; no direct form (monitor.c). */
	{ "monitor", "monitor", "Event", NULL, 0, false, NULL, false, false },
	{ "help", "help", NULL, NULL, 0, false, NULL, false, false },
};

/* --direct: libvfiod's progress on the line, as vfiod's signals are shown. */
static void on_progress(void *userdata, _unused_ const char *operation, const char *device,
			unsigned int done, unsigned int total)
{
	progress_show(userdata, device, done, total);
}

/* What a direct call said when it failed: the call's own words, else libvfiod's. */
static void direct_failed(struct vfiod_ctx *ctx, const struct verb *v, const char *arg, int r,
			  const struct defs_error *e)
{
	const char *msg = e->message[0] ? e->message : vfiod_ctx_get_error(ctx);

	if (msg)
		fprintf(stderr, "vfioctl: %s: %s\n", v->name, msg);
	else
		fprintf(stderr, "vfioctl: %s %s: %s\n", v->name, arg ? arg : "", strerror(-r));
}

/*
 * Several NAMEs: through vfiod all asked at once (it runs those on different
 * hardware side by side), directly one after the other; a progress line as
 * they end, the results together, every failure said, exit 1 if one failed.
 */
static int run_many(struct vfiod_ctx *ctx, const struct opts *o, const struct verb *v, int n,
		    char **names)
{
	_cleanup_free_ char *text = NULL;
	json_t *all = json_array();
	int failed = 0, rc;

	if (!all)
		return EXIT_FAILURE;
	if (!o->direct) {
		failed = bus_call_each(v->name, v->method, names, (size_t)n, all);
	} else {
		progress_show(v->name, NULL, 0, (unsigned int)n);
		for (int i = 0; i < n; i++) {
			_cleanup_free_ char *json = NULL;
			struct defs_error e = {};
			int r = v->direct(ctx, names[i], NULL, &json, &e);
			json_t *res;

			if (r < 0) {
				progress_clear();
				direct_failed(ctx, v, names[i], r, &e);
				failed++;
			} else if ((res = json_loads(json, 0, NULL))) {
				json_array_append_new(all, res);
			}
			progress_show(v->name, names[i], (unsigned int)i + 1, (unsigned int)n);
		}
		progress_clear();
	}
	if (failed < 0) {
		json_decref(all);
		return EXIT_FAILURE;
	}
	text = json_array_size(all) ? json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(all);
	rc = text ? emit(o, v->name, text) : EXIT_SUCCESS;
	return failed ? EXIT_FAILURE : rc;
}

static int run_verb(struct vfiod_ctx *ctx, const struct opts *o, const struct verb *v, int argc,
		    char **argv)
{
	_cleanup_free_ char *json = NULL;
	struct defs_error e = {};
	const char *arg;
	json_t *opts = NULL;
	char err[768];
	int r;

	/* The verb's argument, or NULL when it takes none or one left out. */
	arg = v->arg && argc >= 2 ? argv[1] : NULL;
	if (v->arg && !arg && !v->arg_optional)
		return usage_error(v->name, "missing %s",
				   streq(v->arg, "PATH") ? "device path" : "definition name");
	if (v->many && argc > 2)
		return run_many(ctx, o, v, argc - 1, argv + 1);
	if (!v->options && argc > (v->arg ? 2 : 1))
		return usage_error(v->name, "unexpected argument '%s'", argv[v->arg ? 2 : 1]);
	if (v->options) {
		opts = json_object();
		if (!opts)
			return EXIT_FAILURE;
		r = options_from_words(v->options, argc - 2, argv + 2, opts, err, sizeof(err));
		if (r < 0) {
			json_decref(opts);
			return usage_error(v->name, "%s", err);
		}
	}
	if (o->direct && json_object_get(opts, "persistent")) {
		json_decref(opts);
		return usage_error(v->name, "'persistent' needs vfiod, which keeps the definition; "
					    "drop --direct, or use 'define' and 'start'");
	}
	if (!o->direct) {
		/* A method with an argument takes it always: "" for one left out. */
		r = bus_call(v->name, v->method, v->arg ? (arg ? arg : "") : NULL, opts, v->change,
			     &json);
		json_decref(opts);
		return r < 0 ? EXIT_FAILURE : emit(o, v->name, json);
	}
	vfiod_ctx_set_progress_fn(ctx, on_progress, (void *)(arg ? arg : v->name));
	r = v->direct(ctx, arg, opts, &json, &e);
	progress_clear();
	json_decref(opts);
	if (r < 0) {
		direct_failed(ctx, v, arg, r, &e);
		return EXIT_FAILURE;
	}
	return emit(o, v->name, json);
}

static void help(FILE *f)
{
	fprintf(f, "Usage: vfioctl [OPTIONS] VERB [ARGS]\n\n"
		   "Hand devices to VFIO and give them back.\n\nVerbs:\n");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		fprintf(f, "  %s\n", verbs[i].usage);
	fprintf(f, "\nPATH: /sys/devices/..., /sys/bus/*/devices/NAME, a PCI address, an mdev UUID,\n"
		   "a vdpa device or management device name.\n\n"
		   "Create and define options (the kind follows from them):\n");
	for (size_t i = 0; i < n_option_defs; i++)
		if (option_defs[i].methods & OPT_CREATE) {
			char w[64];

			snprintf(w, sizeof(w), "%s%s%s", option_defs[i].word,
				 option_defs[i].arg ? " " : "",
				 option_defs[i].arg ? option_defs[i].arg : "");
			fprintf(f, "  %-20s %s\n", w, option_defs[i].kinds);
		}
	fprintf(f, "\nOptions:\n"
		   "  -j, --json       print JSON\n"
		   "  -p, --pretty     print indented JSON\n"
		   "  -c, --color[=auto|always|never]\n"
		   "                   colour the text (-c, --color: always; default auto:\n"
		   "                   on a terminal, unless NO_COLOR is set)\n"
		   "      --direct     act in this process through libvfiod\n"
		   "      --resolver=auto|user|kernel\n"
		   "                   who decides and binds (default auto: the vfio_select\n"
		   "                   kernel module when loaded)\n"
		   "  -v, --verbose    log each step to stderr\n"
		   "  -V, --version    print the version\n"
		   "  -h, --help       print this help\n\n"
		   "See vfioctl(8).\n");
}

/*
 * Colour as iproute2 gives it, and as no-color.org asks: never in JSON;
 * asked for, always; else only on a terminal, and not when NO_COLOR is set
 * to anything but "".
 */
static bool use_color(enum color_when when, enum print_mode mode)
{
	const char *no = getenv("NO_COLOR");

	if (mode != PRINT_TEXT || when == COLOR_NEVER)
		return false;
	if (when == COLOR_ALWAYS)
		return true;
	if (no && *no)
		return false;
	return isatty(STDOUT_FILENO) == 1;
}

static void log_stderr(_unused_ void *userdata, _unused_ int priority, const char *format,
		       va_list ap)
{
	fprintf(stderr, "vfioctl: ");
	vfprintf(stderr, format, ap);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "color", optional_argument, NULL, 'c' },
		{ "direct", no_argument, NULL, 'D' },
		{ "resolver", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct opts o = { .mode = PRINT_TEXT };
	struct vfiod_ctx *ctx = NULL;
	const struct verb *verb = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "+jpcvVh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'j':
			if (o.mode == PRINT_TEXT)
				o.mode = PRINT_JSON;
			break;
		case 'p':
			o.mode = PRINT_JSON_PRETTY;
			break;
		case 'c': {
			static const char *const when[] = { [COLOR_AUTO] = "auto",
							    [COLOR_ALWAYS] = "always",
							    [COLOR_NEVER] = "never", NULL };
			int i = optarg ? choice(when, optarg) : COLOR_ALWAYS;

			if (i < 0)
				return usage_error(NULL, "--color: unknown value '%s' (auto, always or "
							 "never)", optarg);
			o.color = (enum color_when)i;
			break;
		}
		case 'D':
			o.direct = true;
			break;
		case 'R': {
			static const char *const resolvers[] = { [VFIOD_RESOLVER_AUTO] = "auto",
								 [VFIOD_RESOLVER_USER] = "user",
								 [VFIOD_RESOLVER_KERNEL] = "kernel",
								 NULL };
			int i = choice(resolvers, optarg);

			if (i < 0)
				return usage_error(NULL, "--resolver: unknown value '%s' (auto, user "
							 "or kernel)", optarg);
			o.resolver = (enum vfiod_resolver)i;
			break;
		}
		case 'v':
			o.verbose = true;
			break;
		case 'V':
			printf("vfioctl %s\n", vfiod_version());
			return EXIT_SUCCESS;
		case 'h':
			help(stdout);
			return EXIT_SUCCESS;
		default:
			return EXIT_USAGE; /* getopt named the option */
		}
	}
	print_set_color(use_color(o.color, o.mode));
	/* Like colour, a terminal's alone: never in a pipe, a file, or JSON. */
	if (o.mode == PRINT_TEXT && isatty(STDOUT_FILENO) == 1)
		progress_enable(stdout);
	if (optind >= argc)
		return usage_error(NULL, "missing verb (create, destroy, list, match, ...: see 'vfioctl help')");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (streq(argv[optind], verbs[i].name))
			verb = &verbs[i];
	if (!verb)
		return usage_error(NULL, "unknown verb '%s'", argv[optind]);
	if (!verb->method) {
		help(stdout);
		return EXIT_SUCCESS;
	}
	if (!verb->direct) {
		/* monitor: what vfiod does as it happens; without vfiod nothing happens. */
		if (o.direct)
			return usage_error(verb->name, "needs vfiod, whose events it shows; "
						       "--direct acts in this process and has none");
		if (argc - optind > 1)
			return usage_error(verb->name, "unexpected argument '%s'", argv[optind + 1]);
		return monitor_run(o.mode);
	}
	if (!o.direct) {
		/* vfiod decides and binds: only --direct has a context of its own. */
		if (o.resolver != VFIOD_RESOLVER_AUTO)
			return usage_error(NULL, "--resolver needs --direct (vfiod chooses itself)");
		return run_verb(NULL, &o, verb, argc - optind, argv + optind);
	}

	r = vfiod_ctx_new(&ctx);
	if (r < 0) {
		const char *root = getenv("VFIOD_SYSFS_ROOT");

		fprintf(stderr, "vfioctl: cannot start: %s%s%s\n", strerror(-r),
			root ? "; check VFIOD_SYSFS_ROOT=" : "", root ? root : "");
		return EXIT_FAILURE;
	}
	if (o.verbose) {
		vfiod_ctx_set_log_fn(ctx, log_stderr, NULL);
		vfiod_ctx_set_log_priority(ctx, LOG_DEBUG);
	}
	if (o.resolver != VFIOD_RESOLVER_AUTO)
		vfiod_ctx_set_resolver(ctx, o.resolver);
	r = run_verb(ctx, &o, verb, argc - optind, argv + optind);
	vfiod_ctx_unref(ctx);
	return r;
}
