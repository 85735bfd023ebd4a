/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Manager's Event signal: one JSON object an event, for `vfioctl
 * monitor` and anyone else who wants to know what vfiod did and why
 * (org.vfiod1(5)):
 *
 *   {"event": "assigned", "name": "0000:01:00.0", "device": "/sys/devices/...",
 *    "kind": "pci", "driver": "vfio-pci", "previous_driver": "nvme",
 *    "reason": null, "usec": 1700000000000000, "trigger": "udev"}
 *
 * and its Progress signal, as an operation over several devices goes:
 *
 *   {"operation": "create", "name": "0000:01:00.0", "device": "/sys/devices/...",
 *    "kind": "vfs", "caller": ":1.42", "trigger": "call", "member": "0000:01:00.3",
 *    "done": 3, "total": 16, "usec": 1700000000000000}
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "bus-names.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"

static uint64_t now_realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void copy_member(json_t *to, json_t *from, const char *key)
{
	json_t *v = json_object_get(from, key);

	json_object_set(to, key, v && (json_is_string(v) || json_is_null(v)) ? v : json_null());
}

/* Send SIGNAL with O (consumed) as its one JSON argument; WHAT names it in the log. */
static void emit_json(struct manager *m, const char *signal, json_t *o, const char *what)
{
	_cleanup_free_ char *json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int r;

	json_decref(o);
	if (!json)
		return;
	log_debug("%s %s", signal, json);
	if (!m->bus)
		return;
	r = sd_bus_emit_signal(m->bus, VFIOD_MANAGER_PATH, VFIOD_MANAGER_IFACE, signal, "s",
			       json);
	if (r < 0)
		log_warning_errno(r, "cannot signal %s, ignoring: %m", what);
}

void event_emit(struct manager *m, const char *event, const char *trigger, json_t *fields)
{
	static const char *const keys[] = {"name", "device", "kind", "driver", "previous_driver",
					   "reason"};
	json_t *o = json_object(), *nodes = json_object_get(fields, "vfio");

	if (!o)
		return;
	json_object_set_new(o, "event", json_string(event));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		copy_member(o, fields, keys[i]);
	json_object_set(o, "vfio", json_is_array(nodes) ? nodes : json_null());
	json_object_set_new(o, "usec", json_integer((json_int_t)now_realtime_usec()));
	json_object_set_new(o, "trigger", json_string(trigger));
	emit_json(m, VFIOD_EVENT_SIGNAL, o, event);
}

void event_emit_progress(struct manager *m, struct job *j, const char *member, unsigned int done,
			 unsigned int total)
{
	json_t *o = json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:I}", "operation",
			      job_op_name(j), "name", j->name, "device", job_device(j), "kind",
			      j->kind, "caller", j->sender, "trigger", j->trigger, "member",
			      member, "done", (json_int_t)done, "total", (json_int_t)total, "usec",
			      (json_int_t)now_realtime_usec());

	if (o)
		emit_json(m, VFIOD_PROGRESS_SIGNAL, o, "progress");
}

/* One event about the device O (libvfiod's JSON of it) for job J. */
static void emit_for(struct manager *m, struct job *j, const char *event, json_t *o,
		     const char *reason)
{
	json_t *f = json_object();

	if (!f)
		return;
	json_object_update(f, o);
	if (!json_is_string(json_object_get(f, "name")))
		json_object_set_new(f, "name", json_string(j->name ? j->name : j->input));
	if (!json_is_string(json_object_get(f, "device")) && j->syspath)
		json_object_set_new(f, "device", json_string(j->syspath));
	if (!json_is_string(json_object_get(f, "kind")) && j->kind)
		json_object_set_new(f, "kind", json_string(j->kind));
	if (reason)
		json_object_set_new(f, "reason", json_string(reason));
	event_emit(m, event, j->trigger, f);
	json_decref(f);
}

void event_emit_job(struct manager *m, struct job *j, json_t *result)
{
	const char *event;
	json_t *e;
	size_t i;

	if (j->r < 0) {
		_cleanup_free_ char *reason = NULL;

		if (asprintf(&reason, "%s%s%s", j->error ? j->error : strerror(-j->r),
			     j->reason ? "; " : "", j->reason ? j->reason : "") < 0)
			reason = NULL;
		emit_for(m, j, VFIOD_EVENT_FAILED, NULL, reason ? reason : strerror(-j->r));
		return;
	}
	event = j->op == JOB_ASSIGN	 ? VFIOD_EVENT_ASSIGNED
		: j->op == JOB_RELEASE ? VFIOD_EVENT_RELEASED
				       : VFIOD_EVENT_RECOVERED;
	if (json_is_array(result)) {
		json_array_foreach(result, i, e)
		{
			if (json_is_object(e))
				emit_for(m, j, event, e, j->reason);
		}
		return;
	}
	if (json_is_object(result) && json_object_get(result, "changed") &&
	    !json_is_true(json_object_get(result, "changed"))) {
		_cleanup_free_ char *reason = NULL;

		if (asprintf(&reason, "already assigned, nothing changed%s%s",
			     j->reason ? "; " : "", j->reason ? j->reason : "") < 0)
			reason = NULL;
		emit_for(m, j, event, result, reason);
		return;
	}
	emit_for(m, j, event, json_is_object(result) ? result : NULL, j->reason);
}
