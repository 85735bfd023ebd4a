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
#include "bus-options.h"
#include "definitions.h"
#include "options.h"
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

/* Read the a{sv} options of a Create or Destroy into J. */
static int read_options(sd_bus_message *msg, unsigned int method, struct job *j,
			sd_bus_error *error)
{
	json_t *opts = NULL, *p;
	int r;

	r = bus_options_read(msg, method, sd_bus_message_get_member(msg), &opts, error);
	if (r < 0)
		return r;
	p = json_object_get(opts, "persistent");
	if (p) {
		j->persistent = json_is_true(p);
		json_object_del(opts, "persistent");
	}
	free(j->options);
	j->options = json_dumps(opts, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(opts);
	return j->options ? 0 : -ENOMEM;
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
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	const char *details[5] = {};
	size_t n = 0;
	int r;

	j->msg = sd_bus_message_ref(msg);
	/*
	 * Resolved first, so that polkit is told the canonical device the job
	 * will act on; when that fails, job_submit() says why once authorized.
	 */
	if (!j->key && job_resolve(j, &error) == -ENOMEM) {
		job_free(j);
		return -ENOMEM;
	}
	if (j->syspath) {
		details[n++] = VFIOD_POLKIT_DETAIL_DEVICE;
		details[n++] = j->syspath;
	}
	if (j->kind) {
		details[n++] = VFIOD_POLKIT_DETAIL_KIND;
		details[n++] = j->kind;
	}
	r = auth_check(m, msg, details, on_authorized, j);
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
	r = read_options(msg, OPT_CREATE, j, error);
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
	r = read_options(msg, OPT_DESTROY, j, error);
	if (r < 0)
		return r;
	return submit_authorized(m, msg, TAKE_PTR(j));
}

/*
 * Methods answered at once (reading ones, and the definitions' own):
 * authorized by the table too, each given a libvfiod context of its own.
 */
struct read_call {
	/* ARG: the method's first argument when it is a string (a path or a name), else NULL. */
	char *(*answer)(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			sd_bus_message *msg, sd_bus_error *error);
};

static char *answer_match(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	struct vfiod_device *dev = NULL;
	struct vfiod_match *match = NULL;
	char *json = NULL;
	int r;

	(void)m, (void)msg;
	r = vfiod_device_new(ctx, arg, &dev);
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

static char *merge_definitions(struct manager *m, char *list, sd_bus_error *error);

static char *answer_list(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	char *json = NULL;
	int r;

	(void)arg, (void)msg;
	r = vfiod_list(ctx, &json);
	if (r < 0) {
		bus_error_set(error, BUS_ERROR_OTHER, r, vfiod_ctx_get_error(ctx));
		return NULL;
	}
	return merge_definitions(m, json, error);
}

/* LIST (JSON text, freed) with the definitions, as vfioctl --direct list shows them. */
static char *merge_definitions(struct manager *m, char *list, sd_bus_error *error)
{
	json_t *a = json_loads(list, 0, NULL), *defs = store_list(m);
	char *json = NULL;

	free(list);
	if (a && defs) {
		definitions_merge(a, defs);
		json = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	json_decref(a);
	json_decref(defs);
	if (!json)
		sd_bus_error_set_errno(error, -ENOMEM);
	return json;
}

static char *answer_types(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	char *json = NULL;
	int r;

	(void)m, (void)msg;
	r = vfiod_mdev_types(ctx, arg, &json);
	if (r < 0)
		bus_error_set(error, BUS_ERROR_KIND, r, vfiod_ctx_get_error(ctx));
	return json;
}

static char *answer_mgmtdevs(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	char *json = NULL;
	int r;

	(void)m, (void)arg, (void)msg;
	r = vfiod_vdpa_mgmtdevs(ctx, &json);
	if (r < 0)
		bus_error_set(error, BUS_ERROR_KIND, r, vfiod_ctx_get_error(ctx));
	return json;
}

/* A definition by name, or an error naming what is wrong with it. */
static json_t *load_definition(struct manager *m, const char *name, sd_bus_error *error)
{
	char err[256];
	json_t *def = NULL;
	int r;

	r = definition_load(m->definitions_dir, name, &def, err, sizeof(err));
	if (r == -ENOENT || r == -EINVAL)
		sd_bus_error_setf(error, VFIOD_ERROR_NO_SUCH_DEVICE,
				  "%s is not defined; List shows the definitions", name);
	else if (r == -EBADMSG)
		sd_bus_error_setf(error, VFIOD_ERROR_FAILED,
				  "the definition of %s in %s is unreadable: %s; undefine it and "
				  "define it again", name, m->definitions_dir, err);
	else if (r < 0)
		sd_bus_error_set_errno(error, r);
	return r < 0 ? NULL : def;
}

static char *save_definition(struct manager *m, json_t *def, const char *what,
			     sd_bus_error *error)
{
	const char *name = json_string_value(json_object_get(def, "name"));
	struct mdevice *d;
	char *json;
	int r;

	r = definition_save(m->definitions_dir, def);
	if (r < 0) {
		sd_bus_error_set_errnof(error, r, "cannot write the definition of %s in %s: %s",
					name, m->definitions_dir, strerror(-r));
		return NULL;
	}
	log_info("%s: %s", name, what);
	d = mdevice_find(m, name);
	if (d)
		mdevice_set_persistent(d, true);
	json = json_dumps(def, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!json)
		sd_bus_error_set_errno(error, -ENOMEM);
	return json;
}

static char *answer_define(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	json_t *opts = NULL, *def = NULL;
	const char *name;
	char *json = NULL;
	int r;

	r = bus_options_read(msg, OPT_DEFINE, "Define", &opts, error);
	if (r < 0) {
		if (!sd_bus_error_is_set(error))
			sd_bus_error_set_errno(error, r);
		return NULL;
	}
	r = definition_make(ctx, arg, opts, true, &def);
	json_decref(opts);
	if (r < 0) {
		bus_error_set(error, r == -EINVAL ? BUS_ERROR_KIND : BUS_ERROR_PATH, r,
			      vfiod_ctx_get_error(ctx));
		return NULL;
	}
	name = json_string_value(json_object_get(def, "name"));
	if (store_exists(m, name))
		sd_bus_error_setf(error, VFIOD_ERROR_ALREADY_EXISTS,
				  "%s is defined already; use Modify", name);
	else
		json = save_definition(m, def, "defined", error);
	json_decref(def);
	return json;
}

static char *answer_modify(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	json_t *opts = NULL, *def = NULL, *changed = NULL;
	char *json = NULL, err[256];
	int r;

	r = bus_options_read(msg, OPT_DEFINE, "Modify", &opts, error);
	if (r < 0) {
		if (!sd_bus_error_is_set(error))
			sd_bus_error_set_errno(error, r);
		return NULL;
	}
	def = load_definition(m, arg, error);
	if (def) {
		r = definition_modify(ctx, def, opts, &changed, err, sizeof(err));
		if (r < 0)
			bus_error_set(error, r == -EINVAL ? BUS_ERROR_KIND : BUS_ERROR_PATH, r,
				      err[0] ? err : vfiod_ctx_get_error(ctx));
		else
			json = save_definition(m, changed, "definition modified", error);
	}
	json_decref(opts);
	json_decref(def);
	json_decref(changed);
	return json;
}

static char *answer_undefine(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	const char *name = arg;
	json_t *def;
	char *json = NULL;
	int r;

	(void)ctx, (void)msg;
	def = load_definition(m, name, error);
	/* An unreadable definition can be undefined: that is the way out of it. */
	if (!def && sd_bus_error_has_name(error, VFIOD_ERROR_FAILED)) {
		sd_bus_error_free(error);
		def = json_pack("{s:s}", "name", name);
	}
	if (!def)
		return NULL;
	r = store_remove(m, name);
	if (r < 0) {
		sd_bus_error_set_errnof(error, r, "cannot remove the definition of %s: %s", name,
					strerror(-r));
	} else {
		struct mdevice *d = mdevice_find(m, name);

		if (d)
			mdevice_set_persistent(d, false);
		json_object_set_new(def, "state", json_string("undefined"));
		json = json_dumps(def, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!json)
			sd_bus_error_set_errno(error, -ENOMEM);
	}
	json_decref(def);
	return json;
}

static char *answer_describe(struct manager *m, struct vfiod_ctx *ctx, const char *arg,
			     sd_bus_message *msg, sd_bus_error *error)
{
	char *json = manager_describe(m);

	(void)ctx, (void)arg, (void)msg;
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
		_cleanup_(vfiod_ctx_unrefp) struct vfiod_ctx *ctx =
			manager_ctx_new(log_get_max_priority(), sd_bus_message_get_member(msg));
		const char *arg = NULL;

		r = sd_bus_message_get_signature(msg, true)[0] == 's'
			    ? sd_bus_message_read(msg, "s", &arg)
			    : 0;
		if (r < 0)
			sd_bus_error_set_errno(&error, r);
		else if (ctx)
			json = call->answer(m, ctx, arg, msg, &error);
		else
			sd_bus_error_set_errno(&error, -ENOMEM);
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
	int r = auth_check(m, msg, NULL, on_read_authorized, call);

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

#define READ_METHOD(name, fn)                                                                      \
	static int name(sd_bus_message *msg, void *userdata, sd_bus_error *error)                  \
	{                                                                                          \
		static struct read_call call = {fn};                                               \
                                                                                                   \
		(void)error;                                                                       \
		return method_read(msg, userdata, &call);                                          \
	}

READ_METHOD(method_types, answer_types)
READ_METHOD(method_mgmtdevs, answer_mgmtdevs)
READ_METHOD(method_define, answer_define)
READ_METHOD(method_modify, answer_modify)
READ_METHOD(method_undefine, answer_undefine)

/* Start and Stop: a job that makes (or gives back) a defined device, keeping its definition. */
static int start_stop(sd_bus_message *msg, struct manager *m, bool start, sd_bus_error *error)
{
	const char *name;
	struct job *j = NULL;
	json_t *def;
	int r;

	r = sd_bus_message_read(msg, "s", &name);
	if (r < 0)
		return r;
	def = load_definition(m, name, error);
	if (!def)
		return -EINVAL;
	r = store_job(m, def, start, &j);
	json_decref(def);
	if (r < 0)
		return r;
	return submit_authorized(m, msg, j);
}

static int method_start(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return start_stop(msg, userdata, true, error);
}

static int method_stop(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return start_stop(msg, userdata, false, error);
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
	SD_BUS_METHOD_WITH_NAMES("MdevTypes", "s", SD_BUS_PARAM(path), "s", SD_BUS_PARAM(json),
				 method_types, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("VdpaManagementDevices", "", , "s", SD_BUS_PARAM(json),
				 method_mgmtdevs, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Define", "sa{sv}", SD_BUS_PARAM(path) SD_BUS_PARAM(options), "s",
				 SD_BUS_PARAM(json), method_define, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Modify", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options), "s",
				 SD_BUS_PARAM(json), method_modify, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Undefine", "s", SD_BUS_PARAM(name), "s", SD_BUS_PARAM(json),
				 method_undefine, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Start", "s", SD_BUS_PARAM(name), "os",
				 SD_BUS_PARAM(device) SD_BUS_PARAM(json), method_start,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Stop", "s", SD_BUS_PARAM(name), "s", SD_BUS_PARAM(json),
				 method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_NAMES("Event", "s", SD_BUS_PARAM(json), 0),
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
