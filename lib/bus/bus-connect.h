/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/*
 * The bus vfiod and vfioctl use: the address in $VFIOD_BUS_ADDRESS when set
 * (tests, a private bus), else the system bus.  *ADDRESS (may be NULL) is
 * set to a description of it for messages.
 */
int bus_connect(const char *description, sd_bus **ret, const char **address);
