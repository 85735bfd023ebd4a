/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who may call what.  One table maps each method to the polkit action it
 * needs (NULL: open to everyone).  uid 0 needs nothing; everyone else is
 * asked about of polkit (CheckAuthorization, subject "system-bus-name"), on
 * the same bus vfiod serves, without blocking the event loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-names.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"

static const struct {
	const char *method;
	const char *action;
} auth_table[] = {
	{"Create", VFIOD_ACTION_MANAGE},
	{"Destroy", VFIOD_ACTION_MANAGE},
	{"Define", VFIOD_ACTION_MANAGE},
	{"Undefine", VFIOD_ACTION_MANAGE},
	{"Modify", VFIOD_ACTION_MANAGE},
	{"Start", VFIOD_ACTION_MANAGE},
	{"Stop", VFIOD_ACTION_MANAGE},
	{"MdevTypes", NULL},
	{"VdpaManagementDevices", NULL},
	{"Match", NULL},
	{"List", NULL},
	{"Describe", NULL},
};

struct auth_request {
	struct manager *m;
	sd_bus_message *msg;
	auth_done_fn done;
	void *userdata;
	char *action;
	bool called;
};

static void auth_finish(struct auth_request *a, const sd_bus_error *denied)
{
	if (a->called)
		return;
	a->called = true;
	a->done(a->m, a->msg, a->userdata, denied);
}

static void auth_request_destroy(void *userdata)
{
	struct auth_request *a = userdata;
	sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_ACCESS_DENIED,
						 "vfiod stopped before polkit answered");

	auth_finish(a, &e);
	sd_bus_message_unref(a->msg);
	free(a->action);
	free(a);
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	struct auth_request *a = userdata;
	const char *sender = sd_bus_message_get_sender(a->msg);
	const sd_bus_error *pe;
	int authorized = 0, challenge = 0, r;

	(void)ret_error;
	pe = sd_bus_message_get_error(reply);
	if (pe) {
		log_warning("%s: cannot ask polkit whether %s may %s: %s", sender, sender,
			    a->action, pe->message ?: pe->name);
		sd_bus_error_setf(&e, SD_BUS_ERROR_ACCESS_DENIED,
				  "%s needs authorization (%s) and polkit did not answer: %s",
				  sd_bus_message_get_member(a->msg), a->action,
				  pe->message ?: pe->name);
		auth_finish(a, &e);
		return 0;
	}
	r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
	if (r >= 0)
		r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
	if (r < 0) {
		sd_bus_error_setf(&e, SD_BUS_ERROR_ACCESS_DENIED,
				  "unexpected answer from polkit: %s", strerror(-r));
		auth_finish(a, &e);
		return 0;
	}
	if (authorized) {
		log_debug("%s: polkit allows %s", sender, a->action);
		auth_finish(a, NULL);
	} else if (challenge) {
		sd_bus_error_setf(&e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
				  "%s needs interactive authentication for %s",
				  sd_bus_message_get_member(a->msg), a->action);
		auth_finish(a, &e);
	} else {
		log_notice("%s: polkit refuses %s for %s", sender, a->action,
			   sd_bus_message_get_member(a->msg));
		sd_bus_error_setf(&e, SD_BUS_ERROR_ACCESS_DENIED, "%s is not authorized to %s (%s)",
				  sender, sd_bus_message_get_member(a->msg), a->action);
		auth_finish(a, &e);
	}
	return 0;
}

int auth_check(struct manager *m, sd_bus_message *msg, auth_done_fn done, void *userdata)
{
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
	const char *member = sd_bus_message_get_member(msg), *action = NULL;
	struct auth_request *a;
	sd_bus_slot *slot = NULL;
	bool known = false;
	uid_t uid;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(auth_table); i++)
		if (member && streq(auth_table[i].method, member)) {
			known = true;
			action = auth_table[i].action;
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

	/* The bus daemon's word (SO_PEERCRED) first; the effective uid when known. */
	r = sd_bus_query_sender_creds(
		msg, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
	if (r >= 0 && sd_bus_creds_get_euid(creds, &uid) < 0)
		r = sd_bus_creds_get_uid(creds, &uid);
	if (r < 0)
		return log_warning_errno(r, "%s: cannot read the caller's uid: %m",
					 sd_bus_message_get_sender(msg));
	if (uid == 0) {
		done(m, msg, userdata, NULL);
		return 0;
	}

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = (struct auth_request){.m = m,
				   .msg = sd_bus_message_ref(msg),
				   .done = done,
				   .userdata = userdata,
				   .action = strdup(action)};
	if (!a->action) {
		sd_bus_message_unref(a->msg);
		free(a);
		return -ENOMEM;
	}
	r = sd_bus_call_method_async(m->bus, &slot, POLKIT_BUS_NAME, POLKIT_PATH, POLKIT_IFACE,
				     "CheckAuthorization", on_polkit_reply, a, "(sa{sv})sa{ss}us",
				     "system-bus-name", 1, "name", "s",
				     sd_bus_message_get_sender(msg), action, 0,
				     sd_bus_message_get_allow_interactive_authorization(msg) > 0
					     ? POLKIT_CHECK_ALLOW_INTERACTION
					     : 0,
				     "");
	if (r < 0) {
		sd_bus_message_unref(a->msg);
		free(a->action);
		free(a);
		return log_warning_errno(r, "cannot ask polkit: %m");
	}
	/* From here on the slot owns the request; its destroy callback frees it. */
	sd_bus_slot_set_destroy_callback(slot, auth_request_destroy);
	sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
	return 0;
}
