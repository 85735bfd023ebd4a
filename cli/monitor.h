/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "print.h"

/*
 * vfioctl monitor: print vfiod's Event signals until SIGINT or SIGTERM
 * (exit 0); 1 when vfiod cannot be reached or the bus goes away.
 */
int monitor_run(enum print_mode mode);
