/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod's libvirt hook, run by libvirtd from /etc/libvirt/hooks/qemu.d/ as
 *
 *   HOOK DOMAIN OPERATION SUB-OPERATION EXTRA   (the domain's XML on stdin)
 *
 * On "prepare begin" it makes every device of the domain ready through vfiod
 * on the system bus; on "release end" it gives back exactly what it made for
 * that domain.  What it made is recorded per domain UUID under the state
 * directory as it goes, so that a libvirtd restart, a crashed guest or a hook
 * killed half-way still releases the right devices and nothing else.  It never
 * calls libvirt (a hook must not: libvirtd waits for it), and every call has a
 * deadline.  A failure at prepare gives back what this run made, prints
 * vfiod's message on stderr (libvirt puts it in the error `virsh start`
 * shows) and exits 1, which keeps the guest from starting.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <syslog.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

#include "bus-connect.h"
#include "bus-errors.h"
#include "bus-names.h"
#include "bus-options.h"
#include "fileio.h"
#include "macro.h"
#include "names.h"

#define HOOK_NS "http://vfiod.org/xmlns/libvirt/domain/1.0"
#define HOOK_STATE_DIR "/run/vfiod-libvirt"
#define HOOK_ENV_STATE_DIR "VFIOD_LIBVIRT_STATE_DIR"
/* vfiod's own limit for one operation (120 s) and a margin for the bus. */
#define HOOK_DEFAULT_TIMEOUT_SEC 130
/* Giving back after a failure gets a time of its own. */
#define HOOK_UNDO_TIMEOUT_SEC 60
#define USEC_PER_SEC 1000000ULL
/*
 * libvirt before 10.0 takes an unmanaged PCI hostdev only on a driver it knows by
 * name (vfio-pci); 10.0 knows any vfio driver by the device's vfio-dev directory.
 */
#define LIBVIRT_VARIANTS_VERSION 10000000UL
#define HOOK_ENV_LIBVIRT_VERSION "VFIOD_LIBVIRT_VERSION"

enum kind { KIND_PCI, KIND_MDEV, KIND_VDPA };

static const char *const kind_names[] = {
	[KIND_PCI] = "pci",
	[KIND_MDEV] = "mdev",
	[KIND_VDPA] = "vdpa",
};

/* One device of the domain that vfiod is to make ready. */
struct want {
	enum kind kind;
	char *key;     /* PCI address, mdev UUID or vhost-vdpa node, as the XML has it */
	char *target;  /* what Create gets (a path or name), NULL: Start a definition */
	char *start;   /* the definition Start gets */
	json_t *opts;  /* Create's options */
	char *name;    /* the name vfiod gives what is made */
	char *node;    /* a vdpa interface's node, checked after it is made */
	bool present;  /* exists already: nothing to make */
};

struct hook {
	const char *domain;
	char *uuid;
	char *state_dir;
	json_t *state; /* {"domain": ..., "uuid": ..., "devices": [{kind, name, undo}]} */
	sd_bus *bus;
	uint64_t deadline; /* CLOCK_MONOTONIC, µs */
	unsigned int timeout_sec;
	unsigned long libvirt; /* major * 1000000 + minor * 1000 + micro; 0: not known */
	bool libvirt_asked;
	struct want *wants;
	size_t n_wants;
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

_printf_(2, 3) static void say(const struct hook *h, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vfiod: %s: ", h->domain);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- The domain's XML ---- */

static char *prop(xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	char *s = v ? strdup((const char *)v) : NULL;

	xmlFree(v);
	return s;
}

static bool prop_yes(xmlNode *n, const char *name)
{
	_cleanup_free_ char *v = prop(n, name);

	return v && (streq(v, "yes") || streq(v, "on") || streq(v, "1") || streq(v, "true"));
}

static xmlXPathObject *eval(xmlXPathContext *x, xmlNode *at, const char *expr)
{
	x->node = at;
	return xmlXPathEvalExpression((const xmlChar *)expr, x);
}

static xmlNode *first(xmlXPathContext *x, xmlNode *at, const char *expr)
{
	xmlXPathObject *o = eval(x, at, expr);
	xmlNode *n = NULL;

	if (o && o->nodesetval && o->nodesetval->nodeNr > 0)
		n = o->nodesetval->nodeTab[0];
	xmlXPathFreeObject(o);
	return n;
}

static char *text_of(xmlXPathContext *x, xmlNode *at, const char *expr)
{
	xmlNode *n = first(x, at, expr);
	xmlChar *v = n ? xmlNodeGetContent(n) : NULL;
	char *s = v ? strdup((const char *)v) : NULL;

	xmlFree(v);
	return s;
}

/* A PCI <address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/> as 0000:03:00.0. */
static int pci_address(xmlNode *a, char **ret)
{
	static const char *const names[] = {"domain", "bus", "slot", "function"};
	static const unsigned long max[] = {0xffff, 0xff, 0x1f, 0x7};
	unsigned long v[4];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *s = prop(a, names[i]);
		char *end;

		if (!s && i == 0) {
			v[i] = 0;
			continue;
		}
		if (!s || !*s)
			return -EINVAL;
		errno = 0;
		v[i] = strtoul(s, &end, 0);
		if (errno || *end || v[i] > max[i])
			return -EINVAL;
	}
	return asprintf(ret, "%04lx:%02lx:%02lx.%lx", v[0], v[1], v[2], v[3]) < 0 ? -ENOMEM : 0;
}

/* The <vfiod:KIND> element of the metadata whose ATTR is VALUE. */
static xmlNode *metadata_for(xmlXPathContext *x, const char *kind, const char *attr,
			     const char *value)
{
	xmlXPathObject *o;
	xmlNode *found = NULL;
	char expr[96];

	snprintf(expr, sizeof(expr), "/domain/metadata/vfiod:devices/vfiod:%s", kind);
	o = eval(x, NULL, expr);
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr && !found; i++) {
		_cleanup_free_ char *v = prop(o->nodesetval->nodeTab[i], attr);

		if (v && strcasecmp(v, value) == 0)
			found = o->nodesetval->nodeTab[i];
	}
	xmlXPathFreeObject(o);
	return found;
}

static int set_string(json_t *o, const char *key, xmlNode *m, const char *attr)
{
	_cleanup_free_ char *v = m ? prop(m, attr) : NULL;

	if (!v)
		return 0;
	return json_object_set_new(o, key, json_string(v)) < 0 ? -ENOMEM : 0;
}

static const char *sysfs_root(void)
{
	return getenv(VFIOD_ENV_SYSFS_ROOT) ?: "/sys";
}

static bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static bool uuid_valid(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' :
							      !strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	return true;
}

/* "9.0.0" as 9000000; 0 when it is not a version. */
static unsigned long version_of(const char *s)
{
	unsigned long v[3] = {};
	char *end;

	for (int i = 0; i < 3 && s; i++) {
		errno = 0;
		v[i] = strtoul(s, &end, 10);
		if (errno || end == s || v[i] > 999)
			return 0;
		s = *end == '.' ? end + 1 : NULL;
	}
	return v[0] * 1000000 + v[1] * 1000 + v[2];
}

/*
 * The version of the libvirt daemon that runs the hook (its parent: libvirtd or
 * virtqemud), from its own `--version`: "/usr/sbin/libvirtd (libvirt) 9.0.0".  That
 * asks the program, not the running daemon, so it cannot wait for libvirtd.
 */
static unsigned long libvirt_version(void)
{
	const char *env = getenv(HOOK_ENV_LIBVIRT_VERSION);
	char exe[PATH_MAX], proc[64], out[256] = "";
	posix_spawn_file_actions_t fa;
	int fds[2], status;
	ssize_t n, len;
	const char *base;
	pid_t pid;

	if (env)
		return version_of(env);
	snprintf(proc, sizeof(proc), "/proc/%d/exe", (int)getppid());
	n = readlink(proc, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	/* Upgraded under the running daemon: the program at that path is the newer one. */
	if ((size_t)n > strlen(" (deleted)") && streq(exe + n - strlen(" (deleted)"), " (deleted)"))
		exe[n - strlen(" (deleted)")] = '\0';
	base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	if (!streq(base, "libvirtd") && !streq(base, "virtqemud"))
		return 0;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (posix_spawn(&pid, exe, &fa, NULL, (char *[]){exe, (char *)"--version", NULL},
			(char *[]){(char *)"LC_ALL=C", NULL}) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	for (len = 0; pid > 0 && (size_t)len < sizeof(out) - 1; len += n) {
		n = read(fds[0], out + len, sizeof(out) - 1 - (size_t)len);
		if (n <= 0)
			break;
	}
	close(fds[0]);
	if (pid <= 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return 0;
	base = strstr(out, "(libvirt) ");
	return base ? version_of(base + strlen("(libvirt) ")) : 0;
}

static int want_pci(struct hook *h, xmlXPathContext *x, xmlNode *hd, struct want *w)
{
	xmlNode *a = first(x, hd, "source/address"), *m;
	int r;

	if (!a || pci_address(a, &w->key) < 0) {
		say(h, "a <hostdev type='pci'> has no valid source address");
		return -EINVAL;
	}
	m = metadata_for(x, "hostdev", "address", w->key);
	if (m && prop_yes(m, "skip"))
		return 0;
	w->kind = KIND_PCI;
	if (asprintf(&w->target, "/sys/bus/pci/devices/%s", w->key) < 0 ||
	    !(w->name = strdup(w->key)))
		return -ENOMEM;
	w->opts = json_object();
	r = w->opts ? set_string(w->opts, "driver", m, "driver") : -ENOMEM;
	if (r >= 0 && !json_object_get(w->opts, "driver") && !h->libvirt_asked) {
		h->libvirt = libvirt_version();
		h->libvirt_asked = true;
	}
	if (r >= 0 && !json_object_get(w->opts, "driver") && h->libvirt &&
	    h->libvirt < LIBVIRT_VARIANTS_VERSION) {
		/* The most specific driver is one this libvirt would refuse. */
		r = json_object_set_new(w->opts, "driver", json_string("vfio-pci")) < 0 ? -ENOMEM :
											  0;
		/* In the journal: on stderr it would open every error libvirt shows. */
		sd_journal_send("MESSAGE=vfiod: %s: pci %s: to vfio-pci, as libvirt %lu.%lu.%lu "
				"takes no other vfio driver for a hostdev with managed='no' "
				"(libvirt 10.0 does)",
				h->domain, w->key, h->libvirt / 1000000, h->libvirt / 1000 % 1000,
				h->libvirt % 1000,
				"PRIORITY=%d", LOG_NOTICE, "SYSLOG_IDENTIFIER=vfiod-libvirt-hook",
				"VFIOD_DEVICE=%s", w->key, NULL);
	}
	if (r >= 0 && m && prop_yes(m, "group"))
		r = json_object_set_new(w->opts, "group", json_true()) < 0 ? -ENOMEM : 0;
	return r < 0 ? r : 1;
}

static int want_mdev(struct hook *h, xmlXPathContext *x, xmlNode *hd, struct want *w)
{
	xmlNode *a = first(x, hd, "source/address"), *m;
	_cleanup_free_ char *sys = NULL, *parent = NULL, *type = NULL;

	w->key = a ? prop(a, "uuid") : NULL;
	if (!uuid_valid(w->key)) {
		say(h, "a <hostdev type='mdev'> has no valid source address uuid");
		return -EINVAL;
	}
	m = metadata_for(x, "mdev", "uuid", w->key);
	if (m && prop_yes(m, "skip"))
		return 0;
	w->kind = KIND_MDEV;
	if (asprintf(&sys, "%s/bus/mdev/devices/%s", sysfs_root(), w->key) < 0 ||
	    !(w->name = strdup(w->key)))
		return -ENOMEM;
	w->present = path_exists(sys);
	parent = m ? prop(m, "parent") : NULL;
	type = m ? prop(m, "type") : NULL;
	if (!parent != !type) {
		say(h, "mdev %s: the metadata needs both parent and type, or neither (a "
		       "definition of vfiod's)", w->key);
		return -EINVAL;
	}
	if (!parent) {
		/* Made from vfiod's definition of that UUID. */
		w->start = strdup(w->key);
		return w->start ? 1 : -ENOMEM;
	}
	w->target = TAKE_PTR(parent);
	w->opts = json_pack("{s:s, s:s}", "type", type, "uuid", w->key);
	return w->opts ? 1 : -ENOMEM;
}

static int want_vdpa(struct hook *h, xmlXPathContext *x, xmlNode *iface, struct want *w)
{
	xmlNode *s = first(x, iface, "source"), *m;
	_cleanup_free_ char *name = NULL, *mgmtdev = NULL;
	int r;

	w->key = s ? prop(s, "dev") : NULL;
	if (!w->key || strncmp(w->key, "/dev/vhost-vdpa-", 16) != 0) {
		say(h, "an <interface type='vdpa'> has no source dev /dev/vhost-vdpa-N");
		return -EINVAL;
	}
	m = metadata_for(x, "vdpa", "dev", w->key);
	if (m && prop_yes(m, "skip"))
		return 0;
	w->kind = KIND_VDPA;
	w->present = path_exists(w->key);
	w->node = strdup(w->key);
	if (!w->node)
		return -ENOMEM;
	name = m ? prop(m, "name") : NULL;
	mgmtdev = m ? prop(m, "mgmtdev") : NULL;
	if (!name) {
		if (w->present)
			return 1;
		say(h, "%s does not exist, and no <vfiod:vdpa dev='%s' name=...> in the "
		       "metadata says which vdpa device it is", w->key, w->key);
		return -ENOENT;
	}
	w->name = strdup(name);
	if (!w->name)
		return -ENOMEM;
	if (!mgmtdev) {
		w->start = TAKE_PTR(name);
		return 1;
	}
	w->target = TAKE_PTR(mgmtdev);
	w->opts = json_pack("{s:s}", "vdpa", name);
	r = w->opts ? set_string(w->opts, "driver", m, "driver") : -ENOMEM;
	return r < 0 ? r : 1;
}

static int add_want(struct hook *h, int (*fill)(struct hook *, xmlXPathContext *, xmlNode *,
					       struct want *),
		    xmlXPathContext *x, xmlNode *n)
{
	struct want w = {}, *more;
	int r = fill(h, x, n, &w);

	if (r <= 0) {
		free(w.key);
		free(w.target);
		free(w.start);
		free(w.name);
		free(w.node);
		json_decref(w.opts);
		return r;
	}
	more = realloc(h->wants, (h->n_wants + 1) * sizeof(*more));
	if (!more)
		return -ENOMEM;
	h->wants = more;
	h->wants[h->n_wants++] = w;
	return 0;
}

static int each(struct hook *h, xmlXPathContext *x, const char *expr,
		int (*fill)(struct hook *, xmlXPathContext *, xmlNode *, struct want *))
{
	xmlXPathObject *o = eval(x, NULL, expr);
	int r = 0;

	if (!o)
		return -ENOMEM;
	for (int i = 0; o->nodesetval && i < o->nodesetval->nodeNr && r >= 0; i++)
		r = add_want(h, fill, x, o->nodesetval->nodeTab[i]);
	xmlXPathFreeObject(o);
	return r;
}

static int timeout_of(struct hook *h, xmlXPathContext *x)
{
	xmlNode *d = first(x, NULL, "/domain/metadata/vfiod:devices");
	_cleanup_free_ char *v = d ? prop(d, "timeout") : NULL;
	char *end;
	unsigned long t;

	h->timeout_sec = HOOK_DEFAULT_TIMEOUT_SEC;
	if (!v)
		return 0;
	errno = 0;
	t = strtoul(v, &end, 10);
	if (errno || *end || t == 0 || t > 3600) {
		say(h, "<vfiod:devices timeout='%s'>: not a number of seconds from 1 to 3600", v);
		return -EINVAL;
	}
	h->timeout_sec = (unsigned int)t;
	return 0;
}

static int parse_domain(struct hook *h, const char *xml, size_t len)
{
	xmlDoc *doc;
	xmlXPathContext *x = NULL;
	int r = -EINVAL;

	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		size_t n = e && e->message ? strcspn(e->message, "\n") : 0;

		say(h, "the domain XML on standard input does not parse: %.*s", (int)n,
		    n ? e->message : "no document");
		return -EINVAL;
	}
	x = xmlXPathNewContext(doc);
	if (!x || xmlXPathRegisterNs(x, (const xmlChar *)"vfiod", (const xmlChar *)HOOK_NS) < 0) {
		r = -ENOMEM;
		goto out;
	}
	h->uuid = text_of(x, NULL, "/domain/uuid");
	if (!uuid_valid(h->uuid)) {
		say(h, "the domain XML has no valid <uuid>");
		goto out;
	}
	r = timeout_of(h, x);
	if (r >= 0)
		r = each(h, x,
			 "/domain/devices/hostdev[@mode='subsystem'][@type='pci']"
			 "[not(@managed='yes')]",
			 want_pci);
	if (r >= 0)
		r = each(h, x, "/domain/devices/hostdev[@mode='subsystem'][@type='mdev']",
			 want_mdev);
	if (r >= 0)
		r = each(h, x, "/domain/devices/interface[@type='vdpa']", want_vdpa);
out:
	xmlXPathFreeContext(x);
	xmlFreeDoc(doc);
	return r;
}

/* ---- The record of what this hook made for the domain ---- */

static int state_load(struct hook *h)
{
	_cleanup_free_ char *file = NULL;
	json_error_t e;

	if (asprintf(&file, "%s/%s.json", h->state_dir, h->uuid) < 0)
		return -ENOMEM;
	if (!path_exists(file)) {
		h->state = json_pack("{s:s, s:s, s:[]}", "domain", h->domain, "uuid", h->uuid,
				     "devices");
		return h->state ? 0 : -ENOMEM;
	}
	h->state = json_load_file(file, 0, &e);
	if (!h->state || !json_is_array(json_object_get(h->state, "devices"))) {
		say(h, "%s: not a record of this hook: %s", file, h->state ? "no devices" : e.text);
		return -EINVAL;
	}
	return 0;
}

static int state_save(struct hook *h)
{
	_cleanup_free_ char *name = NULL, *text = NULL;
	int r;

	if (asprintf(&name, "%s.json", h->uuid) < 0)
		return -ENOMEM;
	if (json_array_size(json_object_get(h->state, "devices")) == 0) {
		r = remove_file_durable(h->state_dir, name);
		return r == -ENOENT ? 0 : r;
	}
	r = mkdir_p(h->state_dir, 0700);
	if (r < 0)
		goto fail;
	text = json_dumps(h->state, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	r = write_file_atomic(h->state_dir, name, text);
	if (r >= 0)
		return 0;
fail:
	say(h, "cannot record what was made in %s: %s", h->state_dir, strerror(-r));
	return r;
}

/* The record has a device of that name: the hook made it. */
static bool state_has(const struct hook *h, const char *name)
{
	json_t *d;
	size_t i;

	json_array_foreach(json_object_get(h->state, "devices"), i, d)
		if (streq(json_string_value(json_object_get(d, "name")) ?: "", name))
			return true;
	return false;
}

static int state_add(struct hook *h, enum kind kind, const char *name, const char *undo)
{
	json_t *devices = json_object_get(h->state, "devices"), *d;

	if (state_has(h, name))
		return 0;
	d = json_pack("{s:s, s:s, s:s}", "kind", kind_names[kind], "name", name, "undo", undo);
	if (!d || json_array_append_new(devices, d) < 0)
		return -ENOMEM;
	return state_save(h);
}

/* ---- vfiod on the bus ---- */

/* The time left before the deadline, at least a second for a call. */
static uint64_t time_left(const struct hook *h)
{
	uint64_t now = now_usec();

	return h->deadline > now + USEC_PER_SEC ? h->deadline - now : USEC_PER_SEC;
}

/*
 * METHOD(ARG[, OPTS]) on vfiod's manager.  Its JSON in *RET_JSON; on failure
 * a message naming WHAT printed, and a negative errno.
 */
static int call(struct hook *h, const char *what, const char *method, const char *arg,
		json_t *opts, char **ret_json)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	const char *json = NULL;
	int r;

	if (now_usec() >= h->deadline) {
		/* Not asked at all: nothing of it can finish later. */
		say(h, "%s: not done: the hook's %u s are up", what, h->timeout_sec);
		return -ETIME;
	}
	r = sd_bus_message_new_method_call(h->bus, &m, VFIOD_BUS_NAME, VFIOD_MANAGER_PATH,
					   VFIOD_MANAGER_IFACE, method);
	if (r >= 0)
		r = sd_bus_message_append(m, "s", arg);
	if (r >= 0 && (streq(method, "Create") || streq(method, "Destroy")))
		r = bus_options_append(m, opts);
	if (r >= 0)
		r = sd_bus_call(h->bus, m, time_left(h), &e, &reply);
	if (r >= 0) {
		const char *sig = sd_bus_message_get_signature(reply, true);

		r = streq(sig, "os") ? sd_bus_message_read(reply, "os", NULL, &json) :
				       sd_bus_message_read(reply, "s", &json);
		if (r >= 0 && ret_json)
			r = (*ret_json = strdup(json)) ? 0 : -ENOMEM;
	}
	if ((r == -ETIMEDOUT && !sd_bus_error_has_name(&e, VFIOD_ERROR_TIMEOUT)) ||
	    sd_bus_error_has_name(&e, SD_BUS_ERROR_NO_REPLY))
		say(h, "%s: vfiod did not answer within the hook's %u s", what, h->timeout_sec);
	else if (r < 0)
		say(h, "%s: %s", what, e.message ?: strerror(-r));
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return r;
}

/*
 * A Create or Start that did not answer in time may still finish: queue its
 * undo behind it in vfiod's queue for that hardware, without waiting.
 */
static void undo_one_later(struct hook *h, const struct want *w, const char *name)
{
	sd_bus_message *m = NULL;
	const char *method = w->start ? "Stop" : "Destroy";

	if (sd_bus_message_new_method_call(h->bus, &m, VFIOD_BUS_NAME, VFIOD_MANAGER_PATH,
					   VFIOD_MANAGER_IFACE, method) >= 0 &&
	    sd_bus_message_append(m, "s", name) >= 0 &&
	    (w->start || sd_bus_message_append(m, "a{sv}", 0) >= 0) &&
	    sd_bus_message_set_expect_reply(m, false) >= 0 && sd_bus_send(h->bus, m, NULL) >= 0) {
		(void)sd_bus_flush(h->bus);
		say(h, "%s: %s queued behind it, in case it still finishes", name, method);
	}
	sd_bus_message_unref(m);
}

/* The undo of W, and with `group` of every other member of its IOMMU group. */
static void undo_later(struct hook *h, const struct want *w)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ char *dir = NULL;
	struct dirent *e;

	undo_one_later(h, w, w->name);
	if (!json_is_true(json_object_get(w->opts, "group")) ||
	    asprintf(&dir, "%s/bus/pci/devices/%s/iommu_group/devices", sysfs_root(), w->key) < 0)
		return;
	d = opendir(dir);
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && !streq(e->d_name, w->name))
			undo_one_later(h, w, e->d_name);
}

/* Every device a Create's result says it changed, into the record. */
static int record_changed(struct hook *h, const struct want *w, json_t *res)
{
	json_t *one, *all = json_is_array(res) ? json_incref(res) : json_pack("[O]", res);
	size_t i;
	int r = 0;

	if (!all)
		return -ENOMEM;
	json_array_foreach(all, i, one) {
		const char *name = json_string_value(json_object_get(one, "name"));

		/* A kind that can only make (vdpa, sf) says nothing: what it returns is new. */
		if (r >= 0 && name && !json_is_false(json_object_get(one, "changed")))
			r = state_add(h, w->kind, name, "destroy");
	}
	json_decref(all);
	return r;
}

static int make(struct hook *h, const struct want *w)
{
	_cleanup_free_ char *json = NULL, *what = NULL;
	json_t *res;
	int r;

	if (w->present)
		return 0;
	if (asprintf(&what, "%s %s", kind_names[w->kind], w->key) < 0)
		return -ENOMEM;
	if (w->start) {
		r = call(h, what, "Start", w->start, NULL, &json);
		if (r == -ETIMEDOUT)
			undo_later(h, w);
		else if (r < 0 && w->kind == KIND_MDEV)
			say(h, "%s: to make it, define it (vfioctl define PARENT type TYPE uuid %s) "
			       "or give <vfiod:mdev uuid='%s' parent=... type=...> in the domain's "
			       "metadata", what, w->key, w->key);
		else if (r < 0)
			say(h, "%s: to make it, define vdpa device %s (vfioctl define MGMTDEV vdpa %s) "
			       "or give mgmtdev=... in its <vfiod:vdpa> of the domain's metadata",
			    what, w->start, w->start);
		if (r >= 0)
			r = state_add(h, w->kind, w->start, "stop");
	} else {
		r = call(h, what, "Create", w->target, w->opts, &json);
		if (r == -ETIMEDOUT)
			undo_later(h, w);
		if (r >= 0) {
			res = json_loads(json, 0, NULL);
			r = res ? record_changed(h, w, res) : -EBADMSG;
			json_decref(res);
		}
	}
	if (r >= 0 && w->node && !path_exists(w->node)) {
		say(h, "%s: made, but %s is not there: the domain names another vdpa device",
		    what, w->node);
		r = -ENODEV;
	}
	return r;
}

/* Give back the record's devices from FROM on, newest first; keep what fails. */
static int give_back(struct hook *h, size_t from)
{
	json_t *devices = json_object_get(h->state, "devices");
	int ret = 0;

	for (size_t i = json_array_size(devices); i-- > from;) {
		json_t *d = json_array_get(devices, i);
		const char *name = json_string_value(json_object_get(d, "name"));
		const char *undo = json_string_value(json_object_get(d, "undo"));
		_cleanup_free_ char *what = NULL;
		int r;

		if (!name || !undo) {
			json_array_remove(devices, i);
			continue;
		}
		if (asprintf(&what, "%s %s", json_string_value(json_object_get(d, "kind")) ?: "",
			     name) < 0)
			return -ENOMEM;
		r = streq(undo, "stop") ? call(h, what, "Stop", name, NULL, NULL) :
					  call(h, what, "Destroy", name, NULL, NULL);
		/* Gone already (destroyed by hand, or never made): nothing to keep. */
		if (r >= 0 || r == -ENOTCONN || r == -ENODEV)
			json_array_remove(devices, i);
		else if (ret >= 0)
			ret = r;
	}
	return state_save(h) < 0 && ret >= 0 ? -EIO : ret;
}

/*
 * What vfiod holds already, for another caller or an earlier boot, is not the hook's to
 * make nor to give back, and no undo is ever queued for it; what the hook's own record
 * has stays in the record.  Asked of the device's object, which vfiod answers from
 * memory: a device the kernel holds elsewhere cannot make the question wait.
 */
static int mark_held(struct hook *h)
{
	(void)sd_bus_set_method_call_timeout(h->bus, time_left(h));
	for (size_t k = 0; k < h->n_wants; k++) {
		_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
		_cleanup_free_ char *path = NULL;
		struct want *w = &h->wants[k];
		_cleanup_free_ char *driver = NULL;
		int r;

		if (!w->name || w->present || state_has(h, w->name))
			continue;
		r = sd_bus_path_encode(VFIOD_DEVICE_PREFIX, w->name, &path);
		if (r < 0)
			return r;
		/* Known and on its driver (a PF's VF that is not assigned has an object too). */
		r = sd_bus_get_property_string(h->bus, VFIOD_BUS_NAME, path, VFIOD_DEVICE_IFACE,
					       "Driver", &e, &driver);
		if (r >= 0 && driver && *driver)
			w->present = true;
		if (r >= 0)
			continue;
		if (!sd_bus_error_has_names(&e, SD_BUS_ERROR_UNKNOWN_OBJECT,
						 SD_BUS_ERROR_UNKNOWN_INTERFACE,
						 SD_BUS_ERROR_UNKNOWN_METHOD)) {
			say(h, "%s %s: %s", kind_names[w->kind], w->key,
			    e.message ?: strerror(-r));
			return r;
		}
	}
	return 0;
}

static int prepare(struct hook *h)
{
	size_t before = json_array_size(json_object_get(h->state, "devices"));
	int r;

	r = mark_held(h);
	for (size_t i = 0; i < h->n_wants && r >= 0; i++)
		r = make(h, &h->wants[i]);
	if (r >= 0)
		return 0;
	h->deadline = now_usec() + HOOK_UNDO_TIMEOUT_SEC * USEC_PER_SEC;
	if (give_back(h, before) < 0)
		say(h, "some of what was made is still held; it is given back at release");
	else if (json_array_size(json_object_get(h->state, "devices")) == before)
		say(h, "nothing was left assigned");
	return r;
}

static int run(struct hook *h, bool at_prepare)
{
	int r;

	r = bus_connect("vfiod-libvirt-hook", &h->bus, NULL);
	if (r < 0) {
		say(h, "cannot reach the system bus: %s; is dbus running (systemctl status "
		       "dbus.socket)?", strerror(-r));
		return r;
	}
	h->deadline = now_usec() + h->timeout_sec * USEC_PER_SEC;
	return at_prepare ? prepare(h) : give_back(h, 0);
}

static char *read_all(FILE *f, size_t *len)
{
	size_t size = 0;
	char *buf = NULL;
	FILE *mem = open_memstream(&buf, &size);
	char chunk[8192];
	size_t n;

	if (!mem)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, mem);
	if (ferror(f)) {
		fclose(mem);
		free(buf);
		return NULL;
	}
	fclose(mem);
	*len = size;
	return buf;
}

static void usage(FILE *f)
{
	fputs("Usage: libvirt-hook DOMAIN OPERATION SUB-OPERATION [EXTRA] < DOMAIN-XML\n"
	      "libvirt runs it from /etc/libvirt/hooks/qemu.d/; on \"prepare begin\" it\n"
	      "makes the domain's devices ready through vfiod, on \"release end\" it\n"
	      "gives back what it made.  See vfiod(8), LIBVIRT.\n",
	      f);
}

int main(int argc, char **argv)
{
	struct hook h = {};
	_cleanup_free_ char *xml = NULL;
	bool at_prepare, at_release;
	size_t len = 0;
	int r;

	if (argc == 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 4) {
		usage(stderr);
		return 2;
	}
	h.domain = argv[1];
	/* Read what libvirt writes, whatever the operation: it must not see a broken pipe. */
	xml = read_all(stdin, &len);
	at_prepare = streq(argv[2], "prepare") && streq(argv[3], "begin");
	at_release = streq(argv[2], "release") && streq(argv[3], "end");
	if (!at_prepare && !at_release)
		return 0;
	if (!xml) {
		say(&h, "cannot read the domain XML: %s", strerror(errno));
		return 1;
	}
	LIBXML_TEST_VERSION;
	(void)bus_errors_register();
	h.state_dir = dir_from_env(HOOK_ENV_STATE_DIR, HOOK_STATE_DIR);
	r = h.state_dir ? parse_domain(&h, xml, len) : -ENOMEM;
	if (r >= 0)
		r = state_load(&h);
	/* Nothing of vfiod's to do: no call, no bus, vfiod not started for it. */
	if (r >= 0 && (at_prepare ? h.n_wants > 0 :
				    json_array_size(json_object_get(h.state, "devices")) > 0))
		r = run(&h, at_prepare);
	if (r == -ENOMEM)
		say(&h, "out of memory");

	for (size_t i = 0; i < h.n_wants; i++) {
		free(h.wants[i].key);
		free(h.wants[i].target);
		free(h.wants[i].start);
		free(h.wants[i].name);
		free(h.wants[i].node);
		json_decref(h.wants[i].opts);
	}
	free(h.wants);
	free(h.uuid);
	free(h.state_dir);
	json_decref(h.state);
	sd_bus_flush_close_unref(h.bus);
	xmlCleanupParser();
	return r < 0 ? 1 : 0;
}
