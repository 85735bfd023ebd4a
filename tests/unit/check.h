/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CHECK(cond, message...) for the unit tests: counts, and says what failed where. */
#pragma once

#include <stdio.h>

static int failed, passed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			passed++;                                                                  \
		} else {                                                                           \
			failed++;                                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
		}                                                                                  \
	} while (0)
