/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod_create() and vfiod_destroy(): the one entry point for every kind.
 * The kind is chosen by the option that selects it ("type" for mdev, "vfs"
 * for VFs, "vdpa", "sf"), else, for destroy, by what the path names; PCI
 * assignment is the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kinds.h"
#include "options.h"

/* Asked in this order when a destroy names no kind: the PCI kind takes what is left. */
static const struct kind *const kinds[] = {
	&kind_mdev, &kind_vdpa, &kind_vfs, &kind_sf, &kind_pci,
};

const struct kind *kind_at(size_t i)
{
	return i < ARRAY_SIZE(kinds) ? kinds[i] : NULL;
}

void target_done(struct target *t)
{
	free(t->device);
	free(t->name);
	free(t->key);
	*t = (struct target){ .iommu_group = -1 };
}

const char *opt_str(json_t *opts, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(opts, key));

	return s ? s : def;
}

bool opt_bool(json_t *opts, const char *key, bool def)
{
	json_t *v = json_object_get(opts, key);

	return json_is_boolean(v) ? json_is_true(v) : def;
}

long long opt_uint(json_t *opts, const char *key)
{
	json_t *v = json_object_get(opts, key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

static int parse_options(struct vfiod_ctx *ctx, unsigned int method, const char *text,
			 json_t **ret)
{
	json_error_t jerr;
	char err[768];
	json_t *o;
	int r;

	o = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : json_object();
	if (!o)
		return vfiod_error(ctx, text ? -EINVAL : -ENOMEM, "options: %s",
				   text ? jerr.text : "out of memory");
	r = options_check(method, o, err, sizeof(err));
	if (r < 0) {
		json_decref(o);
		return vfiod_error(ctx, r, "%s", err);
	}
	/* vfiod keeps definitions; libvfiod only acts. */
	json_object_del(o, "persistent");
	*ret = o;
	return 0;
}

/*
 * The key of the hardware at or above SYSPATH (a logical /sys/devices/...
 * path): "group:N" for the IOMMU group of the nearest PCI function, a VF
 * counting as its PF (its VFs come and go with the PF's sriov_numvfs), or
 * "pci:NAME" for a function without a group.  *RET is NULL when no PCI
 * function is there (a software device: the kind keys it itself).
 */
int hardware_key(struct vfiod_ctx *ctx, const char *syspath, char **ret)
{
	_cleanup_free_ char *p = NULL;
	const size_t top = strlen(VFIOD_DEFAULT_SYSFS_ROOT "/devices");

	*ret = NULL;
	if (!syspath || strncmp(syspath, VFIOD_DEFAULT_SYSFS_ROOT "/devices/", top + 1) != 0)
		return 0;
	p = strdup(syspath);
	if (!p)
		return -ENOMEM;
	for (char *slash = strrchr(p, '/'); slash && (size_t)(slash - p) > top;
	     *slash = '\0', slash = strrchr(p, '/')) {
		_cleanup_free_ char *subsys = NULL, *pf = NULL, *group = NULL, *rel = NULL;
		_cleanup_close_ int fd = -1;
		const char *name = slash + 1;

		if (!is_pci_name(name) || strlen(name) != 12)
			continue;
		fd = root_open(ctx, p + strlen(VFIOD_DEFAULT_SYSFS_ROOT "/"),
			       O_RDONLY | O_DIRECTORY);
		if (fd < 0 || read_link_name(fd, "subsystem", &subsys) < 0 ||
		    !streq(subsys, "pci"))
			continue;
		if (read_link_name(fd, "physfn", &pf) >= 0) {
			closep(&fd);
			if (asprintf(&rel, "%s/%s", SYSFS_PCI_DEVICES, pf) < 0)
				return -ENOMEM;
			fd = root_open(ctx, rel, O_RDONLY | O_DIRECTORY);
			name = pf;
		}
		if (fd >= 0)
			(void)read_link_name(fd, "iommu_group", &group);
		if (group ? asprintf(ret, "group:%s", group) < 0 : asprintf(ret, "pci:%s", name) < 0) {
			*ret = NULL;
			return -ENOMEM;
		}
		return 1;
	}
	return 0;
}

/* T's key: the hardware's under T's device, else FALLBACK (a software device's own). */
int target_set_key(struct vfiod_ctx *ctx, struct target *t, const char *fallback)
{
	int r;

	free(t->key);
	t->key = NULL;
	r = hardware_key(ctx, t->device, &t->key);
	if (r < 0)
		return r;
	if (!t->key && !(t->key = strdup(fallback)))
		return -ENOMEM;
	return 0;
}

/* Ask kind K for its target: < 0 an error, 0 not its own, 1 its own (T filled). */
static int try_kind(struct vfiod_ctx *ctx, const struct kind *k, const char *path, json_t *opts,
		    bool destroy, struct target *t)
{
	int r;

	*t = (struct target){ .kind = k->name, .iommu_group = -1 };
	r = k->target(ctx, path, opts, destroy, t);
	if (r <= 0)
		target_done(t);
	return r;
}

/* The kind an operation on PATH with OPTS is of, and its target. */
static int pick_kind(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool destroy,
		     const struct kind **ret, struct target *t)
{
	const struct kind *chosen = NULL;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!kinds[i]->selector || !json_object_get(opts, kinds[i]->selector))
			continue;
		if (chosen)
			return vfiod_error(ctx, -EINVAL, "options \"%s\" and \"%s\" cannot be "
					   "combined: they make different kinds of device; give one",
					   chosen->selector, kinds[i]->selector);
		chosen = kinds[i];
	}
	/* A create without a selector, or a destroy of what the path names. */
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (chosen ? kinds[i] != chosen : kinds[i]->selector && !destroy)
			continue;
		r = try_kind(ctx, kinds[i], path, opts, destroy, t);
		if (r < 0)
			return r;
		if (r > 0 || chosen) {
			*ret = kinds[i];
			return 0;
		}
	}
	return vfiod_error(ctx, -ENODEV, "%s: not a device vfiod can act on (a PCI function, "
			   "an mdev UUID or a vdpa device name; VFs and subfunctions are named "
			   "by their PF with \"vfs\" or \"sf N\")", path);
}

/* The destroy that gives back what a create of kind K on T with OPTS makes. */
static json_t *undo_json(const struct kind *k, const struct target *t, json_t *opts)
{
	const struct option_def *o = k->selector ? option_find(k->selector, OPT_DESTROY) : NULL;
	const char *path = k->selector && !o ? t->name : t->device;
	json_t *u = json_object();

	if (o)
		json_object_set_new(u, k->selector,
				    streq(o->type, "b")
					    ? json_true()
					    : json_deep_copy(json_object_get(opts, k->selector)));
	return json_pack("{s:s?, s:o}", "path", path, "options", u);
}

static json_t *target_json(const struct kind *k, const struct target *t, json_t *opts,
			   bool destroy)
{
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:b, s:i, s:O, s:o}", "kind", t->kind, "device",
			 t->device, "name", t->name, "key", t->key, "key_shared", t->key_shared,
			 "iommu_group", t->iommu_group,
			 "options", opts, "undo", destroy ? json_null() : undo_json(k, t, opts));
}

/*
 * One operation, resolved once: the kind, what it acts on, its key and its
 * completed options are known before it runs, and running it resolves
 * nothing again.
 */
struct vfiod_op {
	int n_ref;
	struct vfiod_ctx *ctx;
	const struct kind *kind;
	struct target t;
	json_t *opts;
	char *path; /* as given: what a kind without a device of its own acts on */
	bool destroy;
};

_public_ int vfiod_op_new(struct vfiod_ctx *ctx, const char *path, const char *options,
			  unsigned int flags, struct vfiod_op **ret)
{
	struct vfiod_op *op;
	int r;

	ctx->error[0] = '\0';
	if (flags & ~VFIOD_OP_DESTROY)
		return vfiod_error(ctx, -EINVAL, "unknown operation flags 0x%x", flags);
	if (!path)
		return vfiod_error(ctx, -EINVAL, "no device path given");
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->n_ref = 1;
	op->destroy = flags & VFIOD_OP_DESTROY;
	op->path = strdup(path);
	if (!op->path) {
		free(op);
		return -ENOMEM;
	}
	r = parse_options(ctx, op->destroy ? OPT_DESTROY : OPT_CREATE, options, &op->opts);
	if (r >= 0)
		r = pick_kind(ctx, path, op->opts, op->destroy, &op->kind, &op->t);
	if (r < 0) {
		json_decref(op->opts);
		free(op->path);
		free(op);
		return r;
	}
	op->ctx = vfiod_ctx_ref(ctx);
	*ret = op;
	return 0;
}

_public_ struct vfiod_op *vfiod_op_ref(struct vfiod_op *op)
{
	if (op)
		op->n_ref++;
	return op;
}

_public_ struct vfiod_op *vfiod_op_unref(struct vfiod_op *op)
{
	if (!op || --op->n_ref > 0)
		return NULL;
	target_done(&op->t);
	json_decref(op->opts);
	free(op->path);
	vfiod_ctx_unref(op->ctx);
	free(op);
	return NULL;
}

_public_ struct vfiod_ctx *vfiod_op_get_ctx(struct vfiod_op *op)
{
	return op->ctx;
}

_public_ const char *vfiod_op_get_kind(struct vfiod_op *op)
{
	return op->kind->name;
}

_public_ const char *vfiod_op_get_device(struct vfiod_op *op)
{
	return op->t.device;
}

_public_ const char *vfiod_op_get_name(struct vfiod_op *op)
{
	return op->t.name ? op->t.name : op->path;
}

_public_ const char *vfiod_op_get_key(struct vfiod_op *op)
{
	return op->t.key ? op->t.key : vfiod_op_get_name(op);
}

_public_ int vfiod_op_get_key_shared(struct vfiod_op *op)
{
	return op->t.key_shared;
}

_public_ int vfiod_op_get_iommu_group(struct vfiod_op *op)
{
	return op->t.iommu_group;
}

_public_ int vfiod_op_get_options(struct vfiod_op *op, char **ret)
{
	return json_dump_to(json_incref(op->opts), ret);
}

_public_ int vfiod_op_get_undo(struct vfiod_op *op, char **ret)
{
	*ret = NULL;
	if (op->destroy)
		return 0;
	return json_dump_to(undo_json(op->kind, &op->t, op->opts), ret);
}

/* The result of running OP, as the kind made it (an object or an array). */
int op_run_json(struct vfiod_op *op, json_t **ret)
{
	struct vfiod_ctx *ctx = op->ctx;
	const char *path = op->t.device ? op->t.device : op->path;
	json_t *res = NULL;
	int r;

	ctx->error[0] = '\0';
	r = op->destroy ? op->kind->destroy(ctx, path, op->opts, &res)
			: op->kind->create(ctx, path, op->opts, &res);
	if (r < 0) {
		json_decref(res);
		return r;
	}
	if (!res)
		res = json_object();
	if (json_is_object(res) && !json_object_get(res, "kind"))
		json_object_set_new(res, "kind", json_string(op->kind->name));
	*ret = res;
	return r;
}

_public_ int vfiod_op_run(struct vfiod_op *op, char **ret)
{
	json_t *res;
	int r, q;

	r = op_run_json(op, &res);
	if (r < 0)
		return r;
	q = json_dump_to(res, ret);
	return q < 0 ? q : r;
}

_public_ int vfiod_target(struct vfiod_ctx *ctx, const char *path, const char *options,
			  bool destroy, char **ret)
{
	struct vfiod_op *op = NULL;
	int r;

	r = vfiod_op_new(ctx, path, options, destroy ? VFIOD_OP_DESTROY : 0, &op);
	if (r < 0)
		return r;
	r = json_dump_to(target_json(op->kind, &op->t, op->opts, destroy), ret);
	vfiod_op_unref(op);
	return r;
}

static int run(struct vfiod_ctx *ctx, const char *path, const char *options, bool destroy,
	       char **ret)
{
	struct vfiod_op *op = NULL;
	int r;

	r = vfiod_op_new(ctx, path, options, destroy ? VFIOD_OP_DESTROY : 0, &op);
	if (r < 0)
		return r;
	r = vfiod_op_run(op, ret);
	vfiod_op_unref(op);
	return r;
}

_public_ int vfiod_create(struct vfiod_ctx *ctx, const char *path, const char *options,
			  char **ret)
{
	return run(ctx, path, options, false, ret);
}

_public_ int vfiod_destroy(struct vfiod_ctx *ctx, const char *path, const char *options,
			   char **ret)
{
	return run(ctx, path, options, true, ret);
}

_public_ int vfiod_list(struct vfiod_ctx *ctx, char **ret)
{
	json_t *a = json_array();
	int r = 0;

	ctx->error[0] = '\0';
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(kinds) && r >= 0; i++)
		if (kinds[i]->list)
			r = kinds[i]->list(ctx, a);
	if (r < 0) {
		json_decref(a);
		return r;
	}
	ctx->error[0] = '\0';
	return json_dump_to(a, ret);
}

_public_ int vfiod_forget(struct vfiod_ctx *ctx, const char *name)
{
	_cleanup_free_ char *rel = NULL;
	_cleanup_close_ int fd = -1;
	int r = 0;

	ctx->error[0] = '\0';
	if (!is_pci_name(name) || strlen(name) != 12)
		return vfiod_error(ctx, -EINVAL, "\"%s\" is not a PCI function's name", name);
	if (asprintf(&rel, "%s/%s", SYSFS_PCI_DEVICES, name) < 0)
		return -ENOMEM;
	fd = root_open(ctx, rel, O_RDONLY | O_DIRECTORY);
	if (fd >= 0)
		return vfiod_error(ctx, -EBUSY, "%s is still there: give it back with destroy "
				   "instead", name);
	for (size_t i = 0; i < ARRAY_SIZE(kinds) && r >= 0; i++)
		if (kinds[i]->forget)
			r = kinds[i]->forget(ctx, name);
	if (r < 0)
		return vfiod_error(ctx, r, "%s: cannot drop what vfiod kept of it: %s", name,
				   strerror(-r));
	vfiod_log(ctx, LOG_INFO, "%s: gone; what vfiod kept of it is dropped", name);
	return 0;
}
