/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfioctl monitor: vfiod's Event signals as they come, one line each (text,
 * or the daemon's JSON object with -j), until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-connect.h"
#include "bus-errors.h"
#include "bus-names.h"
#include "macro.h"
#include "monitor.h"

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void print_text(FILE *f, json_t *o)
{
	json_int_t usec = json_integer_value(json_object_get(o, "usec"));
	time_t sec = (time_t)(usec / 1000000);
	const char *ev = str(o, "event") ?: "?", *drv = str(o, "driver"),
		   *prev = str(o, "previous_driver"), *reason = str(o, "reason");
	char when[32] = "?";
	struct tm tm;

	if (localtime_r(&sec, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, "%s.%06lld %-9s %s", when, (long long)(usec % 1000000), ev,
		str(o, "name") ?: str(o, "device") ?: "?");
	if (str(o, "kind") && !streq(str(o, "kind"), "pci"))
		fprintf(f, " (%s)", str(o, "kind"));
	if (drv || prev)
		fprintf(f, " %s%s%s%s", streq(ev, "released") ? "back on " : "on ",
			drv ?: "no driver", prev ? ", was " : "", prev ?: "");
	fprintf(f, " [%s]", str(o, "trigger") ?: "?");
	if (reason)
		fprintf(f, ": %s", reason);
	fprintf(f, "\n");
}

static int on_event(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	enum print_mode mode = *(enum print_mode *)userdata;
	const char *json;
	json_t *o;
	int r;

	(void)error;
	r = sd_bus_message_read(msg, "s", &json);
	if (r < 0) {
		fprintf(stderr, "vfioctl: monitor: a malformed Event signal: %s\n", strerror(-r));
		return 0;
	}
	if (mode == PRINT_JSON) {
		printf("%s\n", json);
	} else {
		o = json_loads(json, 0, NULL);
		if (!o) {
			fprintf(stderr, "vfioctl: monitor: an Event that is not JSON: %s\n", json);
			return 0;
		}
		if (mode == PRINT_JSON_PRETTY) {
			json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			printf("\n");
		} else {
			print_text(stdout, o);
		}
		json_decref(o);
	}
	fflush(stdout);
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)si, (void)userdata;
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

int monitor_run(enum print_mode mode)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_event *event = NULL;
	sd_bus *bus = NULL;
	const char *address = "the system bus";
	sigset_t ss;
	int r, code = 0;

	/* Taken through the event loop; also where a shell started us with them ignored. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigprocmask(SIG_BLOCK, &ss, NULL);

	(void)bus_errors_register();
	r = bus_connect("vfioctl-monitor", &bus, &address);
	if (r < 0) {
		fprintf(stderr, "vfioctl: monitor: cannot connect to %s: %s\n", address,
			strerror(-r));
		return EXIT_FAILURE;
	}
	r = sd_event_default(&event);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
	if (r >= 0)
		r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_set_exit_on_disconnect(bus, true);
	/* Subscribed before vfiod is reached, so that no event in between is missed. */
	if (r >= 0)
		r = sd_bus_match_signal(bus, NULL, VFIOD_BUS_NAME, VFIOD_MANAGER_PATH,
					VFIOD_MANAGER_IFACE, VFIOD_EVENT_SIGNAL, on_event, &mode);
	if (r < 0) {
		fprintf(stderr, "vfioctl: monitor: cannot listen on %s: %s\n", address,
			strerror(-r));
		code = EXIT_FAILURE;
		goto out;
	}
	/* Reach vfiod once (starting it where the bus activates it), or say why not. */
	r = sd_bus_call_method(bus, VFIOD_BUS_NAME, VFIOD_MANAGER_PATH,
			       "org.freedesktop.DBus.Peer", "Ping", &e, NULL, "");
	if (r < 0) {
		fprintf(stderr,
			"vfioctl: monitor: cannot reach vfiod on %s: %s\n"
			"Is vfiod running (systemctl start vfiod)?\n",
			address, e.message ? e.message : strerror(-r));
		code = EXIT_FAILURE;
		goto out;
	}
	/* The line a caller may wait for before making things happen; JSON output stays pure. */
	fprintf(mode == PRINT_TEXT ? stdout : stderr,
		"# monitoring vfiod's events on %s; ^C ends\n", address);
	fflush(stdout);
	r = sd_event_loop(event);
	if (r != 0) {
		fprintf(stderr, "vfioctl: monitor: %s\n",
			r > 0 ? "the bus went away" : strerror(-r));
		code = EXIT_FAILURE;
	}
out:
	sd_bus_flush_close_unref(bus);
	sd_event_unref(event);
	return code;
}
