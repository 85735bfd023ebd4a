/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The journal of operations in flight: <runtime>/journal/<name>.json, one
 * entry a device, written atomically before the first step (the intent) and
 * after libvfiod announces each further step, removed when the operation
 * has ended.  An entry found at start means vfiod died in the middle:
 *
 *   {"operation": "assign", "name": "0000:03:00.0", "device": "/sys/...",
 *    "driver": null, "group": false, "step": "unbind",
 *    "steps": ["load-module", "record", "set-override", "unbind"]}
 *
 * "step" is the last step libvfiod was about to take.  libvfiod's own
 * records (<runtime>/assigned/) say what the device had before.  Entries
 * of other kinds than "pci" also keep "input" and "options" (the call) and
 * "undo" (the destroy that gives back what it makes): an interrupted create
 * is undone, an interrupted destroy run again.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-names.h"
#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"

static bool valid_name(const char *name)
{
	return name && *name && !strchr(name, '/') && name[0] != '.';
}

int journal_write(const char *dir, json_t *entry)
{
	_cleanup_free_ char *text = NULL, *file = NULL;
	const char *name = json_string_value(json_object_get(entry, "name"));

	if (!valid_name(name))
		return -EINVAL;
	text = json_dumps(entry, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text || asprintf(&file, "%s.json", name) < 0)
		return -ENOMEM;
	return write_file_atomic(dir, file, text);
}

int journal_remove(const char *dir, const char *name)
{
	_cleanup_free_ char *file = NULL;

	if (!valid_name(name))
		return -EINVAL;
	if (asprintf(&file, "%s.json", name) < 0)
		return -ENOMEM;
	return remove_file_durable(dir, file);
}

static int recover_one(struct manager *m, const char *file)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(job_freep) struct job *j = NULL;
	_cleanup_free_ char *path = NULL;
	const char *op, *name, *device, *kind;
	json_error_t jerr;
	json_t *o;
	int r;

	if (asprintf(&path, "%s/%s", m->journal_dir, file) < 0)
		return -ENOMEM;
	o = json_load_file(path, 0, &jerr);
	op = json_string_value(json_object_get(o, "operation"));
	name = json_string_value(json_object_get(o, "name"));
	device = json_string_value(json_object_get(o, "device"));
	kind = json_string_value(json_object_get(o, "kind"));
	if (!o || !op || !valid_name(name) || (!streq(op, "assign") && !streq(op, "release"))) {
		log_error("%s: not a journal entry, removing it%s%s", path, o ? "" : ": ",
			  o ? "" : jerr.text);
		json_decref(o);
		return remove_file_durable(m->journal_dir, file);
	}
	log_notice("%s: vfiod stopped in the middle of %s at step %s; recovering",
		   device ? device : name, op,
		   json_string_value(json_object_get(o, "step")) ?: "?");
	if (!kind || streq(kind, "pci")) {
		r = job_new(m, JOB_RECOVER, device ? device : name, &j);
		if (r >= 0 && !(j->journal_op = strdup(op)))
			r = -ENOMEM;
	} else {
		/* Other kinds: an interrupted create is undone, an interrupted destroy finished. */
		json_t *call = streq(op, "assign") ? json_object_get(o, "undo") : o;
		const char *target = json_string_value(
			json_object_get(call, streq(op, "assign") ? "path" : "input"));

		r = target ? job_new(m, JOB_RELEASE, target, &j) : -EBADMSG;
		if (r >= 0) {
			j->keep_definition = true;
			json_t *opts = json_object_get(call, "options");

			j->options = opts ? json_dumps(opts, JSON_COMPACT) : strdup("{}");
			if (!j->options)
				r = -ENOMEM;
		}
	}
	json_decref(o);
	if (r < 0)
		return r;
	j->trigger = VFIOD_TRIGGER_START;
	r = job_submit(m, j, &error);
	if (r < 0) {
		log_error("%s: cannot recover: %s; dropping the journal entry", j->input,
			  error.message ?: strerror(-r));
		return remove_file_durable(m->journal_dir, file);
	}
	TAKE_PTR(j);
	return 0;
}

int journal_recover(struct manager *m)
{
	_cleanup_closedir_ DIR *d = opendir(m->journal_dir);
	struct dirent *de;

	if (!d)
		return errno == ENOENT
			       ? 0
			       : log_error_errno(negative_errno(), "%s: %m", m->journal_dir);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (de->d_name[0] == '.' || l < 6 || !streq(de->d_name + l - 5, ".json"))
			continue;
		(void)recover_one(m, de->d_name);
	}
	return 0;
}
