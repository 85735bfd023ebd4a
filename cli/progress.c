/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <stdio.h>

#include "progress.h"

static FILE *out;
static bool shown;

void progress_enable(FILE *f)
{
	out = f;
}

bool progress_enabled(void)
{
	return out;
}

void progress_show(const char *subject, const char *member, unsigned int done,
		   unsigned int total)
{
	if (!out || total == 0)
		return;
	/* Back to the start of the line, and clear it: the terminal's own rewrite. */
	fprintf(out, "\r\033[K%s: %u of %u done", subject, done, total);
	if (member)
		fprintf(out, " (%s)", member);
	fflush(out);
	shown = true;
}

void progress_clear(void)
{
	if (!shown)
		return;
	fputs("\r\033[K", out);
	fflush(out);
	shown = false;
}
