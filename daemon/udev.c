/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hotplug: udev tells vfiod which devices are its own, vfiod assigns them
 * the moment they appear.
 *
 * The admin marks devices with plain udev match keys (ENV{VFIOD_ASSIGN}=1,
 * or a driver name to force one; ENV{VFIOD_GROUP}=1 for the whole IOMMU
 * group); vfiod's rules (udev-rules/70-vfiod.rules) tag them "vfiod".  Two
 * monitors on udev's netlink (events after udevd's rules ran, so after any
 * module udevd loaded for the device and after the host driver bound it):
 *
 *   marked: filtered by the tag in the socket; add and change of a marked
 *	     device that vfiod does not hold yet queue an assign
 *   all:    every device; only its removal (when vfiod manages it: the
 *	     object and libvfiod's record go, nothing is released since
 *	     nothing is left) and its appearance (add, bind: when a
 *	     persistent definition names it, the definition is made again)
 *	     are looked at, by a string compare
 *
 * Events are coalesced per device (the last action wins, an add stays an
 * add) and handled in batches from a deferred source at a lower priority
 * than the bus, so a storm of hundreds of events neither blocks callers
 * nor is lost: the sockets have a large receive buffer, and should the
 * kernel drop messages anyway (ENOBUFS), vfiod rescans the marked devices
 * and the ones it manages.  Jobs are queued per IOMMU group as for calls.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libudev.h>

#include "bus-names.h"
#include "claim.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

/* What systemd-udevd asks for its own monitor: a storm of VFs fits. */
#define RECEIVE_BUFFER_SIZE (128 * 1024 * 1024)
/* Events handled per turn of the event loop, so that bus calls get their turn too. */
#define BATCH 32

struct pending {
	struct pending *next;
	char *syspath;
	char *sysname;
	char *subsystem;
	char *driver;
	char *action;
	char *assign; /* VFIOD_ASSIGN, when marked */
	char *group;  /* VFIOD_GROUP */
	char *claim;  /* the Claim= entry it matches, when claimed (claim.h) */
	const char *trigger;
	bool marked;
	bool announce; /* signal "added"/"removed" (not for the scan at start) */
	bool gone_first; /* removed, then added again: forget the old one first */
};

struct udev_watch {
	struct manager *m;
	struct udev *udev;
	struct udev_monitor *marked, *all;
	sd_event_source *marked_source, *all_source, *defer;
	struct pending *head, **tail;
	size_t n_pending;
	/* The definitions, read again when their directory changes. */
	json_t *defs;
	struct timespec defs_mtime;
	bool defs_loaded;
};

static void pending_free(struct pending *p)
{
	free(p->syspath);
	free(p->sysname);
	free(p->subsystem);
	free(p->driver);
	free(p->action);
	free(p->assign);
	free(p->group);
	free(p->claim);
	free(p);
}

/* Not a uevent: a marked device found by a scan (at start, after an overflow). */
#define ACTION_PRESENT "present"

static int action_rank(const char *action)
{
	return streq(action, "add")		? 4
	       : streq(action, "change")	? 3
	       : streq(action, ACTION_PRESENT) ? 2
	       : streq(action, "bind")		? 1
					       : 0;
}

static int set_dup(char **field, const char *value)
{
	char *v = value ? strdup(value) : NULL;

	if (value && !v)
		return -ENOMEM;
	free(*field);
	*field = v;
	return 0;
}

static bool parse_ids(const char *s, unsigned int *a, unsigned int *b)
{
	char *end;

	if (!s)
		return false;
	*a = (unsigned int)strtoul(s, &end, 16);
	if (*end != ':')
		return false;
	*b = (unsigned int)strtoul(end + 1, &end, 16);
	return !*end;
}

/*
 * The Claim= entry a PCI device matches, from its uevent's own properties
 * (PCI_ID, PCI_SUBSYS_ID, PCI_CLASS, PCI_SLOT_NAME): no sysfs read.
 */
static const struct claim *claim_of(struct udev_watch *w, struct udev_device *dev)
{
	const struct config *cfg = &w->m->cfg;
	struct claim_device d = {};
	const char *class;

	if (!cfg->n_claims || !str_eq(udev_device_get_subsystem(dev), "pci"))
		return NULL;
	if (!parse_ids(udev_device_get_property_value(dev, "PCI_ID"), &d.vendor, &d.device))
		return NULL;
	(void)parse_ids(udev_device_get_property_value(dev, "PCI_SUBSYS_ID"), &d.subvendor,
			&d.subdevice);
	class = udev_device_get_property_value(dev, "PCI_CLASS");
	d.class = class ? (unsigned int)strtoul(class, NULL, 16) : 0;
	d.address = udev_device_get_property_value(dev, "PCI_SLOT_NAME");
	return claims_match(cfg->claims, cfg->n_claims, &d);
}

/* Queue DEV's event, merged with one already queued for the same device. */
static int pending_add(struct udev_watch *w, struct udev_device *dev, const char *action,
		       bool marked, const struct claim *claim, const char *trigger, bool announce)
{
	const char *syspath = udev_device_get_syspath(dev);
	struct pending *p;
	int r = 0;

	if (!syspath || !action)
		return 0;
	for (p = w->head; p; p = p->next)
		if (streq(p->syspath, syspath))
			break;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p || !(p->syspath = strdup(syspath))) {
			free(p);
			return -ENOMEM;
		}
		p->trigger = trigger;
		*w->tail = p;
		w->tail = &p->next;
		w->n_pending++;
	}
	/*
	 * A remove and an add after it: both are handled, the old device's
	 * state goes first.  Otherwise an add not handled yet stays an add (a
	 * change or bind after it adds nothing), a change stays a change.
	 */
	if (!p->action || streq(action, "remove") || streq(p->action, "remove") ||
	    action_rank(action) > action_rank(p->action)) {
		if (p->action && streq(p->action, "remove") && streq(action, "add"))
			p->gone_first = true;
		if (streq(action, "remove"))
			p->gone_first = false;
		r = set_dup(&p->action, action);
	}
	if (announce)
		p->trigger = trigger;
	p->marked = p->marked || marked;
	p->announce = p->announce || announce;
	if (r >= 0)
		r = set_dup(&p->sysname, udev_device_get_sysname(dev));
	if (r >= 0)
		r = set_dup(&p->subsystem, udev_device_get_subsystem(dev));
	if (r >= 0)
		r = set_dup(&p->driver, udev_device_get_driver(dev));
	if (r >= 0 && claim && !p->claim) {
		char text[32];

		claim_format(claim, text, sizeof(text));
		r = set_dup(&p->claim, text);
	}
	if (r >= 0 && marked && !streq(action, "remove")) {
		r = set_dup(&p->assign, udev_device_get_property_value(dev, VFIOD_UDEV_ASSIGN));
		if (r >= 0)
			r = set_dup(&p->group,
				    udev_device_get_property_value(dev, VFIOD_UDEV_GROUP));
	}
	(void)sd_event_source_set_enabled(w->defer, SD_EVENT_ON);
	return r;
}

static struct pending *pending_pop(struct udev_watch *w)
{
	struct pending *p = w->head;

	if (!p)
		return NULL;
	w->head = p->next;
	if (!w->head)
		w->tail = &w->head;
	w->n_pending--;
	p->next = NULL;
	return p;
}

/* The definitions, read again only when their directory changed. */
static json_t *definitions(struct udev_watch *w)
{
	struct stat st;

	if (stat(w->m->definitions_dir, &st) < 0) {
		json_decref(w->defs);
		w->defs = NULL;
		w->defs_loaded = false;
		return NULL;
	}
	if (!w->defs_loaded || st.st_mtim.tv_sec != w->defs_mtime.tv_sec ||
	    st.st_mtim.tv_nsec != w->defs_mtime.tv_nsec) {
		json_decref(w->defs);
		w->defs = store_list(w->m);
		w->defs_mtime = st.st_mtim;
		w->defs_loaded = true;
	}
	return w->defs;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The definition made on the device SYSPATH (named SYSNAME) that starts by itself, borrowed. */
static json_t *definition_on(struct udev_watch *w, const char *syspath, const char *sysname)
{
	json_t *defs = definitions(w), *d;
	size_t i;

	json_array_foreach(defs, i, d)
	{
		const char *path = json_string_value(json_object_get(d, "path"));
		const char *start = json_string_value(json_object_get(d, "start"));

		if (!path || str_eq(start, "manual"))
			continue;
		/* Paths are canonical /sys/devices/... ones; short forms name the device. */
		if (streq(path, syspath) || (sysname && streq(base_name(path), sysname)))
			return d;
	}
	return NULL;
}

static void emit_device(struct manager *m, const char *event, struct pending *p,
			struct mdevice *d, const char *reason)
{
	json_t *f = json_pack("{s:s?, s:s, s:s?, s:s?, s:s?, s:s?}", "name",
			      d ? d->name : p->sysname, "device", p->syspath, "kind",
			      d ? d->kind : str_eq(p->subsystem, "pci") ? "pci" : p->subsystem,
			      "driver", streq(event, VFIOD_EVENT_REMOVED) ? NULL : p->driver,
			      "previous_driver", d ? d->previous_driver : NULL, "reason", reason);

	event_emit(m, event, VFIOD_TRIGGER_UDEV, f);
	json_decref(f);
}

/* Submit J (taken); a refusal is logged and signalled, as a failed job would be. */
/* Queue J, logging WHAT; a refusal is logged (REFUSED names the work) with a failed event. */
static void submit(struct manager *m, struct job *j, const char *what, const char *refused)
{
	log_info("%s: %s", j->input, what);
	job_submit(m, j, refused);
}

/* The driver SYSPATH is on now (not when its event was sent); NULL when none. */
static char *driver_now(const char *syspath)
{
	_cleanup_free_ char *link = NULL;
	char target[PATH_MAX];
	ssize_t n;

	if (asprintf(&link, "%s/driver", syspath) < 0)
		return NULL;
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	return strdup(strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
}

/*
 * vfiod has the device, or work for it is on the way.  After an add (a new
 * kernel device), work still running began on an earlier device at that
 * path: what comes now queues behind it.  An object whose driver is not
 * the one the device is on now is an older state, not a hold.  "Now" is
 * read when the event is handled: events queued during a storm carry the
 * driver of before the assign they would otherwise repeat.
 */
static bool held(struct manager *m, struct pending *p, const char *name)
{
	bool fresh = streq(p->action, "add");
	_cleanup_free_ char *driver = NULL;
	struct mdevice *d;

	if (jobs_queued_for(m, p->syspath, name, !fresh))
		return true;
	d = mdevice_find(m, p->syspath);
	if (!d && name)
		d = mdevice_find(m, name);
	if (!d || fresh)
		return false;
	driver = driver_now(p->syspath);
	if (driver && d->driver && !streq(driver, d->driver))
		return false;
	return str_eq(d->state, VFIOD_STATE_ASSIGNED) || str_eq(d->state, VFIOD_STATE_ASSIGNING);
}

static void make_definition(struct udev_watch *w, json_t *def, struct pending *p)
{
	struct manager *m = w->m;
	const char *name = json_string_value(json_object_get(def, "name"));
	struct job *j = NULL;
	int r;

	if (held(m, p, name))
		return;
	r = store_job(m, def, true, &j);
	if (r < 0) {
		log_error_errno(r, "%s: cannot make %s again: %m", p->syspath, name);
		return;
	}
	j->trigger = VFIOD_TRIGGER_DEFINITION;
	if (asprintf(&j->reason, "defined, and %s appeared (%s)", p->sysname, p->action) < 0)
		j->reason = NULL;
	submit(m, j, "its device appeared, making the definition again",
	       "making the definition again");
}

static void assign_marked(struct udev_watch *w, struct pending *p)
{
	struct manager *m = w->m;
	json_t *opts = json_object();
	struct job *j = NULL;
	int r;

	if (held(m, p, p->sysname) || !opts) {
		json_decref(opts);
		return;
	}
	/* VFIOD_ASSIGN=1 (or "yes"): the best driver; anything else names the driver. */
	if (p->assign && !streq(p->assign, "1") && !streq(p->assign, "yes"))
		json_object_set_new(opts, "driver", json_string(p->assign));
	if (p->group && (streq(p->group, "1") || streq(p->group, "yes")))
		json_object_set_new(opts, "group", json_true());
	r = job_new(m, JOB_ASSIGN, p->syspath, &j);
	if (r >= 0 && !(j->options = json_dumps(opts, JSON_COMPACT)))
		r = -ENOMEM;
	json_decref(opts);
	if (r < 0) {
		job_free(j);
		log_error_errno(r, "%s: cannot queue the assign: %m", p->syspath);
		return;
	}
	j->trigger = p->trigger;
	if (p->claim && !p->assign ? asprintf(&j->reason, "Claim=%s (%s)", p->claim, p->action) < 0
	    : asprintf(&j->reason, "%s=%s%s%s (%s)", VFIOD_UDEV_ASSIGN, p->assign ? p->assign : "",
		       p->group ? " " VFIOD_UDEV_GROUP "=" : "", p->group ? p->group : "",
		       p->action) < 0)
		j->reason = NULL;
	if (p->claim && !p->assign)
		submit(m, j, "claimed in vfiod.conf, assigning",
		       "the assign of a device claimed in vfiod.conf");
	else
		submit(m, j, "marked by udev, assigning", "the assign of a device marked by udev");
}

/*
 * libvfiod's records of a PCI function (or a PF with VFs) that is gone:
 * nothing is left to give back.
 */
static void forget_work(struct task *t)
{
	int r = vfiod_forget(t->ctx, t->what);

	if (r < 0)
		log_warning("%s, ignoring", vfiod_ctx_get_error(t->ctx) ?: strerror(-r));
}

static void forget_end(struct task *t, enum task_end how)
{
	(void)t, (void)how;
}

static void forget_records(struct manager *m, const struct mdevice *d)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

	if (!str_eq(d->kind, "pci") && !str_eq(d->kind, "vfs"))
		return;
	if (task_start(m, d->name, forget_work, forget_end, NULL, &error) < 0)
		log_warning("%s: cannot drop what libvfiod kept of it, ignoring: %s", d->name,
			    error.message ?: "out of memory");
}

/*
 * An add at a path vfiod still has an object for: the device went and came
 * back faster than vfiod heard (or a job that was running then brought the
 * object back).  That state belongs to the earlier device: drop it quietly.
 */
static void forget_earlier(struct udev_watch *w, struct pending *p)
{
	struct manager *m = w->m;
	struct mdevice *d = mdevice_find(m, p->syspath);

	if (!d)
		return;
	if (jobs_queued_for(m, p->syspath, d->name, false))
		return; /* queued: it will act on this device */
	/*
	 * Still on the driver vfiod put it on: the same device, and an add made
	 * up for it (the coldplug at boot, udevadm trigger).  A new device at
	 * that path starts without vfiod's driver_override, which a vfio driver
	 * needs to bind it.  The driver is the event's, or, where the event
	 * has none (the coldplug's of a device bound since), libudev's look at
	 * the device now.
	 */
	if (!p->gone_first && d->driver && str_eq(p->driver, d->driver)) {
		log_debug("%s: an add for the device vfiod holds, still on %s: nothing to forget",
			  p->syspath, p->driver);
		return;
	}
	log_info("%s: appeared again; forgetting what vfiod knew of the earlier device",
		 p->syspath);
	forget_records(m, d);
	mdevice_remove(d);
}

static void device_gone(struct udev_watch *w, struct pending *p)
{
	struct manager *m = w->m;
	struct mdevice *d = mdevice_find(m, p->syspath);

	jobs_drop_queued_for(m, p->syspath);
	if (!d) {
		if (p->marked && p->announce)
			emit_device(m, VFIOD_EVENT_REMOVED, p, NULL, "the device went away");
		return;
	}
	log_info("%s: the device went away; forgetting it (nothing to give back)", p->syspath);
	emit_device(m, VFIOD_EVENT_REMOVED, p, d,
		    "the device went away while vfiod held it; nothing to give back");
	forget_records(m, d);
	mdevice_remove(d);
}

static void handle(struct udev_watch *w, struct pending *p)
{
	json_t *def;

	log_debug("udev: %s %s%s", p->action, p->syspath, p->marked ? " (marked)" : "");
	if (streq(p->action, "remove") || p->gone_first)
		device_gone(w, p);
	if (streq(p->action, "remove"))
		return;
	if (streq(p->action, "add"))
		forget_earlier(w, p);
	if (p->marked && p->announce && streq(p->action, "add"))
		emit_device(w->m, VFIOD_EVENT_ADDED, p, NULL,
			    p->claim && !p->assign ? "claimed in vfiod.conf" : "marked by udev");
	if (streq(p->action, "add") || streq(p->action, "bind") || streq(p->action, "change")) {
		/* A definition on the device wins over the mark: it says exactly what to make. */
		def = streq(p->action, "change") && !p->marked ? NULL
							      : definition_on(w, p->syspath, p->sysname);
		if (def) {
			make_definition(w, def, p);
			return;
		}
	}
	/* A bind is someone's choice (vfioctl destroy gives the device back): leave it. */
	if (p->marked && (streq(p->action, "add") || streq(p->action, "change") ||
			  streq(p->action, ACTION_PRESENT)))
		assign_marked(w, p);
}

static int on_defer(sd_event_source *s, void *userdata)
{
	struct udev_watch *w = userdata;
	struct pending *p;

	for (int i = 0; i < BATCH && (p = pending_pop(w)); i++) {
		if (!w->m->stopping)
			handle(w, p);
		pending_free(p);
	}
	if (!w->head)
		(void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
	return 0;
}

void udev_claimed_present(struct manager *m, const char *syspath, const char *sysname,
			  const char *claim, const char *trigger)
{
	struct udev_watch *w = m->udev;
	struct pending *p;

	if (!w || m->stopping)
		return;
	for (p = w->head; p; p = p->next)
		if (streq(p->syspath, syspath))
			return; /* an event of its own is queued already */
	p = calloc(1, sizeof(*p));
	if (!p || !(p->syspath = strdup(syspath)) || !(p->sysname = strdup(sysname)) ||
	    !(p->action = strdup(ACTION_PRESENT)) || !(p->claim = strdup(claim)) ||
	    !(p->subsystem = strdup("pci"))) {
		if (p)
			pending_free(p);
		log_error("udev: %s: cannot queue its assign: out of memory", syspath);
		return;
	}
	p->trigger = trigger;
	p->marked = true;
	*w->tail = p;
	w->tail = &p->next;
	w->n_pending++;
	(void)sd_event_source_set_enabled(w->defer, SD_EVENT_ON);
}

/* Every marked device present now, and what vfiod manages that has gone. */
static int scan(struct udev_watch *w, const char *trigger)
{
	struct udev_enumerate *e = udev_enumerate_new(w->udev);
	struct udev_list_entry *l;
	struct mdevice *d, *next;
	int r;

	if (!e)
		return -ENOMEM;
	r = udev_enumerate_add_match_tag(e, VFIOD_UDEV_TAG);
	if (r >= 0)
		r = udev_enumerate_add_match_is_initialized(e);
	if (r >= 0)
		r = udev_enumerate_scan_devices(e);
	if (r < 0) {
		udev_enumerate_unref(e);
		return r;
	}
	udev_list_entry_foreach(l, udev_enumerate_get_list_entry(e))
	{
		struct udev_device *dev =
			udev_device_new_from_syspath(w->udev, udev_list_entry_get_name(l));

		if (!dev)
			continue;
		r = pending_add(w, dev, ACTION_PRESENT, true, NULL, trigger, false);
		udev_device_unref(dev);
		if (r < 0)
			break;
	}
	udev_enumerate_unref(e);
	for (d = w->m->devices; d; d = next) {
		next = d->next;
		if (d->syspath && access(d->syspath, F_OK) < 0 && errno == ENOENT) {
			struct pending *p = calloc(1, sizeof(*p));

			if (!p)
				return -ENOMEM;
			p->syspath = strdup(d->syspath);
			p->sysname = strdup(d->name);
			p->action = strdup("remove");
			p->trigger = trigger;
			p->announce = true;
			if (!p->syspath || !p->sysname || !p->action) {
				pending_free(p);
				return -ENOMEM;
			}
			*w->tail = p;
			w->tail = &p->next;
			w->n_pending++;
		}
	}
	(void)sd_event_source_set_enabled(w->defer, SD_EVENT_ON);
	return r < 0 ? r : 0;
}

static int receive(struct udev_watch *w, struct udev_monitor *mon, bool marked)
{
	for (;;) {
		struct udev_device *dev = udev_monitor_receive_device(mon);
		const char *action;
		int r = 0;

		if (!dev) {
			if (errno == ENOBUFS) {
				log_warning("udev: the kernel dropped events (receive buffer full); "
					    "rescanning the marked devices");
				(void)scan(w, VFIOD_TRIGGER_UDEV);
				(void)claims_scan(w->m, VFIOD_TRIGGER_UDEV, false);
				continue;
			}
			return 0;
		}
		action = udev_device_get_action(dev);
		if (marked) {
			r = pending_add(w, dev, action, true, NULL, VFIOD_TRIGGER_UDEV, true);
		} else if (!udev_device_has_tag(dev, VFIOD_UDEV_TAG) && action) {
			/* Unmarked devices matter when vfiod holds them or a definition names them. */
			const char *syspath = udev_device_get_syspath(dev);
			const struct claim *claim = NULL;
			bool ours = false;

			if (streq(action, "remove"))
				ours = mdevice_find(w->m, syspath) ||
				       jobs_pending_for(w->m, syspath, NULL);
			else if (streq(action, "add") || streq(action, "bind"))
				ours = definition_on(w, syspath, udev_device_get_sysname(dev));
			/* A claimed device is marked by vfiod.conf: assigned as it appears. */
			if (streq(action, "add") && (claim = claim_of(w, dev)))
				r = pending_add(w, dev, action, true, claim, VFIOD_TRIGGER_UDEV, true);
			else if (ours)
				r = pending_add(w, dev, action, false, NULL, VFIOD_TRIGGER_UDEV,
						true);
		}
		udev_device_unref(dev);
		if (r < 0)
			return log_error_errno(r, "udev: cannot queue an event: %m");
	}
}

static int on_marked(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct udev_watch *w = userdata;

	(void)s, (void)fd, (void)revents;
	return receive(w, w->marked, true);
}

static int on_all(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct udev_watch *w = userdata;

	(void)s, (void)fd, (void)revents;
	return receive(w, w->all, false);
}

static int monitor_open(struct udev_watch *w, bool marked, struct udev_monitor **ret,
			sd_event_source **source)
{
	struct udev_monitor *mon = udev_monitor_new_from_netlink(w->udev, "udev");
	int r;

	if (!mon)
		return errno > 0 ? -errno : -ENOMEM;
	r = marked ? udev_monitor_filter_add_match_tag(mon, VFIOD_UDEV_TAG) : 0;
	if (r >= 0)
		r = udev_monitor_enable_receiving(mon);
	if (r < 0) {
		udev_monitor_unref(mon);
		return r;
	}
	r = udev_monitor_set_receive_buffer_size(mon, RECEIVE_BUFFER_SIZE);
	if (r < 0)
		log_warning_errno(r, "udev: cannot enlarge the receive buffer, ignoring: %m");
	*ret = mon;
	r = sd_event_add_io(w->m->event, source, udev_monitor_get_fd(mon), EPOLLIN,
			    marked ? on_marked : on_all, w);
	if (r >= 0)
		r = sd_event_source_set_priority(*source, SD_EVENT_PRIORITY_NORMAL + 10);
	return r;
}

int udev_watch_start(struct manager *m)
{
	struct udev_watch *w;
	const char *root = m->sysfs_root, *off = getenv(VFIOD_ENV_NO_UDEV);
	int r;

	if (root && *root && !streq(root, "/sys")) {
		log_info("udev: not watching, the sysfs root %s is not the system's", root);
		return 0;
	}
	if (off && streq(off, "1")) {
		log_info("udev: not watching, %s=1", VFIOD_ENV_NO_UDEV);
		return 0;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->m = m;
	w->tail = &w->head;
	m->udev = w;
	w->udev = udev_new();
	if (!w->udev) {
		r = -ENOMEM;
		goto fail;
	}
	r = sd_event_add_defer(m->event, &w->defer, on_defer, w);
	if (r >= 0)
		r = sd_event_source_set_priority(w->defer, SD_EVENT_PRIORITY_NORMAL + 10);
	if (r >= 0)
		r = sd_event_source_set_enabled(w->defer, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	/* Both before the scan, so that nothing appearing meanwhile is missed. */
	r = monitor_open(w, true, &w->marked, &w->marked_source);
	if (r >= 0)
		r = monitor_open(w, false, &w->all, &w->all_source);
	if (r < 0)
		goto fail;
	r = scan(w, VFIOD_TRIGGER_START);
	if (r < 0)
		log_warning_errno(r, "udev: cannot list the marked devices, ignoring: %m");
	log_info("udev: watching devices tagged \"%s\" (%zu present)", VFIOD_UDEV_TAG,
		 w->n_pending);
	return 0;
fail:
	log_warning_errno(r, "udev: cannot watch, hotplug is off: %m");
	udev_watch_stop(m);
	return 0;
}

void udev_watch_stop(struct manager *m)
{
	struct udev_watch *w = m->udev;
	struct pending *p;

	if (!w)
		return;
	while ((p = pending_pop(w)))
		pending_free(p);
	sd_event_source_disable_unref(w->defer);
	sd_event_source_disable_unref(w->marked_source);
	sd_event_source_disable_unref(w->all_source);
	udev_monitor_unref(w->marked);
	udev_monitor_unref(w->all);
	udev_unref(w->udev);
	json_decref(w->defs);
	free(w);
	m->udev = NULL;
}
