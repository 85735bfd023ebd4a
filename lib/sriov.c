/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vfs kind: not built yet. */
#include <errno.h>

#include "internal.h"
#include "kinds.h"

static int vfs_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
			 struct target *t)
{
	(void)opts, (void)t;
	if (destroy)
		return 0;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: vfs devices are not supported yet", path);
}

static int vfs_none(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	(void)opts, (void)ret;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: vfs devices are not supported yet", path);
}

const struct kind kind_vfs = {
	.name = "vfs",
	.selector = "vfs",
	.target = vfs_target,
	.create = vfs_none,
	.destroy = vfs_none,
};
