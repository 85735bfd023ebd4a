/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The worker thread of one job: the operation its task resolved, run on the
 * context it was resolved with (the job's alone until it ends: contexts are
 * not thread-safe), its journal, and the state afterwards, all written into
 * the job, which goes back to the event loop through the pipe.  Nothing
 * here touches the manager.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bus-names.h"
#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

static void set_step(struct job *j, const char *step)
{
	pthread_mutex_lock(&j->lock);
	snprintf(j->step, sizeof(j->step), "%s", step);
	pthread_mutex_unlock(&j->lock);
}

/*
 * libvfiod calls this as an operation over several devices goes: the
 * figures for the event loop, which signals them, and a wake-up.
 */
static void on_progress(void *userdata, const char *operation, const char *device,
			unsigned int done, unsigned int total)
{
	struct job *j = userdata;
	uint64_t one = 1;

	(void)operation;
	pthread_mutex_lock(&j->lock);
	j->done = done;
	j->total = total;
	snprintf(j->member, sizeof(j->member), "%s", device ? device : "");
	j->progress_seq++;
	pthread_mutex_unlock(&j->lock);
	/* An eventfd's counter does not fill; a failure costs one signal, never the job. */
	if (write(j->progress_fd, &one, sizeof(one)) < 0)
		log_full(LOG_DEBUG, negative_errno(), "cannot wake the event loop for progress: %m");
}

/*
 * The journal entry of NAME in this job, created on first use: for the
 * job's own device, what it was asked and how to undo it; for the other
 * devices an operation touches (group members, VFs), PCI assignments,
 * "within" the job's own.  Each keeps the job's key.
 */
static json_t *journal_entry(struct job *j, const char *operation, const char *name)
{
	bool own = streq(name, j->name);
	json_t *e = json_object_get(j->journal, name);

	if (e)
		return e;
	/* The job's own entry says what was asked, whichever kind's step comes first. */
	if (own)
		operation = j->op == JOB_ASSIGN ? "assign" : "release";
	e = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:o, s:O?, s:s, s:s*, s:s, s:[]}", "operation",
		      operation, "kind", own ? j->kind : "pci", "name", name, "device",
		      own ? j->syspath : NULL, "input", own ? j->input : name, "options",
		      own ? json_loads(j->options, 0, NULL) : json_object(), "undo",
		      own ? json_object_get(j->target, "undo") : NULL, "key", j->key, "within",
		      own ? NULL : j->name, "step", "start", "steps");
	if (e)
		json_object_set_new(j->journal, name, e);
	return e;
}

/*
 * libvfiod calls this before each step: record the step durably, then let
 * it happen.  Test builds abort here when VFIOD_ABORT_AT names the step.
 */
static int on_step(void *userdata, const char *operation, const char *device, const char *step)
{
	struct job *j = userdata;

	set_step(j, step);
	if (j->op != JOB_RECOVER && j->journal) {
		json_t *e;
		int r;

		/*
		 * The intent, durable before the first step: libvfiod changes
		 * nothing before it announces one, so an operation refused or
		 * failed before that leaves no journal to write and remove.  Its
		 * first step on its own device is written with it, in one go.
		 */
		if (!json_object_get(j->journal, j->name) && !streq(device, j->name)) {
			e = journal_entry(j, NULL, j->name);
			r = e ? journal_write(j->journal_dir, e) : -ENOMEM;
			if (r < 0) {
				log_error_errno(r, "%s: cannot write the journal in %s, stopping "
						"before step %s: %m",
						j->syspath ? j->syspath : j->input, j->journal_dir,
						step);
				return r;
			}
		}
		e = journal_entry(j, operation, device);
		if (e) {
			json_object_set_new(e, "step", json_string(step));
			json_array_append_new(json_object_get(e, "steps"), json_string(step));
			r = journal_write(j->journal_dir, e);
			if (r < 0) {
				log_error_errno(r,
						"%s: cannot write the journal in %s, stopping "
						"before step %s: %m",
						device, j->journal_dir, step);
				return r;
			}
		}
	}
#ifdef VFIOD_TEST_HOOKS
	if (j->abort_at) {
		char want[128];

		snprintf(want, sizeof(want), "%s:%s", operation, step);
		if (streq(j->abort_at, want)) {
			log_notice("%s: aborting before %s, as %s asks", device, want,
				   VFIOD_ENV_ABORT_AT);
			abort();
		}
	}
#endif
	return 0;
}

/* Bring a device an earlier run left half-way to a consistent end. */
static int worker_recover(struct job *j, struct vfiod_ctx *ctx, struct vfiod_device *dev)
{
	int r;

	if (!dev)
		return -ENODEV;
	/* Whether libvfiod recorded it, i.e. changed anything, before the interruption. */
	if (streq(j->journal_op, "assign") && vfiod_recorded(ctx, j->name) == 0) {
		log_info("%s: the interrupted assign had changed nothing", j->syspath);
		j->json = strdup("{}");
		return 0;
	}
	/*
	 * An interrupted assign is rolled back, an interrupted release finished;
	 * libvfiod also restores an override left by an assign stopped before unbind.
	 */
	r = vfiod_device_release(dev, 0, &j->json);
	if (r == -ENOENT)
		r = 0; /* back on its own driver, nothing of ours left */
	if (r >= 0)
		log_info("%s: interrupted %s %s; now on %s", j->syspath, j->journal_op,
			 streq(j->journal_op, "assign") ? "rolled back" : "finished",
			 vfiod_device_get_driver(dev) ? vfiod_device_get_driver(dev) : "no driver");
	return r;
}

void *worker_main(void *userdata)
{
	struct job *j = userdata;
	/* The context the operation was resolved with, now the worker's. */
	struct vfiod_ctx *ctx = vfiod_op_get_ctx(j->vop);
	struct vfiod_device *dev = NULL;
	char *err = NULL;
	const char *msg;
	int r = 0;
	JOB_LOG_CONTEXT(j);

	j->journal = json_object();
	vfiod_ctx_set_log_priority(ctx, j->log_priority);
	vfiod_ctx_set_step_fn(ctx, on_step, j);
	vfiod_ctx_set_progress_fn(ctx, on_progress, j);

	if (j->op == JOB_RECOVER && streq(j->kind, "pci"))
		r = vfiod_device_new(ctx, j->syspath, &dev);
	if (r >= 0) {
		switch (j->op) {
		case JOB_ASSIGN:
			r = vfiod_op_run(j->vop, &j->json);
			break;
		case JOB_RELEASE:
			r = vfiod_op_run(j->vop, &j->json);
			if (r == -ENOENT && j->keep_definition && !j->msg)
				r = 0; /* recovery: nothing was left to give back */
			break;
		case JOB_RECOVER:
			r = worker_recover(j, ctx, dev);
			break;
		}
	}
	j->r = r;
	msg = vfiod_ctx_get_error(ctx);
	if (r < 0 && msg)
		err = strdup(msg);
	j->error = err;
	set_step(j, "done");

	/* Done, one way or the other: the journal has served, unless recovery must retry. */
	if (j->op != JOB_RECOVER || r >= 0) {
		const char *name;
		json_t *e;

		json_object_foreach(j->journal, name, e)
		{
			(void)journal_remove(j->journal_dir, name);
		}
		/*
		 * The entry a recovery was made from: overwritten only if the
		 * recovery took a step, and a recovery that finds nothing left
		 * to do takes none.
		 */
		if (j->journal_file)
			(void)remove_file_durable(j->journal_dir, j->journal_file);
	}
	/*
	 * What libvfiod kept of a failed operation, and the device as it is
	 * now; a success says it all itself.
	 */
	if (r < 0 && !dev && streq(j->kind, "pci"))
		(void)vfiod_device_new(ctx, j->syspath, &dev);
	if (dev && (r < 0 || j->op == JOB_RECOVER))
		(void)vfiod_device_to_json(dev, &j->after_json);
	if (r < 0)
		(void)vfiod_list(ctx, &j->list_json);
	vfiod_device_unref(dev);
	vfiod_ctx_set_step_fn(ctx, NULL, NULL);
	vfiod_ctx_set_progress_fn(ctx, NULL, NULL);
	/* Hand the job back; from here on it belongs to the event loop. */
	thread_hand_back(j->notify_fd, j, j->syspath ? j->syspath : j->input);
	return NULL;
}
