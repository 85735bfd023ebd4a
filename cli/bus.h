/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfioctl's client of org.vfiod1: each call returns the daemon's JSON for
 * the one printer, or prints "vfioctl: VERB: <the daemon's message>" once
 * and returns a negative errno.
 */
#pragma once

#include <stdbool.h>

int bus_match(const char *path, char **ret_json);
int bus_create(const char *path, const char *driver, bool group, bool persistent,
	       char **ret_json);
int bus_destroy(const char *path, char **ret_json);
int bus_list(char **ret_json);
