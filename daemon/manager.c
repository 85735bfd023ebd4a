/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The org.vfiod1.Manager object.  Each method: read the arguments, validate
 * them, authorize, act (reads at once through libvfiod, changes as jobs),
 * map errors to org.vfiod1.Error.*, reply.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-names.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

static void log_lib(void *userdata, int priority, const char *format, va_list ap)
{
	(void)userdata;
	log_fullv(priority, format, ap);
}

/*
 * Every request gets a context of its own: libvfiod caches the module
 * aliases per context, and modules may be installed while vfiod runs.
 */
struct vfiod_ctx *manager_ctx_new(int log_priority, const char *what)
{
	struct vfiod_ctx *ctx = NULL;
	int r = vfiod_ctx_new(&ctx);

	if (r < 0) {
		log_error_errno(r, "%s: cannot create a libvfiod context: %m", what);
		return NULL;
	}
	vfiod_ctx_set_log_fn(ctx, log_lib, NULL);
	vfiod_ctx_set_log_priority(ctx, log_priority);
	return ctx;
}

static void vfiod_ctx_unrefp(struct vfiod_ctx **ctx)
{
	vfiod_ctx_unref(*ctx);
}

/* The option keys of each method that takes options, and their types. */
static const struct option_spec {
	const char *method;
	const char *key;
	const char *type;
} option_specs[] = {
	{"Create", VFIOD_OPTION_DRIVER, "s"},
	{"Create", VFIOD_OPTION_GROUP, "b"},
	{"Create", VFIOD_OPTION_PERSISTENT, "b"},
};

static const char *option_type(const char *method, const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(option_specs); i++)
		if (streq(option_specs[i].method, method) && streq(option_specs[i].key, key))
			return option_specs[i].type;
	return NULL;
}

static void option_list(const char *method, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(option_specs); i++)
		if (streq(option_specs[i].method, method))
			len += snprintf(buf + len, len < size ? size - len : 0, "%s%s (%s)",
					len ? ", " : "", option_specs[i].key, option_specs[i].type);
	if (!buf[0])
		snprintf(buf, size, "none");
}

/* Read a{sv} into J; unknown keys, wrong types and repeats are InvalidArgs naming the key. */
static int read_options(sd_bus_message *msg, const char *method, struct job *j, sd_bus_error *error)
{
	char seen[8][32] = {};
	size_t n_seen = 0;
	int r;

	r = sd_bus_message_enter_container(msg, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
		const char *key, *contents, *type;
		char allowed[256];

		r = sd_bus_message_read(msg, "s", &key);
		if (r < 0)
			return r;
		r = sd_bus_message_peek_type(msg, NULL, &contents);
		if (r < 0)
			return r;
		type = option_type(method, key);
		if (!type) {
			option_list(method, allowed, sizeof(allowed));
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "unknown option \"%s\"; %s takes: %s", key, method,
						 allowed);
		}
		if (!streq(contents, type))
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "option \"%s\" must be of type %s, not %s", key,
						 type, contents);
		for (size_t i = 0; i < n_seen; i++)
			if (streq(seen[i], key))
				return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
							 "option \"%s\" is given twice", key);
		if (n_seen < ARRAY_SIZE(seen))
			snprintf(seen[n_seen++], sizeof(seen[0]), "%s", key);

		r = sd_bus_message_enter_container(msg, 'v', type);
		if (r < 0)
			return r;
		if (streq(key, VFIOD_OPTION_DRIVER)) {
			const char *s;

			r = sd_bus_message_read(msg, "s", &s);
			if (r < 0)
				return r;
			if (!*s || strchr(s, '/') || strlen(s) > 64)
				return sd_bus_error_setf(
					error, SD_BUS_ERROR_INVALID_ARGS,
					"option \"%s\": \"%s\" is not a driver name", key, s);
			free(j->driver);
			j->driver = strdup(s);
			if (!j->driver)
				return -ENOMEM;
		} else {
			int b;

			r = sd_bus_message_read(msg, "b", &b);
			if (r < 0)
				return r;
			if (streq(key, VFIOD_OPTION_GROUP))
				j->whole_group = b;
			else
				j->persistent = b;
		}
		r = sd_bus_message_exit_container(msg);
		if (r >= 0)
			r = sd_bus_message_exit_container(msg);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(msg);
}

/* Create and Destroy continue here once the caller is authorized. */
static void on_authorized(struct manager *m, sd_bus_message *msg, void *userdata,
			  const sd_bus_error *denied)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct job *j = userdata;
	int r;

	if (denied) {
		r = sd_bus_reply_method_error(msg, denied);
		job_free(j);
		return;
	}
	r = job_submit(m, j, &error);
	if (r < 0) {
		log_info("%s: %s refused: %s", j->syspath ? j->syspath : j->input,
			 sd_bus_message_get_member(msg), error.message ?: strerror(-r));
		r = sd_bus_reply_method_error(msg, &error);
		if (r < 0)
			log_warning_errno(r, "cannot send a reply: %m");
		job_free(j);
	}
	/* Queued: the reply comes when the job ends. */
}

static int submit_authorized(struct manager *m, sd_bus_message *msg, struct job *j)
{
	int r;

	j->msg = sd_bus_message_ref(msg);
	r = auth_check(m, msg, on_authorized, j);
	if (r < 0) {
		job_free(j);
		return r;
	}
	return 1;
}

static int method_create(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(job_freep) struct job *j = NULL;
	const char *path;
	int r;

	r = sd_bus_message_read(msg, "s", &path);
	if (r < 0)
		return r;
	r = job_new(m, JOB_ASSIGN, path, &j);
	if (r < 0)
		return r;
	r = read_options(msg, "Create", j, error);
	if (r < 0)
		return r;
	return submit_authorized(m, msg, TAKE_PTR(j));
}

static int method_destroy(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(job_freep) struct job *j = NULL;
	const char *path;
	struct mdevice *d;
	int r;

	r = sd_bus_message_read(msg, "s", &path);
	if (r < 0)
		return r;
	/* A managed device may be named by its name or path as vfiod knows it. */
	d = mdevice_find(m, path);
	r = job_new(m, JOB_RELEASE, d && d->syspath ? d->syspath : path, &j);
	if (r < 0)
		return r;
	r = read_options(msg, "Destroy", j, error);
	if (r < 0)
		return r;
	return submit_authorized(m, msg, TAKE_PTR(j));
}

/* Reading methods: authorized by the table too (open), answered at once. */
struct read_call {
	char *(*answer)(struct manager *m, sd_bus_message *msg, sd_bus_error *error);
};

static char *answer_match(struct manager *m, sd_bus_message *msg, sd_bus_error *error)
{
	_cleanup_(vfiod_ctx_unrefp) struct vfiod_ctx *ctx = NULL;
	struct vfiod_device *dev = NULL;
	struct vfiod_match *match = NULL;
	const char *path;
	char *json = NULL;
	int r;

	(void)m;
	r = sd_bus_message_read(msg, "s", &path);
	if (r < 0) {
		sd_bus_error_set_errno(error, r);
		return NULL;
	}
	ctx = manager_ctx_new(log_get_max_priority(), path);
	if (!ctx) {
		sd_bus_error_set_errno(error, -ENOMEM);
		return NULL;
	}
	r = vfiod_device_new(ctx, path, &dev);
	if (r < 0) {
		bus_error_set(error, BUS_ERROR_PATH, r, vfiod_ctx_get_error(ctx));
		return NULL;
	}
	r = vfiod_device_match(dev, &match);
	if (r >= 0)
		r = vfiod_match_to_json(match, &json);
	if (r < 0)
		bus_error_set(error, BUS_ERROR_OTHER, r, vfiod_ctx_get_error(ctx));
	vfiod_match_unref(match);
	vfiod_device_unref(dev);
	return json;
}

static char *answer_list(struct manager *m, sd_bus_message *msg, sd_bus_error *error)
{
	_cleanup_(vfiod_ctx_unrefp) struct vfiod_ctx *ctx = NULL;
	char *json = NULL;
	int r;

	(void)m, (void)msg;
	ctx = manager_ctx_new(log_get_max_priority(), "List");
	if (!ctx) {
		sd_bus_error_set_errno(error, -ENOMEM);
		return NULL;
	}
	r = vfiod_list(ctx, &json);
	if (r < 0)
		bus_error_set(error, BUS_ERROR_OTHER, r, vfiod_ctx_get_error(ctx));
	return json;
}

static char *answer_describe(struct manager *m, sd_bus_message *msg, sd_bus_error *error)
{
	char *json = manager_describe(m);

	(void)msg;
	if (!json)
		sd_bus_error_set_errno(error, -ENOMEM);
	return json;
}

static void on_read_authorized(struct manager *m, sd_bus_message *msg, void *userdata,
			       const sd_bus_error *denied)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct read_call *call = userdata;
	_cleanup_free_ char *json = NULL;
	int r;

	if (denied) {
		r = sd_bus_reply_method_error(msg, denied);
	} else {
		json = call->answer(m, msg, &error);
		if (json)
			r = sd_bus_reply_method_return(msg, "s", json);
		else
			r = sd_bus_reply_method_error(msg, &error);
	}
	if (r < 0)
		log_warning_errno(r, "cannot send a reply to %s: %m",
				  sd_bus_message_get_sender(msg));
}

static int method_read(sd_bus_message *msg, struct manager *m, struct read_call *call)
{
	int r = auth_check(m, msg, on_read_authorized, call);

	return r < 0 ? r : 1;
}

static int method_match(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	static struct read_call call = {answer_match};

	(void)error;
	return method_read(msg, userdata, &call);
}

static int method_list(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	static struct read_call call = {answer_list};

	(void)error;
	return method_read(msg, userdata, &call);
}

static int method_describe(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	static struct read_call call = {answer_describe};

	(void)error;
	return method_read(msg, userdata, &call);
}

char *manager_describe(struct manager *m)
{
	json_t *o, *devices = json_array();
	char *s;

	for (struct mdevice *d = m->devices; devices && d; d = d->next)
		json_array_append_new(devices, mdevice_json(d));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:o, s:o, s:o}", "version", vfiod_version(),
		      "sysfs_root", getenv("VFIOD_SYSFS_ROOT") ?: "/sys", "runtime_directory",
		      m->cfg.runtime_dir, "state_directory", m->cfg.state_dir,
		      "configuration_directory", m->cfg.config_dir, "operation_timeout_sec",
		      m->cfg.operation_timeout_usec / 1e6, "devices", devices, "operations",
		      jobs_json(m), "definitions", store_list(m));
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static int get_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	(void)bus, (void)path, (void)iface, (void)prop, (void)userdata, (void)error;
	return sd_bus_message_append(reply, "s", vfiod_version());
}

static int get_timeout(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return sd_bus_message_append(reply, "t", m->cfg.operation_timeout_usec);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("OperationTimeoutUSec", "t", get_timeout, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_METHOD_WITH_NAMES("Create", "sa{sv}", SD_BUS_PARAM(path) SD_BUS_PARAM(options), "os",
				 SD_BUS_PARAM(device) SD_BUS_PARAM(json), method_create,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Destroy", "sa{sv}",
				 SD_BUS_PARAM(path_or_name) SD_BUS_PARAM(options), "s",
				 SD_BUS_PARAM(json), method_destroy, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Match", "s", SD_BUS_PARAM(path), "s", SD_BUS_PARAM(json),
				 method_match, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("List", "", , "s", SD_BUS_PARAM(json), method_list,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Describe", "", , "s", SD_BUS_PARAM(json), method_describe,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END};

int manager_bus_register(struct manager *m)
{
	int r;

	r = sd_bus_add_object_vtable(m->bus, NULL, VFIOD_MANAGER_PATH, VFIOD_MANAGER_IFACE,
				     manager_vtable, m);
	if (r < 0)
		return r;
	r = sd_bus_add_object_manager(m->bus, NULL, VFIOD_MANAGER_PATH);
	if (r < 0)
		return r;
	return device_objects_register(m);
}
