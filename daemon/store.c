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

#include "bus-names.h"
#include "daemon.h"
#include "definitions.h"
#include "log.h"
#include "macro.h"

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
	json_t *call = start ? def : json_object_get(def, "undo");
	_cleanup_free_ char *options = json_dumps(json_object_get(call, "options"), JSON_COMPACT);
	struct job *j = NULL;
	int r;

	if (!options)
		return -ENOMEM;
	r = job_new(m, start ? JOB_ASSIGN : JOB_RELEASE,
		    json_string_value(json_object_get(call, "path")), &j);
	if (r < 0)
		return r;
	j->options = TAKE_PTR(options);
	j->keep_definition = true;
	*ret = j;
	return 0;
}

int store_apply(struct manager *m)
{
	json_t *defs = store_list(m), *o;
	size_t i;

	json_array_foreach(defs, i, o)
	{
		_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
		_cleanup_(job_freep) struct job *j = NULL;
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
		r = job_submit(m, j, &error);
		if (r < 0) {
			log_warning("%s: defined but not made: %s", name,
				    error.message ?: strerror(-r));
			continue;
		}
		log_info("%s: making it again, as defined", name);
		TAKE_PTR(j);
	}
	json_decref(defs);
	return 0;
}
