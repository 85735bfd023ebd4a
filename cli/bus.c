/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "bus-connect.h"
#include "bus-errors.h"
#include "bus-names.h"
#include "bus-options.h"
#include "bus.h"
#include "macro.h"
#include "progress.h"

/* Create and Destroy wait behind other work on the group and for the kernel. */
#define CHANGE_TIMEOUT_USEC (10ULL * 60 * 1000 * 1000)

struct call {
	const char *verb;
	const char *address;
	sd_bus *bus;
	bool reported;
};

static int call_done(struct call *c, int r)
{
	if (r < 0 && !c->reported)
		fprintf(stderr, "vfioctl: %s: %s\n", c->verb, strerror(-r));
	sd_bus_flush_close_unref(c->bus);
	return r;
}

static int not_running(struct call *c, const char *why, int r)
{
	c->reported = true;
	fprintf(stderr,
		"vfioctl: %s: cannot reach vfiod on %s: %s\n"
		"Is vfiod running (systemctl start vfiod)? Use --direct to act without it.\n",
		c->verb, c->address, why);
	return r < 0 ? r : -ECONNREFUSED;
}

static int call_open(struct call *c, const char *verb)
{
	int r;

	*c = (struct call){.verb = verb, .address = "the system bus"};
	(void)bus_errors_register();
	r = bus_connect("vfioctl", &c->bus, &c->address);
	if (r < 0)
		return not_running(c, strerror(-r), r);
	/* polkit may ask for a password when there is someone to ask. */
	(void)sd_bus_set_allow_interactive_authorization(c->bus, true);
	return 0;
}

/* Said once, with what to check where it helps: R and E are the failed call's. */
static int call_failed(struct call *c, int r, const sd_bus_error *e)
{
	c->reported = true;
	if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
				   "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
				   "org.freedesktop.DBus.Error.Spawn.ChildExited",
				   "org.freedesktop.systemd1.NoSuchUnit") ||
	    (!sd_bus_error_is_set(e) && (r == -ECONNRESET || r == -ENOTCONN)))
		return not_running(c, e->message ? e->message : strerror(-r), r);
	if (sd_bus_error_has_names(e, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED))
		fprintf(stderr, "vfioctl: %s: vfiod did not answer: %s\n", c->verb,
			e->message ? e->message : strerror(-r));
	else
		fprintf(stderr, "vfioctl: %s: %s\n", c->verb, e->message ? e->message : strerror(-r));
	return r;
}

/* A call followed on the progress line: its reply, and the Progress signals of our calls. */
struct following {
	const char *subject;
	const char *self; /* our unique name, which vfiod reports as the caller */
	sd_bus_message *reply;
};

static int on_progress(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct following *f = userdata;
	const char *json;
	json_t *o;

	(void)error;
	if (sd_bus_message_read(msg, "s", &json) < 0 || !(o = json_loads(json, 0, NULL)))
		return 0; /* a line less, nothing worse */
	if (str_eq(json_string_value(json_object_get(o, "caller")), f->self))
		progress_show(json_string_value(json_object_get(o, "name")) ?: f->subject,
			      json_string_value(json_object_get(o, "member")),
			      (unsigned int)json_integer_value(json_object_get(o, "done")),
			      (unsigned int)json_integer_value(json_object_get(o, "total")));
	json_decref(o);
	return 0;
}

static int on_reply(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct following *f = userdata;

	(void)error;
	f->reply = sd_bus_message_ref(msg);
	return 0;
}

/*
 * Dispatch the bus until *REPLY is set, or until *N_DONE reaches N (the
 * replies of several calls); each call's own timeout still applies.
 */
static int process_until(struct call *c, sd_bus_message **reply, const size_t *n_done, size_t n)
{
	int r = 0;

	while (r >= 0 && (reply ? !*reply : *n_done < n)) {
		r = sd_bus_process(c->bus, NULL);
		if (r == 0)
			r = sd_bus_wait(c->bus, UINT64_MAX);
	}
	return r;
}

/*
 * sd_bus_call(), with vfiod's Progress signals for this call shown as they
 * come.  The match is asked for before the call, on the same connection, so
 * the bus has it in place before vfiod sees the call.
 */
static int call_following(struct call *c, const char *subject, sd_bus_message *m,
			  uint64_t timeout, sd_bus_error *e, sd_bus_message **reply)
{
	_cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *call = NULL;
	struct following f = {.subject = subject};
	int r;

	r = sd_bus_get_unique_name(c->bus, &f.self);
	if (r >= 0)
		r = sd_bus_match_signal_async(c->bus, &match, VFIOD_BUS_NAME, VFIOD_MANAGER_PATH,
					      VFIOD_MANAGER_IFACE, VFIOD_PROGRESS_SIGNAL,
					      on_progress, NULL, &f);
	if (r < 0)
		return sd_bus_call(c->bus, m, timeout, e, reply); /* without the line, then */
	r = sd_bus_call_async(c->bus, &call, m, on_reply, &f, timeout);
	if (r >= 0)
		r = process_until(c, &f.reply, NULL, 0);
	progress_clear();
	if (r < 0)
		return r;
	if (sd_bus_message_is_method_error(f.reply, NULL)) {
		r = sd_bus_error_copy(e, sd_bus_message_get_error(f.reply));
		sd_bus_message_unref(f.reply);
		return r < 0 ? r : -EIO;
	}
	*reply = f.reply;
	return 0;
}

static int call_method(struct call *c, const char *subject, sd_bus_message *m, uint64_t timeout,
		       sd_bus_message **reply)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = progress_enabled() && timeout > 0
			? call_following(c, subject, m, timeout, &e, reply)
			: sd_bus_call(c->bus, m, timeout, &e, reply);

	return r >= 0 ? 0 : call_failed(c, r, &e);
}

static int new_call(struct call *c, const char *method, sd_bus_message **ret)
{
	int r = sd_bus_message_new_method_call(c->bus, ret, VFIOD_BUS_NAME, VFIOD_MANAGER_PATH,
					       VFIOD_MANAGER_IFACE, method);

	return r;
}

/* The reply's JSON string: the last argument (an object path may come first). */
static int read_json(struct call *c, sd_bus_message *reply, char **ret)
{
	const char *sig = sd_bus_message_get_signature(reply, true), *json;
	int r;

	if (streq(sig, "os"))
		r = sd_bus_message_read(reply, "os", NULL, &json);
	else if (streq(sig, "s"))
		r = sd_bus_message_read(reply, "s", &json);
	else
		r = -EBADMSG;
	if (r < 0) {
		fprintf(stderr, "vfioctl: %s: unexpected reply from vfiod: %s\n", c->verb,
			strerror(-r));
		c->reported = true;
		return r;
	}
	*ret = strdup(json);
	return *ret ? 0 : -ENOMEM;
}

int bus_call(const char *verb, const char *method, const char *arg, json_t *opts, bool change,
	     char **ret_json)
{
	sd_bus_message *m = NULL, *reply = NULL;
	struct call c;
	int r;

	r = call_open(&c, verb);
	if (r >= 0)
		r = new_call(&c, method, &m);
	if (r >= 0 && arg)
		r = sd_bus_message_append(m, "s", arg);
	if (r >= 0 && opts)
		r = bus_options_append(m, opts);
	if (r >= 0)
		r = call_method(&c, arg, m, change ? CHANGE_TIMEOUT_USEC : 0, &reply);
	if (r >= 0)
		r = read_json(&c, reply, ret_json);
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return call_done(&c, r);
}

/* One of bus_call_each()'s calls. */
struct each {
	const char *verb;
	size_t *n_done;
	size_t n;
	const char *arg;
	sd_bus_message *reply;
};

static int on_each_reply(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct each *e = userdata;

	(void)error;
	e->reply = sd_bus_message_ref(msg);
	progress_show(e->verb, e->arg, (unsigned int)++*e->n_done,
		      (unsigned int)e->n);
	return 0;
}

int bus_call_each(const char *verb, const char *method, char **args, size_t n, json_t *results)
{
	struct each *each = calloc(n, sizeof(*each));
	sd_bus_slot **slots = calloc(n, sizeof(*slots));
	size_t n_done = 0;
	int failed = 0;
	struct call c;
	int r;

	r = each && slots ? call_open(&c, verb) : -ENOMEM;
	if (r < 0) {
		free(each);
		free(slots);
		return r == -ENOMEM ? r : call_done(&c, r);
	}
	/* All sent at once: vfiod runs those on different hardware side by side. */
	for (size_t i = 0; r >= 0 && i < n; i++) {
		sd_bus_message *m = NULL;

		each[i] = (struct each){.verb = verb, .n_done = &n_done, .n = n, .arg = args[i]};
		r = new_call(&c, method, &m);
		if (r >= 0)
			r = sd_bus_message_append(m, "s", args[i]);
		if (r >= 0)
			r = sd_bus_call_async(c.bus, &slots[i], m, on_each_reply, &each[i],
					      CHANGE_TIMEOUT_USEC);
		sd_bus_message_unref(m);
	}
	if (r >= 0)
		progress_show(verb, NULL, 0, (unsigned int)n);
	if (r >= 0)
		r = process_until(&c, NULL, &n_done, n);
	progress_clear();
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
		char *json = NULL;

		if (sd_bus_message_is_method_error(each[i].reply, NULL)) {
			int q = sd_bus_error_copy(&e, sd_bus_message_get_error(each[i].reply));

			(void)call_failed(&c, q < 0 ? q : -EIO, &e);
			c.reported = false; /* the next failure is said too */
			failed++;
		} else if (read_json(&c, each[i].reply, &json) >= 0) {
			json_t *o = json_loads(json, 0, NULL);

			json_array_append_new(results, o ? o : json_string(json));
		} else {
			c.reported = false;
			failed++;
		}
		free(json);
	}
	for (size_t i = 0; i < n; i++) {
		sd_bus_slot_unref(slots[i]);
		sd_bus_message_unref(each[i].reply);
	}
	free(slots);
	free(each);
	r = call_done(&c, r);
	return r < 0 ? r : failed;
}
