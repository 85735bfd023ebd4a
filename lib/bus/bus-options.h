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

/*
 * Bounds on every argument of org.vfiod1's methods, refused with InvalidArgs
 * naming the limit (org.vfiod1(5)): a string argument (a path, a name) is
 * shorter than PATH_MAX; an a{sv} has at most BUS_OPTIONS_MAX entries with
 * names of at most BUS_OPTION_KEY_MAX bytes; an option's string value, and
 * an entry's name in a list option (attrs), at most BUS_OPTION_NAME_MAX
 * bytes; a list option at most BUS_OPTION_ITEMS_MAX entries, whose values
 * are at most BUS_ATTR_VALUE_MAX bytes (one sysfs page).
 */
#define BUS_OPTIONS_MAX 32
#define BUS_OPTION_KEY_MAX 64
#define BUS_OPTION_NAME_MAX 255
#define BUS_OPTION_ITEMS_MAX 1024
#define BUS_ATTR_VALUE_MAX 4095
/* Check M's arguments against the bounds; M is rewound either way. */
int bus_arguments_check(sd_bus_message *m, sd_bus_error *error);
/* Refuse every call of vfiod's interfaces on BUS past the bounds, before it is dispatched. */
int bus_arguments_bound(sd_bus *bus);
