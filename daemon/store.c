/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistent definitions: <state>/devices/<name>.json, written atomically
 * when Create is called with persistent=true, removed by Destroy, applied
 * again at every start.
 *
 *   {"device": "/sys/devices/...", "name": "0000:03:00.0", "driver": null, "group": false}
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"

static int def_file(const char *name, char **ret)
{
	if (!name || !*name || strchr(name, '/') || name[0] == '.')
		return -EINVAL;
	return asprintf(ret, "%s.json", name) < 0 ? -ENOMEM : 0;
}

int store_save(struct manager *m, const char *name, const char *syspath, const char *driver,
	       bool whole_group)
{
	_cleanup_free_ char *file = NULL, *text = NULL;
	json_t *o;
	int r;

	r = def_file(name, &file);
	if (r < 0)
		return r;
	o = json_pack("{s:s, s:s, s:s?, s:b}", "device", syspath, "name", name, "driver", driver,
		      "group", whole_group);
	text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!text)
		return -ENOMEM;
	r = write_file_atomic(m->definitions_dir, file, text);
	if (r >= 0)
		log_info("%s: definition stored, it will be assigned again at every start",
			 syspath);
	return r;
}

int store_remove(struct manager *m, const char *name)
{
	_cleanup_free_ char *file = NULL;
	int r = def_file(name, &file);

	if (r < 0)
		return r;
	if (!store_exists(m, name))
		return 0;
	r = remove_file_durable(m->definitions_dir, file);
	if (r >= 0)
		log_info("%s: definition removed", name);
	return r;
}

bool store_exists(struct manager *m, const char *name)
{
	_cleanup_free_ char *file = NULL, *path = NULL;

	if (def_file(name, &file) < 0 || asprintf(&path, "%s/%s", m->definitions_dir, file) < 0)
		return false;
	return access(path, F_OK) == 0;
}

/* Every definition, in name order. */
json_t *store_list(struct manager *m)
{
	struct dirent **list = NULL;
	json_t *a = json_array();
	int n;

	n = scandir(m->definitions_dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL;
		const char *f = list[i]->d_name;
		size_t l = strlen(f);
		json_error_t err;
		json_t *o;

		if (f[0] != '.' && l > 5 && streq(f + l - 5, ".json") &&
		    asprintf(&path, "%s/%s", m->definitions_dir, f) >= 0) {
			o = json_load_file(path, 0, &err);
			if (json_is_object(o) && json_is_string(json_object_get(o, "name")))
				json_array_append_new(a, o);
			else {
				log_warning("%s: not a definition (%s), ignoring", path, err.text);
				json_decref(o);
			}
		}
		free(list[i]);
	}
	free(list);
	return a;
}

int store_apply(struct manager *m)
{
	json_t *defs = store_list(m), *o;
	size_t i;

	json_array_foreach(defs, i, o)
	{
		_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
		_cleanup_(job_freep) struct job *j = NULL;
		const char *device = json_string_value(json_object_get(o, "device"));
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *driver = json_string_value(json_object_get(o, "driver"));
		int r;

		r = job_new(m, JOB_ASSIGN, device ? device : name, &j);
		if (r < 0)
			return r;
		j->whole_group = json_is_true(json_object_get(o, "group"));
		if (driver && !(j->driver = strdup(driver)))
			return -ENOMEM;
		r = job_submit(m, j, &error);
		if (r < 0) {
			log_warning("%s: defined but not assigned: %s", device ? device : name,
				    error.message ?: strerror(-r));
			continue;
		}
		log_info("%s: assigning again, as defined", j->syspath);
		TAKE_PTR(j);
	}
	json_decref(defs);
	return 0;
}
