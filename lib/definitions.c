/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "definitions.h"
#include "fileio.h"
#include "macro.h"
#include "options.h"
#include "vfiod.h"

#define SUBDIR "devices"

char *definitions_dir(void)
{
	_cleanup_free_ char *state = dir_from_env("STATE_DIRECTORY", "/var/lib/vfiod");
	char *d = NULL;

	if (!state || asprintf(&d, "%s/%s", state, SUBDIR) < 0)
		return NULL;
	return d;
}

bool definition_name_valid(const char *name)
{
	return name && *name && name[0] != '.' && !strchr(name, '/') && strlen(name) < 200;
}

static int def_file(const char *name, char **ret)
{
	if (!definition_name_valid(name))
		return -EINVAL;
	return asprintf(ret, "%s.json", name) < 0 ? -ENOMEM : 0;
}

int definition_save(const char *dir, json_t *def)
{
	_cleanup_free_ char *file = NULL, *text = NULL;
	int r;

	r = def_file(json_string_value(json_object_get(def, "name")), &file);
	if (r < 0)
		return r;
	text = json_dumps(def, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		return -ENOMEM;
	r = mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	return write_file_atomic(dir, file, text);
}

/* A definition of the first format (PCI only) in the current one. */
static json_t *upgrade(json_t *o)
{
	const char *device = json_string_value(json_object_get(o, "device"));
	json_t *opts;

	if (json_object_get(o, "kind") || !device)
		return o;
	opts = json_object();
	if (json_is_string(json_object_get(o, "driver")))
		json_object_set(opts, "driver", json_object_get(o, "driver"));
	if (json_is_true(json_object_get(o, "group")))
		json_object_set_new(opts, "group", json_true());
	json_object_set_new(o, "kind", json_string("pci"));
	json_object_set_new(o, "path", json_string(device));
	json_object_set_new(o, "options", opts);
	json_object_set_new(o, "undo", json_pack("{s:s, s:{}}", "path", device, "options"));
	json_object_set_new(o, "start", json_string("auto"));
	json_object_del(o, "device");
	json_object_del(o, "driver");
	json_object_del(o, "group");
	return o;
}

static int check(json_t *o, const char *name, char *err, size_t errsize)
{
	json_t *undo = json_object_get(o, "undo");
	const char *start = json_string_value(json_object_get(o, "start"));

	if (!json_is_object(o))
		snprintf(err, errsize, "not a JSON object");
	else if (!definition_name_valid(json_string_value(json_object_get(o, "name"))))
		snprintf(err, errsize, "\"name\" is missing or not a valid name");
	else if (name && !streq(json_string_value(json_object_get(o, "name")), name))
		snprintf(err, errsize, "\"name\" is not the file's name");
	else if (!json_is_string(json_object_get(o, "kind")) ||
		 !json_is_string(json_object_get(o, "path")))
		snprintf(err, errsize, "\"kind\" and \"path\" must be strings");
	else if (!json_is_object(json_object_get(o, "options")))
		snprintf(err, errsize, "\"options\" must be an object");
	else if (!json_is_object(undo) || !json_is_string(json_object_get(undo, "path")) ||
		 !json_is_object(json_object_get(undo, "options")))
		snprintf(err, errsize, "\"undo\" must be {\"path\": string, \"options\": object}");
	else if (start && !streq(start, "auto") && !streq(start, "manual"))
		snprintf(err, errsize, "\"start\" must be \"auto\" or \"manual\"");
	else
		return 0;
	return -EBADMSG;
}

static int load_file(const char *path, const char *name, json_t **ret, char *err, size_t errsize)
{
	json_error_t jerr;
	json_t *o;
	int r;

	o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		if (access(path, F_OK) < 0)
			return negative_errno();
		snprintf(err, errsize, "%s (line %d)", jerr.text, jerr.line);
		return -EBADMSG;
	}
	o = upgrade(o);
	r = check(o, name, err, errsize);
	/* attrs as an object (before they were a list): read as the list. */
	if (r >= 0)
		options_upgrade(json_object_get(o, "options"));
	if (r < 0) {
		json_decref(o);
		return r;
	}
	*ret = o;
	return 0;
}

int definition_load(const char *dir, const char *name, json_t **ret, char *err, size_t errsize)
{
	_cleanup_free_ char *file = NULL, *path = NULL;
	int r = def_file(name, &file);

	if (r < 0)
		return r;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return -ENOMEM;
	return load_file(path, name, ret, err, errsize);
}

int definition_remove(const char *dir, const char *name)
{
	_cleanup_free_ char *file = NULL;
	int r = def_file(name, &file);

	if (r < 0)
		return r;
	if (!definition_exists(dir, name))
		return -ENOENT;
	return remove_file_durable(dir, file);
}

bool definition_exists(const char *dir, const char *name)
{
	_cleanup_free_ char *file = NULL, *path = NULL;

	if (def_file(name, &file) < 0 || asprintf(&path, "%s/%s", dir, file) < 0)
		return false;
	return access(path, F_OK) == 0;
}

int definition_mtime(const char *dir, const char *name, int64_t *ret)
{
	_cleanup_free_ char *file = NULL, *path = NULL;
	struct stat st;
	int r = def_file(name, &file);

	if (r < 0)
		return r;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return -ENOMEM;
	if (stat(path, &st) < 0)
		return negative_errno();
	*ret = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

json_t *definitions_list(const char *dir, void (*warn)(const char *file, const char *why))
{
	struct dirent **list = NULL;
	json_t *a = json_array();
	int n;

	n = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL, *name = NULL;
		const char *f = list[i]->d_name;
		size_t l = strlen(f);
		char err[256];
		json_t *o = NULL;

		if (f[0] != '.' && l > 5 && streq(f + l - 5, ".json") &&
		    asprintf(&path, "%s/%s", dir, f) >= 0 && (name = strndup(f, l - 5))) {
			if (load_file(path, name, &o, err, sizeof(err)) >= 0)
				json_array_append_new(a, o);
			else if (warn)
				warn(path, err);
		}
		free(list[i]);
	}
	free(list);
	return a;
}

json_t *definition_new(json_t *target, const char *path, bool autostart)
{
	return json_pack("{s:O, s:O, s:s, s:O, s:O, s:s}", "name", json_object_get(target, "name"),
			 "kind", json_object_get(target, "kind"), "path", path, "options",
			 json_object_get(target, "options"), "undo", json_object_get(target, "undo"),
			 "start", autostart ? "auto" : "manual");
}

void definitions_merge(json_t *active, json_t *defs)
{
	json_t *e, *d;
	size_t i, k;

	json_array_foreach(active, i, e) {
		bool defined = false;

		json_array_foreach(defs, k, d)
			if (json_equal(json_object_get(d, "name"), json_object_get(e, "name")))
				defined = true;
		json_object_set_new(e, "defined", json_boolean(defined));
	}
	json_array_foreach(defs, k, d) {
		bool found = false;

		json_array_foreach(active, i, e)
			if (json_equal(json_object_get(d, "name"), json_object_get(e, "name")))
				found = true;
		if (!found)
			json_array_append_new(active,
					      json_pack("{s:O, s:O, s:O, s:s, s:b, s:O, s:O}", "name",
							json_object_get(d, "name"), "kind",
							json_object_get(d, "kind"), "device",
							json_object_get(d, "path"), "state", "defined",
							"defined", 1, "options",
							json_object_get(d, "options"), "start",
							json_object_get(d, "start") ?: json_null()));
	}
}

int definition_make(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool autostart,
		    json_t **ret)
{
	_cleanup_free_ char *text = NULL, *completed = NULL, *undo = NULL;
	struct vfiod_op *op = NULL;
	json_t *t, *o;
	int r;

	text = json_dumps(opts, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	r = vfiod_op_new(ctx, path, text, 0, &op);
	if (r >= 0)
		r = vfiod_op_get_options(op, &completed);
	if (r >= 0)
		r = vfiod_op_get_undo(op, &undo);
	if (r < 0) {
		vfiod_op_unref(op);
		return r;
	}
	t = json_pack("{s:s, s:s, s:o, s:o}", "name", vfiod_op_get_name(op), "kind",
		      vfiod_op_get_kind(op), "options", json_loads(completed, 0, NULL), "undo",
		      undo ? json_loads(undo, 0, NULL) : json_null());
	/* Where the device is, as sysfs names it; what vfiod names itself (vduse) as given. */
	o = t ? definition_new(t, vfiod_op_get_device(op) ?: path, autostart) : NULL;
	json_decref(t);
	vfiod_op_unref(op);
	if (!o)
		return -ENOMEM;
	*ret = o;
	return 0;
}

int definition_modify(struct vfiod_ctx *ctx, json_t *def, json_t *opts, json_t **ret, char *err,
		      size_t errsize)
{
	json_t *merged = json_deep_copy(json_object_get(def, "options")), *v, *o = NULL;
	const char *key;
	int r;

	err[0] = '\0';
	if (!merged)
		return -ENOMEM;
	json_object_foreach(opts, key, v) {
		if (json_is_null(v))
			json_object_del(merged, key);
		else
			json_object_set(merged, key, v);
	}
	r = definition_make(ctx, json_string_value(json_object_get(def, "path")), merged,
			    !streq(json_string_value(json_object_get(def, "start")) ?: "auto", "manual"),
			    &o);
	json_decref(merged);
	if (r < 0)
		return r;
	if (!json_equal(json_object_get(o, "name"), json_object_get(def, "name"))) {
		snprintf(err, errsize, "the change would rename %s to %s; undefine it and define "
			 "the new one", json_string_value(json_object_get(def, "name")),
			 json_string_value(json_object_get(o, "name")));
		json_decref(o);
		return -EINVAL;
	}
	if (json_object_get(def, "source"))
		json_object_set(o, "source", json_object_get(def, "source"));
	*ret = o;
	return 0;
}

static int defs_fail(struct defs_error *e, int r, const char *fmt, ...) _printf_(3, 4);
static int defs_fail(struct defs_error *e, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return r;
}

/* libvfiod's words for its failure R, or the errno's. */
static int defs_fail_ctx(struct defs_error *e, int r, struct vfiod_ctx *ctx)
{
	const char *msg = vfiod_ctx_get_error(ctx);

	return defs_fail(e, r, "%s", msg ? msg : strerror(-r));
}

int definitions_get(const char *dir, const char *name, json_t **ret, struct defs_error *e)
{
	char err[256];
	int r;

	e->message[0] = '\0';
	if (!definition_name_valid(name))
		return defs_fail(e, -EINVAL, "'%s' is not a definition name", name ? name : "");
	r = definition_load(dir, name, ret, err, sizeof(err));
	if (r == -ENOENT)
		return defs_fail(e, r, "%s is not defined (in %s); list shows the definitions",
				 name, dir);
	if (r == -EBADMSG)
		return defs_fail(e, r, "the definition of %s in %s is unreadable: %s; undefine it "
				 "and define it again", name, dir, err);
	if (r < 0)
		return defs_fail(e, r, "cannot read the definition of %s in %s: %s", name, dir,
				 strerror(-r));
	return 0;
}

int definitions_put(const char *dir, json_t *def, bool replace, struct defs_error *e)
{
	const char *name = json_string_value(json_object_get(def, "name"));
	int r;

	e->message[0] = '\0';
	if (!replace && definition_exists(dir, name))
		return defs_fail(e, -EEXIST, "%s is defined already; modify it instead", name);
	r = definition_save(dir, def);
	if (r < 0)
		return defs_fail(e, r, "cannot write the definition of %s in %s: %s", name, dir,
				 strerror(-r));
	return 0;
}

int definitions_undefine(const char *dir, const char *name, json_t **ret, struct defs_error *e)
{
	json_t *def = NULL;
	int r;

	r = definitions_get(dir, name, &def, e);
	if (r == -EBADMSG) {
		e->message[0] = '\0';
		def = json_pack("{s:s}", "name", name);
		r = def ? 0 : -ENOMEM;
	}
	if (r < 0)
		return r;
	r = definition_remove(dir, name);
	if (r < 0) {
		json_decref(def);
		return defs_fail(e, r, "cannot remove the definition of %s in %s: %s", name, dir,
				 strerror(-r));
	}
	json_object_set_new(def, "state", json_string("undefined"));
	*ret = def;
	return 0;
}

int definitions_make(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret,
		     struct defs_error *e)
{
	int r = definition_make(ctx, path, opts, true, ret);

	e->message[0] = '\0';
	return r < 0 ? defs_fail_ctx(e, r, ctx) : 0;
}

int definitions_modify(struct vfiod_ctx *ctx, json_t *def, json_t *opts, json_t **ret,
		       struct defs_error *e)
{
	char err[256];
	int r = definition_modify(ctx, def, opts, ret, err, sizeof(err));

	e->message[0] = '\0';
	if (r < 0 && err[0])
		return defs_fail(e, r, "%s", err);
	return r < 0 ? defs_fail_ctx(e, r, ctx) : 0;
}

int definitions_call(json_t *def, bool start, const char **path, char **options)
{
	json_t *call = start ? def : json_object_get(def, "undo");
	json_t *o = json_object_get(call, "options");

	*path = json_string_value(json_object_get(call, "path"));
	*options = o ? json_dumps(o, JSON_COMPACT) : strdup("{}");
	return *options ? 0 : -ENOMEM;
}
