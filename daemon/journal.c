/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The journal of operations in flight: <runtime>/journal/<name>.json, one
 * entry a device, written atomically with the first step libvfiod announces
 * (the intent and that step at once: libvfiod changes nothing before it
 * announces a step, so an operation that changes nothing writes nothing)
 * and after each further step, removed when the operation has ended.  An
 * entry found at start means vfiod died in the middle:
 *
 *   {"operation": "assign", "name": "0000:03:00.0", "device": "/sys/...",
 *    "driver": null, "group": false, "step": "unbind",
 *    "steps": ["load-module", "record", "set-override", "unbind"]}
 *
 * "step" is the last step libvfiod was about to take.  libvfiod's own
 * records (<runtime>/assigned/) say what the device had before.  Entries
 * of other kinds than "pci" also keep "input" and "options" (the call) and
 * "undo" (the destroy that gives back what it makes): an interrupted create
 * is undone, an interrupted destroy run again.  Every entry keeps "key", the
 * serialisation key of the operation that wrote it; an entry of a device the
 * operation touched on its way (a VF it assigned) names that operation's
 * device in "within".
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

void journal_item_done(struct journal_item *it)
{
	free(it->op);
	free(it->name);
	free(it->device);
	free(it->step);
	free(it->key);
	free(it->within);
	free(it->target);
	free(it->options);
	*it = (struct journal_item){};
}

static int dup_or_null(const char *s, char **ret)
{
	*ret = NULL;
	if (s && !(*ret = strdup(s)))
		return -ENOMEM;
	return 0;
}

int journal_item_parse(json_t *o, struct journal_item *it, char *err, size_t errsize)
{
	const char *op = json_string_value(json_object_get(o, "operation"));
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *device = json_string_value(json_object_get(o, "device"));
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *step = json_string_value(json_object_get(o, "step"));
	const char *key = json_string_value(json_object_get(o, "key"));
	const char *within = json_string_value(json_object_get(o, "within"));
	int r;

	*it = (struct journal_item){};
	if (!json_is_object(o)) {
		snprintf(err, errsize, "not a JSON object");
		return -EBADMSG;
	}
	if (!op || (!streq(op, "assign") && !streq(op, "release"))) {
		snprintf(err, errsize, "\"operation\" is not \"assign\" or \"release\"");
		return -EBADMSG;
	}
	if (!valid_name(name)) {
		snprintf(err, errsize, "\"name\" is missing or not a valid name");
		return -EBADMSG;
	}
	if (!json_is_null(json_object_get(o, "within") ?: json_null()) && !valid_name(within)) {
		snprintf(err, errsize, "\"within\" is not a valid name");
		return -EBADMSG;
	}
	if (!json_is_null(json_object_get(o, "key") ?: json_null()) && (!key || !*key)) {
		snprintf(err, errsize, "\"key\" is not a non-empty string");
		return -EBADMSG;
	}
	it->pci = !kind || streq(kind, "pci");
	if (!it->pci) {
		/* Other kinds: an interrupted create is undone, an interrupted destroy finished. */
		json_t *call = streq(op, "assign") ? json_object_get(o, "undo") : o;
		const char *target = json_string_value(
			json_object_get(call, streq(op, "assign") ? "path" : "input"));
		json_t *opts = json_object_get(call, "options");

		if (!target) {
			snprintf(err, errsize, "no %s to %s",
				 streq(op, "assign") ? "\"undo\" path" : "\"input\"",
				 streq(op, "assign") ? "undo the create with" : "run the destroy again on");
			return -EBADMSG;
		}
		if (opts && !json_is_object(opts)) {
			snprintf(err, errsize, "\"options\" is not an object");
			return -EBADMSG;
		}
		r = dup_or_null(target, &it->target);
		if (r >= 0) {
			it->options = opts ? json_dumps(opts, JSON_COMPACT) : strdup("{}");
			if (!it->options)
				r = -ENOMEM;
		}
		if (r < 0)
			goto fail;
	}
	r = dup_or_null(op, &it->op);
	if (r >= 0)
		r = dup_or_null(name, &it->name);
	if (r >= 0)
		r = dup_or_null(device, &it->device);
	if (r >= 0)
		r = dup_or_null(step, &it->step);
	if (r >= 0)
		r = dup_or_null(key, &it->key);
	if (r >= 0)
		r = dup_or_null(within, &it->within);
	if (r >= 0)
		return 0;
fail:
	journal_item_done(it);
	return r;
}

/* The recovery job of the entry in FILE, not queued yet; *RET stays NULL when there is none. */
static int recovery_job(struct manager *m, const char *file, struct job **ret, bool *within)
{
	_cleanup_(job_freep) struct job *j = NULL;
	_cleanup_free_ char *path = NULL;
	struct journal_item it;
	json_error_t jerr;
	char err[256];
	json_t *o;
	int r;

	if (asprintf(&path, "%s/%s", m->journal_dir, file) < 0)
		return -ENOMEM;
	o = json_load_file(path, 0, &jerr);
	if (!o)
		snprintf(err, sizeof(err), "%s", jerr.text);
	r = o ? journal_item_parse(o, &it, err, sizeof(err)) : -EBADMSG;
	json_decref(o);
	if (r == -EBADMSG) {
		log_error("%s: not a journal entry, removing it: %s", path, err);
		return remove_file_durable(m->journal_dir, file);
	}
	if (r < 0)
		return r;
	if (it.within)
		log_notice("%s: vfiod stopped in the middle of %s at step %s, within %s; recovering",
			   it.device ?: it.name, it.op, it.step ?: "?", it.within);
	else
		log_notice("%s: vfiod stopped in the middle of %s at step %s; recovering",
			   it.device ?: it.name, it.op, it.step ?: "?");
	*within = it.within != NULL;
	if (it.pci) {
		r = job_new(m, JOB_RECOVER, it.device ?: it.name, &j);
		if (r >= 0)
			j->journal_op = TAKE_PTR(it.op);
	} else {
		r = job_new(m, JOB_RELEASE, it.target, &j);
		if (r >= 0) {
			j->keep_definition = true;
			j->options = TAKE_PTR(it.options);
		}
	}
	if (r >= 0) {
		j->journal_key = TAKE_PTR(it.key);
		j->trigger = VFIOD_TRIGGER_START;
		*ret = TAKE_PTR(j);
	}
	journal_item_done(&it);
	return r;
}

static void recovery_submit(struct manager *m, struct job *j, char *file)
{
	/* Refused (the device is gone, say): the entry is dropped with a log line. */
	j->journal_file = file;
	job_submit(m, j, "recovery");
}

/*
 * Each entry read once, then queued in two rounds: the devices an operation
 * touched (a VF it assigned, a group member) first, then the operations
 * themselves.  Recoveries keep their operation's key, so a vfs create's undo
 * runs after its VFs are given back, and sees no VF of its own left on vfio.
 */
int journal_recover(struct manager *m)
{
	_cleanup_closedir_ DIR *d = opendir(m->journal_dir);
	struct recovery {
		struct job *job;
		char *file;
		bool within;
	} *rs = NULL;
	size_t n = 0;
	struct dirent *de;

	if (!d)
		return errno == ENOENT
			       ? 0
			       : log_error_errno(negative_errno(), "%s: %m", m->journal_dir);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		struct recovery r = {};
		void *grown;

		if (de->d_name[0] == '.' || l < 6 || !streq(de->d_name + l - 5, ".json"))
			continue;
		if (recovery_job(m, de->d_name, &r.job, &r.within) < 0 || !r.job)
			continue;
		r.file = strdup(de->d_name);
		grown = r.file ? reallocarray(rs, n + 1, sizeof(*rs)) : NULL;
		if (!grown) {
			log_error("%s: cannot recover: %s", de->d_name, strerror(ENOMEM));
			free(r.file);
			job_free(r.job);
			continue;
		}
		rs = grown;
		rs[n++] = r;
	}
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < n; i++)
			if (rs[i].within == (round == 0))
				recovery_submit(m, rs[i].job, rs[i].file);
	free(rs);
	return 0;
}
