/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Jobs: one libvfiod operation each, and the queue they wait in, which only
 * this file walks.  A job is queued as it arrives and resolved by a task
 * (what it acts on is read in a thread, never on the event loop); its key
 * is then that of the hardware it changes (the IOMMU group of the PCI
 * function it is, or is on or under).  Jobs with the same key run one after
 * the other, in order of arrival (jobs that share it and name different
 * devices run beside each other: the mdevs of one parent, which the kernel
 * makes side by side); so do the jobs of one caller, and the
 * daemon's own, while an earlier one is still being resolved; others run in
 * parallel, each in a thread of its own.  The event loop arms a timer per
 * running job: when it fires the caller gets org.vfiod1.Error.Timeout, the
 * device State=failed, and the hardware stays closed (Busy) until the
 * kernel returns and the worker hands the job back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-errors.h"
#include "bus-names.h"
#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

static const char *const op_names[] = {
	[JOB_ASSIGN] = "assign",
	[JOB_RELEASE] = "release",
	[JOB_RECOVER] = "recover",
};

/* What the job does, in its kind's words: a PCI function is assigned, an mdev created. */
const char *job_op_name(const struct job *j)
{
	if (j->op != JOB_RECOVER && j->kind && !streq(j->kind, "pci"))
		return j->op == JOB_ASSIGN ? "create" : "destroy";
	return op_names[j->op];
}

int job_new(struct manager *m, enum job_op op, const char *input, struct job **ret)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->m = m;
	j->op = op;
	j->persistent = -1;
	j->iommu_group = -1;
	j->trigger = VFIOD_TRIGGER_CALL;
	j->notify_fd = -1;
	j->progress_fd = -1;
	j->log_priority = log_get_max_priority();
	pthread_mutex_init(&j->lock, NULL);
	j->input = strdup(input);
	j->journal_dir = strdup(m->journal_dir);
	if (!j->input || !j->journal_dir ||
	    (m->abort_at && !(j->abort_at = strdup(m->abort_at)))) {
		job_free(j);
		return -ENOMEM;
	}
	*ret = j;
	return 0;
}

struct job *job_free(struct job *j)
{
	if (!j)
		return NULL;
	sd_event_source_disable_unref(j->timer);
	sd_bus_message_unref(j->msg);
	free(j->sender);
	closep(&j->notify_fd);
	closep(&j->progress_fd);
	vfiod_op_unref(j->vop);
	ctx_pool_put(j->m, j->ctx);
	free(j->journal_file);
	pthread_mutex_destroy(&j->lock);
	free(j->input);
	free(j->syspath);
	free(j->name);
	free(j->key);
	free(j->reason);
	free(j->kind);
	free(j->options);
	json_decref(j->target);
	free(j->journal_op);
	free(j->journal_key);
	free(j->journal_dir);
	free(j->abort_at);
	free(j->json);
	free(j->error);
	free(j->after_json);
	free(j->list_json);
	json_decref(j->journal);
	free(j);
	return NULL;
}

static void job_unlink(struct manager *m, struct job *j)
{
	for (struct job **p = &m->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			j->next = NULL;
			return;
		}
}

const char *job_device(const struct job *j)
{
	return j->syspath ? j->syspath : j->input;
}

static void job_reply_error(struct job *j, const char *name, const char *fmt, ...) _printf_(3, 4);
static void job_reply_error(struct job *j, const char *name, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (!j->msg)
		return;
	va_start(ap, fmt);
	r = sd_bus_reply_method_errorfv(j->msg, name, fmt, ap);
	va_end(ap);
	if (r < 0)
		log_warning_errno(r, "%s: cannot send the reply: %m", job_device(j));
	j->msg = sd_bus_message_unref(j->msg);
}

/* What the worker is doing now, copied under its lock. */
static void job_get_step(struct job *j, char *buf, size_t size)
{
	pthread_mutex_lock(&j->lock);
	snprintf(buf, size, "%s", j->step);
	pthread_mutex_unlock(&j->lock);
}

/* A job of KEY that timed out and is still in the kernel (one of several sharing KEY). */
static struct job *timed_out_with_key(struct manager *m, const char *key)
{
	for (struct job *j = m->jobs; j; j = j->next)
		if (j->running && j->timed_out && streq(j->key, key))
			return j;
	return NULL;
}

/*
 * Whether resolved A and B must not run at once: the same hardware, unless
 * both share its key (the kernel orders them itself) and name different
 * devices.
 */
static bool job_conflicts(const struct job *a, const struct job *b)
{
	if (!streq(a->key, b->key))
		return false;
	return !(a->key_shared && b->key_shared && !str_eq_or_null(a->name, b->name));
}

/* Whether K, resolved and ahead of J, keeps J waiting: J never overtakes work on its hardware. */
static bool job_holds_back(const struct job *k, const struct job *j)
{
	return streq(k->key, j->key) && (!k->running || job_conflicts(k, j));
}

/*
 * A job that will not run: the caller is answered, the daemon's own work
 * logged with a failed event.
 */
static void job_refuse(struct job *j, const sd_bus_error *e)
{
	if (j->msg) {
		int r = sd_bus_reply_method_error(j->msg, e);

		if (r < 0)
			log_warning_errno(r, "%s: cannot send the reply: %m", job_device(j));
		j->msg = sd_bus_message_unref(j->msg);
	} else {
		j->r = sd_bus_error_get_errno(e) > 0 ? -sd_bus_error_get_errno(e) : -EIO;
		free(j->error);
		j->error = e->message ? strdup(e->message) : NULL;
		log_warning("%s: %s refused: %s", job_device(j), j->fail_log ?: job_op_name(j),
			    e->message ?: strerror(-j->r));
		event_emit_job(j->m, j, NULL);
	}
}

/*
 * A recovery whose device cannot be resolved (it is gone) has nothing left
 * to recover: its journal entry goes.  One refused for a while (a read or
 * the hardware blocked in the kernel) keeps it for the next start.
 */
static void job_drop_journal(struct job *j)
{
	if (!j->journal_file)
		return;
	log_error("%s: cannot recover; dropping the journal entry %s", job_device(j),
		  j->journal_file);
	(void)remove_file_durable(j->journal_dir, j->journal_file);
}

/* In the resolving task's thread: what the job acts on, read once. */
static void resolve_work(struct task *t)
{
	struct job *j = t->userdata;
	const char *msg;

	j->r = vfiod_op_new(t->ctx, j->input, j->options,
			    j->op == JOB_ASSIGN ? 0 : VFIOD_OP_DESTROY, &j->vop);
	msg = vfiod_ctx_get_error(t->ctx);
	if (j->r < 0 && msg)
		j->error = strdup(msg);
}

static int set_str(char **field, const char *value)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
	return value && !*field ? -ENOMEM : 0;
}

/* The job's fields from its resolved operation. */
static int job_take_op(struct job *j)
{
	_cleanup_free_ char *options = NULL, *undo = NULL;
	struct vfiod_op *op = j->vop;
	int r;

	r = vfiod_op_get_options(op, &options);
	if (r >= 0)
		r = vfiod_op_get_undo(op, &undo);
	if (r >= 0)
		r = set_str(&j->kind, vfiod_op_get_kind(op));
	if (r >= 0)
		r = set_str(&j->name, vfiod_op_get_name(op));
	if (r >= 0)
		r = set_str(&j->syspath, vfiod_op_get_device(op));
	/*
	 * A recovery keeps the key of the operation it finishes: a VF's assign
	 * that a vfs create made waits in the PF's queue, ahead of the undo.
	 */
	if (r >= 0)
		r = set_str(&j->key, j->journal_key ?: vfiod_op_get_key(op));
	if (r < 0)
		return r;
	j->key_shared = !j->journal_key && vfiod_op_get_key_shared(op) > 0;
	j->iommu_group = vfiod_op_get_iommu_group(op);
	json_decref(j->target);
	j->target = json_pack("{s:s, s:s, s:o, s:o}", "name", j->name, "kind", j->kind, "options",
			      json_loads(options, 0, NULL), "undo",
			      undo ? json_loads(undo, 0, NULL) : json_null());
	free(j->options);
	j->options = TAKE_PTR(options);
	return j->target ? 0 : -ENOMEM;
}

static void job_enqueued(struct manager *m, sd_bus_message *msg, void *userdata,
			 const sd_bus_error *denied);

static void resolve_end(struct task *t, enum task_end how)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct job *j = t->userdata;
	struct manager *m = t->m;
	int r;

	if (how == TASK_LATE) {
		job_free(j); /* answered with Timeout when it was late already */
		return;
	}
	if (how == TASK_TIMED_OUT) {
		/* Out of the queue; the thread keeps the job until it returns. */
		sd_bus_error_setf(&error, VFIOD_ERROR_TIMEOUT,
				  "%s: reading the device timed out after %.1f s: the kernel "
				  "holds it (its device lock, or a removal under way); nothing "
				  "was changed: try again once the operation holding it ends "
				  "(Describe lists those under way)",
				  j->input, m->cfg.read_timeout_usec / 1e6);
		job_unlink(m, j);
		job_refuse(j, &error);
		return;
	}
	j->ctx = task_take_ctx(t);
	JOB_LOG_CONTEXT(j);
	if (j->r < 0) {
		/* -EINVAL is a bad option; anything else is about the path. */
		bus_error_set(&error, j->r == -EINVAL ? BUS_ERROR_KIND : BUS_ERROR_PATH, j->r,
			      j->error);
		free(j->error);
		j->error = NULL;
		j->r = 0;
		job_unlink(m, j);
		log_info("%s: %s refused: %s", job_device(j), job_op_name(j), error.message);
		job_refuse(j, &error);
		job_drop_journal(j);
		job_free(j);
		return;
	}
	r = job_take_op(j);
	if (r < 0) {
		sd_bus_error_set_errno(&error, r);
		job_unlink(m, j);
		job_refuse(j, &error);
		job_free(j);
		return;
	}
	if (!j->msg) {
		job_enqueued(m, NULL, j, NULL);
		return;
	}
	/* Authorized now that polkit can be told the canonical device and what it makes. */
	const char *details[] = {
		VFIOD_POLKIT_DETAIL_PATH, j->input,
		VFIOD_POLKIT_DETAIL_KIND, j->kind,
		VFIOD_POLKIT_DETAIL_NAME, j->name,
		j->syspath ? VFIOD_POLKIT_DETAIL_DEVICE : NULL, j->syspath,
		NULL,
	};
	r = auth_check(m, j->msg, details, job_enqueued, j);
	if (r < 0) {
		sd_bus_error_set_errno(&error, r);
		job_unlink(m, j);
		job_refuse(j, &error);
		job_free(j);
	}
}

/* Resolved, and authorized with what it resolved to: it may run once its turn comes. */
static void job_enqueued(struct manager *m, sd_bus_message *msg, void *userdata,
			 const sd_bus_error *denied)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct job *j = userdata;
	struct job *blocking;
	char step[sizeof(j->step)];
	JOB_LOG_CONTEXT(j);

	(void)msg;
	if (!denied && m->stopping) {
		sd_bus_error_set(&error, VFIOD_ERROR_SHUTTING_DOWN, "vfiod is shutting down");
		denied = &error;
	}
	if (denied) {
		/* Who was refused what, for the administrator (with VFIOD_CALLER=). */
		if (denied != &error)
			log_info("%s: %s refused to %s: %s", job_device(j), job_op_name(j),
				 j->sender ?: "a caller", denied->message ?: denied->name);
		job_unlink(m, j);
		job_refuse(j, denied);
		job_free(j);
		return;
	}
	blocking = timed_out_with_key(m, j->key);
	if (blocking) {
		job_get_step(blocking, step, sizeof(step));
		sd_bus_error_setf(&error, VFIOD_ERROR_BUSY,
				  "%s: an earlier %s of %s timed out and is still blocked in "
				  "the kernel (step %s); %s takes no new work until it returns",
				  job_device(j), job_op_name(blocking), job_device(blocking), step,
				  j->key);
		log_info("%s: %s refused: %s", job_device(j), job_op_name(j), error.message);
		job_unlink(m, j);
		job_refuse(j, &error);
		job_free(j);
		return;
	}
	j->resolved = true;
	jobs_schedule(m);
}

void job_submit(struct manager *m, struct job *j, const char *fail_log)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct job **tail;
	int r;
	JOB_LOG_CONTEXT(j);

	j->fail_log = fail_log;
	if (j->msg && !j->sender && sd_bus_message_get_sender(j->msg) &&
	    !(j->sender = strdup(sd_bus_message_get_sender(j->msg)))) {
		sd_bus_error_set_errno(&error, -ENOMEM);
		job_refuse(j, &error);
		job_free(j);
		return;
	}
	if (m->stopping) {
		sd_bus_error_set(&error, VFIOD_ERROR_SHUTTING_DOWN, "vfiod is shutting down");
		job_refuse(j, &error);
		job_free(j);
		return;
	}
	/* In the queue from now on, in order of arrival, while a task reads what it acts on. */
	for (tail = &m->jobs; *tail; tail = &(*tail)->next)
		;
	*tail = j;
	r = task_start(m, j->input, resolve_work, resolve_end, j, &error);
	if (r < 0) {
		if (!sd_bus_error_is_set(&error))
			sd_bus_error_set_errno(&error, r);
		job_unlink(m, j);
		job_refuse(j, &error);
		job_free(j);
	}
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata);

static int job_start(struct manager *m, struct job *j)
{
	struct mdevice *d;
	int r;

	d = mdevice_find(m, j->name);
	j->had_object = d != NULL;
	/* The records being read at start may be older than what this job will leave. */
	if (!m->records_loaded && m->touched)
		json_object_set_new(m->touched, j->name, json_true());
	if (j->op != JOB_RECOVER) {
		const char *state =
			j->op == JOB_ASSIGN ? VFIOD_STATE_ASSIGNING : VFIOD_STATE_RELEASING;

		if (d) {
			mdevice_set_state(d, state);
		} else {
			json_t *o = json_pack("{s:s?, s:s, s:s, s:i}", "device", j->syspath,
					      "name", j->name, "kind", j->kind, "iommu_group",
					      j->iommu_group);

			if (o)
				d = mdevice_update(m, o, state);
			json_decref(o);
		}
	}

	j->notify_fd = fcntl(m->notify_pipe[1], F_DUPFD_CLOEXEC, 3);
	if (j->notify_fd < 0)
		return negative_errno();
	j->progress_fd = fcntl(m->progress_fd, F_DUPFD_CLOEXEC, 3);
	if (j->progress_fd < 0)
		return negative_errno();
	r = sd_event_add_time_relative(m->event, &j->timer, CLOCK_MONOTONIC,
				       m->cfg.operation_timeout_usec, 0, on_timeout, j);
	if (r < 0)
		return r;
	(void)sd_event_now(m->event, CLOCK_MONOTONIC, &j->started_usec);
	snprintf(j->step, sizeof(j->step), "start");

	r = thread_start(worker_main, j);
	if (r < 0)
		return r;
	j->running = true;
	log_debug("%s: %s started (%s)", job_device(j), job_op_name(j), j->key);
	return 0;
}

void jobs_schedule(struct manager *m)
{
	struct job *j, *next;

	for (j = m->jobs; j; j = next) {
		bool earlier = false;
		int r;

		next = j->next;
		if (j->running || !j->resolved)
			continue;
		/*
		 * Behind earlier work on the same hardware (beside it when both
		 * share the key, but never ahead of one still waiting); and behind
		 * an earlier job of the same caller (or of the daemon) still being
		 * resolved, whose key is not known yet: one caller's calls keep
		 * their order.
		 */
		for (struct job *k = m->jobs; k != j; k = k->next)
			if (k->resolved ? job_holds_back(k, j) : str_eq_or_null(k->sender, j->sender))
				earlier = true;
		/*
		 * A later arrival may be running already on that hardware: it was
		 * resolved and authorized first (polkit answers in any order).
		 */
		for (struct job *k = j->next; k && !earlier; k = k->next)
			if (k->running && job_conflicts(k, j))
				earlier = true;
		if (earlier)
			continue;
		JOB_LOG_CONTEXT(j);
		r = job_start(m, j);
		if (r < 0) {
			log_error_errno(r, "%s: cannot start the %s: %m", job_device(j),
					job_op_name(j));
			job_reply_error(j, VFIOD_ERROR_FAILED, "%s: cannot start the operation: %s",
					job_device(j), strerror(-r));
			if (!j->had_object) {
				struct mdevice *d = mdevice_find(m, j->name);

				if (d)
					mdevice_remove(d);
			}
			job_unlink(m, j);
			job_free(j);
		}
	}
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct job *j = userdata;
	struct manager *m = j->m;
	struct mdevice *d;
	char step[sizeof(j->step)];
	JOB_LOG_CONTEXT(j);

	(void)s;
	(void)usec;
	job_get_step(j, step, sizeof(step));
	j->timed_out = true;
	j->timer = sd_event_source_disable_unref(j->timer);

	log_error("%s: %s timed out after %.1f s in step %s; the kernel has not returned, "
		  "%s is closed until it does",
		  job_device(j), job_op_name(j), m->cfg.operation_timeout_usec / 1e6, step, j->key);
	job_reply_error(j, VFIOD_ERROR_TIMEOUT,
			"%s: the %s timed out after %.1f s in step %s; the device is marked "
			"failed and its hardware (%s) takes no new work until the kernel returns",
			job_device(j), job_op_name(j), m->cfg.operation_timeout_usec / 1e6, step,
			j->key);
	d = mdevice_find(m, j->name);
	if (d)
		mdevice_set_state(d, VFIOD_STATE_FAILED);

	/* Whatever waits behind it would wait for the same kernel. */
	for (struct job *k = m->jobs, *next; k; k = next) {
		next = k->next;
		if (k->running || !k->resolved || !streq(k->key, j->key))
			continue;
		job_reply_error(k, VFIOD_ERROR_BUSY,
				"%s: an earlier %s of %s timed out and is still blocked in the "
				"kernel (step %s)",
				job_device(k), job_op_name(j), job_device(j), step);
		job_unlink(m, k);
		job_free(k);
	}
	manager_check_exit(m);
	return 0;
}

static json_t *json_loads_or_null(const char *s)
{
	return s ? json_loads(s, 0, NULL) : NULL;
}

/* libvfiod's vfiod_list() entry for NAME in LIST, borrowed. */
static json_t *list_entry(json_t *list, const char *name)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n && streq(n, name))
			return e;
	}
	return NULL;
}

static bool has_vfio_nodes(json_t *o)
{
	return json_array_size(json_object_get(o, "vfio")) > 0;
}

/*
 * Bring the objects of the devices the job touched in line with what the
 * worker saw after the operation: libvfiod's records and the device itself.
 */
static void job_sync_objects(struct manager *m, struct job *j, json_t *result, json_t *list,
			     json_t *after)
{
	json_t *names = json_array(), *n;
	bool success = j->r >= 0;
	size_t i;

	json_array_append_new(names, json_string(j->name));
	if (success && json_is_array(result)) {
		json_t *e;

		json_array_foreach(result, i, e)
		{
			if (json_object_get(e, "name"))
				json_array_append(names, json_object_get(e, "name"));
		}
	}
	/* A PF's VFs: each assigned one is a PCI device of its own. */
	if (json_is_object(result)) {
		json_t *e;

		json_array_foreach(json_object_get(result, "vfs"), i, e)
		{
			if (json_is_string(json_object_get(e, "name")))
				json_array_append(names, json_object_get(e, "name"));
		}
	}

	json_array_foreach(names, i, n)
	{
		const char *name = json_string_value(n);
		struct mdevice *d = mdevice_find(m, name);
		json_t *entry = list_entry(list, name), *o = NULL;

		if (success && j->op == JOB_ASSIGN) {
			if (json_is_array(result)) {
				json_t *e;
				size_t k;

				json_array_foreach(result, k, e)
				{
					if (json_equal(json_object_get(e, "name"), n))
						o = e;
				}
			} else if (streq(name, j->name)) {
				o = result;
			} else {
				json_t *e;
				size_t k;

				json_array_foreach(json_object_get(result, "vfs"), k, e)
				{
					if (json_equal(json_object_get(e, "name"), n))
						o = e;
				}
			}
			if (o)
				d = mdevice_update(m, o, VFIOD_STATE_ASSIGNED);
			if (entry)
				d = mdevice_update(m, entry, VFIOD_STATE_ASSIGNED);
			if (d)
				mdevice_set_state(d, VFIOD_STATE_ASSIGNED);
		} else if (success && j->op == JOB_RELEASE && streq(name, j->name)) {
			if (d)
				mdevice_remove(d);
			d = NULL;
		} else if (entry) {
			const char *st = json_string_value(json_object_get(entry, "state"));

			d = mdevice_update(m, entry,
					   st && streq(st, "assigned") ? VFIOD_STATE_ASSIGNED
								       : VFIOD_STATE_FAILED);
		} else if (d && j->had_object && after && has_vfio_nodes(after)) {
			d = mdevice_update(m, after, VFIOD_STATE_ASSIGNED);
		} else if (d) {
			mdevice_remove(d);
			d = NULL;
		}
		if (d)
			mdevice_set_persistent(d, store_exists(m, name));
	}
	json_decref(names);
}

static void job_finish_definition(struct manager *m, struct job *j)
{
	struct mdevice *d;
	int r = 0;

	if (j->op == JOB_ASSIGN && j->r >= 0 && j->persistent == 1)
		r = store_save(m, j);
	else if (j->op == JOB_ASSIGN && j->r >= 0 && j->persistent == 0)
		r = store_remove(m, j->name);
	else if (j->op == JOB_RELEASE && !j->keep_definition && (j->r >= 0 || j->r == -ENOENT))
		r = store_remove(m, j->name);
	if (r < 0)
		log_error_errno(r, "%s: cannot update its definition in %s: %m", job_device(j),
				m->definitions_dir);
	d = mdevice_find(m, j->name);
	if (d)
		mdevice_set_persistent(d, store_exists(m, j->name));
}

static void job_reply(struct job *j)
{
	struct mdevice *d = mdevice_find(j->m, j->name);
	int r;

	if (!j->msg)
		return;
	/* A runtime started once the call returns finds the device in the spec. */
	cdi_flush(j->m);
	if (j->r < 0) {
		_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

		bus_error_set(&e,
			      !streq(j->kind, "pci")  ? BUS_ERROR_KIND
			      : j->op == JOB_ASSIGN ? BUS_ERROR_ASSIGN
						    : BUS_ERROR_RELEASE,
			      j->r, j->error);
		r = sd_bus_reply_method_error(j->msg, &e);
	} else if (j->op == JOB_ASSIGN) {
		r = sd_bus_reply_method_return(j->msg, "os", d ? d->object_path : "/", j->json);
	} else {
		r = sd_bus_reply_method_return(j->msg, "s", j->json);
	}
	if (r < 0)
		log_warning_errno(r, "%s: cannot send the reply: %m", job_device(j));
	j->msg = sd_bus_message_unref(j->msg);
}

/* J's progress, signalled when it is new since the last time. */
static void job_signal_progress(struct manager *m, struct job *j)
{
	unsigned int seq, done, total;
	char member[sizeof(j->member)];

	pthread_mutex_lock(&j->lock);
	seq = j->progress_seq;
	done = j->done;
	total = j->total;
	memcpy(member, j->member, sizeof(member));
	pthread_mutex_unlock(&j->lock);
	if (seq == j->progress_sent)
		return;
	j->progress_sent = seq;
	event_emit_progress(m, j, member[0] ? member : NULL, done, total);
}

static void job_complete(struct manager *m, struct job *j)
{
	json_t *result = json_loads_or_null(j->json), *list = json_loads_or_null(j->list_json),
	       *after = json_loads_or_null(j->after_json);
	JOB_LOG_CONTEXT(j);

	j->running = false;
	j->timer = sd_event_source_disable_unref(j->timer);
	/* The last figures before the reply, whichever of the worker's words came first. */
	job_signal_progress(m, j);
	/*
	 * Logged once, here, naming the device: libvfiod's messages already do.
	 * A device in use is refused as the policy says, not a failure of vfiod's.
	 */
	if (j->r == -ETXTBSY && j->error)
		log_notice("%s refused: %s", job_op_name(j), j->error);
	else if (j->r < 0 && j->error && strstr(j->error, job_device(j)))
		log_error("%s failed: %s", job_op_name(j), j->error);
	else if (j->r < 0)
		log_error("%s: %s failed: %s", job_device(j), job_op_name(j),
			  j->error ? j->error : strerror(-j->r));
	else if (j->timed_out)
		log_notice("%s: the %s that timed out has finished after all", job_device(j),
			   job_op_name(j));
	if (!j->timed_out || j->r >= 0)
		job_finish_definition(m, j);
	job_sync_objects(m, j, result, list, after);
	job_reply(j);
	event_emit_job(m, j, result);
	json_decref(result);
	json_decref(list);
	json_decref(after);
	job_unlink(m, j);
	job_free(j);
}

/* The event loop's end of the pipe: workers write the address of their finished job. */
int jobs_on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct job *done[64];
	ssize_t n;

	(void)s;
	(void)revents;
	n = read(fd, done, sizeof(done));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR
			       ? 0
			       : log_error_errno(negative_errno(),
						 "cannot read the worker pipe: %m");
	for (size_t i = 0; i < (size_t)n / sizeof(done[0]); i++)
		job_complete(m, done[i]);
	jobs_schedule(m);
	manager_check_exit(m);
	return 0;
}

/*
 * Workers have reported progress.  A worker may report faster than the bus
 * takes it: each job's latest figures are signalled, those in between may
 * be skipped.
 */
int jobs_on_progress(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	uint64_t n;

	(void)s;
	(void)revents;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN && errno != EINTR)
		return log_error_errno(negative_errno(), "cannot read the progress eventfd: %m");
	for (struct job *j = m->jobs; j; j = j->next)
		if (j->running)
			job_signal_progress(m, j);
	return 0;
}

/* Jobs whose workers are still in the kernel at exit: kept reachable, never freed. */
static struct job *abandoned;

void jobs_abandon(struct manager *m)
{
	while (m->jobs) {
		struct job *j = m->jobs;

		m->jobs = j->next;
		j->next = NULL;
		if (!j->resolved) {
			/* Its task has it: answered, and left to the task, which is abandoned too. */
			job_reply_error(j, VFIOD_ERROR_SHUTTING_DOWN, "vfiod is shutting down");
			continue;
		}
		if (!j->running) {
			job_reply_error(j, VFIOD_ERROR_SHUTTING_DOWN, "vfiod is shutting down");
			job_free(j);
			continue;
		}
		char step[sizeof(j->step)];

		job_get_step(j, step, sizeof(step));
		log_warning("%s: leaving the %s behind, blocked in step %s; the journal will "
			    "finish it at the next start",
			    job_device(j), job_op_name(j), step);
		j->timer = sd_event_source_disable_unref(j->timer);
		j->msg = sd_bus_message_unref(j->msg);
		j->next = abandoned;
		abandoned = j;
	}
}

static bool job_for(const struct job *j, const char *syspath, const char *name)
{
	return (syspath && (str_eq(j->syspath, syspath) || streq(j->input, syspath))) ||
	       (name && (str_eq(j->name, name) || streq(j->input, name)));
}

bool jobs_queued_for(struct manager *m, const char *syspath, const char *name, bool running)
{
	for (struct job *j = m->jobs; j; j = j->next)
		if ((running || !j->running) && job_for(j, syspath, name))
			return true;
	return false;
}

void jobs_drop_queued(struct manager *m)
{
	for (struct job *j = m->jobs, *next; j; j = next) {
		next = j->next;
		/* Running work may finish; a job being resolved is refused when it is. */
		if (j->running || !j->resolved)
			continue;
		job_unlink(m, j);
		job_reply_error(j, VFIOD_ERROR_SHUTTING_DOWN, "vfiod is shutting down");
		job_free(j);
	}
}

void jobs_drop_queued_for(struct manager *m, const char *syspath)
{
	for (struct job *j = m->jobs, *next; j; j = next) {
		next = j->next;
		if (j->running || !j->resolved || j->msg || !job_for(j, syspath, NULL))
			continue;
		job_unlink(m, j);
		log_info("%s: gone before its %s started, dropping it", syspath, job_op_name(j));
		job_free(j);
	}
}

bool jobs_busy(struct manager *m)
{
	for (struct job *j = m->jobs; j; j = j->next)
		if (j->running && !j->timed_out)
			return true;
	return false;
}

json_t *jobs_json(struct manager *m)
{
	json_t *a = json_array();
	uint64_t now = 0;

	(void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	for (struct job *j = m->jobs; a && j; j = j->next) {
		json_t *o = json_object();

		pthread_mutex_lock(&j->lock);
		json_object_set_new(o, "operation", json_string(job_op_name(j)));
		json_object_set_new(o, "device", json_string(job_device(j)));
		json_object_set_new(o, "kind", j->kind ? json_string(j->kind) : json_null());
		json_object_set_new(o, "name", j->name ? json_string(j->name) : json_null());
		json_object_set_new(o, "key", j->key ? json_string(j->key) : json_null());
		json_object_set_new(o, "iommu_group",
				    j->iommu_group >= 0 ? json_integer(j->iommu_group)
							: json_null());
		json_object_set_new(o, "state",
				    json_string(j->timed_out ? "timed-out"
						: j->running ? "running"
						: j->resolved ? "queued"
							      : "resolving"));
		if (j->running) {
			json_object_set_new(o, "step", json_string(j->step));
			if (j->total > 0) {
				json_object_set_new(o, "done", json_integer(j->done));
				json_object_set_new(o, "total", json_integer(j->total));
			}
			json_object_set_new(o, "running_usec",
					    json_integer((json_int_t)(now - j->started_usec)));
		}
		pthread_mutex_unlock(&j->lock);
		json_array_append_new(a, o);
	}
	return a;
}
