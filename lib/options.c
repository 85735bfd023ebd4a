/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "options.h"

#define C OPT_CREATE
#define D OPT_DESTROY
#define F OPT_DEFINE

const struct option_def option_defs[] = {
	/* key, word, type, methods, kinds, value */
	{ "driver", "driver", "s", C | F, "pci, vdpa", "NAME", true },
	{ "group", "group", "b", C | F, "pci", NULL, false },
	{ "persistent", "persistent", "b", C, "all", NULL, false },
	{ "type", "type", "s", C | F, "mdev", "TYPE", true },
	{ "uuid", "uuid", "s", C | F, "mdev", "UUID", false },
	{ "attrs", "attr", "a(ss)", C | F, "mdev", "NAME=VALUE", false },
	{ "vfs", "vfs", "u", C | F, "vfs", "N", false },
	{ "vfs", "vfs", "b", D, "vfs", NULL, false },
	{ "assign", "assign", "b", C | F, "vfs", NULL, false },
	{ "autoprobe", "autoprobe", "b", C | F, "vfs", NULL, false },
	{ "force", "force", "b", C | D, "all", NULL, false },
	{ "vdpa", "vdpa", "s", C | F, "vdpa", "NAME", true },
	{ "mac", "mac", "s", C | F, "vdpa, sf", "ADDRESS", false },
	{ "mtu", "mtu", "u", C | F, "vdpa", "BYTES", false },
	{ "max_vqp", "max_vqp", "u", C | F, "vdpa", "N", false },
	{ "features", "features", "t", C | F, "vdpa", "BITS", false },
	{ "sf", "sf", "u", C | D | F, "sf", "N", false },
	{ "pfnum", "pfnum", "u", C | F, "sf", "N", false },
	{ "controller", "controller", "u", C | F, "sf", "N", false },
};
const size_t n_option_defs = ARRAY_SIZE(option_defs);

#undef C
#undef D
#undef F

const struct option_def *option_find(const char *key, unsigned int method)
{
	for (size_t i = 0; i < n_option_defs; i++)
		if ((option_defs[i].methods & method) && streq(option_defs[i].key, key))
			return &option_defs[i];
	return NULL;
}

const struct option_def *option_find_word(const char *word, unsigned int method)
{
	for (size_t i = 0; i < n_option_defs; i++)
		if ((option_defs[i].methods & method) && streq(option_defs[i].word, word))
			return &option_defs[i];
	return NULL;
}

void option_list(unsigned int method, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n_option_defs; i++)
		if (option_defs[i].methods & method)
			len += snprintf(buf + len, len < size ? size - len : 0, "%s%s (%s)",
					len ? ", " : "", option_defs[i].key, option_defs[i].type);
	if (!buf[0])
		snprintf(buf, size, "none");
}

static int parse_number(const char *s, bool wide, json_int_t *ret)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || (!wide && v > UINT32_MAX) || v > INT64_MAX)
		return -ERANGE;
	*ret = (json_int_t)v;
	return 0;
}

int options_from_words(unsigned int method, int argc, char **argv, json_t *opts, char *err,
		       size_t errsize)
{
	for (int i = 0; i < argc; i++) {
		const struct option_def *o = option_find_word(argv[i], method);
		const char *v;

		if (!o) {
			char words[512];
			size_t len = 0;

			words[0] = '\0';
			for (size_t k = 0; k < n_option_defs; k++)
				if ((option_defs[k].methods & method) &&
				    !strstr(words, option_defs[k].word))
					len += snprintf(words + len,
							len < sizeof(words) ? sizeof(words) - len : 0,
							"%s%s", len ? ", " : "", option_defs[k].word);
			snprintf(err, errsize, "unknown argument '%s' (expected one of: %s)", argv[i],
				 words);
			return -EINVAL;
		}
		if (!streq(o->type, "b") && i + 1 >= argc) {
			snprintf(err, errsize, "'%s' needs a value (%s)", o->word, o->arg);
			return -EINVAL;
		}
		if (streq(o->type, "b")) {
			json_object_set_new(opts, o->key, json_true());
			continue;
		}
		v = argv[++i];
		if (streq(o->type, "s")) {
			if (!*v) {
				snprintf(err, errsize, "'%s' needs a non-empty %s", o->word, o->arg);
				return -EINVAL;
			}
			if (json_object_get(opts, o->key)) {
				snprintf(err, errsize, "'%s' is given twice", o->word);
				return -EINVAL;
			}
			json_object_set_new(opts, o->key, json_string(v));
			if (option_value_check(o, json_object_get(opts, o->key), err, errsize) < 0)
				return -EINVAL;
		} else if (streq(o->type, "u") || streq(o->type, "t")) {
			json_int_t n;

			if (parse_number(v, streq(o->type, "t"), &n) < 0) {
				snprintf(err, errsize, "'%s': '%s' is not a number in range", o->word,
					 v);
				return -EINVAL;
			}
			json_object_set_new(opts, o->key, json_integer(n));
		} else { /* a(ss): NAME=VALUE, repeatable, kept in order */
			const char *eq = strchr(v, '=');
			char name[256];

			if (!eq || eq == v || (size_t)(eq - v) >= sizeof(name)) {
				snprintf(err, errsize, "'%s': '%s' is not NAME=VALUE", o->word, v);
				return -EINVAL;
			}
			snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
			if (options_pair_append(opts, o->key, name, eq + 1) < 0) {
				snprintf(err, errsize, "out of memory");
				return -ENOMEM;
			}
		}
	}
	return 0;
}

int option_value_check(const struct option_def *o, json_t *v, char *err, size_t errsize)
{
	const char *s = json_string_value(v);
	size_t len = s ? strlen(s) : 0;

	if (!o->name || !s)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] == '/' || s[i] == 0x7f) {
			len = 0;
			break;
		}
	if (len == 0 || len > 64) {
		snprintf(err, errsize, "option \"%s\": \"%.80s\" is not a %s name (1 to 64 "
			 "printable characters, no '/')", o->key, s, o->key);
		return -EINVAL;
	}
	return 0;
}

static bool json_has_type(json_t *v, const char *type)
{
	if (streq(type, "s"))
		return json_is_string(v);
	if (streq(type, "b"))
		return json_is_boolean(v);
	if (streq(type, "u"))
		return json_is_integer(v) && json_integer_value(v) >= 0 &&
		       json_integer_value(v) <= UINT32_MAX;
	if (streq(type, "t"))
		return json_is_integer(v) && json_integer_value(v) >= 0;
	if (streq(type, "a(ss)")) {
		const char *k;
		json_t *e, *val;
		size_t i;

		if (!json_is_array(v))
			return false;
		json_array_foreach(v, i, e) {
			if (!json_is_object(e) || json_object_size(e) != 1)
				return false;
			json_object_foreach(e, k, val)
				if (!json_is_string(val))
					return false;
		}
		return true;
	}
	return false;
}

int options_check(unsigned int method, json_t *opts, char *err, size_t errsize)
{
	const char *key;
	json_t *v;

	if (!json_is_object(opts)) {
		snprintf(err, errsize, "options must be a JSON object");
		return -EINVAL;
	}
	options_upgrade(opts);
	json_object_foreach(opts, key, v) {
		const struct option_def *o = option_find(key, method);

		if (!o) {
			char allowed[512];

			option_list(method, allowed, sizeof(allowed));
			snprintf(err, errsize, "unknown option \"%s\"; allowed: %s", key, allowed);
			return -EINVAL;
		}
		if (!json_has_type(v, o->type)) {
			snprintf(err, errsize, "option \"%s\" must be of type %s%s", key, o->type,
				 streq(o->type, "a(ss)") ? " ([{\"name\": \"value\"}, ...], or "
				 "{\"name\": \"value\", ...})" : "");
			return -EINVAL;
		}
		if (option_value_check(o, v, err, errsize) < 0)
			return -EINVAL;
	}
	return 0;
}

int options_pair_append(json_t *opts, const char *key, const char *name, const char *value)
{
	json_t *a = json_object_get(opts, key);

	if (!a) {
		a = json_array();
		if (!a || json_object_set_new(opts, key, a) < 0)
			return -ENOMEM;
	}
	return json_array_append_new(a, json_pack("{s:s}", name, value)) < 0 ? -ENOMEM : 0;
}

void options_upgrade(json_t *opts)
{
	for (size_t i = 0; i < n_option_defs; i++) {
		json_t *v = json_object_get(opts, option_defs[i].key), *a;
		const char *k;
		json_t *e;

		if (!streq(option_defs[i].type, "a(ss)") || !json_is_object(v))
			continue;
		json_object_foreach(v, k, e)
			if (!json_is_string(e))
				break;
		if (k) /* not all strings: options_check() names it */
			continue;
		a = json_array();
		json_object_foreach(v, k, e)
			json_array_append_new(a, json_pack("{s:O}", k, e));
		if (a)
			json_object_set_new(opts, option_defs[i].key, a);
	}
}
