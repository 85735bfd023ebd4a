/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mdev kind: not built yet. */
#include <errno.h>

#include "internal.h"
#include "kinds.h"

static int mdev_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
			 struct target *t)
{
	(void)opts, (void)t;
	if (destroy)
		return 0;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: mdev devices are not supported yet", path);
}

static int mdev_none(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	(void)opts, (void)ret;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: mdev devices are not supported yet", path);
}

const struct kind kind_mdev = {
	.name = "mdev",
	.selector = "type",
	.target = mdev_target,
	.create = mdev_none,
	.destroy = mdev_none,
};

_public_ int vfiod_mdev_types(struct vfiod_ctx *ctx, const char *path, char **ret)
{
	(void)ret;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: mdev devices are not supported yet", path);
}
