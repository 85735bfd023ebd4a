/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The a{sv} options of org.vfiod1's methods, to and from the JSON object
 * libvfiod takes, by the one table of lib/options.c.
 */
#pragma once

#include <jansson.h>
#include <systemd/sd-bus.h>

/* Append OPTS (may be NULL) to M as a{sv}. */
int bus_options_append(sd_bus_message *m, json_t *opts);

/*
 * Read a{sv} into a new JSON object: unknown keys, wrong types and repeated
 * keys are InvalidArgs naming the key and what METHOD (OPT_*) takes.
 */
int bus_options_read(sd_bus_message *m, unsigned int method, const char *member, json_t **ret,
		     sd_bus_error *error);
