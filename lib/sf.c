/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sf kind: not built yet. */
#include <errno.h>

#include "internal.h"
#include "kinds.h"

static int sf_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
			 struct target *t)
{
	(void)opts, (void)t;
	if (destroy)
		return 0;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: sf devices are not supported yet", path);
}

static int sf_none(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	(void)opts, (void)ret;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: sf devices are not supported yet", path);
}

const struct kind kind_sf = {
	.name = "sf",
	.selector = "sf",
	.target = sf_target,
	.create = sf_none,
	.destroy = sf_none,
};
