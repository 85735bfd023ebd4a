/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vdpa kind: not built yet. */
#include <errno.h>

#include "internal.h"
#include "kinds.h"

static int vdpa_target(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
			 struct target *t)
{
	(void)opts, (void)t;
	if (destroy)
		return 0;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: vdpa devices are not supported yet", path);
}

static int vdpa_none(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret)
{
	(void)opts, (void)ret;
	return vfiod_error(ctx, -EOPNOTSUPP, "%s: vdpa devices are not supported yet", path);
}

const struct kind kind_vdpa = {
	.name = "vdpa",
	.selector = "vdpa",
	.target = vdpa_target,
	.create = vdpa_none,
	.destroy = vdpa_none,
};

_public_ int vfiod_vdpa_mgmtdevs(struct vfiod_ctx *ctx, char **ret)
{
	(void)ret;
	return vfiod_error(ctx, -EOPNOTSUPP, "vdpa devices are not supported yet");
}
