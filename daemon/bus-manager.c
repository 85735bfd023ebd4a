/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The org.vfiod1.Manager object.  Each method: authorize on what the method
 * and its path say, read the arguments, act (reads of device state in a
 * task, changes as jobs; neither on the event loop), map errors to
 * org.vfiod1.Error.*, reply.
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

/*
 * Create, Destroy, Start and Stop: a job, resolved in a task (what it acts
 * on is read there, bounded in time), then authorized with polkit told the
 * canonical device, kind and name, so that a rule can grant one device; a
 * refused caller has made vfiod read no more than Match lets anyone read.
 */
static int submit_call(struct manager *m, sd_bus_message *msg, struct job *j)
{
	j->msg = sd_bus_message_ref(msg);
	job_submit(m, j, NULL);
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
	return submit_call(m, msg, TAKE_PTR(j));
}

/* The SF's number into J's options, unless the caller gave one. */
static int options_set_sfnum(struct job *j, json_t *sfnum)
{
	json_t *o = j->options ? json_loads(j->options, 0, NULL) : json_object();
	char *text;

	if (!o || !json_is_integer(sfnum)) {
		json_decref(o);
		return -EINVAL;
	}
	if (!json_object_get(o, "sf"))
		json_object_set(o, "sf", sfnum);
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return -ENOMEM;
	free(j->options);
	j->options = text;
	return 0;
}

static int method_destroy(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(job_freep) struct job *j = NULL;
	const char *path;
	struct mdevice *d;
	json_t *sf;
	int r;

	r = sd_bus_message_read(msg, "s", &path);
	if (r < 0)
		return r;
	/* A managed device may be named by its name or path as vfiod knows it. */
	d = mdevice_find(m, path);
	sf = d && d->kind && streq(d->kind, "sf") ? json_object_get(d->info, "pf") : NULL;
	if (sf)
		/* An SF is given back through its PF, as `destroy PF sf N` is. */
		path = json_string_value(sf);
	else if (d && d->syspath)
		path = d->syspath;
	r = job_new(m, JOB_RELEASE, path, &j);
	if (r < 0)
		return r;
	r = read_options(msg, OPT_DESTROY, j, error);
	if (r >= 0 && sf)
		r = options_set_sfnum(j, json_object_get(d->info, "sfnum"));
	if (r < 0)
		return r;
	return submit_call(m, msg, TAKE_PTR(j));
}

/*
 * Methods that read device state: authorized, their arguments read on the
 * event loop, then WORK in a task (a thread with a warm context, a time
 * limit), then FINISH back on the event loop with what it found.  Methods
 * that touch no device (Describe, Undefine) answer at once.
 */
struct call {
	struct manager *m;
	sd_bus_message *msg;
	const struct read_method *rm;
	char *arg;	/* the method's string argument: a path or a name */
	json_t *opts;	/* Define, Modify: the options */
	json_t *def;	/* Modify: the definition as it is */
	json_t *result; /* WORK's answer */
	char *text;	/* WORK's answer, as libvfiod gives it */
	int r;
	enum bus_error_context context; /* of WORK's error */
	char *error;			/* libvfiod's message for it */
};

struct read_method {
	/* What WORK reads when the method names no device, for Timeout and the log. */
	const char *what;
	/* On the event loop before WORK; may answer (and return < 0) itself. */
	int (*prepare)(struct call *c, sd_bus_error *error);
	/* In the task: T->ctx; sets C->r, C->error and C->context on failure. */
	void (*work)(struct call *c, struct vfiod_ctx *ctx);
	/* On the event loop: the reply's JSON; NULL with ERROR set to refuse. */
	char *(*finish)(struct call *c, sd_bus_error *error);
	/* Describe: no WORK, answered here at once. */
	char *(*answer)(struct call *c, sd_bus_error *error);
	/*
	 * Define, Modify, Undefine: authorized once WORK (or PREPARE) has said
	 * what the definition is, with its device, kind and name as polkit
	 * details, instead of before.
	 */
	bool authorize_after;
};

static void call_free(struct call *c)
{
	if (!c)
		return;
	sd_bus_message_unref(c->msg);
	free(c->arg);
	json_decref(c->opts);
	json_decref(c->def);
	json_decref(c->result);
	free(c->text);
	free(c->error);
	free(c);
}

/* WORK failed with R in CONTEXT, saying MESSAGE (NULL: nothing more than the errno). */
static void call_failed(struct call *c, int r, enum bus_error_context context,
			const char *message)
{
	c->r = r;
	c->context = context;
	free(c->error);
	c->error = message && *message ? strdup(message) : NULL;
}

static void call_reply(struct call *c, const char *json, const sd_bus_error *error)
{
	int r = json ? sd_bus_reply_method_return(c->msg, "s", json)
		     : sd_bus_reply_method_error(c->msg, error);

	if (r < 0)
		log_warning_errno(r, "cannot send a reply to %s: %m",
				  sd_bus_message_get_sender(c->msg));
}

/* The work's text answer, as it is. */
static char *finish_text(struct call *c, sd_bus_error *error)
{
	(void)error;
	return TAKE_PTR(c->text);
}

static void work_match(struct call *c, struct vfiod_ctx *ctx)
{
	struct vfiod_device *dev = NULL;
	struct vfiod_match *match = NULL;
	int r;

	r = vfiod_device_new(ctx, c->arg, &dev);
	if (r < 0) {
		call_failed(c, r, BUS_ERROR_PATH, vfiod_ctx_get_error(ctx));
		return;
	}
	r = vfiod_device_match(dev, &match);
	if (r >= 0)
		r = vfiod_match_to_json(match, &c->text);
	if (r < 0)
		call_failed(c, r, BUS_ERROR_OTHER, vfiod_ctx_get_error(ctx));
	vfiod_match_unref(match);
	vfiod_device_unref(dev);
}

static void work_list(struct call *c, struct vfiod_ctx *ctx)
{
	int r = vfiod_list(ctx, &c->text);

	if (r < 0)
		call_failed(c, r, BUS_ERROR_OTHER, vfiod_ctx_get_error(ctx));
}

/* The list with the definitions, as vfioctl --direct list shows them. */
static char *finish_list(struct call *c, sd_bus_error *error)
{
	json_t *a = json_loads(c->text, 0, NULL), *defs = store_list(c->m);
	char *json = NULL;

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

static void work_types(struct call *c, struct vfiod_ctx *ctx)
{
	int r = vfiod_mdev_types(ctx, c->arg, &c->text);

	if (r < 0)
		call_failed(c, r, BUS_ERROR_KIND, vfiod_ctx_get_error(ctx));
}

static void work_show(struct call *c, struct vfiod_ctx *ctx)
{
	int r = vfiod_show(ctx, c->arg, &c->text);

	if (r < 0)
		call_failed(c, r, BUS_ERROR_PATH, vfiod_ctx_get_error(ctx));
}

static void work_groups(struct call *c, struct vfiod_ctx *ctx)
{
	int r = vfiod_groups(ctx, c->arg, &c->text);

	if (r < 0)
		call_failed(c, r, BUS_ERROR_KIND, vfiod_ctx_get_error(ctx));
}

static void work_mgmtdevs(struct call *c, struct vfiod_ctx *ctx)
{
	int r = vfiod_vdpa_mgmtdevs(ctx, &c->text);

	if (r < 0)
		call_failed(c, r, BUS_ERROR_KIND, vfiod_ctx_get_error(ctx));
}

/* The service's failure R with its words E, as the bus names it. */
static void definitions_error(sd_bus_error *error, int r, const struct defs_error *e)
{
	bus_error_set(error, BUS_ERROR_DEFINITION, r, e->message);
}

/* A definition by name, or an error naming what is wrong with it. */
static json_t *load_definition(struct manager *m, const char *name, sd_bus_error *error)
{
	struct defs_error e;
	json_t *def = NULL;
	int r = definitions_get(m->definitions_dir, name, &def, &e);

	if (r < 0)
		definitions_error(error, r, &e);
	return def;
}

/* DEF into the definitions directory (a new one: REPLACE false), as the reply's JSON. */
static char *save_definition(struct manager *m, json_t *def, bool replace, const char *what,
			     sd_bus_error *error)
{
	const char *name = json_string_value(json_object_get(def, "name"));
	struct defs_error e;
	struct mdevice *d;
	char *json;
	int r;

	r = definitions_put(m->definitions_dir, def, replace, &e);
	if (r < 0) {
		definitions_error(error, r, &e);
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

static int prepare_define(struct call *c, sd_bus_error *error)
{
	int r = bus_options_read(c->msg, OPT_DEFINE, sd_bus_message_get_member(c->msg), &c->opts,
				 error);

	if (r < 0 && !sd_bus_error_is_set(error))
		sd_bus_error_set_errno(error, r);
	return r;
}

static void work_define(struct call *c, struct vfiod_ctx *ctx)
{
	struct defs_error e;
	int r = definitions_make(ctx, c->arg, c->opts, &c->result, &e);

	if (r < 0)
		call_failed(c, r, r == -EINVAL ? BUS_ERROR_KIND : BUS_ERROR_PATH, e.message);
}

static char *finish_define(struct call *c, sd_bus_error *error)
{
	return save_definition(c->m, c->result, false, "defined", error);
}

static int prepare_modify(struct call *c, sd_bus_error *error)
{
	int r = prepare_define(c, error);

	if (r < 0)
		return r;
	c->def = load_definition(c->m, c->arg, error);
	return c->def ? 0 : -ENOENT;
}

static void work_modify(struct call *c, struct vfiod_ctx *ctx)
{
	struct defs_error e;
	int r = definitions_modify(ctx, c->def, c->opts, &c->result, &e);

	if (r < 0)
		call_failed(c, r, r == -EINVAL ? BUS_ERROR_KIND : BUS_ERROR_PATH, e.message);
}

static char *finish_modify(struct call *c, sd_bus_error *error)
{
	return save_definition(c->m, c->result, true, "definition modified", error);
}

static int prepare_undefine(struct call *c, sd_bus_error *error)
{
	struct defs_error e;
	int r = definitions_get(c->m->definitions_dir, c->arg, &c->def, &e);

	/* An unreadable definition can be undefined (that is the way out): by its name. */
	if (r == -EBADMSG)
		r = (c->def = json_pack("{s:s}", "name", c->arg)) ? 0 : -ENOMEM;
	if (r < 0)
		definitions_error(error, r, &e);
	return r;
}

static char *finish_undefine(struct call *c, sd_bus_error *error)
{
	struct manager *m = c->m;
	struct defs_error e;
	struct mdevice *d;
	json_t *def = NULL;
	char *json;
	int r;

	r = definitions_undefine(m->definitions_dir, c->arg, &def, &e);
	if (r < 0) {
		definitions_error(error, r, &e);
		return NULL;
	}
	log_info("%s: undefined", c->arg);
	d = mdevice_find(m, c->arg);
	if (d)
		mdevice_set_persistent(d, false);
	json = json_dumps(def, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(def);
	if (!json)
		sd_bus_error_set_errno(error, -ENOMEM);
	return json;
}

static char *answer_describe(struct call *c, sd_bus_error *error)
{
	char *json = manager_describe(c->m);

	if (!json)
		sd_bus_error_set_errno(error, -ENOMEM);
	return json;
}

static void call_work(struct task *t)
{
	struct call *c = t->userdata;

	c->rm->work(c, t->ctx);
}

static void call_finish(struct call *c, const sd_bus_error *denied)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_free_ char *json = NULL;

	if (denied)
		call_reply(c, NULL, denied);
	else if ((json = c->rm->finish(c, &error)))
		call_reply(c, json, NULL);
	else
		call_reply(c, NULL, &error);
	call_free(c);
}

static void on_call_authorized(struct manager *m, sd_bus_message *msg, void *userdata,
			       const sd_bus_error *denied)
{
	(void)m, (void)msg;
	call_finish(userdata, denied);
}

/* What WORK (or PREPARE) found: answered, or authorized with its details first. */
static void call_done(struct call *c)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	json_t *def = c->result ?: c->def;
	const char *details[9] = {}, *device = json_string_value(json_object_get(def, "path"));
	const char *kind = json_string_value(json_object_get(def, "kind"));
	size_t n = 0;
	int r;

	if (c->r < 0) {
		bus_error_set(&error, c->context, c->r, c->error);
		call_reply(c, NULL, &error);
		call_free(c);
		return;
	}
	if (!c->rm->authorize_after) {
		call_finish(c, NULL);
		return;
	}
	details[n++] = VFIOD_POLKIT_DETAIL_NAME;
	details[n++] = json_string_value(json_object_get(def, "name")) ?: c->arg;
	if (kind) {
		details[n++] = VFIOD_POLKIT_DETAIL_KIND;
		details[n++] = kind;
	}
	/* The device as sysfs names it; a device vfiod names itself (VDUSE) has none. */
	if (device && strncmp(device, "/sys/devices/", strlen("/sys/devices/")) == 0) {
		details[n++] = VFIOD_POLKIT_DETAIL_DEVICE;
		details[n++] = device;
	}
	r = auth_check(c->m, c->msg, details, on_call_authorized, c);
	if (r < 0) {
		sd_bus_error_set_errno(&error, r);
		call_finish(c, &error);
	}
}

static void call_end(struct task *t, enum task_end how)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct call *c = t->userdata;

	if (how == TASK_LATE) {
		call_free(c);
		return;
	}
	if (how == TASK_TIMED_OUT) {
		sd_bus_error_setf(&error, VFIOD_ERROR_TIMEOUT,
				  "%s: reading %s timed out after %.1f s: the kernel holds a "
				  "device (its lock, or a removal under way); nothing was changed: "
				  "try again once the operation holding it ends (Describe lists "
				  "those under way)",
				  t->what, c->arg ? "it" : "them", c->m->cfg.read_timeout_usec / 1e6);
		call_reply(c, NULL, &error);
		return;
	}
	call_done(c);
}

static void on_read_authorized(struct manager *m, sd_bus_message *msg, void *userdata,
			       const sd_bus_error *denied)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	const struct read_method *rm = userdata;
	_cleanup_free_ char *json = NULL;
	struct call *c = NULL;
	const char *arg = NULL;
	int r;

	if (denied) {
		r = sd_bus_reply_method_error(msg, denied);
		if (r < 0)
			log_warning_errno(r, "cannot send a reply to %s: %m",
					  sd_bus_message_get_sender(msg));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		(void)sd_bus_reply_method_errno(msg, ENOMEM, NULL);
		return;
	}
	c->m = m;
	c->rm = rm;
	c->msg = sd_bus_message_ref(msg);
	r = sd_bus_message_get_signature(msg, true)[0] == 's' ? sd_bus_message_read(msg, "s", &arg)
								: 0;
	if (r >= 0 && arg && !(c->arg = strdup(arg)))
		r = -ENOMEM;
	if (r < 0)
		sd_bus_error_set_errno(&error, r);
	else if (rm->answer)
		json = rm->answer(c, &error);
	else if (!rm->prepare || rm->prepare(c, &error) >= 0) {
		if (!rm->work) {
			call_done(c);
			return;
		}
		/* What it reads, for Timeout: the path given, else the method's own words. */
		r = task_start(m,
			       c->arg && *c->arg ? c->arg
			       : rm->what       ? rm->what
						: sd_bus_message_get_member(msg),
			       call_work, call_end, c, &error);
	}
	if (r >= 0 && !rm->answer && !sd_bus_error_is_set(&error))
		return; /* the task answers */
	if (!json && !sd_bus_error_is_set(&error))
		sd_bus_error_set_errno(&error, r < 0 ? r : -EIO);
	call_reply(c, json, &error);
	call_free(c);
}

static int method_read(sd_bus_message *msg, void *userdata, const struct read_method *rm)
{
	int r;

	if (rm->authorize_after) {
		on_read_authorized(userdata, msg, (void *)rm, NULL);
		return 1;
	}
	r = auth_check(userdata, msg, NULL, on_read_authorized, (void *)rm);
	return r < 0 ? r : 1;
}

#define READ_METHOD(name, ...)                                                                     \
	static int name(sd_bus_message *msg, void *userdata, sd_bus_error *error)                  \
	{                                                                                          \
		static const struct read_method rm = {__VA_ARGS__};                                \
                                                                                                   \
		(void)error;                                                                       \
		return method_read(msg, userdata, &rm);                                            \
	}

READ_METHOD(method_match, .work = work_match, .finish = finish_text)
READ_METHOD(method_list, .what = "the devices vfiod assigned", .work = work_list,
	    .finish = finish_list)
READ_METHOD(method_describe, .answer = answer_describe)
READ_METHOD(method_types, .work = work_types, .finish = finish_text)
READ_METHOD(method_show, .work = work_show, .finish = finish_text)
READ_METHOD(method_groups, .what = "the IOMMU groups", .work = work_groups,
	    .finish = finish_text)
READ_METHOD(method_mgmtdevs, .what = "the vdpa management devices", .work = work_mgmtdevs,
	    .finish = finish_text)
READ_METHOD(method_define, .prepare = prepare_define, .work = work_define,
	    .finish = finish_define, .authorize_after = true)
READ_METHOD(method_modify, .prepare = prepare_modify, .work = work_modify,
	    .finish = finish_modify, .authorize_after = true)
READ_METHOD(method_undefine, .prepare = prepare_undefine, .finish = finish_undefine,
	    .authorize_after = true)

/* Start and Stop: a job that makes (or gives back) a defined device, keeping its definition. */
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
	return submit_call(m, msg, j);
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
	json_t *o, *devices = json_array(), *cdi = json_null();
	char *s;

	if (m->cfg.cdi_dir) {
		json_decref(cdi);
		cdi = json_pack("{s:s, s:s, s:b}", "directory", m->cfg.cdi_dir, "kind",
				VFIOD_CDI_KIND, "failed", m->cdi_failed);
	}
	for (struct mdevice *d = m->devices; devices && d; d = d->next)
		json_array_append_new(devices, mdevice_json(d));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:o, s:o, s:o, s:o}", "version",
		      vfiod_version(),
		      "sysfs_root", m->sysfs_root, "runtime_directory",
		      m->cfg.runtime_dir, "state_directory", m->cfg.state_dir,
		      "configuration_directory", m->cfg.config_dir, "operation_timeout_sec",
		      m->cfg.operation_timeout_usec / 1e6, "read_timeout_sec",
		      m->cfg.read_timeout_usec / 1e6, "devices", devices, "operations",
		      jobs_json(m), "definitions", store_list(m), "cdi", cdi);
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
	SD_BUS_METHOD_WITH_NAMES("Groups", "s", SD_BUS_PARAM(which), "s", SD_BUS_PARAM(json),
				 method_groups, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Show", "s", SD_BUS_PARAM(path), "s", SD_BUS_PARAM(json),
				 method_show, SD_BUS_VTABLE_UNPRIVILEGED),
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
	SD_BUS_SIGNAL_WITH_NAMES(VFIOD_EVENT_SIGNAL, "s", SD_BUS_PARAM(json), 0),
	SD_BUS_SIGNAL_WITH_NAMES(VFIOD_PROGRESS_SIGNAL, "s", SD_BUS_PARAM(json), 0),
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
