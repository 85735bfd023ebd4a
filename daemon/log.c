/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_priority = LOG_INFO;

void log_set_max_priority(int priority)
{
	max_priority = priority;
}

int log_get_max_priority(void)
{
	return max_priority;
}

void log_fullv(int priority, const char *fmt, va_list ap)
{
	_cleanup_free_ char *text = NULL;
	int saved = errno;

	if (priority > max_priority)
		return;
	if (vasprintf(&text, fmt, ap) < 0) {
		errno = saved;
		return;
	}
	/* One write per line so that lines of threads do not interleave. */
	fprintf(stderr, "<%d>%s\n", priority, text);
	errno = saved;
}

int log_full(int priority, int r, const char *fmt, ...)
{
	va_list ap;

	/* %m in FMT names R. */
	if (r < 0)
		errno = -r;
	va_start(ap, fmt);
	log_fullv(priority, fmt, ap);
	va_end(ap);
	return r;
}
