/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>


#include "bus-errors.h"
#include "bus-names.h"
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
			char text[sizeof(allowed)];

			json_decref(v);
			/* The words quote the value, cut to a length: keep them UTF-8. */
			r = sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
					     bus_text(text, sizeof(text), allowed, SIZE_MAX));
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

/*
 * ---- Bounds on the arguments of org.vfiod1's methods ----
 *
 * Checked on the message as it arrived, before any handler reads it, builds
 * anything of it or asks polkit: nothing is allocated for what is refused.
 * The walk takes any container type, so that it holds whichever signature an
 * option has (attrs as a{ss} or a(ss)).
 */
static int refuse(sd_bus_error *error, const char *what, const char *key, unsigned int limit,
		  const char *unit)
{
	char k[65];

	if (key)
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "%s of option \"%s\" is too big: at most %u %s", what,
					 bus_text(k, sizeof(k), key, 64), limit, unit);
	return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s is too big: at most %u %s",
				 what, limit, unit);
}

static bool is_string(char type)
{
	return type == SD_BUS_TYPE_STRING || type == SD_BUS_TYPE_OBJECT_PATH ||
	       type == SD_BUS_TYPE_SIGNATURE;
}

/* A string of at most MAX bytes, or an InvalidArgs naming WHAT. */
static int check_string(sd_bus_message *m, char type, unsigned int max, const char *what,
			const char *key, sd_bus_error *error)
{
	const char *s;
	int r = sd_bus_message_read_basic(m, type, &s);

	if (r < 0)
		return r;
	return strlen(s) > max ? refuse(error, what, key, max, "bytes") : 0;
}

/* One element of a list option: a string, or a pair (name, value), anything else skipped. */
static int check_element(sd_bus_message *m, char type, const char *contents, const char *key,
			 sd_bus_error *error)
{
	int r, i = 0;

	if (is_string(type))
		return check_string(m, type, BUS_ATTR_VALUE_MAX, "an entry", key, error);
	if (type != SD_BUS_TYPE_STRUCT && type != SD_BUS_TYPE_DICT_ENTRY)
		return sd_bus_message_skip(m, NULL);
	r = sd_bus_message_enter_container(m, type, contents);
	while (r >= 0 && (r = sd_bus_message_peek_type(m, &type, NULL)) > 0) {
		if (is_string(type))
			r = check_string(m, type, i ? BUS_ATTR_VALUE_MAX : BUS_OPTION_NAME_MAX,
					 i ? "an entry's value" : "an entry's name", key, error);
		else
			r = sd_bus_message_skip(m, NULL);
		i++;
	}
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* The value of option KEY (inside its variant). */
static int check_value(sd_bus_message *m, const char *key, sd_bus_error *error)
{
	const char *contents;
	unsigned int n = 0;
	char type;
	int r;

	r = sd_bus_message_peek_type(m, &type, &contents);
	if (r <= 0)
		return r;
	if (is_string(type))
		return check_string(m, type, BUS_OPTION_NAME_MAX, "the value", key, error);
	if (type != SD_BUS_TYPE_ARRAY)
		return sd_bus_message_skip(m, NULL);
	r = sd_bus_message_enter_container(m, type, contents);
	while (r >= 0 && (r = sd_bus_message_peek_type(m, &type, &contents)) > 0) {
		if (++n > BUS_OPTION_ITEMS_MAX)
			return refuse(error, "the list", key, BUS_OPTION_ITEMS_MAX, "entries");
		r = check_element(m, type, contents, key, error);
	}
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* An a{sv} of options. */
static int check_options(sd_bus_message *m, sd_bus_error *error)
{
	unsigned int n = 0;
	int r;

	r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
		const char *key, *contents;

		if (++n > BUS_OPTIONS_MAX)
			return refuse(error, "the options", NULL, BUS_OPTIONS_MAX, "entries");
		r = sd_bus_message_read_basic(m, SD_BUS_TYPE_STRING, &key);
		if (r < 0)
			return r;
		if (strlen(key) > BUS_OPTION_KEY_MAX)
			return refuse(error, "an option's name", NULL, BUS_OPTION_KEY_MAX, "bytes");
		r = sd_bus_message_peek_type(m, NULL, &contents);
		if (r >= 0)
			r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, contents);
		if (r >= 0)
			r = check_value(m, key, error);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

int bus_arguments_check(sd_bus_message *m, sd_bus_error *error)
{
	const char *contents;
	unsigned int i = 0;
	char type;
	int r;

	r = sd_bus_message_rewind(m, true);
	while (r >= 0 && (r = sd_bus_message_peek_type(m, &type, &contents)) > 0) {
		i++;
		if (is_string(type)) {
			char what[32];

			snprintf(what, sizeof(what), "argument %u", i);
			r = check_string(m, type, PATH_MAX - 1, what, NULL, error);
		} else if (type == SD_BUS_TYPE_ARRAY && streq(contents, "{sv}")) {
			r = check_options(m, error);
		} else {
			r = sd_bus_message_skip(m, NULL);
		}
	}
	if (r >= 0 && sd_bus_error_is_set(error))
		r = -EINVAL;
	if (r >= 0)
		r = sd_bus_message_rewind(m, true);
	return r;
}

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *iface = sd_bus_message_get_interface(m);
	int r;

	(void)userdata, (void)ret_error;
	/* Calls of vfiod's interfaces, and calls naming none (sd-bus dispatches them by member). */
	if (!sd_bus_message_is_method_call(m, NULL, NULL) ||
	    (iface && strncmp(iface, VFIOD_BUS_NAME ".", strlen(VFIOD_BUS_NAME) + 1) != 0))
		return 0;
	r = bus_arguments_check(m, &e);
	if (r >= 0)
		return 0;
	if (!sd_bus_error_is_set(&e))
		sd_bus_error_set_errno(&e, r);
	(void)sd_bus_reply_method_error(m, &e);
	return 1;
}

int bus_arguments_bound(sd_bus *bus)
{
	return sd_bus_add_filter(bus, NULL, on_message, NULL);
}
