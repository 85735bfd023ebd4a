/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev-helper: reach the parts of libvfiod's mdev kind that vfioctl does not
 * show, for tests/vm/case-mdev.sh.
 *
 *   mdev-helper mdevctl [DIR]            vfiod_mdevctl_read(DIR or NULL)
 *   mdev-helper target create|destroy PATH [OPTIONS]
 *   mdev-helper run create|destroy PATH [OPTIONS]
 *
 * Every call prints its JSON result on stdout.  On failure it prints
 * "errno NAME: MESSAGE" on stderr and exits 1.  With MDEV_HELPER_AT=STEP,
 * `run` acts at the step STEP of the operation (as vfiod_step() announces
 * it): MDEV_HELPER_DO=fail makes the step fail with EINTR, anything else is
 * a shell command run right before the step (say, an rmmod of the parent's
 * module).  Every step seen is printed as "step OPERATION DEVICE STEP" on
 * stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfiod.h"

static int on_step(void *userdata, const char *operation, const char *device, const char *step)
{
	const char *at = getenv("MDEV_HELPER_AT"), *what = getenv("MDEV_HELPER_DO");

	(void)userdata;
	fprintf(stderr, "step %s %s %s\n", operation, device, step);
	if (!at || strcmp(at, step) != 0 || !what)
		return 0;
	if (strcmp(what, "fail") == 0)
		return -EINTR;
	if (system(what) != 0)
		fprintf(stderr, "mdev-helper: '%s' failed\n", what);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: mdev-helper mdevctl [DIR]\n"
			"       mdev-helper target|run create|destroy PATH [OPTIONS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct vfiod_ctx *ctx = NULL;
	char *json = NULL;
	int r;

	if (argc < 2)
		return usage();
	r = vfiod_ctx_new(&ctx);
	if (r < 0) {
		fprintf(stderr, "mdev-helper: no context: %s\n", strerror(-r));
		return 1;
	}
	vfiod_ctx_set_step_fn(ctx, on_step, NULL);
	if (strcmp(argv[1], "mdevctl") == 0 && argc <= 3) {
		r = vfiod_mdevctl_read(ctx, argc == 3 ? argv[2] : NULL, &json);
	} else if ((strcmp(argv[1], "target") == 0 || strcmp(argv[1], "run") == 0) &&
		   (argc == 4 || argc == 5)) {
		bool destroy = strcmp(argv[2], "destroy") == 0;
		const char *opts = argc == 5 ? argv[4] : NULL;

		if (!destroy && strcmp(argv[2], "create") != 0)
			return usage();
		if (strcmp(argv[1], "target") == 0)
			r = vfiod_target(ctx, argv[3], opts, destroy, &json);
		else if (destroy)
			r = vfiod_destroy(ctx, argv[3], opts, &json);
		else
			r = vfiod_create(ctx, argv[3], opts, &json);
	} else {
		vfiod_ctx_unref(ctx);
		return usage();
	}
	if (r < 0) {
		const char *msg = vfiod_ctx_get_error(ctx);

		fprintf(stderr, "errno %s: %s\n", strerrorname_np(-r), msg ? msg : strerror(-r));
		vfiod_ctx_unref(ctx);
		return 1;
	}
	printf("%s\n", json);
	free(json);
	vfiod_ctx_unref(ctx);
	return 0;
}
