/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM cases' way into libvfiod without the CLI or the daemon: one call,
 * its JSON result on stdout, the context's error on stderr.
 *
 *   vfiod-call create|destroy PATH [OPTIONS_JSON]
 *   vfiod-call target-create|target-destroy PATH [OPTIONS_JSON]
 *   vfiod-call list | mgmtdevs
 *
 * With VFIOD_CALL_STOP_AT=STEP the operation is stopped before its step
 * STEP (vfiod_ctx_set_step_fn()), to prove that what was done is undone.
 * Exit status 0 on success, 1 on a failed call, 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfiod.h"

static int stop_at(void *userdata, const char *operation, const char *device, const char *step)
{
	(void)operation, (void)device;
	return strcmp(step, userdata) ? 0 : -ECANCELED;
}

int main(int argc, char **argv)
{
	struct vfiod_ctx *ctx;
	const char *verb = argc > 1 ? argv[1] : "";
	const char *path = argc > 2 ? argv[2] : NULL;
	const char *opts = argc > 3 ? argv[3] : NULL;
	char *out = NULL;
	int r;

	if (vfiod_ctx_new(&ctx) < 0) {
		fprintf(stderr, "cannot make a libvfiod context\n");
		return 1;
	}
	if (getenv("VFIOD_CALL_STOP_AT"))
		vfiod_ctx_set_step_fn(ctx, stop_at, getenv("VFIOD_CALL_STOP_AT"));
	if (!strcmp(verb, "list"))
		r = vfiod_list(ctx, &out);
	else if (!strcmp(verb, "mgmtdevs"))
		r = vfiod_vdpa_mgmtdevs(ctx, &out);
	else if (path && !strcmp(verb, "create"))
		r = vfiod_create(ctx, path, opts, &out);
	else if (path && !strcmp(verb, "destroy"))
		r = vfiod_destroy(ctx, path, opts, &out);
	else if (path && !strcmp(verb, "target-create"))
		r = vfiod_target(ctx, path, opts, false, &out);
	else if (path && !strcmp(verb, "target-destroy"))
		r = vfiod_target(ctx, path, opts, true, &out);
	else {
		fprintf(stderr, "usage: vfiod-call create|destroy|target-create|target-destroy "
				"PATH [OPTIONS] | list | mgmtdevs\n");
		vfiod_ctx_unref(ctx);
		return 2;
	}
	if (r < 0)
		fprintf(stderr, "error: %s (%s)\n",
			vfiod_ctx_get_error(ctx) ? vfiod_ctx_get_error(ctx) : "no message",
			strerror(-r));
	else
		printf("%s\n", out);
	free(out);
	vfiod_ctx_unref(ctx);
	return r < 0 ? 1 : 0;
}
