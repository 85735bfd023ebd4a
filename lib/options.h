/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The options of create, destroy and define: one table for libvfiod (which
 * reads them as JSON), vfiod (which reads them from a{sv}) and vfioctl
 * (which reads them as words).  See org.vfiod1(5) and vfioctl(8).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define OPT_CREATE (1u << 0)
#define OPT_DESTROY (1u << 1)
#define OPT_DEFINE (1u << 2) /* Define and Modify */

struct option_def {
	const char *key;     /* the a{sv} and JSON key */
	const char *word;    /* vfioctl's keyword */
	const char *type;    /* D-Bus signature: "s", "b", "u", "t" or "a(ss)" */
	unsigned int methods;
	const char *kinds;   /* the kinds that take it, for messages */
	const char *arg;     /* vfioctl's name of the value; NULL for a flag */
	bool name;	     /* a string that names something: 1-64 printable bytes, no '/' */
};

extern const struct option_def option_defs[];
extern const size_t n_option_defs;

const struct option_def *option_find(const char *key, unsigned int method);
const struct option_def *option_find_word(const char *word, unsigned int method);
/* "driver (s), group (b), ..." of METHOD, for messages. */
void option_list(unsigned int method, char *buf, size_t size);

/*
 * vfioctl's words (ARGV, after the path) into the JSON object OPTS.  On a
 * bad word, returns -EINVAL with a message in ERR.
 */
int options_from_words(unsigned int method, int argc, char **argv, json_t *opts, char *err,
		       size_t errsize);
/* Whether V, of O's type, is a value O can take; -EINVAL and ERR when not. */
int option_value_check(const struct option_def *o, json_t *v, char *err, size_t errsize);
/*
 * Check every key, type and value of OPTS against METHOD's table; -EINVAL and
 * ERR when wrong.  An a(ss) option given in the first form, a JSON object of
 * strings, is turned into the list in place (options_upgrade()).
 */
int options_check(unsigned int method, json_t *opts, char *err, size_t errsize);

/*
 * a(ss) options ("attrs") are ordered lists, a name as often as wanted, kept
 * as mdevctl keeps them: [{"name": "value"}, ...].  The first form, a JSON
 * object {"name": "value", ...} (one value a name, in its order), is turned
 * into that list in OPTS; anything else is left for options_check().
 */
void options_upgrade(json_t *opts);
/* Append NAME=VALUE to the a(ss) option KEY of OPTS; -ENOMEM. */
int options_pair_append(json_t *opts, const char *key, const char *name, const char *value);
