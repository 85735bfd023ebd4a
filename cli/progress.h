/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The progress line of work over several devices (the VFs of a PF, the
 * members of an IOMMU group), on a terminal only: rewritten in place as the
 * work goes, wiped before anything else is printed.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

/* Show progress on F from now on (a terminal, in text mode: the caller decides). */
void progress_enable(FILE *f);
bool progress_enabled(void);
/* "SUBJECT: DONE of TOTAL done (MEMBER)"; MEMBER may be NULL. */
void progress_show(const char *subject, const char *member, unsigned int done,
		   unsigned int total);
/* Wipe the line, if one is shown. */
void progress_clear(void);
