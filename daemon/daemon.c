/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod's life: configuration, the event loop with its signals and watchdog,
 * the bus, what an earlier run left (records, journal, definitions), the
 * name, readiness, and a clean stop on SIGTERM.
 */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "bus-connect.h"
#include "bus-errors.h"
#include "bus-names.h"
#include "bus-options.h"
#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

int manager_new(struct manager **ret)
{
	struct manager *m = calloc(1, sizeof(*m));
	struct vfiod_ctx *ctx;
	const char *v;
	int r;

	if (!m)
		return -ENOMEM;
	m->notify_pipe[0] = m->notify_pipe[1] = -1;
	m->task_pipe[0] = m->task_pipe[1] = -1;
	m->progress_fd = -1;
	r = config_load(&m->cfg);
	if (r < 0)
		goto fail;
	if (asprintf(&m->journal_dir, "%s/%s", m->cfg.runtime_dir, VFIOD_JOURNAL_SUBDIR) < 0 ||
	    asprintf(&m->definitions_dir, "%s/%s", m->cfg.state_dir, VFIOD_DEFINITIONS_SUBDIR) <
		    0) {
		r = -ENOMEM;
		goto fail;
	}
	/* The first warm context, and the sysfs root it uses (Describe). */
	ctx = ctx_pool_get(m);
	if (!ctx) {
		r = -ENOMEM;
		goto fail;
	}
	m->sysfs_root = strdup(vfiod_ctx_get_sysfs_root(ctx));
	ctx_pool_put(m, ctx);
	if (!m->sysfs_root) {
		r = -ENOMEM;
		goto fail;
	}
	/* A fixture tree's nodes are not this machine's: no spec unless asked by name. */
	if (m->cfg.cdi_dir && !m->cfg.cdi_env && !streq(m->sysfs_root, "/sys")) {
		log_debug("sysfs root %s: no CDI spec (%s names a directory for one)",
			  m->sysfs_root, VFIOD_ENV_CDI_DIR);
		free(m->cfg.cdi_dir);
		m->cfg.cdi_dir = NULL;
	}
	v = getenv(VFIOD_ENV_ABORT_AT);
	if (v && *v) {
#ifdef VFIOD_TEST_HOOKS
		m->abort_at = strdup(v);
		log_warning("%s=%s: this test build aborts before that step", VFIOD_ENV_ABORT_AT,
			    v);
#else
		log_warning("%s is set but this build has no test hooks, ignoring",
			    VFIOD_ENV_ABORT_AT);
#endif
	}
	*ret = m;
	return 0;
fail:
	manager_free(m);
	return r;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;

	(void)s;
	log_info("received %s, stopping", strsignal(si->ssi_signo));
	manager_stop(m);
	return 0;
}

void manager_stop(struct manager *m)
{
	if (!m->stopping)
		(void)sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
	m->stopping = true;
	/* Queued work is refused, and so are calls waiting for polkit; running work may finish. */
	auth_stop(m);
	jobs_drop_queued(m);
	manager_check_exit(m);
}

void manager_check_exit(struct manager *m)
{
	if (m->stopping && !jobs_busy(m))
		(void)sd_event_exit(m->event, 0);
}

/*
 * Objects for what libvfiod recorded as assigned, by this or an earlier
 * run: read by a task once the name is taken, so that a device stuck in
 * the kernel delays its own object only, never vfiod's start.
 */
struct records_load {
	int r;
	char *json;
	char *error;
};

static void records_work(struct task *t)
{
	struct records_load *l = t->userdata;

	l->r = vfiod_list(t->ctx, &l->json);
	if (l->r < 0 && vfiod_ctx_get_error(t->ctx))
		l->error = strdup(vfiod_ctx_get_error(t->ctx));
}

static void records_end(struct task *t, enum task_end how)
{
	struct records_load *l = t->userdata;
	struct manager *m = t->m;
	json_t *a, *e;
	size_t i;

	if (how == TASK_TIMED_OUT) {
		log_error("the devices vfiod assigned are not known yet: reading them is "
			  "blocked in the kernel; serving meanwhile");
		return;
	}
	if (how == TASK_DONE && l->r < 0)
		log_error_errno(l->r, "cannot read the devices vfiod assigned: %s",
				l->error ?: strerror(-l->r));
	a = how == TASK_DONE || !m->stopping ? json_loads(l->json ?: "[]", 0, NULL) : NULL;
	json_array_foreach(a, i, e)
	{
		const char *st = json_string_value(json_object_get(e, "state"));
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *device = json_string_value(json_object_get(e, "device"));

		/* Work begun meanwhile knows better. */
		if (jobs_pending_for(m, device, name) ||
		    (name && (mdevice_find(m, name) || json_object_get(m->touched, name))))
			continue;
		mdevice_update(m, e,
			       st && streq(st, "assigned") ? VFIOD_STATE_ASSIGNED
							   : VFIOD_STATE_FAILED);
	}
	json_decref(a);
	m->records_loaded = true;
	cdi_schedule(m);
	json_decref(m->touched);
	m->touched = NULL;
	if (l->r >= 0)
		log_debug("the devices vfiod assigned are known");
	free(l->json);
	free(l->error);
	free(l);
	/*
	 * Reading N records made N records' JSON twice (the task's, then
	 * ours): megabytes freed at once, in two arenas, that malloc keeps
	 * mapped.  Give them back; what stays is the objects.
	 */
	(void)malloc_trim(0);
}

static int load_assigned(struct manager *m)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct records_load *l = calloc(1, sizeof(*l));
	int r;

	if (!l || !(m->touched = json_object())) {
		free(l);
		return -ENOMEM;
	}
	r = task_start(m, "the records of assigned devices", records_work, records_end, l, &error);
	if (r < 0) {
		free(l);
		return log_error_errno(r, "cannot read the devices vfiod assigned: %s",
				       error.message ?: strerror(-r));
	}
	return 0;
}

static int on_name_lost(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;

	(void)msg, (void)error;
	log_error("lost the bus name %s, stopping", VFIOD_BUS_NAME);
	manager_stop(m);
	return 0;
}

int manager_start(struct manager *m)
{
	const char *address;
	sigset_t ss;
	int r;

	/* Before any thread exists, so that every thread has them blocked. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_default(&m->event);
	if (r < 0)
		return log_error_errno(r, "cannot create the event loop: %m");
	r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
	if (r < 0)
		return log_error_errno(r, "cannot watch signals: %m");
	r = sd_event_set_watchdog(m->event, true);
	if (r < 0)
		log_warning_errno(r, "cannot enable the watchdog, ignoring: %m");

	if (pipe2(m->notify_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return log_error_errno(negative_errno(), "cannot create the worker pipe: %m");
	/* Workers block until the pipe takes their word. */
	if (fcntl(m->notify_pipe[1], F_SETFL, 0) < 0)
		return log_error_errno(negative_errno(), "cannot set up the worker pipe: %m");
	r = sd_event_add_io(m->event, &m->notify_source, m->notify_pipe[0], EPOLLIN, jobs_on_notify,
			    m);
	if (r < 0)
		return log_error_errno(r, "cannot watch the worker pipe: %m");
	if (pipe2(m->task_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || fcntl(m->task_pipe[1], F_SETFL, 0) < 0)
		return log_error_errno(negative_errno(), "cannot create the task pipe: %m");
	r = sd_event_add_io(m->event, &m->task_source, m->task_pipe[0], EPOLLIN, tasks_on_notify,
			    m);
	if (r < 0)
		return log_error_errno(r, "cannot watch the task pipe: %m");
	m->progress_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->progress_fd < 0)
		return log_error_errno(negative_errno(), "cannot create the progress eventfd: %m");
	r = sd_event_add_io(m->event, &m->progress_source, m->progress_fd, EPOLLIN,
			    jobs_on_progress, m);
	if (r < 0)
		return log_error_errno(r, "cannot watch the progress eventfd: %m");

	r = bus_errors_register();
	if (r < 0)
		return log_error_errno(r, "cannot register the error names: %m");
	r = bus_connect("vfiod", &m->bus, &address);
	if (r < 0)
		return log_error_errno(r, "cannot connect to %s: %m", address);
	r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return log_error_errno(r, "cannot attach the bus to the event loop: %m");
	r = bus_arguments_bound(m->bus);
	if (r >= 0)
		r = manager_bus_register(m);
	if (r < 0)
		return log_error_errno(r, "cannot register the objects: %m");

	r = mkdir_p(m->cfg.runtime_dir, 0700);
	if (r < 0)
		return log_error_errno(r, "cannot create %s: %m", m->cfg.runtime_dir);

	/*
	 * The name first: nothing below reads a device on the event loop, and
	 * what does (records, recovery, definitions, udev's devices) runs in
	 * tasks and jobs that callers can see in Describe meanwhile.
	 */
	r = sd_bus_request_name(m->bus, VFIOD_BUS_NAME, 0);
	if (r < 0)
		return log_error_errno(r, "cannot own %s on %s: %m", VFIOD_BUS_NAME, address);
	r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				      "org.freedesktop.DBus", "NameLost", on_name_lost, NULL, m);
	if (r < 0)
		log_warning_errno(r, "cannot watch for the loss of the name, ignoring: %m");

	(void)load_assigned(m);
	r = journal_recover(m);
	if (r >= 0)
		r = store_import_mdevctl(m);
	if (r >= 0)
		r = store_apply(m);
	if (r >= 0)
		r = udev_watch_start(m);
	/* After the watch: a claimed device that appears meanwhile is not missed. */
	if (r >= 0)
		(void)claims_scan(m, VFIOD_TRIGGER_START, true);
	if (r < 0)
		return log_error_errno(r, "cannot queue the start-up work: %m");

	(void)sd_notifyf(false, "READY=1\nSTATUS=Serving %s on %s", VFIOD_BUS_NAME, address);
	log_info("vfiod %s serving %s on %s (operations time out after %.1f s)", vfiod_version(),
		 VFIOD_BUS_NAME, address, m->cfg.operation_timeout_usec / 1e6);
	return 0;
}

int manager_run(struct manager *m)
{
	return sd_event_loop(m->event);
}

struct manager *manager_free(struct manager *m)
{
	if (!m)
		return NULL;
	udev_watch_stop(m);
	jobs_abandon(m);
	tasks_abandon(m);
	auth_stop(m);
	if (m->bus) {
		(void)sd_bus_flush(m->bus);
		m->bus = sd_bus_flush_close_unref(m->bus);
	}
	m->cdi_source = sd_event_source_disable_unref(m->cdi_source);
	mdevice_free_all(m);
	sd_event_source_disable_unref(m->notify_source);
	sd_event_source_disable_unref(m->task_source);
	sd_event_source_disable_unref(m->progress_source);
	closep(&m->progress_fd); /* workers still in the kernel have their own copies */
	closep(&m->notify_pipe[0]);
	closep(&m->task_pipe[0]);
	ctx_pool_free(m);
	/* The write end stays open for workers that are still in the kernel. */
	m->event = sd_event_unref(m->event);
	config_done(&m->cfg);
	free(m->journal_dir);
	free(m->definitions_dir);
	free(m->sysfs_root);
	json_decref(m->touched);
	free(m->abort_at);
	free(m);
	return NULL;
}
