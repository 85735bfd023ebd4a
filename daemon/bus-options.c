/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bus-options.h"
#include "macro.h"
#include "options.h"

int bus_options_append(sd_bus_message *m, json_t *opts)
{
	const char *key;
	json_t *v;
	int r;

	r = sd_bus_message_open_container(m, 'a', "{sv}");
	json_object_foreach(opts, key, v) {
		if (r < 0)
			break;
		if (json_is_string(v)) {
			r = sd_bus_message_append(m, "{sv}", key, "s", json_string_value(v));
		} else if (json_is_boolean(v)) {
			r = sd_bus_message_append(m, "{sv}", key, "b", (int)json_is_true(v));
		} else if (json_is_integer(v)) {
			const struct option_def *o = option_find(key, ~0u);

			if (o && streq(o->type, "t"))
				r = sd_bus_message_append(m, "{sv}", key, "t",
							  (uint64_t)json_integer_value(v));
			else
				r = sd_bus_message_append(m, "{sv}", key, "u",
							  (uint32_t)json_integer_value(v));
		} else if (json_is_array(v)) { /* a(ss): [{"name": "value"}, ...] */
			const char *k;
			json_t *e, *pv;
			size_t i;

			r = sd_bus_message_open_container(m, 'e', "sv");
			if (r >= 0)
				r = sd_bus_message_append(m, "s", key);
			if (r >= 0)
				r = sd_bus_message_open_container(m, 'v', "a(ss)");
			if (r >= 0)
				r = sd_bus_message_open_container(m, 'a', "(ss)");
			json_array_foreach(v, i, e)
				json_object_foreach(e, k, pv)
					if (r >= 0)
						r = sd_bus_message_append(m, "(ss)", k,
									  json_string_value(pv));
			for (int n = 0; n < 3 && r >= 0; n++)
				r = sd_bus_message_close_container(m);
		} else {
			r = -EINVAL;
		}
	}
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	return r;
}

static int read_value(sd_bus_message *m, const char *type, json_t **ret)
{
	int r;

	if (streq(type, "s")) {
		const char *s;

		r = sd_bus_message_read(m, "s", &s);
		*ret = r >= 0 ? json_string(s) : NULL;
	} else if (streq(type, "b")) {
		int b;

		r = sd_bus_message_read(m, "b", &b);
		*ret = r >= 0 ? json_boolean(b) : NULL;
	} else if (streq(type, "u")) {
		uint32_t u;

		r = sd_bus_message_read(m, "u", &u);
		*ret = r >= 0 ? json_integer(u) : NULL;
	} else if (streq(type, "t")) {
		uint64_t t;

		r = sd_bus_message_read(m, "t", &t);
		if (r >= 0 && t > INT64_MAX)
			return -ERANGE;
		*ret = r >= 0 ? json_integer((json_int_t)t) : NULL;
	} else { /* a(ss), or the first form a{ss}: the same ordered list */
		bool dict = streq(type, "a{ss}");
		const char *k, *v;

		*ret = json_array();
		r = sd_bus_message_enter_container(m, 'a', dict ? "{ss}" : "(ss)");
		while (r >= 0 && (r = sd_bus_message_read(m, dict ? "{ss}" : "(ss)", &k, &v)) > 0)
			r = json_array_append_new(*ret, json_pack("{s:s}", k, v)) < 0 ? -ENOMEM : 0;
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r >= 0 && !*ret)
		r = -ENOMEM;
	if (r < 0) {
		json_decref(*ret);
		*ret = NULL;
	}
	return r;
}

int bus_options_read(sd_bus_message *m, unsigned int method, const char *member, json_t **ret,
		     sd_bus_error *error)
{
	json_t *opts = json_object();
	int r;

	if (!opts)
		return -ENOMEM;
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const struct option_def *o;
		const char *key, *contents;
		char allowed[512];
		json_t *v = NULL;

		r = sd_bus_message_read(m, "s", &key);
		if (r >= 0)
			r = sd_bus_message_peek_type(m, NULL, &contents);
		if (r < 0)
			break;
		o = option_find(key, method);
		if (!o) {
			option_list(method, allowed, sizeof(allowed));
			r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					      "unknown option \"%s\"; %s takes: %s", key, member,
					      allowed);
			break;
		}
		/* a(ss) was a{ss} first: callers of that form are still served. */
		if (!streq(contents, o->type) &&
		    !(streq(o->type, "a(ss)") && streq(contents, "a{ss}"))) {
			r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					      "option \"%s\" must be of type %s%s, not %s", key,
					      o->type,
					      streq(o->type, "a(ss)") ? " (or a{ss})" : "", contents);
			break;
		}
		if (json_object_get(opts, key)) {
			r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					      "option \"%s\" is given twice", key);
			break;
		}
		r = sd_bus_message_enter_container(m, 'v', contents);
		if (r >= 0)
			r = read_value(m, contents, &v);
		if (r == -ERANGE) {
			r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					      "option \"%s\" is out of range", key);
			break;
		}
		if (r >= 0 && option_value_check(o, v, allowed, sizeof(allowed)) < 0) {
			json_decref(v);
			r = sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, allowed);
			break;
		}
		if (r >= 0)
			r = json_object_set_new(opts, key, v) < 0 ? -ENOMEM : 0;
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r < 0) {
		json_decref(opts);
		return r;
	}
	*ret = opts;
	return 0;
}
