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

#include "bus.h"
#include "macro.h"
#include "print.h"
#include "vfiod.h"

#define EXIT_USAGE 2

struct opts {
	enum print_mode mode;
	bool verbose;
	bool direct;
	enum vfiod_resolver resolver;
};

struct verb {
	const char *name;
	const char *usage;
	int (*run)(struct vfiod_ctx *ctx, const struct opts *o, int argc, char **argv);
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

/* Log once, where the error is handled, naming the device. */
static int fail(struct vfiod_ctx *ctx, const char *verb, const char *what, int r)
{
	const char *msg = vfiod_ctx_get_error(ctx);

	if (msg)
		fprintf(stderr, "vfioctl: %s: %s\n", verb, msg);
	else
		fprintf(stderr, "vfioctl: %s %s: %s\n", verb, what ? what : "", strerror(-r));
	return EXIT_FAILURE;
}

static int emit(const struct opts *o, const char *verb, const char *json)
{
	if (print_result(stdout, o->mode, verb, json) < 0) {
		fprintf(stderr, "vfioctl: %s: unexpected reply: %s\n", verb, json);
		return EXIT_FAILURE;
	}
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int open_device(struct vfiod_ctx *ctx, const char *verb, const char *path,
		       struct vfiod_device **dev)
{
	int r = vfiod_device_new(ctx, path, dev);

	if (r < 0)
		return fail(ctx, verb, path, r);
	return 0;
}

static int verb_match(struct vfiod_ctx *ctx, const struct opts *o, int argc, char **argv)
{
	_cleanup_free_ char *json = NULL;
	struct vfiod_device *dev = NULL;
	struct vfiod_match *m = NULL;
	int r;

	if (argc != 2)
		return usage_error("match", argc < 2 ? "missing device path" :
						       "unexpected argument '%s'", argv[2]);
	if (!o->direct)
		return bus_match(argv[1], &json) < 0 ? EXIT_FAILURE : emit(o, "match", json);
	r = open_device(ctx, "match", argv[1], &dev);
	if (r)
		return r;
	r = vfiod_device_match(dev, &m);
	if (r >= 0)
		r = vfiod_match_to_json(m, &json);
	vfiod_match_unref(m);
	if (r < 0) {
		r = fail(ctx, "match", argv[1], r);
		vfiod_device_unref(dev);
		return r;
	}
	vfiod_device_unref(dev);
	return emit(o, "match", json);
}

static int verb_create(struct vfiod_ctx *ctx, const struct opts *o, int argc, char **argv)
{
	_cleanup_free_ char *json = NULL;
	struct vfiod_device *dev = NULL;
	const char *driver = NULL;
	unsigned int flags = 0;
	bool persistent = false;
	int r;

	if (argc < 2)
		return usage_error("create", "missing device path");
	for (int i = 2; i < argc; i++) {
		if (streq(argv[i], "driver")) {
			if (++i >= argc || !*argv[i])
				return usage_error("create", "'driver' needs a driver name");
			driver = argv[i];
		} else if (streq(argv[i], "group")) {
			flags |= VFIOD_ASSIGN_GROUP;
		} else if (streq(argv[i], "persistent")) {
			persistent = true;
		} else {
			return usage_error("create", "unknown argument '%s' (expected 'driver NAME', "
						     "'group' or 'persistent')", argv[i]);
		}
	}
	if (persistent && o->direct)
		return usage_error("create", "'persistent' needs vfiod, which keeps the "
					     "definition; drop --direct");
	if (!o->direct)
		return bus_create(argv[1], driver, flags & VFIOD_ASSIGN_GROUP, persistent, &json) < 0
			       ? EXIT_FAILURE
			       : emit(o, "create", json);
	r = open_device(ctx, "create", argv[1], &dev);
	if (r)
		return r;
	r = vfiod_device_assign(dev, driver, flags, &json);
	if (r < 0)
		r = fail(ctx, "create", argv[1], r);
	else
		r = emit(o, "create", json);
	vfiod_device_unref(dev);
	return r;
}

static int verb_destroy(struct vfiod_ctx *ctx, const struct opts *o, int argc, char **argv)
{
	_cleanup_free_ char *json = NULL;
	struct vfiod_device *dev = NULL;
	int r;

	if (argc != 2)
		return usage_error("destroy", argc < 2 ? "missing device path" :
							 "unexpected argument '%s'", argv[2]);
	if (!o->direct)
		return bus_destroy(argv[1], &json) < 0 ? EXIT_FAILURE : emit(o, "destroy", json);
	r = open_device(ctx, "destroy", argv[1], &dev);
	if (r)
		return r;
	r = vfiod_device_release(dev, 0, &json);
	if (r < 0)
		r = fail(ctx, "destroy", argv[1], r);
	else
		r = emit(o, "destroy", json);
	vfiod_device_unref(dev);
	return r;
}

static int verb_list(struct vfiod_ctx *ctx, const struct opts *o, int argc, char **argv)
{
	_cleanup_free_ char *json = NULL;
	int r;

	if (argc != 1)
		return usage_error("list", "unexpected argument '%s'", argv[1]);
	if (!o->direct)
		return bus_list(&json) < 0 ? EXIT_FAILURE : emit(o, "list", json);
	r = vfiod_list(ctx, &json);
	if (r < 0)
		return fail(ctx, "list", NULL, r);
	return emit(o, "list", json);
}

static int verb_help(struct vfiod_ctx *ctx, const struct opts *o, int argc, char **argv);

static const struct verb verbs[] = {
	{ "match", "match PATH", verb_match },
	{ "create", "create PATH [driver NAME] [group] [persistent]", verb_create },
	{ "destroy", "destroy PATH", verb_destroy },
	{ "list", "list", verb_list },
	{ "help", "help", verb_help },
};

static void help(FILE *f)
{
	fprintf(f, "Usage: vfioctl [OPTIONS] VERB [ARGS]\n\n"
		   "Hand devices to VFIO and give them back.\n\nVerbs:\n");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		fprintf(f, "  %s\n", verbs[i].usage);
	fprintf(f, "\nPATH: /sys/devices/..., /sys/bus/pci/devices/NAME or a PCI address.\n\n"
		   "Options:\n"
		   "  -j, --json       print JSON\n"
		   "  -p, --pretty     print indented JSON\n"
		   "      --direct     act in this process through libvfiod\n"
		   "      --resolver=auto|user|kernel\n"
		   "                   who decides and binds (default auto: the vfio_select\n"
		   "                   kernel module when loaded)\n"
		   "  -v, --verbose    log each step to stderr\n"
		   "  -V, --version    print the version\n"
		   "  -h, --help       print this help\n\n"
		   "See vfioctl(8).\n");
}

static int verb_help(_unused_ struct vfiod_ctx *ctx, _unused_ const struct opts *o,
		     _unused_ int argc, _unused_ char **argv)
{
	help(stdout);
	return EXIT_SUCCESS;
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

	while ((c = getopt_long(argc, argv, "+jpvVh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'j':
			if (o.mode == PRINT_TEXT)
				o.mode = PRINT_JSON;
			break;
		case 'p':
			o.mode = PRINT_JSON_PRETTY;
			break;
		case 'D':
			o.direct = true;
			break;
		case 'R':
			if (streq(optarg, "auto"))
				o.resolver = VFIOD_RESOLVER_AUTO;
			else if (streq(optarg, "user"))
				o.resolver = VFIOD_RESOLVER_USER;
			else if (streq(optarg, "kernel"))
				o.resolver = VFIOD_RESOLVER_KERNEL;
			else
				return usage_error(NULL, "--resolver: unknown value '%s' (auto, user "
							 "or kernel)", optarg);
			break;
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
	if (optind >= argc)
		return usage_error(NULL, "missing verb (match, create, destroy, list, help)");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (streq(argv[optind], verbs[i].name))
			verb = &verbs[i];
	if (!verb)
		return usage_error(NULL, "unknown verb '%s'", argv[optind]);
	if (verb->run == verb_help)
		return verb_help(NULL, &o, 0, NULL);
	if (!o.direct) {
		/* vfiod decides and binds: only --direct has a context of its own. */
		if (o.resolver != VFIOD_RESOLVER_AUTO)
			return usage_error(NULL, "--resolver needs --direct (vfiod chooses itself)");
		return verb->run(NULL, &o, argc - optind, argv + optind);
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
	r = verb->run(ctx, &o, argc - optind, argv + optind);
	vfiod_ctx_unref(ctx);
	return r;
}
