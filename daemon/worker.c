/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The worker thread of one job: a libvfiod context of its own (contexts are
 * not thread-safe), the operation, its journal, and the state afterwards,
 * all written into the job, which goes back to the event loop through the
 * pipe.  Nothing here touches the manager.
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
#include "log.h"
#include "macro.h"
#include "vfiod.h"

static void set_step(struct job *j, const char *step)
{
	pthread_mutex_lock(&j->lock);
	snprintf(j->step, sizeof(j->step), "%s", step);
	pthread_mutex_unlock(&j->lock);
}

/* The journal entry of NAME in this job, created on first use. */
static json_t *journal_entry(struct job *j, const char *operation, const char *name)
{
	json_t *e = json_object_get(j->journal, name);

	if (e)
		return e;
	e = json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:s, s:[]}", "operation", operation, "name",
		      name, "device", streq(name, j->name) ? j->syspath : NULL, "driver",
		      streq(name, j->name) ? j->driver : NULL, "group", j->whole_group, "step",
		      "start", "steps");
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
		json_t *e = journal_entry(j, operation, device);
		int r;

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

/* What libvfiod recorded about NAME before it changed anything, if it did. */
struct record_info {
	bool exists;
	char *previous_override;
};

static void record_read(struct job *j, struct record_info *ri)
{
	_cleanup_free_ char *path = NULL;
	json_t *o, *v;

	*ri = (struct record_info){};
	if (asprintf(&path, "%s/%s.json", j->records_dir, j->name) < 0)
		return;
	o = json_load_file(path, 0, NULL);
	if (!o)
		return;
	ri->exists = true;
	v = json_object_get(o, "previous_override");
	if (json_is_string(v))
		ri->previous_override = strdup(json_string_value(v));
	json_decref(o);
}

/*
 * An assign interrupted after set-override and before unbind leaves the
 * device on its driver with driver_override naming the vfio driver; the
 * next probe would hand it to vfio.  libvfiod's release leaves that alone
 * (the device is not assigned), so put the override back here, through the
 * device's directory.
 */
static int restore_override(struct vfiod_ctx *ctx, struct job *j, const char *previous)
{
	_cleanup_free_ char *dir = NULL, *json = NULL;
	_cleanup_close_ int dfd = -1, fd = -1;
	struct vfiod_device *dev = NULL;
	const char *now, *want = previous ? previous : "\n";
	json_t *o;
	int r;

	r = vfiod_device_new(ctx, j->syspath, &dev);
	if (r < 0)
		return r;
	r = vfiod_device_to_json(dev, &json);
	vfiod_device_unref(dev);
	if (r < 0)
		return r;
	o = json_loads(json, 0, NULL);
	now = json_string_value(json_object_get(o, "driver_override"));
	if ((!now && !previous) || (now && previous && streq(now, previous))) {
		json_decref(o);
		return 0;
	}
	if (json_array_size(json_object_get(o, "vfio")) > 0) {
		json_decref(o);
		return 0; /* on a vfio driver: the override is not the problem */
	}
	json_decref(o);
	if (asprintf(&dir, "%s%s", vfiod_ctx_get_sysfs_root(ctx), j->syspath + strlen("/sys")) < 0)
		return -ENOMEM;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	fd = openat(dfd, "driver_override", O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || write(fd, want, strlen(want)) != (ssize_t)strlen(want))
		return negative_errno();
	log_notice("%s: driver_override restored to %s", j->syspath, previous ? previous : "none");
	return 0;
}

/* Bring a device an earlier run left half-way to a consistent end. */
static int worker_recover(struct vfiod_ctx *ctx, struct job *j, struct vfiod_device *dev)
{
	struct record_info ri;
	int r;

	record_read(j, &ri);
	if (streq(j->journal_op, "assign") && !ri.exists) {
		log_info("%s: the interrupted assign had changed nothing", j->syspath);
		j->json = strdup("{}");
		return 0;
	}
	/* An interrupted assign is rolled back, an interrupted release finished. */
	r = vfiod_device_release(dev, 0, &j->json);
	if (r == -ENOENT)
		r = 0; /* on its own driver (again): only the override may be left */
	if (r >= 0 && ri.exists)
		r = restore_override(ctx, j, ri.previous_override);
	if (r >= 0)
		log_info("%s: interrupted %s %s; now on %s", j->syspath, j->journal_op,
			 streq(j->journal_op, "assign") ? "rolled back" : "finished",
			 vfiod_device_get_driver(dev) ? vfiod_device_get_driver(dev) : "no driver");
	free(ri.previous_override);
	return r;
}

static void log_lib(void *userdata, int priority, const char *format, va_list ap)
{
	(void)userdata;
	log_fullv(priority, format, ap);
}

void *worker_main(void *userdata)
{
	struct job *j = userdata;
	struct vfiod_ctx *ctx = NULL;
	struct vfiod_device *dev = NULL;
	char *err = NULL;
	const char *msg;
	ssize_t n;
	int r;

	j->journal = json_object();
	r = vfiod_ctx_new(&ctx);
	if (r < 0) {
		j->r = r;
		goto out;
	}
	vfiod_ctx_set_log_fn(ctx, log_lib, NULL);
	vfiod_ctx_set_log_priority(ctx, j->log_priority);
	vfiod_ctx_set_step_fn(ctx, on_step, j);

	r = vfiod_device_new(ctx, j->syspath, &dev);
	if (r >= 0 && j->op != JOB_RECOVER) {
		/* The intent, durable before the first step. */
		json_t *e = journal_entry(j, j->op == JOB_ASSIGN ? "assign" : "release", j->name);

		r = e ? journal_write(j->journal_dir, e) : -ENOMEM;
		if (r < 0)
			log_error_errno(r, "%s: cannot write the journal in %s: %m", j->syspath,
					j->journal_dir);
	}
	if (r >= 0) {
		switch (j->op) {
		case JOB_ASSIGN:
			r = vfiod_device_assign(dev, j->driver,
						j->whole_group ? VFIOD_ASSIGN_GROUP : 0, &j->json);
			break;
		case JOB_RELEASE:
			r = vfiod_device_release(dev, 0, &j->json);
			break;
		case JOB_RECOVER:
			r = worker_recover(ctx, j, dev);
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
		if (j->op == JOB_RECOVER)
			(void)journal_remove(j->journal_dir, j->name);
	}
	if (dev)
		(void)vfiod_device_to_json(dev, &j->after_json);
	(void)vfiod_list(ctx, &j->list_json);
out:
	vfiod_device_unref(dev);
	vfiod_ctx_unref(ctx);
	/* Hand the job back; from here on it belongs to the event loop. */
	do
		n = write(j->notify_fd, &j, sizeof(j));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(j))
		log_error_errno(negative_errno(), "%s: cannot hand the finished job back: %m",
				j->syspath);
	return NULL;
}
