/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The options table: vfioctl's words (options_from_words) and D-Bus/JSON
 * dictionaries (options_check).  Input: a method byte, then either words
 * separated by NULs or (method byte odd) a JSON text.  Whatever the words
 * make must pass options_check for the same method, and every refusal
 * must say why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

static const unsigned int methods[] = { OPT_CREATE, OPT_DESTROY, OPT_DEFINE };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned int method;
	char err[512] = "";
	json_t *opts;
	int r;

	if (size < 1)
		return 0;
	method = methods[(data[0] >> 1) % 3];
	data++;
	size--;
	if (data[-1] & 1) {
		opts = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
		if (!opts)
			return 0;
		r = options_check(method, opts, err, sizeof(err));
		if (r < 0 && !err[0])
			abort();
		json_decref(opts);
		return 0;
	}

	char *buf = malloc(size + 1);
	char *argv[64];
	int argc = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (size_t i = 0; i <= size && argc < 64;) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	opts = json_object();
	r = options_from_words(method, argc, argv, opts, err, sizeof(err));
	if (r < 0 && !err[0])
		abort();
	if (r >= 0 && options_check(method, opts, err, sizeof(err)) < 0) {
		fprintf(stderr, "words accepted, their options refused: %s\n", err);
		abort();
	}
	json_decref(opts);
	free(buf);
	return 0;
}
