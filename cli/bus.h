/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfioctl's client of org.vfiod1: each call returns the daemon's JSON for
 * the one printer, or prints "vfioctl: VERB: <the daemon's message>" once
 * and returns a negative errno.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

/*
 * Call the Manager's METHOD with ARG (a string; NULL for none) and OPTS as
 * a{sv} (NULL for none).  CHANGE: the call may wait behind other work and
 * for the kernel, so it gets a long timeout.
 */
int bus_call(const char *verb, const char *method, const char *arg, json_t *opts, bool change,
	     char **ret_json);

/*
 * METHOD for each of the N ARGS, all sent at once, with a progress line as
 * the replies come; each result (JSON) appended to RESULTS in the order of
 * ARGS, each failure said as bus_call() says it.  Returns how many failed,
 * or a negative errno when the calls could not be made.
 */
int bus_call_each(const char *verb, const char *method, char **args, size_t n, json_t *results);
