/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sysfs_canonicalize() and vfiod_device_new() on any string, against a
 * fixture /sys: a path is accepted only when it is a directory under
 * <root>/devices, and its logical form is then "/sys/devices/...".
 */
#include <limits.h>
#include <stdint.h>

#include "fuzz-common.h"
#include "internal.h"

static struct vfiod_ctx *ctx;
static char *root, *root_real;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	root = fuzz_sysfs();
	setenv("VFIOD_SYSFS_ROOT", root, 1);
	setenv("VFIOD_NO_KERNEL", "1", 1);
	if (vfiod_ctx_new(&ctx) < 0)
		abort();
	root_real = realpath(root, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input, *logical = NULL, *real = NULL, *devices = NULL;
	struct vfiod_device *dev = NULL;
	struct stat st;
	int r;

	/* Short names are PCI addresses, long ones are taken relative to the root too. */
	if (size > 0 && data[0] == '@') {
		if (asprintf(&input, "%s/%.*s", vfiod_ctx_get_sysfs_root(ctx), (int)size - 1,
			     (const char *)data + 1) < 0)
			abort();
	} else {
		input = strndup((const char *)data, size);
	}
	r = sysfs_canonicalize(ctx, input, &logical, &real);
	if (r >= 0) {
		if (asprintf(&devices, "%s/devices/", root_real) < 0)
			abort();
		if (strncmp(logical, "/sys/devices/", 13) != 0 || strncmp(real, devices, strlen(devices)) != 0 ||
		    stat(real, &st) < 0 || !S_ISDIR(st.st_mode) || strstr(logical, "/../") ||
		    strcmp(real + strlen(root_real), logical + 4) != 0) {
			fprintf(stderr, "%s -> %s (%s)\n", input, logical, real);
			abort();
		}
	} else if (!*vfiod_ctx_get_error(ctx) && r != -ENOMEM) {
		fprintf(stderr, "%s: refused without a message (%d)\n", input, r);
		abort();
	}
	r = vfiod_device_new(ctx, input, &dev);
	if (r >= 0 && strncmp(vfiod_device_get_syspath(dev), "/sys/devices/", 13) != 0)
		abort();
	vfiod_device_unref(dev);
	free(devices);
	free(logical);
	free(real);
	free(input);
	return 0;
}
