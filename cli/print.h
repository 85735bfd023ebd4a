/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

enum print_mode {
	PRINT_TEXT,
	PRINT_JSON,
	PRINT_JSON_PRETTY,
};

/*
 * The one printer: JSON as libvfiod and vfiod produce it, printed as is
 * (-j), indented (-p), or as text for VERB.  Returns 0, or -EBADMSG when
 * JSON is not what VERB returns.
 */
int print_result(FILE *f, enum print_mode mode, const char *verb, const char *json);

/* Colour device names, drivers and problems in the text from now on (off at first). */
void print_set_color(bool on);
