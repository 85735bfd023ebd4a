/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod's life: configuration, the event loop with its signals and watchdog,
 * the bus, what an earlier run left (records, journal, definitions), the
 * name, readiness, and a clean stop on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	const char *v;
	int r;

	if (!m)
		return -ENOMEM;
	m->notify_pipe[0] = m->notify_pipe[1] = -1;
	r = config_load(&m->cfg);
	if (r < 0)
		goto fail;
	if (asprintf(&m->journal_dir, "%s/%s", m->cfg.runtime_dir, VFIOD_JOURNAL_SUBDIR) < 0 ||
	    asprintf(&m->records_dir, "%s/%s", m->cfg.runtime_dir, VFIOD_RECORDS_SUBDIR) < 0 ||
	    asprintf(&m->definitions_dir, "%s/%s", m->cfg.state_dir, VFIOD_DEFINITIONS_SUBDIR) <
		    0) {
		r = -ENOMEM;
		goto fail;
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
	struct job **p = &m->jobs;

	if (!m->stopping)
		(void)sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
	m->stopping = true;
	/* Queued work is refused, and so are calls waiting for polkit; running work may finish. */
	auth_stop(m);
	while (*p) {
		struct job *j = *p;

		if (j->running) {
			p = &j->next;
			continue;
		}
		*p = j->next;
		if (j->msg)
			(void)sd_bus_reply_method_errorf(j->msg, VFIOD_ERROR_SHUTTING_DOWN,
							 "vfiod is shutting down");
		job_free(j);
	}
	manager_check_exit(m);
}

void manager_check_exit(struct manager *m)
{
	if (m->stopping && !jobs_busy(m))
		(void)sd_event_exit(m->event, 0);
}

/* Objects for what libvfiod recorded as assigned, by this or an earlier run. */
static int load_assigned(struct manager *m)
{
	struct vfiod_ctx *ctx = manager_ctx_new(log_get_max_priority(), "start");
	_cleanup_free_ char *json = NULL;
	json_t *a, *e;
	size_t i;
	int r;

	if (!ctx)
		return -ENOMEM;
	r = vfiod_list(ctx, &json);
	if (r < 0) {
		log_error_errno(r, "cannot read the devices vfiod assigned: %s",
				vfiod_ctx_get_error(ctx) ?: strerror(-r));
		vfiod_ctx_unref(ctx);
		return r;
	}
	vfiod_ctx_unref(ctx);
	a = json_loads(json, 0, NULL);
	json_array_foreach(a, i, e)
	{
		const char *st = json_string_value(json_object_get(e, "state"));

		mdevice_update(m, e,
			       st && streq(st, "assigned") ? VFIOD_STATE_ASSIGNED
							   : VFIOD_STATE_FAILED);
	}
	json_decref(a);
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
	(void)load_assigned(m);
	r = journal_recover(m);
	if (r >= 0)
		r = store_import_mdevctl(m);
	if (r >= 0)
		r = store_apply(m);
	if (r >= 0)
		r = udev_watch_start(m);
	if (r < 0)
		return log_error_errno(r, "cannot queue the start-up work: %m");

	r = sd_bus_request_name(m->bus, VFIOD_BUS_NAME, 0);
	if (r < 0)
		return log_error_errno(r, "cannot own %s on %s: %m", VFIOD_BUS_NAME, address);
	r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				      "org.freedesktop.DBus", "NameLost", on_name_lost, NULL, m);
	if (r < 0)
		log_warning_errno(r, "cannot watch for the loss of the name, ignoring: %m");
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
	auth_stop(m);
	if (m->bus) {
		(void)sd_bus_flush(m->bus);
		m->bus = sd_bus_flush_close_unref(m->bus);
	}
	mdevice_free_all(m);
	sd_event_source_disable_unref(m->notify_source);
	closep(&m->notify_pipe[0]);
	/* The write end stays open for workers that are still in the kernel. */
	m->event = sd_event_unref(m->event);
	config_done(&m->cfg);
	free(m->journal_dir);
	free(m->records_dir);
	free(m->definitions_dir);
	free(m->abort_at);
	free(m);
	return NULL;
}
