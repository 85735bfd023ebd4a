/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who may call what.  One table maps each method to the polkit action it
 * needs (NULL: open to everyone).  uid 0 needs nothing; everyone else is
 * asked about of polkit (CheckAuthorization, subject "system-bus-name"), on
 * the same bus vfiod serves, without blocking the event loop.
 *
 * Every check under way is a reply vfiod waits for on its one connection,
 * and the bus daemon allows a connection only so many (128 on the system
 * bus): a polkit that does not answer (an authentication agent that never
 * does) would let one caller use them all up.  So identical checks (same
 * caller, action, details and interactivity) share one CheckAuthorization,
 * and the checks under way are capped per connection, per user and in all;
 * past a cap a call is refused at once with org.vfiod1.Error.TooManyRequests.
 * The per-user cap is below the total, so that one user's flood leaves room
 * for everyone else's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-names.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"

static const struct {
	const char *method;
	const char *action;
	const char *operation; /* the org.vfiod1.operation detail */
} auth_table[] = {
	{"Create", VFIOD_ACTION_MANAGE, "create"},
	{"Destroy", VFIOD_ACTION_MANAGE, "destroy"},
	{"Define", VFIOD_ACTION_MANAGE, "define"},
	{"Undefine", VFIOD_ACTION_MANAGE, "undefine"},
	{"Modify", VFIOD_ACTION_MANAGE, "modify"},
	{"Start", VFIOD_ACTION_MANAGE, "start"},
	{"Stop", VFIOD_ACTION_MANAGE, "stop"},
	{"MdevTypes", NULL, NULL},
	{"VdpaManagementDevices", NULL, NULL},
	{"Match", NULL, NULL},
	{"Groups", NULL, NULL},
	{"Show", NULL, NULL},
	{"List", NULL, NULL},
	{"Describe", NULL, NULL},
};

struct auth_waiter {
	struct auth_waiter *next;
	sd_bus_message *msg;
	auth_done_fn done;
	void *userdata;
};

/* One CheckAuthorization under way, and the calls waiting for its answer. */
struct auth_check {
	struct auth_check *next;
	struct manager *m;
	char *sender;
	uid_t uid;
	const char *action;	  /* from auth_table */
	const char *operation; /* from auth_table */
	char **details;		  /* key, value, ..., NULL */
	bool interactive;
	struct auth_waiter *waiters;
	bool finished;
};

static size_t count_checks(struct manager *m, const char *sender, const uid_t *uid)
{
	size_t n = 0;

	for (struct auth_check *c = m->auth_checks; c; c = c->next)
		if ((!sender || streq(c->sender, sender)) && (!uid || c->uid == *uid))
			n++;
	return n;
}

static size_t count_waiting(struct manager *m, uid_t uid)
{
	size_t n = 0;

	for (struct auth_check *c = m->auth_checks; c; c = c->next)
		for (struct auth_waiter *w = c->waiters; w && c->uid == uid; w = w->next)
			n++;
	return n;
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static bool strv_equal(char *const *a, char *const *b)
{
	size_t n = strv_len(a);

	if (n != strv_len(b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!streq(a[i], b[i]))
			return false;
	return true;
}

/* DETAILS (key, value, ..., NULL) without the operation, which is the table's word. */
static int details_copy(const char *const *details, char ***ret)
{
	size_t n = 0, o = 0;
	char **v;

	while (details && details[n] && details[n + 1])
		n += 2;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 2) {
		if (streq(details[i], VFIOD_POLKIT_DETAIL_OPERATION))
			continue;
		v[o] = strdup(details[i]);
		v[o + 1] = strdup(details[i + 1]);
		if (!v[o] || !v[o + 1]) {
			free(v[o]);
			strv_free(v);
			return -ENOMEM;
		}
		o += 2;
	}
	*ret = v;
	return 0;
}

static void auth_check_unlink(struct auth_check *c)
{
	for (struct auth_check **p = &c->m->auth_checks; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->next = NULL;
}

/* Answer every call waiting for C, once. */
static void auth_check_finish(struct auth_check *c, const sd_bus_error *denied)
{
	struct auth_waiter *w;

	if (c->finished)
		return;
	c->finished = true;
	/* Out of the list first: a new call from here on asks polkit again. */
	auth_check_unlink(c);
	while ((w = c->waiters)) {
		c->waiters = w->next;
		w->done(c->m, w->msg, w->userdata, denied);
		sd_bus_message_unref(w->msg);
		free(w);
	}
}

static void auth_check_destroy(void *userdata)
{
	struct auth_check *c = userdata;
	sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_ACCESS_DENIED,
						 "vfiod stopped before polkit answered");

	auth_check_finish(c, &e);
	free(c->sender);
	strv_free(c->details);
	free(c);
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	struct auth_check *c = userdata;
	const char *member = c->waiters ? sd_bus_message_get_member(c->waiters->msg) : c->operation;
	const sd_bus_error *pe;
	int authorized = 0, challenge = 0, r;

	(void)ret_error;
	pe = sd_bus_message_get_error(reply);
	if (pe) {
		log_warning("%s: cannot ask polkit whether %s may %s: %s", c->sender, c->sender,
			    c->action, pe->message ?: pe->name);
		sd_bus_error_setf(&e, SD_BUS_ERROR_ACCESS_DENIED,
				  "%s needs authorization (%s) and polkit did not answer: %s", member,
				  c->action, pe->message ?: pe->name);
		auth_check_finish(c, &e);
		return 0;
	}
	r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
	if (r >= 0)
		r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
	if (r < 0) {
		sd_bus_error_setf(&e, SD_BUS_ERROR_ACCESS_DENIED,
				  "unexpected answer from polkit: %s", strerror(-r));
		auth_check_finish(c, &e);
		return 0;
	}
	if (authorized) {
		log_debug("%s: polkit allows %s", c->sender, c->action);
		auth_check_finish(c, NULL);
	} else if (challenge) {
		sd_bus_error_setf(&e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
				  "%s needs interactive authentication for %s", member, c->action);
		auth_check_finish(c, &e);
	} else {
		log_notice("%s: polkit refuses %s for %s", c->sender, c->action, member);
		sd_bus_error_setf(&e, SD_BUS_ERROR_ACCESS_DENIED, "%s is not authorized to %s (%s)",
				  c->sender, member, c->action);
		auth_check_finish(c, &e);
	}
	return 0;
}

static int auth_check_send(struct auth_check *c)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
	sd_bus_slot *slot = NULL;
	int r;

	r = sd_bus_message_new_method_call(c->m->bus, &call, POLKIT_BUS_NAME, POLKIT_PATH,
					   POLKIT_IFACE, "CheckAuthorization");
	if (r >= 0)
		r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s",
					  c->sender, c->action);
	if (r >= 0)
		r = sd_bus_message_open_container(call, 'a', "{ss}");
	if (r >= 0)
		r = sd_bus_message_append(call, "{ss}", VFIOD_POLKIT_DETAIL_OPERATION,
					  c->operation);
	for (size_t i = 0; r >= 0 && c->details[i]; i += 2)
		r = sd_bus_message_append(call, "{ss}", c->details[i], c->details[i + 1]);
	if (r >= 0)
		r = sd_bus_message_close_container(call);
	if (r >= 0)
		r = sd_bus_message_append(call, "us",
					  c->interactive ? POLKIT_CHECK_ALLOW_INTERACTION : 0, "");
	if (r >= 0)
		r = sd_bus_call_async(c->m->bus, &slot, call, on_polkit_reply, c, 0);
	if (r < 0)
		return r;
	/* From here on the slot owns the check; its destroy callback frees it. */
	sd_bus_slot_set_destroy_callback(slot, auth_check_destroy);
	sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
	return 0;
}

static struct auth_check *auth_check_find(struct manager *m, const char *sender,
					  const char *action, const char *operation,
					  char *const *details, bool interactive)
{
	for (struct auth_check *c = m->auth_checks; c; c = c->next)
		if (streq(c->sender, sender) && streq(c->action, action) &&
		    streq(c->operation, operation) &&
		    c->interactive == interactive && strv_equal(c->details, details))
			return c;
	return NULL;
}

/*
 * Whether one more call of SENDER (uid UID) may wait for polkit, JOINING a
 * check under way or asking a new one; if not, refuse it at once.
 */
static bool within_limits(struct manager *m, sd_bus_message *msg, auth_done_fn done,
			  void *userdata, const char *sender, uid_t uid, bool joining)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *what;
	unsigned int limit;

	if (count_waiting(m, uid) >= AUTH_WAITING_PER_UID_MAX)
		what = "calls of one user", limit = AUTH_WAITING_PER_UID_MAX;
	else if (joining)
		return true;
	else if (count_checks(m, sender, NULL) >= AUTH_CHECKS_PER_SENDER_MAX)
		what = "checks of one connection", limit = AUTH_CHECKS_PER_SENDER_MAX;
	else if (count_checks(m, NULL, &uid) >= AUTH_CHECKS_PER_UID_MAX)
		what = "checks of one user", limit = AUTH_CHECKS_PER_UID_MAX;
	else if (count_checks(m, NULL, NULL) >= AUTH_CHECKS_MAX)
		what = "checks in all", limit = AUTH_CHECKS_MAX;
	else
		return true;
	log_debug("%s (uid %u): %s refused: %u %s wait for polkit already", sender,
		  (unsigned)uid, sd_bus_message_get_member(msg), limit, what);
	sd_bus_error_setf(&e, VFIOD_ERROR_TOO_MANY_REQUESTS,
			  "%s: %u %s wait for polkit already, the most vfiod lets wait; try "
			  "again once they are answered",
			  sd_bus_message_get_member(msg), limit, what);
	done(m, msg, userdata, &e);
	return false;
}

/*
 * The caller's uid, from the bus daemon: a call to it and back, made while
 * the event loop waits, so the answers are kept.  A unique name is never
 * given to another connection in the bus's life, so what the bus said for
 * one stays true; the oldest answer makes way when the table is full.
 */
static int sender_uid(struct manager *m, sd_bus_message *msg, const char *sender, uid_t *ret)
{
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
	struct sender_uid *e;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(m->sender_uids); i++)
		if (streq(m->sender_uids[i].sender, sender)) {
			*ret = m->sender_uids[i].uid;
			return 0;
		}
	r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID, &creds);
	if (r >= 0)
		r = sd_bus_creds_get_euid(creds, ret);
	if (r < 0)
		return r;
	if (strlen(sender) < sizeof(e->sender)) {
		e = &m->sender_uids[m->sender_uids_next++ % ARRAY_SIZE(m->sender_uids)];
		strcpy(e->sender, sender);
		e->uid = *ret;
	}
	return 0;
}

int auth_check(struct manager *m, sd_bus_message *msg, const char *const *details,
	       auth_done_fn done, void *userdata)
{
	const char *member = sd_bus_message_get_member(msg), *sender, *action = NULL;
	const char *operation = NULL;
	struct auth_waiter *w, **p;
	struct auth_check *c;
	char **copy = NULL;
	bool known = false, interactive;
	uid_t uid;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(auth_table); i++)
		if (member && streq(auth_table[i].method, member)) {
			known = true;
			action = auth_table[i].action;
			operation = auth_table[i].operation;
		}
	if (!known) {
		/* Not in the table: refuse rather than guess. */
		sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_ACCESS_DENIED,
							 "method without an authorization rule");

		done(m, msg, userdata, &e);
		return 0;
	}
	if (!action) {
		done(m, msg, userdata, NULL);
		return 0;
	}

	/*
	 * The bus daemon's word only: the uid it took from the socket when the
	 * caller connected.  Without it (an ANONYMOUS connection) the caller is
	 * refused; reading /proc/PID for it would name whoever holds that pid
	 * now, which need not be the caller.
	 */
	sender = sd_bus_message_get_sender(msg);
	r = sender ? sender_uid(m, msg, sender, &uid) : -ENXIO;
	if (r < 0) {
		_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

		log_notice("%s: %s refused: the bus does not say which user is calling",
			   sender ?: "a caller", member);
		sd_bus_error_setf(&e, SD_BUS_ERROR_ACCESS_DENIED,
				  "%s needs authorization (%s) and the bus does not say which user "
				  "is calling; connect with EXTERNAL authentication",
				  member, action);
		done(m, msg, userdata, &e);
		return 0;
	}
	if (uid == 0) {
		done(m, msg, userdata, NULL);
		return 0;
	}

	r = details_copy(details, &copy);
	if (r < 0)
		return r;
	interactive = sd_bus_message_get_allow_interactive_authorization(msg) > 0;
	c = auth_check_find(m, sender, action, operation, copy, interactive);
	if (!within_limits(m, msg, done, userdata, sender, uid, c != NULL)) {
		strv_free(copy);
		return 0;
	}
	if (c) {
		strv_free(copy);
		copy = NULL;
	}

	w = calloc(1, sizeof(*w));
	if (!w) {
		strv_free(copy);
		return -ENOMEM;
	}
	*w = (struct auth_waiter){.msg = sd_bus_message_ref(msg), .done = done, .userdata = userdata};
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c)
			*c = (struct auth_check){.m = m,
						 .sender = strdup(sender),
						 .uid = uid,
						 .action = action,
						 .operation = operation,
						 .details = copy,
						 .interactive = interactive};
		r = c && c->sender ? auth_check_send(c) : -ENOMEM;
		if (r < 0) {
			if (c) {
				free(c->sender);
				free(c);
			}
			strv_free(copy);
			sd_bus_message_unref(w->msg);
			free(w);
			return log_warning_errno(r, "cannot ask polkit: %m");
		}
		c->next = m->auth_checks;
		m->auth_checks = c;
	} else {
		log_debug("%s: %s waits for the same polkit check as an earlier call", sender,
			  member);
	}
	/* In order of arrival. */
	for (p = &c->waiters; *p; p = &(*p)->next)
		;
	*p = w;
	return 0;
}

void auth_stop(struct manager *m)
{
	sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(VFIOD_ERROR_SHUTTING_DOWN,
						 "vfiod is shutting down");

	/* The calls waiting hold the bus: answer them, and the bus can go. */
	while (m->auth_checks)
		auth_check_finish(m->auth_checks, &e);
}
