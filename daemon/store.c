/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistent definitions as vfiod keeps them (format: lib/definitions.h):
 * saved when Create is called with persistent=true or by Define, removed
 * by Destroy and Undefine, started at every start when "start" is "auto".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-names.h"
#include "daemon.h"
#include "definitions.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

int store_save(struct manager *m, struct job *j)
{
	json_t *def = definition_new(j->target, j->syspath ? j->syspath : j->input, true);
	int r;

	if (!def)
		return -ENOMEM;
	r = definition_save(m->definitions_dir, def);
	json_decref(def);
	if (r >= 0)
		log_info("%s: definition stored, it will be made again at every start", j->name);
	return r;
}

int store_remove(struct manager *m, const char *name)
{
	int r = definition_remove(m->definitions_dir, name);

	if (r == -ENOENT)
		return 0;
	if (r >= 0)
		log_info("%s: definition removed", name);
	return r;
}

bool store_exists(struct manager *m, const char *name)
{
	return definition_exists(m->definitions_dir, name);
}

static void warn_definition(const char *file, const char *why)
{
	log_warning("%s: not a definition (%s), ignoring it", file, why);
}

json_t *store_list(struct manager *m)
{
	return definitions_list(m->definitions_dir, warn_definition);
}

int store_job(struct manager *m, json_t *def, bool start, struct job **ret)
{
	_cleanup_free_ char *options = NULL;
	struct job *j = NULL;
	const char *path;
	int r;

	r = definitions_call(def, start, &path, &options);
	if (r >= 0)
		r = path ? job_new(m, start ? JOB_ASSIGN : JOB_RELEASE, path, &j) : -EINVAL;
	if (r < 0)
		return r;
	free(j->options);
	j->options = TAKE_PTR(options);
	j->keep_definition = true;
	*ret = j;
	return 0;
}

/*
 * The UUIDs imported from mdevctl once, kept so that a definition undefined
 * here is not imported again at the next start.
 */
#define IMPORTED_FILE "mdevctl-imported.json"

static json_t *load_imported(struct manager *m)
{
	_cleanup_free_ char *path = NULL;
	json_error_t err;
	json_t *a = NULL;

	if (asprintf(&path, "%s/%s", m->cfg.state_dir, IMPORTED_FILE) < 0)
		return json_array();
	a = json_load_file(path, 0, &err);
	if (!a && access(path, F_OK) < 0)
		return json_array();
	if (!json_is_array(a)) {
		log_warning("%s: %s; ignoring it: mdevctl's definitions undefined here may be "
			    "imported again",
			    path, a ? "not a JSON array" : err.text);
		json_decref(a);
		a = json_array();
	}
	return a;
}

static void save_imported(struct manager *m, json_t *a)
{
	_cleanup_free_ char *text = json_dumps(a, JSON_INDENT(2));
	int r = text ? write_file_atomic(m->cfg.state_dir, IMPORTED_FILE, text) : -ENOMEM;

	if (r < 0)
		log_warning_errno(r, "%s/%s: cannot record the imported definitions, ignoring: %m",
				  m->cfg.state_dir, IMPORTED_FILE);
}

static bool json_array_contains(json_t *a, const char *s)
{
	json_t *e;
	size_t i;

	json_array_foreach(a, i, e)
		if (json_is_string(e) && streq(json_string_value(e), s))
			return true;
	return false;
}

/*
 * Whether vfiod's copy of mdevctl entry E follows mdevctl's file: it was
 * imported from that file (its "source" is the file) and the file was
 * written after vfiod's copy (an edit with mdevctl since the import, or
 * since the last change made through vfiod).  The newer of the two wins.
 */
static bool mdevctl_newer(struct manager *m, json_t *e, const char *uuid, const char *src)
{
	_cleanup_(json_decrefp) json_t *def = NULL;
	char err[256];
	int64_t ours;

	if (definition_load(m->definitions_dir, uuid, &def, err, sizeof(err)) < 0 ||
	    !streq(json_string_value(json_object_get(def, "source")) ?: "", src) ||
	    definition_mtime(m->definitions_dir, uuid, &ours) < 0)
		return false;
	return json_integer_value(json_object_get(e, "mtime_ns")) > ours;
}

/*
 * mdevctl's definitions become vfiod's: each one not defined here yet is
 * copied (with "source" naming its file), so that a host can move from
 * mdevctl without rewriting them, and mdevctl's later edits of that file
 * are followed while it is newer than vfiod's copy (see vfiod(8)).  A UUID
 * defined here by other means wins; one imported once and undefined here
 * is not imported again.
 */
int store_import_mdevctl(struct manager *m)
{
	/* Files under /etc and links of /sys/class/mdev_bus: nothing here waits for a device. */
	struct vfiod_ctx *ctx = ctx_pool_get(m);
	_cleanup_free_ char *json = NULL;
	json_t *a, *e, *seen;
	bool changed = false;
	size_t i;
	int r;

	if (!ctx)
		return -ENOMEM;
	r = vfiod_mdevctl_read(ctx, NULL, &json);
	if (r < 0) {
		log_warning("cannot read mdevctl's definitions: %s, ignoring",
			    vfiod_ctx_get_error(ctx) ?: strerror(-r));
		ctx_pool_put(m, ctx);
		return 0;
	}
	ctx_pool_put(m, ctx);
	a = json_loads(json, 0, NULL);
	seen = load_imported(m);
	json_array_foreach(a, i, e)
	{
		const char *uuid = json_string_value(json_object_get(e, "uuid"));
		const char *src = json_string_value(json_object_get(e, "source"));
		const char *err = json_string_value(json_object_get(e, "error"));
		bool update = false;
		json_t *def, *opts;

		if (err) {
			log_warning("%s: not imported: %s", src ?: "mdevctl definition", err);
			continue;
		}
		if (!uuid || !src)
			continue;
		if (store_exists(m, uuid))
			update = mdevctl_newer(m, e, uuid, src);
		if (!update && (store_exists(m, uuid) || json_array_contains(seen, uuid)))
			continue;
		opts = json_pack("{s:O, s:s}", "type", json_object_get(e, "type"), "uuid", uuid);
		if (opts && json_array_size(json_object_get(e, "attrs")) > 0)
			json_object_set(opts, "attrs", json_object_get(e, "attrs"));
		def = opts ? json_pack("{s:s, s:s, s:O, s:o, s:{s:s, s:{}}, s:O, s:s?}", "name", uuid,
				       "kind", "mdev", "path", json_object_get(e, "parent_path"),
				       "options", opts, "undo", "path", uuid, "options", "start",
				       json_object_get(e, "start"), "source", src)
			   : NULL;
		r = def ? definition_save(m->definitions_dir, def) : -ENOMEM;
		json_decref(def);
		if (r < 0)
			log_error_errno(r, "%s: cannot import it into %s: %m", src, m->definitions_dir);
		else if (update)
			log_notice("%s: changed with mdevctl since vfiod's copy; definition of %s "
				   "updated from it (start %s)", src, uuid,
				   json_string_value(json_object_get(e, "start")) ?: "?");
		else {
			log_notice("%s: imported mdevctl's definition of %s (start %s)", src, uuid,
				   json_string_value(json_object_get(e, "start")) ?: "?");
			json_array_append_new(seen, json_string(uuid));
			changed = true;
		}
	}
	json_decref(a);
	if (changed)
		save_imported(m, seen);
	json_decref(seen);
	return 0;
}

int store_apply(struct manager *m)
{
	json_t *defs = store_list(m), *o;
	size_t i;

	json_array_foreach(defs, i, o)
	{
		struct job *j = NULL;
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *start = json_string_value(json_object_get(o, "start"));
		int r;

		if (start && streq(start, "manual"))
			continue;
		r = store_job(m, o, true, &j);
		if (r < 0) {
			json_decref(defs);
			return r;
		}
		j->trigger = VFIOD_TRIGGER_START;
		log_info("%s: making it again, as defined", name);
		job_submit(m, j, "making its definition");
	}
	json_decref(defs);
	return 0;
}
